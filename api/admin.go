package api

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/rotorhq/rotor/fsm"
)

// handleAdminCreateUser creates an account with any roles; the password may
// be left out for accounts that only trusted backends start sessions for.
func (s *Server) handleAdminCreateUser(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	var req createUserRequest
	if err := s.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	return s.createUser(w, r, req, true)
}

// adminUser authenticates an admin and loads the {user_id} of the path as a
// current read.
func (s *Server) adminUser(r *http.Request) (*fsm.User, error) {
	if _, err := s.requireAdmin(r); err != nil {
		return nil, err
	}
	id, err := pathID(r, "user_id")
	if err != nil {
		return nil, err
	}
	if err := s.requireLeader(); err != nil {
		return nil, err
	}
	if err := s.deps.Node.VerifyLeader(); err != nil {
		return nil, unavailable(err)
	}
	u, ok := s.deps.State.User(id)
	if !ok {
		return nil, errorf(CodeNotFound, "user not found")
	}
	return u, nil
}

func (s *Server) handleAdminGetUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.adminUser(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewUser(u, true))
	return nil
}

func (s *Server) handleAdminListSessions(w http.ResponseWriter, r *http.Request) error {
	u, err := s.adminUser(r)
	if err != nil {
		return err
	}
	list, err := s.liveSessions(u.ID, fsm.ID{})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// handleAdminRevokeUser ends every session of the user. It is one log entry:
// every rotation or login of the user that committed before it is revoked,
// and every rotation after it fails its compare-and-set.
func (s *Server) handleAdminRevokeUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.adminUser(r)
	if err != nil {
		return err
	}
	if err := s.revokeUser(r, u.ID, fsm.ID{}, fsm.ReasonAdmin); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// adminSessionView is one session in the admin API: the fields the owner
// gets, plus its state and generation. Revoked sessions are included.
type adminSessionView struct {
	sessionView
	UserID       string    `json:"user_id"`
	State        string    `json:"state"`
	Generation   uint64    `json:"generation"`
	RevokedAt    timestamp `json:"revoked_at,omitzero"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
}

// Session states in an adminSessionView.
const (
	sessionLive    = "live"
	sessionRevoked = "revoked"
	sessionExpired = "expired"
)

// handleAdminGetSession reads one session as it is on the leader, after
// the leader confirmed its leadership. A session that cleanup removed is
// not found.
func (s *Server) handleAdminGetSession(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	id, err := pathID(r, "session_id")
	if err != nil {
		return err
	}
	if err := s.requireLeader(); err != nil {
		return err
	}
	if err := s.deps.Node.VerifyLeader(); err != nil {
		return unavailable(err)
	}
	ss, ok := s.deps.State.Session(id)
	if !ok {
		return errorf(CodeNotFound, "session not found")
	}
	view := adminSessionView{
		sessionView: newSessionView(ss, fsm.ID{}),
		UserID:      ss.UserID.String(),
		State:       sessionLive,
		Generation:  ss.Generation,
	}
	switch {
	case ss.Revoked:
		view.State = sessionRevoked
		view.RevokedAt = timestamp(ss.RevokedAt)
		view.RevokeReason = ss.RevokeReason.String()
	case ss.ExpiredAt(s.cfg.Now()):
		view.State = sessionExpired
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

func (s *Server) handleAdminRevokeSession(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	id, err := pathID(r, "session_id")
	if err != nil {
		return err
	}
	if _, ok := s.deps.State.Session(id); !ok {
		return errorf(CodeNotFound, "session not found")
	}
	if err := s.revokeSession(r, id, fsm.ReasonAdmin); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type rolesRequest struct {
	Roles []string `json:"roles"`
}

type signingKeyView struct {
	Epoch         uint64    `json:"epoch"`
	KeyID         string    `json:"kid"`
	PreviousKeyID string    `json:"previous_kid"`
	PreviousUntil timestamp `json:"previous_accepted_until"`
	NextKeyID     string    `json:"next_kid"`
}

// handleAdminRotateSigningKey starts signing access tokens with the next
// key epoch. The new key was already published in JWKS, and the previous
// one stays published and accepted until every token it signed expired, so
// no live token is rejected.
func (s *Server) handleAdminRotateSigningKey(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	current := s.deps.State.CurrentEpoch()
	now := s.cfg.Now()
	res, err := s.commit(r.Context(), &fsm.RotateSigningKey{At: now, FromEpoch: current})
	if err != nil {
		return err
	}
	if errors.Is(res.Err, fsm.ErrEpochMismatch) {
		return unavailable(errors.New("another rotation committed at the same time; retry"))
	}
	if res.Err != nil {
		return res.Err
	}
	next := current + 1
	writeJSON(w, http.StatusOK, signingKeyView{
		Epoch:         next,
		KeyID:         s.deps.Keys.KeyID(next),
		PreviousKeyID: s.deps.Keys.KeyID(current),
		PreviousUntil: timestamp(now.Add(s.cfg.AccessTTL + s.cfg.Leeway)),
		NextKeyID:     s.deps.Keys.KeyID(next + 1),
	})
	return nil
}

// rolePermissionsRequest is the body of PUT /v1/admin/roles/{role}.
type rolePermissionsRequest struct {
	Permissions []string `json:"permissions"`
}

type rolePermissionsView struct {
	Role        string   `json:"role"`
	Permissions []string `json:"permissions"`
}

// handleAdminListRoles returns the role-to-permission map.
func (s *Server) handleAdminListRoles(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]map[string][]string{"roles": s.deps.State.RolePermissions()})
	return nil
}

// handleAdminSetRolePermissions sets the permissions a role grants. They
// reach a user's access tokens at the next login or refresh.
func (s *Server) handleAdminSetRolePermissions(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	role := mux.Vars(r)["role"]
	if err := validateRoles([]string{role}); err != nil {
		return err
	}
	var req rolePermissionsRequest
	if err := s.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if len(req.Permissions) == 0 {
		return errorf(CodeInvalidRequest, "permissions must list at least one permission; DELETE the role to remove it")
	}
	if err := validatePermissions(req.Permissions); err != nil {
		return err
	}
	current := s.deps.State.RolePermissions()
	if _, exists := current[role]; !exists && len(current) >= maxMappedRoles {
		return errorf(CodeInvalidRequest, "at most %d roles can have permissions", maxMappedRoles)
	}
	if err := s.commitRolePermissions(r, role, req.Permissions); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rolePermissionsView{Role: role, Permissions: s.deps.State.RolePermissions()[role]})
	return nil
}

// handleAdminDeleteRole removes a role from the role-to-permission map.
// Users keep the role name; it grants nothing until it is mapped again.
func (s *Server) handleAdminDeleteRole(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	role := mux.Vars(r)["role"]
	if err := validateRoles([]string{role}); err != nil {
		return errorf(CodeNotFound, "role not found")
	}
	if _, ok := s.deps.State.RolePermissions()[role]; !ok {
		return errorf(CodeNotFound, "role not found")
	}
	if err := s.commitRolePermissions(r, role, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) commitRolePermissions(r *http.Request, role string, perms []string) error {
	res, err := s.commit(r.Context(), &fsm.SetRolePermissions{At: s.cfg.Now(), Role: role, Permissions: perms})
	if err != nil {
		return err
	}
	return res.Err
}

func (s *Server) handleAdminSetRoles(w http.ResponseWriter, r *http.Request) error {
	u, err := s.adminUser(r)
	if err != nil {
		return err
	}
	var req rolesRequest
	if err := s.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.Roles == nil {
		return errorf(CodeInvalidRequest, "roles is required; send [] to remove every role")
	}
	if err := validateRoles(req.Roles); err != nil {
		return err
	}
	return s.commitUserChange(w, r, &fsm.SetRoles{At: s.cfg.Now(), UserID: u.ID, Roles: req.Roles})
}

// commitUserChange commits a command that changes one user and responds with
// the user as it is after the change.
func (s *Server) commitUserChange(w http.ResponseWriter, r *http.Request, c fsm.Command) error {
	res, err := s.commit(r.Context(), c)
	if err != nil {
		return err
	}
	if errors.Is(res.Err, fsm.ErrUserNotFound) {
		return errorf(CodeNotFound, "user not found")
	}
	if res.Err != nil {
		return res.Err
	}
	writeJSON(w, http.StatusOK, viewUser(res.User, true))
	return nil
}

type disabledRequest struct {
	Disabled *bool `json:"disabled"`
}

// handleAdminSetDisabled disables or enables a user. Disabling ends every
// session of the user in the same log entry.
func (s *Server) handleAdminSetDisabled(w http.ResponseWriter, r *http.Request) error {
	u, err := s.adminUser(r)
	if err != nil {
		return err
	}
	var req disabledRequest
	if err := s.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.Disabled == nil {
		return errorf(CodeInvalidRequest, "disabled is required")
	}
	now := s.cfg.Now()
	return s.commitUserChange(w, r, &fsm.SetDisabled{At: now, UserID: u.ID, Disabled: *req.Disabled, DenyUntil: s.denyUntil(now)})
}

// handleAdminRemoveNode removes a voter from the Raft configuration, for a
// node that is gone for good. A node that only crashed needs nothing: it
// catches up when it returns.
func (s *Server) handleAdminRemoveNode(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	id := mux.Vars(r)["node_id"]
	servers, err := s.deps.Node.Servers()
	if err != nil {
		return unavailable(err)
	}
	found := false
	for _, srv := range servers {
		found = found || srv.ID == id
	}
	if !found {
		return errorf(CodeNotFound, "node %q is not in the cluster", id)
	}
	if id == s.cfg.NodeID {
		return errorf(CodeInvalidRequest, "node %q is the leader; stop it and remove it from the new leader", id)
	}
	if err := s.deps.Node.RemoveServer(id); err != nil {
		return unavailable(err)
	}
	s.log.Info("removed a node from the cluster", "node_id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
