package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rotorhq/rotor/actors"
	"github.com/rotorhq/rotor/fsm"
	"github.com/rotorhq/rotor/token"
)

// Token delivery modes of login.
const (
	deliveryBody   = "body"
	deliveryCookie = "cookie"
)

// tokenResponse is the body of every successful login and refresh.
type tokenResponse struct {
	AccessToken           string `json:"access_token"`
	TokenType             string `json:"token_type"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshToken          string `json:"refresh_token,omitempty"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
	SessionID             string `json:"session_id"`
}

// issue signs an access token for the session and writes the token
// response, putting the refresh token in a cookie for cookie delivery.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, sess *fsm.Session, refresh string, cookie bool) error {
	u, ok := s.deps.State.User(sess.UserID)
	if !ok {
		return errorf(CodeSessionRevoked, "the user of this session no longer exists")
	}
	epoch := s.deps.State.CurrentEpoch()
	if epoch == 0 {
		return unavailable(errors.New("no signing key yet"))
	}
	now := s.cfg.Now()
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	grants := token.Grants{Roles: roles, Permissions: s.deps.State.PermissionsOf(roles)}
	access, exp, err := s.signer.SignUntil(epoch, now, sess.Deadline(), u.ID.String(), sess.ID.String(), grants)
	if err != nil {
		return err
	}

	resp := tokenResponse{
		AccessToken:           access,
		TokenType:             "Bearer",
		ExpiresIn:             secondsUntil(now, exp),
		RefreshToken:          refresh,
		RefreshTokenExpiresIn: secondsUntil(now, sess.Deadline()),
		SessionID:             sess.ID.String(),
	}
	if cookie {
		s.setRefreshCookie(w, r, refresh, int(resp.RefreshTokenExpiresIn))
		resp.RefreshToken = ""
	}
	// RFC 6749 section 5.1 requires Pragma beside Cache-Control for
	// HTTP/1.0 caches.
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// secondsUntil counts whole seconds from now to t on the Unix second grid,
// the grid of JWT times, so an access token's exp minus expires_in is the
// second of iat and a 300s lifetime never shows as 299.
func secondsUntil(now, t time.Time) int64 {
	return max(t.Unix()-now.Unix(), 0)
}

type loginRequest struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	DeviceID      string `json:"device_id"`
	DeviceName    string `json:"device_name"`
	TokenDelivery string `json:"token_delivery"`
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := s.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if err := validateLogin(&req); err != nil {
		return err
	}

	// Failed attempts are limited per username and per client address,
	// checked before the password so that a throttled guesser costs no hash.
	name, nameErr := normalizeUsername(req.Username)
	if nameErr != nil {
		name = req.Username // no account has it; it still counts as a failure
	}
	addr := s.clientIP(r)
	if wait := s.logins.wait(name, addr, s.cfg.Now()); wait > 0 {
		return rateLimited(wait)
	}

	// The password is checked against this node's copy of the user. Unknown
	// users cost the same hash as known ones, so timing does not reveal
	// which usernames exist.
	u, found := s.deps.State.UserByName(name)
	found = found && nameErr == nil
	hash := ""
	if found {
		hash = u.PasswordHash
	}
	ok, err := s.passwords.verify(r.Context(), hash, req.Password)
	if err != nil {
		return unavailable(err)
	}
	if !found || !ok {
		s.logins.failed(name, addr, s.cfg.Now())
		return errorf(CodeInvalidCredentials, "username or password is wrong")
	}
	if u.Disabled {
		return errorf(CodeUserDisabled, "this account is disabled")
	}

	sess, err := s.createSession(r, u, req.DeviceID, req.DeviceName, false)
	if err != nil {
		return err
	}
	return s.issue(w, r, sess, s.deps.Keys.MintRefresh(sess.ID, sess.Generation, sess.Nonce), req.TokenDelivery == deliveryCookie)
}

// createSession commits a new session for u. Unless trusted is set, the
// commit fails if u's credentials changed after the password was checked.
func (s *Server) createSession(r *http.Request, u *fsm.User, deviceID, deviceName string, trusted bool) (*fsm.Session, error) {
	now := s.cfg.Now()
	res, err := s.commit(r.Context(), &fsm.CreateSession{
		At:                now,
		SessionID:         fsm.NewID(),
		UserID:            u.ID,
		Nonce:             fsm.NewID(),
		IdleExpires:       now.Add(s.cfg.IdleTTL),
		Expires:           now.Add(s.cfg.MaxTTL),
		CredentialVersion: u.CredentialVersion,
		AnyCredential:     trusted,
		DeviceID:          deviceID,
		DeviceName:        deviceName,
		UserAgent:         truncateUTF8(r.UserAgent(), maxUserAgentLen),
		IP:                s.clientIP(r),
	})
	if err != nil {
		return nil, err
	}
	switch {
	case res.Err == nil:
		return res.Session, nil
	case errors.Is(res.Err, fsm.ErrUserDisabled):
		return nil, errorf(CodeUserDisabled, "this account is disabled")
	case errors.Is(res.Err, fsm.ErrStaleCredentials):
		return nil, errorf(CodeInvalidCredentials, "the password changed during login; log in again")
	case errors.Is(res.Err, fsm.ErrUserNotFound):
		return nil, errorf(CodeNotFound, "user not found")
	}
	return nil, res.Err
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	var req refreshRequest
	if err := s.decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	raw, cookie := req.RefreshToken, false
	if raw == "" {
		c, err := s.cookieRefreshToken(r)
		if err != nil {
			return err
		}
		raw, cookie = c, c != ""
	}
	if raw == "" {
		return errorf(CodeInvalidRequest, "refresh_token is required")
	}
	sess, next, err := s.refresh(r.Context(), r, raw)
	if err != nil {
		if cookie && isTerminal(err) {
			s.clearRefreshCookie(w, r)
		}
		return err
	}
	return s.issue(w, r, sess, next, cookie)
}

// handleOAuthToken is the RFC 6749 token endpoint; it supports only the
// refresh_token grant.
func (s *Server) handleOAuthToken(w http.ResponseWriter, r *http.Request) error {
	form, err := s.decodeForm(w, r)
	if err != nil {
		return err
	}
	switch gt := form.Get("grant_type"); gt {
	case "refresh_token":
	case "":
		return errorf(CodeInvalidRequest, "grant_type is required")
	default:
		return &Error{Code: CodeInvalidRequest, OAuthError: "unsupported_grant_type", Detail: "only grant_type=refresh_token is supported"}
	}
	raw := form.Get("refresh_token")
	if raw == "" {
		return errorf(CodeInvalidRequest, "refresh_token is required")
	}
	sess, next, err := s.refresh(r.Context(), r, raw)
	if err != nil {
		return err
	}
	return s.issue(w, r, sess, next, false)
}

// precheckRefreshJSON rejects, on a follower, a /v1/refresh request whose
// token this node can already tell is malformed or forged.
func (s *Server) precheckRefreshJSON(r *http.Request, body []byte) error {
	var req refreshRequest
	if err := parseJSON(body, &req, true); err != nil {
		return err
	}
	raw := req.RefreshToken
	if raw == "" {
		c, err := s.cookieRefreshToken(r)
		if err != nil {
			return err
		}
		raw = c
	}
	if raw == "" {
		return errorf(CodeInvalidRequest, "refresh_token is required")
	}
	return s.precheckRefresh(raw)
}

// precheckRefreshForm is precheckRefreshJSON for /oauth2/token.
func (s *Server) precheckRefreshForm(r *http.Request, body []byte) error {
	form, err := parseForm(r, body)
	if err != nil {
		return err
	}
	if raw := form.Get("refresh_token"); raw != "" {
		return s.precheckRefresh(raw)
	}
	return nil
}

// precheckRefresh checks what a follower can check alone. A session this
// node has not applied yet (a login that committed a moment ago) is left to
// the leader, so only the origin tag is required.
func (s *Server) precheckRefresh(raw string) error {
	tok, err := token.ParseRefresh(raw)
	if err != nil {
		return &Error{Code: CodeRefreshInvalid, Detail: "refresh token is malformed", Cause: err}
	}
	if err := s.deps.Keys.VerifyRefreshOrigin(tok); err != nil {
		return &Error{Code: CodeRefreshInvalid, Detail: "refresh token is not valid", Cause: err}
	}
	if sess, ok := s.deps.State.Session(fsm.ID(tok.SessionID)); ok {
		if err := s.deps.Keys.VerifyRefresh(tok, sess.Nonce); err != nil {
			return &Error{Code: CodeRefreshInvalid, Detail: "refresh token is not valid", Cause: err}
		}
	}
	return nil
}

// parseRefresh decodes a refresh token and checks its MAC against this
// node's copy of the session, so garbage and forgeries never reach the
// leader or touch the real session.
func (s *Server) parseRefresh(raw string) (token.RefreshToken, *fsm.Session, error) {
	tok, err := token.ParseRefresh(raw)
	if err != nil {
		return tok, nil, &Error{Code: CodeRefreshInvalid, Detail: "refresh token is malformed", Cause: err}
	}
	sess, ok := s.deps.State.Session(fsm.ID(tok.SessionID))
	if !ok {
		// Cleanup drops a session after its deadline (or, once revoked,
		// after its last access token expired). A token this cluster minted
		// for it is then an expired session's, not a forgery.
		if s.deps.Keys.VerifyRefreshOrigin(tok) == nil {
			return tok, nil, errorf(CodeSessionExpired, "the session has ended; log in again")
		}
		return tok, nil, errorf(CodeRefreshInvalid, "refresh token is not known")
	}
	if err := s.deps.Keys.VerifyRefresh(tok, sess.Nonce); err != nil {
		return tok, nil, &Error{Code: CodeRefreshInvalid, Detail: "refresh token is not valid", Cause: err}
	}
	return tok, sess, nil
}

// refresh runs a refresh through the session's actor on the leader and
// counts its outcome.
func (s *Server) refresh(ctx context.Context, r *http.Request, raw string) (*fsm.Session, string, error) {
	res, err := s.refreshOnLeader(ctx, r, raw)
	s.metrics.refresh.WithLabelValues(refreshOutcome(res.Replayed, err)).Inc()
	if err != nil {
		return nil, "", err
	}
	return res.Session, res.RefreshToken, nil
}

func (s *Server) refreshOnLeader(ctx context.Context, r *http.Request, raw string) (actors.RefreshResult, error) {
	tok, _, err := s.parseRefresh(raw)
	if err != nil {
		return actors.RefreshResult{}, err
	}
	if err := s.requireLeader(); err != nil {
		return actors.RefreshResult{}, err
	}
	res, err := s.deps.Actors.Refresh(ctx, tok, truncateUTF8(r.UserAgent(), maxUserAgentLen), s.clientIP(r))
	if err != nil {
		return res, actorError(err)
	}
	return res, nil
}

// actorError maps a refresh or revoke failure to its code. Only the leader
// losing leadership or a failed commit become 503, which clients retry with
// the same token; everything else is final for that token.
func actorError(err error) error {
	switch {
	case errors.Is(err, actors.ErrInvalidToken):
		return errorf(CodeRefreshInvalid, "refresh token is not valid")
	case errors.Is(err, actors.ErrReused):
		return errorf(CodeRefreshReused, "refresh token was already used; the session has been revoked")
	case errors.Is(err, actors.ErrRevoked):
		return errorf(CodeSessionRevoked, "the session was revoked; log in again")
	case errors.Is(err, actors.ErrExpired):
		return errorf(CodeSessionExpired, "the session has expired; log in again")
	case errors.Is(err, actors.ErrNotFound):
		return errorf(CodeNotFound, "session not found")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeUnavailable, Detail: "the request timed out; retry with the same token", RetryAfter: 1, Cause: err}
	}
	return unavailable(err)
}

// isTerminal reports whether a refresh error ends the session for the
// client, so its cookie is useless.
func isTerminal(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case CodeRefreshInvalid, CodeRefreshReused, CodeSessionRevoked, CodeSessionExpired:
		return true
	}
	return false
}
