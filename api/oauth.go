package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/rotorhq/rotor/fsm"
)

// handleOAuthRevoke is RFC 7009 revocation. The token is the credential, and
// any well-formed request gets 200 whether or not the token was valid, so
// the endpoint reveals nothing about tokens. Revoking either kind of token ends
// its session.
func (s *Server) handleOAuthRevoke(w http.ResponseWriter, r *http.Request) error {
	form, raw, err := s.formToken(w, r)
	if err != nil {
		return err
	}
	if session, ok := s.tokenSession(raw, form.Get("token_type_hint")); ok {
		if err := s.revokeSession(r, session, fsm.ReasonLogout); err != nil && !isCode(err, CodeNotFound) {
			return err
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// formToken decodes an RFC 7009 or RFC 7662 form and returns it with its
// required token parameter.
func (s *Server) formToken(w http.ResponseWriter, r *http.Request) (url.Values, string, error) {
	form, err := s.decodeForm(w, r)
	if err != nil {
		return nil, "", err
	}
	raw := form.Get("token")
	if raw == "" {
		return nil, "", errorf(CodeInvalidRequest, "token is required")
	}
	return form, raw, nil
}

// tokenSession returns the session a refresh or access token belongs to. The
// hint only picks which kind is tried first (RFC 7009 section 2.1).
func (s *Server) tokenSession(raw, hint string) (fsm.ID, bool) {
	tryRefresh := func() (fsm.ID, bool) {
		if _, sess, err := s.parseRefresh(raw); err == nil {
			return sess.ID, true
		}
		return fsm.ID{}, false
	}
	tryAccess := func() (fsm.ID, bool) {
		if p, err := s.validateAccess(raw); err == nil {
			return p.session, true
		}
		return fsm.ID{}, false
	}
	first, second := tryRefresh, tryAccess
	if hint == "access_token" || strings.Count(raw, ".") == 2 {
		first, second = tryAccess, tryRefresh
	}
	if id, ok := first(); ok {
		return id, true
	}
	return second()
}

func isCode(err error, code Code) bool {
	e, ok := err.(*Error)
	return ok && e.Code == code
}

// introspection is an RFC 7662 response. An inactive token is exactly
// {"active": false}.
type introspection struct {
	Active    bool     `json:"active"`
	TokenType string   `json:"token_type,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Username  string   `json:"username,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	Expires   int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
}

// handleIntrospect serves RFC 7662 introspection to callers with an admin
// access token or the service key.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) error {
	cred, err := bearer(r)
	if err != nil {
		return err
	}
	if cred == "" {
		return &Error{Code: CodeUnauthorized, Detail: "an admin access token or the service key is required"}
	}
	if !s.isServiceKey(cred) {
		if _, err := s.requireAdmin(r); err != nil {
			return err
		}
	}
	_, raw, err := s.formToken(w, r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.introspect(raw))
	return nil
}

func (s *Server) introspect(raw string) introspection {
	if p, err := s.validateAccess(raw); err == nil {
		c := p.claims
		out := introspection{
			Active: true, TokenType: "access_token", Subject: c.Subject, SessionID: c.SessionID,
			Roles: c.Roles, Issuer: c.Issuer, Audience: c.Audience, JTI: c.ID,
		}
		if c.ExpiresAt != nil {
			out.Expires = c.ExpiresAt.Unix()
		}
		if c.IssuedAt != nil {
			out.IssuedAt = c.IssuedAt.Unix()
		}
		if u, ok := s.deps.State.User(p.user); ok {
			out.Username = u.Username
		}
		return out
	}

	// A refresh token is active while it is its session's current one and
	// the session is live.
	tok, sess, err := s.parseRefresh(raw)
	if err != nil || sess.Revoked || sess.ExpiredAt(s.cfg.Now()) || tok.Generation != sess.Generation {
		return introspection{}
	}
	out := introspection{
		Active: true, TokenType: "refresh_token", Subject: sess.UserID.String(), SessionID: sess.ID.String(),
		Issuer: s.cfg.Issuer, Expires: sess.Deadline().Unix(), IssuedAt: sess.LastRefreshed.Unix(),
	}
	if u, ok := s.deps.State.User(sess.UserID); ok {
		out.Username = u.Username
	}
	return out
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	// Caches may keep the key set briefly; new epochs appear ahead of use.
	w.Header().Set("Cache-Control", "public, max-age=60")
	return writeRaw(w, s.deps.Keys.JWKS(s.publishedEpochs()))
}

// metadata is the RFC 8414 authorization server metadata.
type metadata struct {
	Issuer                   string   `json:"issuer"`
	TokenEndpoint            string   `json:"token_endpoint"`
	RevocationEndpoint       string   `json:"revocation_endpoint"`
	IntrospectionEndpoint    string   `json:"introspection_endpoint"`
	JWKSURI                  string   `json:"jwks_uri"`
	GrantTypes               []string `json:"grant_types_supported"`
	ResponseTypes            []string `json:"response_types_supported"`
	TokenAuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
	SigningAlgs              []string `json:"id_token_signing_alg_values_supported,omitempty"`
	IntrospectionAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) error {
	base := strings.TrimRight(s.cfg.Issuer, "/")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	return writeRaw(w, metadata{
		Issuer:                   s.cfg.Issuer,
		TokenEndpoint:            base + "/oauth2/token",
		RevocationEndpoint:       base + "/oauth2/revoke",
		IntrospectionEndpoint:    base + "/oauth2/introspect",
		JWKSURI:                  base + "/.well-known/jwks.json",
		GrantTypes:               []string{"refresh_token"},
		ResponseTypes:            []string{},
		TokenAuthMethods:         []string{"none"},
		IntrospectionAuthMethods: []string{"bearer"},
	})
}
