package fsm

import (
	"slices"
	"time"
)

// Result is the outcome of applying one command, returned through raft's
// ApplyFuture.
type Result struct {
	// Err is nil when the command's preconditions held and it took effect.
	Err error

	// Session is the session after a CreateSession or RotateSession.
	Session *Session

	// User is the user after a user command.
	User *User

	// Revoked lists the sessions this entry revoked, in the order they were
	// created.
	Revoked []ID
}

// apply changes the state for one command. The caller holds f.mu for writing.
func (f *FSM) apply(c Command) *Result {
	switch c := c.(type) {
	case *CreateUser:
		return f.applyCreateUser(c)
	case *CreateSession:
		return f.applyCreateSession(c)
	case *RotateSession:
		return f.applyRotateSession(c)
	case *RevokeSession:
		return f.applyRevokeSession(c)
	case *RevokeUserSessions:
		return f.applyRevokeUserSessions(c)
	case *SetRoles:
		return f.applySetRoles(c)
	case *SetDisabled:
		return f.applySetDisabled(c)
	case *SetPassword:
		return f.applySetPassword(c)
	case *RotateSigningKey:
		return f.applyRotateSigningKey(c)
	case *Cleanup:
		return f.applyCleanup(c)
	case *SetRolePermissions:
		return f.applySetRolePermissions(c)
	}
	return &Result{Err: ErrUnknownCommand}
}

func (f *FSM) applyCreateUser(c *CreateUser) *Result {
	if _, ok := f.users[c.UserID]; ok {
		return &Result{Err: ErrUserExists}
	}
	if _, ok := f.usernames[c.Username]; ok {
		return &Result{Err: ErrUsernameTaken}
	}
	u := &User{
		ID:           c.UserID,
		Username:     c.Username,
		PasswordHash: c.PasswordHash,
		Roles:        slices.Clone(c.Roles),
		Created:      c.At,
	}
	f.users[u.ID] = u
	f.usernames[u.Username] = u.ID
	return &Result{User: u}
}

func (f *FSM) applyCreateSession(c *CreateSession) *Result {
	u, ok := f.users[c.UserID]
	switch {
	case !ok:
		return &Result{Err: ErrUserNotFound}
	case u.Disabled:
		return &Result{Err: ErrUserDisabled}
	case !c.AnyCredential && u.CredentialVersion != c.CredentialVersion:
		return &Result{Err: ErrStaleCredentials}
	}
	if _, ok := f.sessions[c.SessionID]; ok {
		return &Result{Err: ErrSessionExists}
	}

	s := &Session{
		ID:            c.SessionID,
		UserID:        c.UserID,
		Nonce:         c.Nonce,
		Generation:    1,
		Created:       c.At,
		LastRefreshed: c.At,
		IdleExpires:   earlier(c.IdleExpires, c.Expires),
		Expires:       c.Expires,
		DeviceID:      c.DeviceID,
		DeviceName:    c.DeviceName,
		UserAgent:     c.UserAgent,
		IP:            c.IP,
	}
	f.sessions[s.ID] = s
	f.userSessions[s.UserID] = append(f.userSessions[s.UserID], s.ID)
	return &Result{Session: s}
}

// applyRotateSession is the compare-and-set at the heart of rotation: the
// actor decided "rotate from generation g" on its view of the state, and this
// is where that view is checked. A revocation or another rotation that
// committed in between wins, and the rotation is rejected.
func (f *FSM) applyRotateSession(c *RotateSession) *Result {
	old, ok := f.sessions[c.SessionID]
	switch {
	case !ok:
		return &Result{Err: ErrSessionNotFound}
	case skipCAS:
	case old.Revoked:
		return &Result{Err: ErrSessionRevoked}
	case old.ExpiredAt(c.At):
		return &Result{Err: ErrSessionExpired}
	case old.Generation != c.FromGeneration:
		return &Result{Err: ErrGenerationMismatch}
	}
	if u, ok := f.users[old.UserID]; !skipCAS && (!ok || u.Disabled) {
		return &Result{Err: ErrUserDisabled}
	}

	s := *old
	s.Generation++
	s.RotatedAt = c.At
	s.LastRefreshed = c.At
	s.IdleExpires = earlier(c.IdleExpires, s.Expires)
	if c.UserAgent != "" {
		s.UserAgent = c.UserAgent
	}
	if c.IP != "" {
		s.IP = c.IP
	}
	f.sessions[s.ID] = &s
	return &Result{Session: &s}
}

func (f *FSM) applyRevokeSession(c *RevokeSession) *Result {
	s, ok := f.sessions[c.SessionID]
	if !ok {
		return &Result{Err: ErrSessionNotFound}
	}
	if s.Revoked {
		return &Result{Session: s}
	}
	s = f.revoke(s, c.At, c.Reason, c.DenyUntil)
	return &Result{Session: s, Revoked: []ID{s.ID}}
}

func (f *FSM) applyRevokeUserSessions(c *RevokeUserSessions) *Result {
	if _, ok := f.users[c.UserID]; !ok {
		return &Result{Err: ErrUserNotFound}
	}
	return &Result{Revoked: f.revokeUser(c.UserID, c.Keep, c.At, c.Reason, c.DenyUntil)}
}

func (f *FSM) applySetRoles(c *SetRoles) *Result {
	old, ok := f.users[c.UserID]
	if !ok {
		return &Result{Err: ErrUserNotFound}
	}
	u := *old
	u.Roles = slices.Clone(c.Roles)
	f.users[u.ID] = &u
	return &Result{User: &u}
}

func (f *FSM) applySetRolePermissions(c *SetRolePermissions) *Result {
	if len(c.Permissions) == 0 {
		delete(f.rolePermissions, c.Role)
		return &Result{}
	}
	perms := slices.Clone(c.Permissions)
	slices.Sort(perms)
	f.rolePermissions[c.Role] = slices.Compact(perms)
	return &Result{}
}

func (f *FSM) applySetDisabled(c *SetDisabled) *Result {
	old, ok := f.users[c.UserID]
	if !ok {
		return &Result{Err: ErrUserNotFound}
	}
	u := *old
	if u.Disabled != c.Disabled {
		// A login checked against the old version must not commit after this.
		u.CredentialVersion++
	}
	u.Disabled = c.Disabled
	f.users[u.ID] = &u

	var revoked []ID
	if c.Disabled {
		revoked = f.revokeUser(u.ID, ID{}, c.At, ReasonDisabled, c.DenyUntil)
	}
	return &Result{User: &u, Revoked: revoked}
}

func (f *FSM) applySetPassword(c *SetPassword) *Result {
	old, ok := f.users[c.UserID]
	switch {
	case !ok:
		return &Result{Err: ErrUserNotFound}
	case old.Disabled:
		return &Result{Err: ErrUserDisabled}
	case old.CredentialVersion != c.FromVersion:
		return &Result{Err: ErrStaleCredentials}
	}
	u := *old
	u.PasswordHash = c.PasswordHash
	u.CredentialVersion++
	f.users[u.ID] = &u

	var revoked []ID
	if c.RevokeOthers {
		revoked = f.revokeUser(u.ID, c.Keep, c.At, ReasonPasswordChange, c.DenyUntil)
	}
	return &Result{User: &u, Revoked: revoked}
}

func (f *FSM) applyRotateSigningKey(c *RotateSigningKey) *Result {
	if f.currentEpoch() != c.FromEpoch {
		return &Result{Err: ErrEpochMismatch}
	}
	epochs := slices.Clone(f.epochs)
	if n := len(epochs); n > 0 {
		epochs[n-1].Retired = c.At
	}
	epochs = append(epochs, Epoch{Number: c.FromEpoch + 1, Activated: c.At})
	f.epochs = epochs
	return &Result{}
}

// applyCleanup drops expired state. A live session goes at its deadline,
// because no token of it can be refreshed after that. A revoked session and
// its deny entry stay until DenyUntil, because its access tokens must be
// rejected until they expire.
func (f *FSM) applyCleanup(c *Cleanup) *Result {
	for id, s := range f.sessions {
		drop := s.ExpiredAt(c.At)
		if s.Revoked {
			drop = !c.At.Before(s.DenyUntil)
		}
		if drop {
			f.dropSession(id, s.UserID)
		}
	}
	f.revocations.Expire(c.At)

	kept := f.epochs[:0:0]
	for _, e := range f.epochs {
		if e.Retired.IsZero() || !e.Retired.Before(c.RetiredBefore) {
			kept = append(kept, e)
		}
	}
	f.epochs = kept
	return &Result{}
}

// revokeUser revokes every live session of the user except keep and returns
// the revoked ids in the order the user's sessions were created.
func (f *FSM) revokeUser(user, keep ID, at time.Time, reason RevokeReason, denyUntil time.Time) []ID {
	var revoked []ID
	for _, id := range f.userSessions[user] {
		s := f.sessions[id]
		if id == keep || s.Revoked {
			continue
		}
		f.revoke(s, at, reason, denyUntil)
		revoked = append(revoked, id)
	}
	return revoked
}

// revoke replaces s with its revoked copy and adds its deny entry.
func (f *FSM) revoke(old *Session, at time.Time, reason RevokeReason, denyUntil time.Time) *Session {
	s := *old
	s.Revoked = true
	s.RevokedAt = at
	s.RevokeReason = reason
	s.DenyUntil = denyUntil
	f.sessions[s.ID] = &s
	f.revocations.Add(s.ID, denyUntil)
	f.pending = append(f.pending, Revocation{Session: s.ID, Until: denyUntil})
	return &s
}

func (f *FSM) dropSession(id, user ID) {
	delete(f.sessions, id)
	ids := slices.DeleteFunc(f.userSessions[user], func(x ID) bool { return x == id })
	if len(ids) == 0 {
		delete(f.userSessions, user)
		return
	}
	f.userSessions[user] = ids
}

func (f *FSM) currentEpoch() uint64 {
	if n := len(f.epochs); n > 0 {
		return f.epochs[n-1].Number
	}
	return 0
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
