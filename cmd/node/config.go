package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rotorhq/rotor/api"
)

// config is everything a node is started with. Every flag can also be set by
// an environment variable: --reuse-grace is ROTOR_REUSE_GRACE. A flag on the
// command line wins over the variable.
type config struct {
	NodeID     string
	HTTPAddr   string
	RaftAddr   string
	GossipAddr string
	DataDir    string

	BootstrapExpect int
	Join            string
	TrustedProxies  string
	MaxStaleness    time.Duration
	LeaderWait      time.Duration

	AccessTTL      time.Duration
	RefreshIdleTTL time.Duration
	SessionMaxTTL  time.Duration
	ReuseGrace     time.Duration
	Leeway         time.Duration
	Signup         bool
	LoginLimitUser string
	LoginLimitAddr string

	TLSCertFile     string
	TLSKeyFile      string
	TLSCAFile       string
	RaftTLSCertFile string
	RaftTLSKeyFile  string
	RaftTLSCAFile   string
	GossipKeyFile   string

	Issuer         string
	Audience       string
	AllowedOrigins string

	ClusterSecretFile string
	ServiceKeyFile    string
	AdminUsername     string

	CleanupInterval time.Duration
	DebugAddr       string
	LogLevel        string
	LogFormat       string

	// Read from the environment only, never from flags, so they stay out
	// of process listings.
	clusterSecret string
	serviceKey    string
	adminPassword string

	// Parsed from LoginLimitUser and LoginLimitAddr by validate.
	loginPerUser api.LoginLimit
	loginPerAddr api.LoginLimit

	// issuerFromAddr is set when --issuer was left out, so the issuer
	// follows the bound HTTP address (port 0 picks one).
	issuerFromAddr bool
}

func newFlagSet(cfg *config, output io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("rotor", flag.ContinueOnError)
	fs.SetOutput(output)
	host, _ := os.Hostname()
	if host == "" {
		host = "rotor-1"
	}
	fs.StringVar(&cfg.NodeID, "node-id", host, "Raft server id of this node")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "address the HTTP API listens on")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "127.0.0.1:8081", "address Raft listens on and advertises")
	fs.StringVar(&cfg.GossipAddr, "gossip-addr", "127.0.0.1:8082", "address memberlist gossip listens on (TCP and UDP) and advertises")
	fs.StringVar(&cfg.DataDir, "data-dir", "./rotor-data", "directory for the Raft log, snapshots and the generated cluster secret")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 1, "number of voters that must meet before the first election; give every founding node the same value")
	fs.StringVar(&cfg.Join, "join", "", "comma-separated gossip addresses of other nodes to join")
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", "127.0.0.0/8,::1/128", "comma-separated networks (CIDR) whose X-Forwarded-For is believed, besides cluster members")
	fs.DurationVar(&cfg.MaxStaleness, "max-staleness", 2*time.Second, "how long a follower may go without contact with the leader before /readyz fails")
	fs.DurationVar(&cfg.LeaderWait, "leader-wait", 2*time.Second, "how long a write waits for a leader to be elected before it answers 503")

	fs.DurationVar(&cfg.AccessTTL, "access-ttl", 5*time.Minute, "lifetime of access tokens")
	fs.DurationVar(&cfg.RefreshIdleTTL, "refresh-idle-ttl", 336*time.Hour, "how long a session lives without a refresh; each refresh moves this deadline")
	fs.DurationVar(&cfg.SessionMaxTTL, "session-max-ttl", 2160*time.Hour, "absolute session lifetime, fixed at login")
	fs.DurationVar(&cfg.ReuseGrace, "reuse-grace", 10*time.Second, "how long after a rotation the previous refresh token returns the same successor; 0 makes every second use reuse")
	fs.DurationVar(&cfg.Leeway, "leeway", 10*time.Second, "clock skew allowed when checking exp and iat of access tokens")
	fs.BoolVar(&cfg.Signup, "signup", true, "let anyone create an account with POST /v1/users")
	fs.StringVar(&cfg.LoginLimitUser, "login-limit-user", "10/10m", "failed logins allowed per username, as N/DURATION (N at once, refilled over DURATION), or 0 for no limit")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "PEM certificate (with its chain) to serve HTTPS with instead of HTTP; needs --tls-key-file")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&cfg.TLSCAFile, "tls-ca-file", "", "PEM CA that signed the other nodes' HTTPS certificates, trusted when forwarding to the leader (default: the system's CAs)")
	fs.StringVar(&cfg.RaftTLSCertFile, "raft-tls-cert-file", "", "PEM certificate for mutual TLS between Raft peers; needs --raft-tls-key-file and --raft-tls-ca-file")
	fs.StringVar(&cfg.RaftTLSKeyFile, "raft-tls-key-file", "", "PEM private key of --raft-tls-cert-file")
	fs.StringVar(&cfg.RaftTLSCAFile, "raft-tls-ca-file", "", "PEM CA that signed every node's Raft certificate; peers without one are refused")
	fs.StringVar(&cfg.GossipKeyFile, "gossip-key-file", "", "file holding the 32-byte gossip encryption key, raw or base64; default: a key derived from the cluster secret")
	fs.StringVar(&cfg.LoginLimitAddr, "login-limit-ip", "100/10m", "failed logins allowed per client address, as N/DURATION, or 0 for no limit")

	fs.StringVar(&cfg.Issuer, "issuer", "", "iss of access tokens and base URL in the metadata, the same on every node of a cluster (default http://<http-addr> on a single node)")
	fs.StringVar(&cfg.Audience, "audience", "rotor", "aud of access tokens")
	fs.StringVar(&cfg.AllowedOrigins, "allowed-origins", "", "comma-separated browser origins that may use the refresh cookie")

	fs.StringVar(&cfg.ClusterSecretFile, "cluster-secret-file", "", "file holding the cluster secret (at least 32 bytes); overrides ROTOR_CLUSTER_SECRET")
	fs.StringVar(&cfg.ServiceKeyFile, "service-key-file", "", "file holding the service key for trusted backends; overrides ROTOR_SERVICE_KEY")
	fs.StringVar(&cfg.AdminUsername, "admin-username", "", "create this admin account at start if it does not exist; its password comes from ROTOR_ADMIN_PASSWORD")

	fs.DurationVar(&cfg.CleanupInterval, "cleanup-interval", time.Minute, "how often the leader removes expired sessions and deny entries")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", "", "address to serve Go's pprof profiles on, such as 127.0.0.1:6060; empty turns it off")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	return fs
}

// envName returns the environment variable of a flag: ROTOR_ and the flag's
// name in upper case with - replaced by _.
func envName(flagName string) string {
	return "ROTOR_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags and environment into a validated config.
func parseConfig(args []string, getenv func(string) string, output io.Writer) (*config, error) {
	cfg := &config{}
	fs := newFlagSet(cfg, output)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q; every setting is a flag", fs.Arg(0))
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if set[f.Name] || v == "" || envErr != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = fmt.Errorf("invalid %s=%q: %w", envName(f.Name), v, err)
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	cfg.clusterSecret = getenv("ROTOR_CLUSTER_SECRET")
	cfg.serviceKey = getenv("ROTOR_SERVICE_KEY")
	cfg.adminPassword = getenv("ROTOR_ADMIN_PASSWORD")

	if cfg.Issuer == "" {
		cfg.Issuer = cfg.scheme() + "://" + cfg.HTTPAddr
		cfg.issuerFromAddr = true
	}
	return cfg, cfg.validate()
}

// validate checks each setting and the rules between them.
func (c *config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	// Addresses and storage.
	check(c.NodeID != "", "--node-id must not be empty")
	check(c.HTTPAddr != "", "--http-addr must not be empty")
	check(c.RaftAddr != "", "--raft-addr must not be empty")
	check(c.DataDir != "", "--data-dir must not be empty")

	// Token lifetimes, and the order they must keep.
	check(c.AccessTTL >= time.Second, "--access-ttl %s must be at least 1s", c.AccessTTL)
	check(c.RefreshIdleTTL > c.AccessTTL, "--refresh-idle-ttl %s must be longer than --access-ttl %s", c.RefreshIdleTTL, c.AccessTTL)
	check(c.SessionMaxTTL >= c.RefreshIdleTTL, "--session-max-ttl %s must not be shorter than --refresh-idle-ttl %s", c.SessionMaxTTL, c.RefreshIdleTTL)
	check(c.ReuseGrace >= 0, "--reuse-grace %s must not be negative", c.ReuseGrace)
	check(c.ReuseGrace < c.AccessTTL, "--reuse-grace %s must be shorter than --access-ttl %s", c.ReuseGrace, c.AccessTTL)
	check(c.Leeway >= 0 && c.Leeway < c.AccessTTL, "--leeway %s must be between 0 and --access-ttl %s", c.Leeway, c.AccessTTL)

	// Operations.
	check(c.CleanupInterval >= time.Second, "--cleanup-interval %s must be at least 1s", c.CleanupInterval)
	check(c.LogFormat == "text" || c.LogFormat == "json", "--log-format %q must be text or json", c.LogFormat)
	check(c.AdminUsername == "" || c.adminPassword != "", "--admin-username needs ROTOR_ADMIN_PASSWORD")

	// Cluster: every node must share the secret and the issuer.
	if host, _, err := net.SplitHostPort(c.GossipAddr); err != nil || net.ParseIP(host) == nil {
		errs = append(errs, fmt.Errorf("--gossip-addr %q must be an IP address and port, such as 127.0.0.1:8082", c.GossipAddr))
	}
	check(c.BootstrapExpect >= 1, "--bootstrap-expect %d must be at least 1", c.BootstrapExpect)
	clustered := c.BootstrapExpect > 1 || c.Join != ""
	check(!clustered || c.clusterSecret != "" || c.ClusterSecretFile != "",
		"a cluster needs one secret on every node: set ROTOR_CLUSTER_SECRET or --cluster-secret-file")
	check(!clustered || !c.issuerFromAddr,
		"a cluster needs one issuer on every node: set --issuer to the URL clients use, such as the load balancer's")
	check(c.MaxStaleness > 0, "--max-staleness %s must be positive", c.MaxStaleness)
	check(c.LeaderWait > 0, "--leader-wait %s must be positive", c.LeaderWait)
	check((c.TLSCertFile == "") == (c.TLSKeyFile == ""), "--tls-cert-file and --tls-key-file go together")
	check(c.TLSCAFile == "" || c.TLSCertFile != "", "--tls-ca-file needs --tls-cert-file")
	raftTLS := []string{c.RaftTLSCertFile, c.RaftTLSKeyFile, c.RaftTLSCAFile}
	check(!slices.Contains(raftTLS, "") || slices.Equal(raftTLS, []string{"", "", ""}),
		"--raft-tls-cert-file, --raft-tls-key-file and --raft-tls-ca-file go together")
	var err error
	c.loginPerUser, err = api.ParseLoginLimit(c.LoginLimitUser)
	check(err == nil, "--login-limit-user: %v", err)
	c.loginPerAddr, err = api.ParseLoginLimit(c.LoginLimitAddr)
	check(err == nil, "--login-limit-ip: %v", err)
	if _, err := c.trustedNetworks(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// scheme is https when the node serves TLS.
func (c *config) scheme() string {
	if c.TLSCertFile != "" {
		return "https"
	}
	return "http"
}

// httpTLS loads the HTTPS certificate, or returns nil for plain HTTP.
func (c *config) httpTLS() (*tls.Config, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert-file and --tls-key-file: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// gossipKey returns the memberlist encryption key: the one in
// --gossip-key-file, or else derived.
func (c *config) gossipKey(derived []byte) ([]byte, error) {
	if c.GossipKeyFile == "" {
		return derived, nil
	}
	data, err := os.ReadFile(c.GossipKeyFile)
	if err != nil {
		return nil, fmt.Errorf("read --gossip-key-file: %w", err)
	}
	if len(data) == gossipKeyLen {
		return data, nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != gossipKeyLen {
		return nil, fmt.Errorf("--gossip-key-file %s must hold %d bytes, raw or in base64", c.GossipKeyFile, gossipKeyLen)
	}
	return key, nil
}

// gossipKeyLen is the size of an AES-256 key.
const gossipKeyLen = 32

// peerTLS returns how this node verifies other nodes' HTTPS when it
// forwards to the leader, or nil when the cluster speaks plain HTTP.
func (c *config) peerTLS() (*tls.Config, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("read --tls-ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca-file %s contains no PEM certificate", c.TLSCAFile)
		}
	}
	return cfg, nil
}

// origins returns the parsed --allowed-origins list.
func (c *config) origins() []string {
	return splitList(c.AllowedOrigins)
}

// joinAddrs returns the parsed --join list.
func (c *config) joinAddrs() []string {
	return splitList(c.Join)
}

// trustedNetworks parses --trusted-proxies.
func (c *config) trustedNetworks() ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, cidr := range splitList(c.TrustedProxies) {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR network such as 10.0.0.0/8", cidr)
		}
		out = append(out, n)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
