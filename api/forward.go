package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"syscall"
	"time"

	"github.com/rotorhq/rotor/internal/wait"
)

// forwardedHeader marks a request that a follower forwarded to the leader,
// with the follower's node id. A node never forwards such a request again,
// so a stale view of who leads cannot bounce a request around the cluster.
const forwardedHeader = "X-Rotor-Forwarded-By"

// Directory looks up the other nodes of the cluster for the HTTP layer.
type Directory interface {
	// HTTPAddr returns the host:port of the HTTP API of the node with the
	// given Raft server id.
	HTTPAddr(nodeID string) (string, bool)

	// IsPeerIP reports whether ip is the address of a cluster member.
	IsPeerIP(ip string) bool
}

// newForwardTransport returns the client side of leader forwarding: kept-
// alive connections, enough of them for every request in flight.
func newForwardTransport(tlsConfig *tls.Config) *http.Transport {
	return &http.Transport{
		TLSClientConfig:       tlsConfig,
		DialContext:           dialAbortive,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
	}
}

// forwardScheme is the scheme of the other nodes' HTTP: every node of a
// cluster serves TLS, or none does.
func (s *Server) forwardScheme() string {
	if s.cfg.PeerTLS != nil {
		return "https"
	}
	return "http"
}

// dialAbortive connects to the leader with lingering off, so closing the
// connection resets it and drops whatever the kernel still holds unsent.
// A forward is closed when its client gives up. Without the reset, a request
// held back by a partition would still reach the leader once the network
// heals, long after the client moved on. A refresh token presented that late
// counts as reuse.
func dialAbortive(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		if err := tcp.SetLinger(0); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// errNoLeader is returned while no leader is known.
var errNoLeader = errors.New("no raft leader known")

// onLeader serves h on the leader. A follower forwards the request to the
// leader instead. While no leader is known, it waits up to LeaderWait and
// then returns 503. precheck, when set, runs on the follower first with the
// request body, so that requests the follower can reject alone (a forged
// refresh token) never reach the leader.
func (s *Server) onLeader(h http.Handler, precheck func(r *http.Request, body []byte) error, oauth bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.stalls.stalled() {
			s.writeError(w, r, &Error{Code: CodeUnavailable, RetryAfter: 1, Cause: errStalled,
				Detail: "this node was stalled a moment ago and may hold stale requests; retry shortly"}, oauth)
			return
		}
		if s.leaderReady() {
			h.ServeHTTP(w, r)
			return
		}
		if err := s.forward(w, r, precheck); err != nil {
			s.writeError(w, r, err, oauth)
		}
	})
}

// leaderReady reports whether this node leads and has caught up with the
// log, so it can serve writes itself. A node that has just won an election
// waits for its barrier first.
func (s *Server) leaderReady() bool {
	return s.deps.Node.IsLeader() && s.deps.Actors.Leading()
}

// forward proxies r to the leader. It returns an error only when nothing
// was written yet.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, precheck func(*http.Request, []byte) error) error {
	// Only a cluster member's mark counts; a client cannot use it to make a
	// follower refuse its requests.
	forwarded := r.Header.Get(forwardedHeader) != "" && s.deps.Directory != nil && s.deps.Directory.IsPeerIP(clientHost(r))
	if forwarded && !s.deps.Node.IsLeader() {
		// The sender believed this node leads; it no longer does.
		return unavailable(errors.New("request was already forwarded once"))
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if precheck != nil {
		if err := precheck(r, body); err != nil {
			return err
		}
	}

	// Find the leader, waiting out an election, and retry once more if the
	// leader's port refuses the connection: nothing reached it, so even a
	// login cannot be applied twice.
	deadline := time.Now().Add(s.cfg.LeaderWait)
	for {
		addr, self, err := s.leaderHTTPAddr(r.Context(), deadline)
		if err != nil {
			return unavailable(err)
		}
		if self {
			r.Body = io.NopCloser(bytes.NewReader(body))
			s.router.ServeHTTP(w, r)
			return nil
		}
		// The leader's response brings its own Cache-Control.
		w.Header().Del("Cache-Control")
		refused := false
		s.proxyTo(w, r, addr, body, &refused)
		if !refused {
			return nil
		}
		if time.Now().After(deadline) {
			return unavailable(errors.New("the leader refused the connection"))
		}
		if !wait.Sleep(r.Context(), 50*time.Millisecond) {
			return unavailable(r.Context().Err())
		}
	}
}

// leaderHTTPAddr waits until a leader is known or the deadline passes. self
// is true when this node has become the leader meanwhile.
func (s *Server) leaderHTTPAddr(ctx context.Context, deadline time.Time) (addr string, self bool, err error) {
	for {
		if s.leaderReady() {
			return "", true, nil
		}
		if _, id := s.deps.Node.Leader(); id != "" && id != s.cfg.NodeID && s.deps.Directory != nil {
			if addr, ok := s.deps.Directory.HTTPAddr(id); ok {
				return addr, false, nil
			}
		}
		if time.Now().After(deadline) {
			return "", false, errNoLeader
		}
		if !wait.Sleep(ctx, 20*time.Millisecond) {
			return "", false, ctx.Err()
		}
	}
}

// proxyTo sends the request to addr and copies the response back. refused
// is set, and nothing written, when the connection was refused.
func (s *Server) proxyTo(w http.ResponseWriter, r *http.Request, addr string, body []byte, refused *bool) {
	proxy := &httputil.ReverseProxy{
		Transport: s.forwardTransport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = s.forwardScheme()
			pr.Out.URL.Host = addr
			pr.Out.Host = r.Host
			// Keep the client's chain and append the address this node saw,
			// so the leader can walk back to the client.
			if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
				pr.Out.Header["X-Forwarded-For"] = prior
			}
			pr.SetXForwarded()
			pr.Out.Header.Set(forwardedHeader, s.cfg.NodeID)
			pr.Out.Body = io.NopCloser(bytes.NewReader(body))
			pr.Out.ContentLength = int64(len(body))
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			if errors.Is(err, syscall.ECONNREFUSED) {
				*refused = true
				return
			}
			s.writeError(w, r, unavailable(err), strings.HasPrefix(r.URL.Path, "/oauth2/"))
		},
	}
	proxy.ServeHTTP(w, r)
}

// clientIP returns the address of the client that sent the request. It
// walks X-Forwarded-For from the right for as long as the hop that added an
// entry is trusted (a cluster member or a configured proxy), so a client
// cannot choose its own address by sending the header itself.
func (s *Server) clientIP(r *http.Request) string {
	ip := clientHost(r)
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0 && s.trustedHop(ip); i-- {
		next := strings.TrimSpace(hops[i])
		if net.ParseIP(next) == nil {
			break
		}
		ip = next
	}
	return ip
}

func (s *Server) trustedHop(ip string) bool {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return false
	}
	for _, n := range s.cfg.TrustedProxies {
		if n.Contains(parsed) {
			return true
		}
	}
	return s.deps.Directory != nil && s.deps.Directory.IsPeerIP(ip)
}

// clientHost returns the host of the TCP peer.
func clientHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
