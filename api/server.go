package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/rotorhq/rotor/account"
	"github.com/rotorhq/rotor/actors"
	"github.com/rotorhq/rotor/cluster"
	"github.com/rotorhq/rotor/fsm"
	"github.com/rotorhq/rotor/token"
)

// Config sets the HTTP layer's behaviour.
type Config struct {
	// NodeID is reported by /v1/cluster.
	NodeID string

	// Issuer is the access tokens' iss and the base of the metadata URLs;
	// Audience is their aud.
	Issuer   string
	Audience string

	// AccessTTL is the access-token lifetime; IdleTTL how far a refresh moves
	// the idle deadline; MaxTTL the absolute session lifetime.
	AccessTTL time.Duration
	IdleTTL   time.Duration
	MaxTTL    time.Duration

	// Leeway is the clock skew verifiers allow on exp and iat.
	Leeway time.Duration

	// Signup lets anyone create an account with POST /v1/users.
	Signup bool

	// ServiceKey authenticates trusted backends; empty disables them.
	ServiceKey string

	// AllowedOrigins are the browser origins that may use the refresh cookie.
	AllowedOrigins []string

	// TrustedProxies are the networks whose X-Forwarded-For entries are
	// believed, besides cluster members (the load balancer, typically).
	TrustedProxies []*net.IPNet

	// LeaderWait bounds how long a follower holds a write while no leader
	// is known. After it, the write fails with 503.
	LeaderWait time.Duration

	// MaxStaleness is how long a follower may go without hearing from the
	// leader before /readyz fails and the load balancer drains it.
	MaxStaleness time.Duration

	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64

	// Passwords are the argon2id costs for new hashes.
	Passwords PasswordParams

	// PeerTLS, when set, is how a follower verifies the leader's HTTPS
	// when it forwards a request; nil means the nodes serve plain HTTP.
	PeerTLS *tls.Config

	// LoginPerUser and LoginPerAddr budget failed logins per username and
	// per client address. Zero values turn them off.
	LoginPerUser LoginLimit
	LoginPerAddr LoginLimit

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	Logger *slog.Logger
}

// Deps are the node's parts the HTTP layer drives.
type Deps struct {
	State  *fsm.FSM
	Node   *cluster.Node
	Actors *actors.Manager
	Keys   *token.Keyring

	// Directory finds other nodes; nil on a node without membership.
	Directory Directory

	// Gossip reports the revocation broadcast queue; nil without membership.
	Gossip interface{ QueueLen() int }
}

// Server serves the Rotor API.
type Server struct {
	cfg       Config
	deps      Deps
	log       *slog.Logger
	signer    *token.Signer
	verifier  *token.Verifier
	passwords *passwords
	metrics   *metrics
	router    *mux.Router

	forwardTransport *http.Transport
	stalls           *stallGuard
	logins           *loginLimiter

	// started is when the server was built; staleness counts from it until
	// the first contact with a leader.
	started time.Time

	// The leader's commit index as /readyz last fetched it; guarded by
	// leaderCommitMu.
	leaderCommitMu    sync.Mutex
	leaderCommitAt    time.Time
	leaderCommitValue uint64
}

// New returns a Server. cfg must be validated by the caller.
func New(cfg Config, deps Deps) *Server {
	// Defaults for the fields a caller may leave out.
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Passwords == (PasswordParams{}) {
		cfg.Passwords = DefaultPasswordParams()
	}
	if cfg.LeaderWait <= 0 {
		cfg.LeaderWait = 2 * time.Second
	}
	if cfg.MaxStaleness <= 0 {
		cfg.MaxStaleness = 2 * time.Second
	}

	// Token signing and verification, then the parts built on them.
	s := &Server{cfg: cfg, deps: deps, log: cfg.Logger, forwardTransport: newForwardTransport(cfg.PeerTLS), started: cfg.Now(),
		stalls: newStallGuard(cfg.Logger), logins: newLoginLimiter(cfg.LoginPerUser, cfg.LoginPerAddr)}
	s.signer = &token.Signer{Keyring: deps.Keys, Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.AccessTTL}
	s.verifier = token.NewVerifier(token.VerifierConfig{
		Keyring:     deps.Keys,
		Issuer:      cfg.Issuer,
		Audience:    cfg.Audience,
		Leeway:      cfg.Leeway,
		Now:         cfg.Now,
		AcceptEpoch: s.epochPublished,
	})
	s.passwords = newPasswords(cfg.Passwords, 2*runtime.GOMAXPROCS(0))
	s.metrics = s.newMetrics()
	s.router = s.routes()
	return s
}

// Handler returns the HTTP handler with every route.
func (s *Server) Handler() http.Handler { return s.cors(s.router) }

// HTTPServer returns an http.Server for the handler with Rotor's limits:
// header size and read, write and idle timeouts that bound what a slow or
// hostile client can hold.
func (s *Server) HTTPServer(addr string) *http.Server {
	stop := make(chan struct{})
	go s.stalls.run(stop)
	srv := &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	srv.RegisterOnShutdown(func() { close(stop) })
	return srv
}

// epochPublished reports whether tokens of a key epoch are still accepted:
// the current epoch, and a retired one until every token it signed expired.
func (s *Server) epochPublished(number uint64) bool {
	e, ok := s.deps.State.Epoch(number)
	if !ok {
		return false
	}
	return e.Retired.IsZero() || s.cfg.Now().Sub(e.Retired) < s.cfg.AccessTTL+s.cfg.Leeway
}

// publishedEpochs lists the epochs for JWKS: those epochPublished accepts,
// and the next one. Publishing the next key before any token uses it lets a
// verifier that caches the key set (for up to the minute that JWKS's
// Cache-Control allows) accept tokens signed right after a rotation.
func (s *Server) publishedEpochs() []uint64 {
	var out []uint64
	for _, e := range s.deps.State.Epochs() {
		if s.epochPublished(e.Number) {
			out = append(out, e.Number)
		}
	}
	if current := s.deps.State.CurrentEpoch(); current > 0 {
		out = append(out, current+1)
	}
	return out
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// wrap turns fn into an http.Handler that writes fn's error in the format of
// its endpoint family and recovers from panics.
func (s *Server) wrap(fn handlerFunc, oauth bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.writeError(w, r, fmt.Errorf("panic: %v", v), oauth)
			}
		}()
		if err := fn(w, r); err != nil {
			s.writeError(w, r, err, oauth)
		}
	})
}

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	// local routes are served by any node from its own state.
	local := func(path string, fn handlerFunc, oauth bool, methods ...string) {
		r.Handle(path, s.wrap(fn, oauth)).Methods(methods...)
	}
	// leader routes write, or read what must be current: a follower
	// forwards them to the leader.
	leader := func(path string, fn handlerFunc, precheck func(*http.Request, []byte) error, oauth bool, methods ...string) {
		r.Handle(path, s.onLeader(s.wrap(fn, oauth), precheck, oauth)).Methods(methods...)
	}

	// Accounts.
	leader("/v1/users", s.handleCreateUser, nil, false, http.MethodPost)
	leader("/v1/login", s.handleLogin, nil, false, http.MethodPost)
	local("/v1/me", s.handleMe, false, http.MethodGet)
	leader("/v1/me/password", s.handleChangePassword, nil, false, http.MethodPut)

	// Tokens.
	leader("/v1/refresh", s.handleRefresh, s.precheckRefreshJSON, false, http.MethodPost)
	leader("/oauth2/token", s.handleOAuthToken, s.precheckRefreshForm, true, http.MethodPost)
	leader("/oauth2/revoke", s.handleOAuthRevoke, nil, true, http.MethodPost)
	local("/oauth2/introspect", s.handleIntrospect, true, http.MethodPost)
	local("/.well-known/jwks.json", s.handleJWKS, false, http.MethodGet)
	local("/v1/revocations", s.handleRevocations, false, http.MethodGet)
	local("/.well-known/oauth-authorization-server", s.handleMetadata, false, http.MethodGet)

	// Sessions.
	leader("/v1/sessions", s.handleListSessions, nil, false, http.MethodGet)
	leader("/v1/sessions", s.handleTrustedSession, nil, false, http.MethodPost)
	leader("/v1/sessions/{session_id}", s.handleDeleteSession, nil, false, http.MethodDelete)
	leader("/v1/logout", s.handleLogout, nil, false, http.MethodPost)

	// Admin.
	leader("/v1/admin/users", s.handleAdminCreateUser, nil, false, http.MethodPost)
	leader("/v1/admin/users/{user_id}", s.handleAdminGetUser, nil, false, http.MethodGet)
	leader("/v1/admin/users/{user_id}/sessions", s.handleAdminListSessions, nil, false, http.MethodGet)
	leader("/v1/admin/users/{user_id}/sessions", s.handleAdminRevokeUser, nil, false, http.MethodDelete)
	leader("/v1/admin/sessions/{session_id}", s.handleAdminGetSession, nil, false, http.MethodGet)
	leader("/v1/admin/sessions/{session_id}", s.handleAdminRevokeSession, nil, false, http.MethodDelete)
	leader("/v1/admin/users/{user_id}/roles", s.handleAdminSetRoles, nil, false, http.MethodPut)
	leader("/v1/admin/roles", s.handleAdminListRoles, nil, false, http.MethodGet)
	leader("/v1/admin/signing-keys/rotate", s.handleAdminRotateSigningKey, nil, false, http.MethodPost)
	leader("/v1/admin/roles/{role}", s.handleAdminSetRolePermissions, nil, false, http.MethodPut)
	leader("/v1/admin/roles/{role}", s.handleAdminDeleteRole, nil, false, http.MethodDelete)
	leader("/v1/admin/users/{user_id}/disabled", s.handleAdminSetDisabled, nil, false, http.MethodPut)
	leader("/v1/admin/cluster/nodes/{node_id}", s.handleAdminRemoveNode, nil, false, http.MethodDelete)

	// The "your devices" page.
	accountPage := account.Handler("/account/")
	r.Handle("/account/", accountPage).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix("/account/").Handler(accountPage).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/account", http.RedirectHandler("/account/", http.StatusMovedPermanently)).Methods(http.MethodGet)

	// Operations.
	local("/livez", s.handleLivez, false, http.MethodGet)
	local("/readyz", s.handleReadyz, false, http.MethodGet)
	local("/readyz/leader", s.handleReadyzLeader, false, http.MethodGet)
	local("/v1/cluster", s.handleCluster, false, http.MethodGet)
	r.Handle("/metrics", s.metricsHandler()).Methods(http.MethodGet)
	r.Use(s.instrument)

	r.NotFoundHandler = s.instrumentUnmatched(func(w http.ResponseWriter, req *http.Request) error {
		return errorf(CodeNotFound, "no endpoint at %s", req.URL.Path)
	})
	r.MethodNotAllowedHandler = s.instrumentUnmatched(func(w http.ResponseWriter, req *http.Request) error {
		allowed := allowedMethods(r, req)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return &Error{Code: CodeInvalidRequest, Status: http.StatusMethodNotAllowed,
			Detail: fmt.Sprintf("method %s is not allowed on %s; use %s", req.Method, req.URL.Path, strings.Join(allowed, " or "))}
	})
	return r
}

// instrumentUnmatched is wrapByPath with request metrics: mux runs its
// middleware on matched routes only.
func (s *Server) instrumentUnmatched(fn handlerFunc) http.Handler {
	return s.instrument(s.wrapByPath(fn))
}

// wrapByPath wraps fn like wrap, choosing the OAuth error format for paths
// under /oauth2/.
func (s *Server) wrapByPath(fn handlerFunc) http.Handler {
	problem, oauth := s.wrap(fn, false), s.wrap(fn, true)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/oauth2/") {
			oauth.ServeHTTP(w, r)
			return
		}
		problem.ServeHTTP(w, r)
	})
}

// allowedMethods lists the methods the router serves for the request's path.
func allowedMethods(router *mux.Router, req *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := req.Clone(req.Context())
		probe.Method = m
		var match mux.RouteMatch
		if router.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
		}
	}
	return out
}

// requireLeader returns an unavailable error unless this node leads. onLeader
// forwards the routes that need the leader, so on those routes this fails
// only when leadership was lost during the request.
func (s *Server) requireLeader() error {
	if !s.deps.Node.IsLeader() {
		return unavailable(cluster.ErrNotLeader)
	}
	return nil
}

// commit applies a command and maps infrastructure failures to 503.
func (s *Server) commit(ctx context.Context, c fsm.Command) (*fsm.Result, error) {
	if err := s.requireLeader(); err != nil {
		return nil, err
	}
	res, err := s.deps.Node.Apply(ctx, c)
	if err != nil {
		return nil, unavailable(err)
	}
	return res, nil
}

// denyUntil returns when the access tokens of a session revoked at now have
// all expired.
func (s *Server) denyUntil(now time.Time) time.Time {
	return now.Add(s.cfg.AccessTTL + s.cfg.Leeway)
}

// EnsureAdmin creates the first admin account unless a user of that name
// exists. An existing account is left unchanged, so a restart never resets
// a password. The caller must lead.
func (s *Server) EnsureAdmin(ctx context.Context, username, password string) error {
	name, err := validateUsername(username)
	if err != nil {
		return fmt.Errorf("admin username: %w", err)
	}
	if _, ok := s.deps.State.UserByName(name); ok {
		return nil
	}
	if err := validatePassword("admin password", password); err != nil {
		return err
	}
	hash, err := s.passwords.hash(ctx, password)
	if err != nil {
		return err
	}
	res, err := s.deps.Node.Apply(ctx, &fsm.CreateUser{
		At: s.cfg.Now(), UserID: fsm.NewID(), Username: name, PasswordHash: hash, Roles: []string{AdminRole},
	})
	if err != nil {
		return err
	}
	if res.Err != nil && !errors.Is(res.Err, fsm.ErrUsernameTaken) {
		return res.Err
	}
	s.log.Info("created the admin account", "username", name)
	return nil
}
