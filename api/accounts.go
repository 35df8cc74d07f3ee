package api

import (
	"errors"
	"net/http"

	"github.com/rotorhq/rotor/fsm"
)

// userView is a user as the API shows it.
type userView struct {
	UserID   string     `json:"user_id"`
	Username string     `json:"username"`
	Roles    []string   `json:"roles"`
	Disabled *bool      `json:"disabled,omitempty"`
	Created  *timestamp `json:"created_at,omitempty"`
}

func viewUser(u *fsm.User, admin bool) userView {
	v := userView{UserID: u.ID.String(), Username: u.Username, Roles: u.Roles}
	if v.Roles == nil {
		v.Roles = []string{}
	}
	if admin {
		disabled := u.Disabled
		v.Disabled = &disabled
		created := timestamp(u.Created)
		v.Created = &created
	}
	return v
}

type createUserRequest struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
}

// handleCreateUser is sign-up when --signup is on, and account creation by
// an admin otherwise. Only admins may set roles.
func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	// An admin's token unlocks roles. Anyone else signs up like a visitor
	// when sign-up is on, even with a token of their own.
	admin := false
	if r.Header.Get("Authorization") != "" || !s.cfg.Signup {
		_, err := s.requireAdmin(r)
		if err != nil && !s.cfg.Signup {
			return err
		}
		admin = err == nil
	}
	var req createUserRequest
	if err := s.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if len(req.Roles) > 0 && !admin {
		return errorf(CodeForbidden, "only admins may set roles")
	}
	if req.Password == "" {
		return errorf(CodeInvalidRequest, "password is required")
	}
	return s.createUser(w, r, req, admin)
}

// createUser validates and commits a new account. Admins may leave out the
// password, for accounts that only trusted backends start sessions for, and
// get the admin view of the new user.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request, req createUserRequest, admin bool) error {
	name, err := validateUsername(req.Username)
	if err != nil {
		return err
	}
	if req.Password != "" || !admin {
		if err := validatePassword("password", req.Password); err != nil {
			return err
		}
	}
	if err := validateRoles(req.Roles); err != nil {
		return err
	}
	if err := s.requireLeader(); err != nil {
		return err
	}
	if _, taken := s.deps.State.UserByName(name); taken {
		return errorf(CodeUsernameTaken, "username %q is taken", name)
	}

	hash := ""
	if req.Password != "" {
		if hash, err = s.passwords.hash(r.Context(), req.Password); err != nil {
			return unavailable(err)
		}
	}
	res, err := s.commit(r.Context(), &fsm.CreateUser{
		At: s.cfg.Now(), UserID: fsm.NewID(), Username: name, PasswordHash: hash, Roles: req.Roles,
	})
	if err != nil {
		return err
	}
	if errors.Is(res.Err, fsm.ErrUsernameTaken) {
		return errorf(CodeUsernameTaken, "username %q is taken", name)
	}
	if res.Err != nil {
		return res.Err
	}
	writeJSON(w, http.StatusCreated, viewUser(res.User, admin))
	return nil
}

type meResponse struct {
	userView
	SessionID string `json:"session_id"`
	// Permissions are those the user's roles grant now, which the access
	// token carries from its next refresh on.
	Permissions []string `json:"permissions"`
}

// nonNil returns list, or an empty list for nil, so JSON shows [] not null.
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	u, ok := s.deps.State.User(p.user)
	if !ok && !s.deps.Node.IsLeader() {
		// A follower may not have applied a sign-up that just committed;
		// the leader has.
		return s.forward(w, r, nil)
	}
	if !ok {
		return &Error{Code: CodeUnauthorized, Challenge: "invalid_token", Detail: "the user of this access token no longer exists"}
	}
	writeJSON(w, http.StatusOK, meResponse{userView: viewUser(u, false), SessionID: p.session.String(),
		Permissions: nonNil(s.deps.State.PermissionsOf(u.Roles))})
	return nil
}

type changePasswordRequest struct {
	CurrentPassword     string `json:"current_password"`
	NewPassword         string `json:"new_password"`
	RevokeOtherSessions *bool  `json:"revoke_other_sessions"`
}

func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	var req changePasswordRequest
	if err := s.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.CurrentPassword == "" {
		return errorf(CodeInvalidRequest, "current_password is required")
	}
	if err := validatePassword("new_password", req.NewPassword); err != nil {
		return err
	}
	u, ok := s.deps.State.User(p.user)
	if !ok {
		return errorf(CodeUnauthorized, "the user of this access token no longer exists")
	}
	match, err := s.passwords.verify(r.Context(), u.PasswordHash, req.CurrentPassword)
	if err != nil {
		return unavailable(err)
	}
	if !match {
		return errorf(CodeInvalidCredentials, "current_password is wrong")
	}
	hash, err := s.passwords.hash(r.Context(), req.NewPassword)
	if err != nil {
		return unavailable(err)
	}

	now := s.cfg.Now()
	revokeOthers := req.RevokeOtherSessions == nil || *req.RevokeOtherSessions
	res, err := s.commit(r.Context(), &fsm.SetPassword{
		At: now, UserID: u.ID, PasswordHash: hash, FromVersion: u.CredentialVersion,
		RevokeOthers: revokeOthers, Keep: p.session, DenyUntil: s.denyUntil(now),
	})
	if err != nil {
		return err
	}
	switch {
	case errors.Is(res.Err, fsm.ErrStaleCredentials):
		return errorf(CodeInvalidCredentials, "the password changed meanwhile; try again")
	case errors.Is(res.Err, fsm.ErrUserDisabled):
		return errorf(CodeUserDisabled, "this account is disabled")
	case res.Err != nil:
		return res.Err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
