package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/rotorhq/rotor/fsm"
	"github.com/rotorhq/rotor/token"
)

// AdminRole is the role that may call /v1/admin endpoints and introspection.
const AdminRole = "admin"

// principal is the caller authenticated by an access token.
type principal struct {
	claims  *token.AccessClaims
	user    fsm.ID
	session fsm.ID
}

// bearer returns the credentials of an Authorization: Bearer header, or ""
// when the header is absent.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", nil
	}
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
		// Another scheme means no bearer token, which gets 401 and a
		// challenge, like a missing header.
		return "", &Error{Code: CodeUnauthorized, Challenge: "invalid_request", Detail: "Authorization header must be \"Bearer <token>\""}
	}
	return strings.TrimSpace(cred), nil
}

// authenticate validates the request's access token locally: signature and
// claims, then the deny set, so a revoked session's token fails at once.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	raw, err := bearer(r)
	if err != nil {
		return nil, err
	}
	if raw == "" {
		return nil, &Error{Code: CodeUnauthorized, Detail: "an access token is required"}
	}
	return s.validateAccess(raw)
}

func (s *Server) validateAccess(raw string) (*principal, error) {
	claims, err := s.verifier.Verify(raw)
	if err != nil {
		detail := "access token is invalid"
		if errors.Is(err, token.ErrExpired) {
			detail = "access token has expired"
		}
		return nil, &Error{Code: CodeUnauthorized, Challenge: "invalid_token", Detail: detail, Cause: err}
	}
	sid, err := fsm.ParseID(claims.SessionID)
	if err != nil {
		return nil, &Error{Code: CodeUnauthorized, Challenge: "invalid_token", Detail: "access token is invalid", Cause: err}
	}
	uid, err := fsm.ParseID(claims.Subject)
	if err != nil {
		return nil, &Error{Code: CodeUnauthorized, Challenge: "invalid_token", Detail: "access token is invalid", Cause: err}
	}
	if s.deps.State.Revocations().Denied(sid) {
		return nil, &Error{Code: CodeUnauthorized, Challenge: "invalid_token", Detail: "the session of this access token was revoked"}
	}
	return &principal{claims: claims, user: uid, session: sid}, nil
}

// requireAdmin authenticates the caller and checks the admin role on the
// user's current record, so a demoted admin loses access at once rather
// than at the next refresh.
func (s *Server) requireAdmin(r *http.Request) (*principal, error) {
	p, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	u, ok := s.deps.State.User(p.user)
	if !ok || u.Disabled || !slices.Contains(u.Roles, AdminRole) {
		return nil, errorf(CodeForbidden, "this endpoint requires the %q role", AdminRole)
	}
	return p, nil
}

// isServiceKey reports whether cred is the configured service key. Both sides
// are hashed first so the comparison takes the same time for any length.
func (s *Server) isServiceKey(cred string) bool {
	if s.cfg.ServiceKey == "" || cred == "" {
		return false
	}
	a := sha256.Sum256([]byte(cred))
	b := sha256.Sum256([]byte(s.cfg.ServiceKey))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// Refresh cookie, for browsers (token_delivery "cookie").
const (
	cookieName       = "rotor_refresh"
	secureCookieName = "__Secure-rotor_refresh"
	csrfHeader       = "X-Rotor-CSRF"
)

// cookiePaths are the only paths the refresh cookie is sent to: the two
// endpoints that read it. The cookie is set once for each.
var cookiePaths = []string{"/v1/refresh", "/v1/logout"}

// plainLoopback reports whether the request came over plain HTTP from a
// loopback address, the one case where a cookie cannot be Secure.
func (s *Server) plainLoopback(r *http.Request) bool {
	if r.TLS != nil {
		return false
	}
	ip := net.ParseIP(s.clientIP(r))
	return ip != nil && ip.IsLoopback()
}

func (s *Server) refreshCookieName(r *http.Request) string {
	if s.plainLoopback(r) {
		return cookieName
	}
	return secureCookieName
}

// setRefreshCookie stores the refresh token where JavaScript cannot read it.
func (s *Server) setRefreshCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	for _, path := range cookiePaths {
		http.SetCookie(w, &http.Cookie{
			Name:     s.refreshCookieName(r),
			Value:    value,
			Path:     path,
			MaxAge:   maxAge,
			HttpOnly: true,
			Secure:   !s.plainLoopback(r),
			SameSite: http.SameSiteStrictMode,
		})
	}
}

func (s *Server) clearRefreshCookie(w http.ResponseWriter, r *http.Request) {
	s.setRefreshCookie(w, r, "", -1)
}

// cookieRefreshToken returns the refresh cookie's value after the CSRF and
// origin checks, or "" when the request carries no refresh cookie.
func (s *Server) cookieRefreshToken(r *http.Request) (string, error) {
	c, err := r.Cookie(s.refreshCookieName(r))
	if err != nil || c.Value == "" {
		return "", nil
	}
	if r.Header.Get(csrfHeader) != "1" {
		return "", errorf(CodeForbidden, "requests that use the refresh cookie must send the header %s: 1", csrfHeader)
	}
	if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(r, origin) {
		return "", errorf(CodeForbidden, "origin %q is not allowed", origin)
	}
	return c.Value, nil
}

// originAllowed accepts the configured origins and the service's own.
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	if slices.Contains(s.cfg.AllowedOrigins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return u.Host == r.Host
}
