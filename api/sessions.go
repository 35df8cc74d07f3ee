package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/rotorhq/rotor/fsm"
)

// timestamp is a time in the API's format: RFC 3339 in UTC with exactly
// three fractional digits, so clients can rely on millisecond precision.
type timestamp time.Time

// MarshalJSON writes the time as a JSON string.
func (t timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`), nil
}

// sessionView is a session as the API shows it.
type sessionView struct {
	SessionID       string    `json:"session_id"`
	DeviceID        string    `json:"device_id"`
	DeviceName      string    `json:"device_name"`
	UserAgent       string    `json:"user_agent"`
	IP              string    `json:"ip"`
	CreatedAt       timestamp `json:"created_at"`
	LastRefreshedAt timestamp `json:"last_refreshed_at"`
	IdleExpiresAt   timestamp `json:"idle_expires_at"`
	ExpiresAt       timestamp `json:"expires_at"`
	Current         bool      `json:"current"`
}

type sessionList struct {
	Sessions []sessionView `json:"sessions"`
}

// liveSessions returns the user's sessions that are neither revoked nor
// expired, as a read that must be current: on the leader, after it confirmed
// its leadership, so a device removed a moment ago is never listed.
func (s *Server) liveSessions(user, current fsm.ID) (sessionList, error) {
	if err := s.requireLeader(); err != nil {
		return sessionList{}, err
	}
	if err := s.deps.Node.VerifyLeader(); err != nil {
		return sessionList{}, unavailable(err)
	}
	now := s.cfg.Now()
	out := sessionList{Sessions: []sessionView{}}
	for _, ss := range s.deps.State.UserSessions(user) {
		if ss.Revoked || ss.ExpiredAt(now) {
			continue
		}
		out.Sessions = append(out.Sessions, newSessionView(ss, current))
	}
	return out, nil
}

func newSessionView(ss *fsm.Session, current fsm.ID) sessionView {
	return sessionView{
		SessionID:       ss.ID.String(),
		DeviceID:        ss.DeviceID,
		DeviceName:      ss.DeviceName,
		UserAgent:       ss.UserAgent,
		IP:              ss.IP,
		CreatedAt:       timestamp(ss.Created),
		LastRefreshedAt: timestamp(ss.LastRefreshed),
		IdleExpiresAt:   timestamp(ss.IdleExpires),
		ExpiresAt:       timestamp(ss.Expires),
		Current:         ss.ID == current,
	}
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	list, err := s.liveSessions(p.user, p.session)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// pathID parses the {name} path variable as an ID; a malformed one is
// reported as not found, since no such resource can exist.
func pathID(r *http.Request, name string) (fsm.ID, error) {
	id, err := fsm.ParseID(mux.Vars(r)[name])
	if err != nil {
		return fsm.ID{}, errorf(CodeNotFound, "%s not found", name)
	}
	return id, nil
}

func (s *Server) handleDeleteSession(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "session_id")
	if err != nil {
		return err
	}
	// Another user's session is reported exactly like a missing one.
	if ss, ok := s.deps.State.Session(id); !ok || ss.UserID != p.user {
		return errorf(CodeNotFound, "session not found")
	}
	if err := s.revokeSession(r, id, fsm.ReasonLogout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeSession ends one session through its actor on the leader.
func (s *Server) revokeSession(r *http.Request, id fsm.ID, reason fsm.RevokeReason) error {
	if err := s.requireLeader(); err != nil {
		return err
	}
	if err := s.deps.Actors.Revoke(r.Context(), id, reason); err != nil {
		return actorError(err)
	}
	return nil
}

// revokeUser ends every session of user except keep.
func (s *Server) revokeUser(r *http.Request, user, keep fsm.ID, reason fsm.RevokeReason) error {
	now := s.cfg.Now()
	res, err := s.commit(r.Context(), &fsm.RevokeUserSessions{
		At: now, UserID: user, Keep: keep, Reason: reason, DenyUntil: s.denyUntil(now),
	})
	if err != nil {
		return err
	}
	if errors.Is(res.Err, fsm.ErrUserNotFound) {
		return errorf(CodeNotFound, "user not found")
	}
	return res.Err
}

type logoutRequest struct {
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
}

// Logout scopes.
const (
	scopeCurrent = "current"
	scopeOthers  = "others"
	scopeAll     = "all"
)

// handleLogout ends the caller's session, its other sessions, or all of
// them. An access token names the caller, or else a refresh token in the
// body or the cookie. Any generation of a session's refresh token with a
// valid MAC names that session.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	var req logoutRequest
	if err := s.decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	switch req.Scope {
	case "":
		req.Scope = scopeCurrent
	case scopeCurrent, scopeOthers, scopeAll:
	default:
		return errorf(CodeInvalidRequest, "scope must be %q, %q or %q", scopeCurrent, scopeOthers, scopeAll)
	}

	user, session, err := s.logoutCaller(r, req.RefreshToken)
	if err != nil {
		return err
	}
	switch req.Scope {
	case scopeCurrent:
		err = s.revokeSession(r, session, fsm.ReasonLogout)
	case scopeOthers:
		err = s.revokeUser(r, user, session, fsm.ReasonLogout)
	case scopeAll:
		err = s.revokeUser(r, user, fsm.ID{}, fsm.ReasonLogout)
	}
	if err != nil {
		return err
	}
	if req.Scope != scopeOthers {
		s.clearRefreshCookie(w, r)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) logoutCaller(r *http.Request, bodyToken string) (user, session fsm.ID, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		p, err := s.authenticate(r)
		if err != nil {
			return user, session, err
		}
		return p.user, p.session, nil
	}
	raw := bodyToken
	if raw == "" {
		if raw, err = s.cookieRefreshToken(r); err != nil {
			return user, session, err
		}
	}
	if raw == "" {
		return user, session, &Error{Code: CodeUnauthorized, Detail: "an access token or a refresh token is required"}
	}
	_, sess, err := s.parseRefresh(raw)
	if err != nil {
		return user, session, err
	}
	return sess.UserID, sess.ID, nil
}

type trustedSessionRequest struct {
	UserID     string `json:"user_id"`
	DeviceID   string `json:"device_id"`
	DeviceName string `json:"device_name"`
}

// handleTrustedSession starts a session for a user that the calling backend
// authenticated itself; the service key is its credential.
func (s *Server) handleTrustedSession(w http.ResponseWriter, r *http.Request) error {
	cred, err := bearer(r)
	if err != nil {
		return err
	}
	if cred == "" {
		return &Error{Code: CodeUnauthorized, Detail: "a service key is required"}
	}
	if !s.isServiceKey(cred) {
		return errorf(CodeForbidden, "the credential is not a valid service key")
	}

	// The request.
	var req trustedSessionRequest
	if err := s.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	uid, err := fsm.ParseID(req.UserID)
	if err != nil {
		return errorf(CodeInvalidRequest, "user_id is not a valid user id")
	}
	if err := validateDevice(req.DeviceID, req.DeviceName); err != nil {
		return err
	}

	// The user, and a session for it.
	u, ok := s.deps.State.User(uid)
	if !ok {
		return errorf(CodeNotFound, "user not found")
	}
	if u.Disabled {
		return errorf(CodeUserDisabled, "this account is disabled")
	}
	sess, err := s.createSession(r, u, req.DeviceID, req.DeviceName, true)
	if err != nil {
		return err
	}
	return s.issue(w, r, sess, s.deps.Keys.MintRefresh(sess.ID, sess.Generation, sess.Nonce), false)
}
