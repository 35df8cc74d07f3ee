package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config configures a Validator.
type Config struct {
	// BaseURL is the URL of the cluster, usually its load balancer, such as
	// "https://auth.example.com", that serves /.well-known/jwks.json and
	// /v1/revocations. Required.
	BaseURL string

	// Issuer and Audience must match the tokens' iss and aud (the nodes'
	// --issuer and --audience). Both are required.
	Issuer   string
	Audience string

	// RevocationPoll is how often the revocation set is brought up to date.
	// Default 1s: a logout reaches the service within about that long.
	RevocationPoll time.Duration

	// MaxStaleness is how long the revocation set may go without a
	// successful update before Validate fails closed with ErrStale, because
	// it can no longer tell whether a session was revoked. Default 30s;
	// negative never fails closed.
	MaxStaleness time.Duration

	// KeyCooldown is the least time between two fetches of the key set
	// caused by tokens with an unknown key id. Default 10s.
	KeyCooldown time.Duration

	// Leeway is the clock skew allowed on exp and iat. Default 10s.
	Leeway time.Duration

	// HTTPClient sends the requests; nil means a client with a 5s timeout.
	HTTPClient *http.Client

	// Logger receives failed updates; nil discards them.
	Logger *slog.Logger
}

// Errors Validate returns, beside errors about the token itself.
var (
	ErrRevoked = errors.New("the session of this access token was revoked")
	ErrStale   = errors.New("the revocation set is out of date, so no token can be trusted")
)

// Claims are the claims of a Rotor access token.
type Claims struct {
	jwt.RegisteredClaims // iss, sub (the user id), aud, exp, iat, jti

	SessionID   string   `json:"sid"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions,omitempty"`
}

// HasRole reports whether the token carries the role.
func (c *Claims) HasRole(role string) bool { return contains(c.Roles, role) }

// HasPermission reports whether the token carries the permission.
func (c *Claims) HasPermission(permission string) bool { return contains(c.Permissions, permission) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Validator checks Rotor access tokens locally. It is safe for concurrent
// use. Close stops its background updates.
type Validator struct {
	cfg     Config
	keys    *keySet
	revoked *revocationSet
	parser  *jwt.Parser
	stop    context.CancelFunc
	done    chan struct{}
}

// New fetches the key set and the revocation set once, so that a Validator
// is ready when New returns, and then keeps the revocation set current in
// the background.
func New(ctx context.Context, cfg Config) (*Validator, error) {
	if cfg.BaseURL == "" || cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("client: Config.BaseURL, Issuer and Audience are required")
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.RevocationPoll <= 0 {
		cfg.RevocationPoll = time.Second
	}
	if cfg.MaxStaleness == 0 {
		cfg.MaxStaleness = 30 * time.Second
	}
	if cfg.KeyCooldown <= 0 {
		cfg.KeyCooldown = 10 * time.Second
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 10 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	v := &Validator{
		cfg:     cfg,
		keys:    &keySet{url: cfg.BaseURL + "/.well-known/jwks.json", http: cfg.HTTPClient, cooldown: cfg.KeyCooldown},
		revoked: &revocationSet{url: cfg.BaseURL + "/v1/revocations", http: cfg.HTTPClient, sessions: make(map[string]time.Time)},
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
		),
		done: make(chan struct{}),
	}
	if err := v.keys.fetch(ctx); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := v.revoked.sync(ctx); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	v.stop = stop
	go func() {
		defer close(v.done)
		v.revoked.run(runCtx, cfg.RevocationPoll, func(err error) {
			cfg.Logger.Warn("rotor revocation update failed; retrying", "error", err)
		})
	}()
	return v, nil
}

// Close stops the background updates.
func (v *Validator) Close() {
	v.stop()
	<-v.done
}

// Validate checks the token's signature, type, issuer, audience and times,
// and that its session is not revoked, and returns its claims.
func (v *Validator) Validate(ctx context.Context, token string) (*Claims, error) {
	claims := new(Claims)
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != "at+jwt" && typ != "application/at+jwt" {
			return nil, fmt.Errorf("token type %q is not an access token", typ)
		}
		kid, _ := t.Header["kid"].(string)
		return v.keys.key(ctx, kid)
	})
	if err != nil {
		return nil, fmt.Errorf("invalid access token: %w", err)
	}
	if claims.Subject == "" || claims.SessionID == "" {
		return nil, errors.New("invalid access token: sub or sid is missing")
	}
	revoked, age := v.revoked.revoked(claims.SessionID)
	if revoked {
		return nil, ErrRevoked
	}
	if v.cfg.MaxStaleness > 0 && age > v.cfg.MaxStaleness {
		return nil, ErrStale
	}
	return claims, nil
}
