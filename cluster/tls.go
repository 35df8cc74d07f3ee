package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TLSFiles names the PEM files of mutual TLS between Raft peers: this
// node's certificate and key, and the CA that signed every node's
// certificate. A peer must present a certificate from that CA, and its
// certificate must be valid for the address it is dialed at.
type TLSFiles struct {
	CertFile, KeyFile, CAFile string
}

// Enabled reports whether any file is set.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || f.CAFile != "" }

// load reads the files into a server and a client configuration.
func (f TLSFiles) load() (server, client *tls.Config, err error) {
	if f.CertFile == "" || f.KeyFile == "" || f.CAFile == "" {
		return nil, nil, errors.New("raft TLS needs a certificate, its key and a CA file")
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("load raft TLS certificate: %w", err)
	}
	caPEM, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read raft TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("raft TLS CA file %s contains no PEM certificate", f.CAFile)
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}
	return server, client, nil
}

// tlsStream is a raft.StreamLayer over mutual TLS.
type tlsStream struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config
}

func newTLSStream(bind string, advertise net.Addr, files TLSFiles) (*tlsStream, error) {
	server, client, err := files.load()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	return &tlsStream{Listener: tls.NewListener(ln, server), advertise: advertise, client: client}, nil
}

// Addr returns the address other nodes dial.
func (s *tlsStream) Addr() net.Addr { return s.advertise }

// Dial connects to a peer and completes the handshake within timeout.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, err
	}
	cfg := s.client.Clone()
	cfg.ServerName = host
	dialer := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(dialer, "tcp", string(address), cfg)
}

// newTransport returns Raft's transport: plain TCP, or mutual TLS when
// cfg.TLS is set.
func newTransport(cfg Config, advertise net.Addr, hlog hclog.Logger) (*raft.NetworkTransport, error) {
	const maxPool, timeout = 8, 10 * time.Second
	if !cfg.TLS.Enabled() {
		return raft.NewTCPTransportWithLogger(cfg.RaftAddr, advertise, maxPool, timeout, hlog.Named("transport"))
	}
	stream, err := newTLSStream(cfg.RaftAddr, advertise, cfg.TLS)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithLogger(stream, maxPool, timeout, hlog.Named("transport")), nil
}
