package fsm_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rotorhq/rotor/fsm"
)

// t0 is the leader clock at the start of every test.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	idleLifetime     = 24 * time.Hour
	absoluteLifetime = 30 * 24 * time.Hour
	accessLifetime   = 15 * time.Minute
)

// fixture wraps a fresh FSM with helpers that fail the test when a setup
// command is rejected.
type fixture struct {
	t    *testing.T
	f    *fsm.FSM
	next byte

	// idPrefix is the first byte of every id. Tests that move state between
	// two fixtures give them different prefixes.
	idPrefix byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return &fixture{t: t, f: fsm.New(nil), idPrefix: 0xA5}
}

// id returns a new id, distinct from every other id of this fixture.
func (fx *fixture) id() fsm.ID {
	fx.next++
	var id fsm.ID
	id[0] = fx.idPrefix
	id[15] = fx.next
	return id
}

// apply applies c and fails the test if Apply returned no result.
func (fx *fixture) apply(c fsm.Command) *fsm.Result {
	fx.t.Helper()
	res := fx.f.ApplyCommand(c)
	if res == nil {
		fx.t.Fatalf("ApplyCommand(%T): got nil result, want *Result", c)
	}
	return res
}

// mustApply applies c and fails the test if the command was rejected.
func (fx *fixture) mustApply(c fsm.Command) *fsm.Result {
	fx.t.Helper()
	res := fx.apply(c)
	if res.Err != nil {
		fx.t.Fatalf("ApplyCommand(%T): got error %v, want nil", c, res.Err)
	}
	return res
}

func (fx *fixture) createUser(username string) *fsm.User {
	fx.t.Helper()
	return fx.mustApply(&fsm.CreateUser{At: t0, UserID: fx.id(), Username: username, PasswordHash: "hash-" + username}).User
}

// sessionCommand returns a valid CreateSession for user at the given time.
func (fx *fixture) sessionCommand(user *fsm.User, at time.Time) *fsm.CreateSession {
	return &fsm.CreateSession{
		At:                at,
		SessionID:         fx.id(),
		UserID:            user.ID,
		Nonce:             fx.id(),
		IdleExpires:       at.Add(idleLifetime),
		Expires:           at.Add(absoluteLifetime),
		CredentialVersion: user.CredentialVersion,
		DeviceID:          "device-1",
		DeviceName:        "Test phone",
		UserAgent:         "rotor-test/1.0",
		IP:                "192.0.2.10",
	}
}

func (fx *fixture) createSession(user *fsm.User, at time.Time) *fsm.Session {
	fx.t.Helper()
	return fx.mustApply(fx.sessionCommand(user, at)).Session
}

func (fx *fixture) user(id fsm.ID) *fsm.User {
	fx.t.Helper()
	u, ok := fx.f.User(id)
	if !ok {
		fx.t.Fatalf("User(%v): not found", id)
	}
	return u
}

func (fx *fixture) session(id fsm.ID) *fsm.Session {
	fx.t.Helper()
	s, ok := fx.f.Session(id)
	if !ok {
		fx.t.Fatalf("Session(%v): not found", id)
	}
	return s
}

func rotateCommand(s *fsm.Session, at time.Time) *fsm.RotateSession {
	return &fsm.RotateSession{At: at, SessionID: s.ID, FromGeneration: s.Generation, IdleExpires: at.Add(idleLifetime)}
}

func revokeCommand(s *fsm.Session, at time.Time) *fsm.RevokeSession {
	return &fsm.RevokeSession{At: at, SessionID: s.ID, Reason: fsm.ReasonLogout, DenyUntil: at.Add(accessLifetime)}
}

func wantErr(t *testing.T, res *fsm.Result, want error) {
	t.Helper()
	if !errors.Is(res.Err, want) {
		t.Fatalf("Apply error: got %v, want %v", res.Err, want)
	}
}

func sessionIDs(sessions []*fsm.Session) []fsm.ID {
	ids := make([]fsm.ID, 0, len(sessions))
	for _, s := range sessions {
		ids = append(ids, s.ID)
	}
	return ids
}

func TestCreateUserStoresFields(t *testing.T) {
	fx := newFixture(t)
	c := &fsm.CreateUser{At: t0, UserID: fx.id(), Username: "alice", PasswordHash: "hash", Roles: []string{"admin", "ops"}}

	res := fx.mustApply(c)

	u := fx.user(c.UserID)
	if res.User != u {
		t.Errorf("Result.User: got %p, want the stored record %p", res.User, u)
	}
	if u.Username != "alice" {
		t.Errorf("Username: got %q, want %q", u.Username, "alice")
	}
	if u.PasswordHash != "hash" {
		t.Errorf("PasswordHash: got %q, want %q", u.PasswordHash, "hash")
	}
	if !slices.Equal(u.Roles, c.Roles) {
		t.Errorf("Roles: got %v, want %v", u.Roles, c.Roles)
	}
	if !u.Created.Equal(t0) {
		t.Errorf("Created: got %v, want %v", u.Created, t0)
	}
	if u.CredentialVersion != 0 {
		t.Errorf("CredentialVersion: got %d, want 0", u.CredentialVersion)
	}
	if u.Disabled {
		t.Errorf("Disabled: got true, want false")
	}
	byName, ok := fx.f.UserByName("alice")
	if !ok || byName != u {
		t.Errorf("UserByName(alice): got %p, %v, want %p, true", byName, ok, u)
	}
}

func TestCreateUserRejects(t *testing.T) {
	tests := []struct {
		name     string
		reuseID  bool
		username string
		want     error
	}{
		{name: "username taken", username: "alice", want: fsm.ErrUsernameTaken},
		{name: "id reused", reuseID: true, username: "bob", want: fsm.ErrUserExists},
		{name: "id reused and username taken", reuseID: true, username: "alice", want: fsm.ErrUserExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			alice := fx.createUser("alice")
			id := fx.id()
			if tc.reuseID {
				id = alice.ID
			}

			res := fx.apply(&fsm.CreateUser{At: t0.Add(time.Minute), UserID: id, Username: tc.username})

			wantErr(t, res, tc.want)
			if users, _ := fx.f.Counts(); users != 1 {
				t.Errorf("user count: got %d, want 1", users)
			}
			if got := fx.user(alice.ID); got != alice {
				t.Errorf("User(alice): got %+v, want the original record", got)
			}
			if _, ok := fx.f.UserByName("bob"); ok {
				t.Errorf("UserByName(bob): got found, want not found")
			}
		})
	}
}

func TestCreateSessionStoresFields(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	c := fx.sessionCommand(alice, t0)

	res := fx.mustApply(c)

	s := fx.session(c.SessionID)
	if res.Session != s {
		t.Errorf("Result.Session: got %p, want the stored record %p", res.Session, s)
	}
	if s.Generation != 1 {
		t.Errorf("Generation: got %d, want 1", s.Generation)
	}
	if s.UserID != alice.ID {
		t.Errorf("UserID: got %v, want %v", s.UserID, alice.ID)
	}
	if s.Nonce != c.Nonce {
		t.Errorf("Nonce: got %v, want %v", s.Nonce, c.Nonce)
	}
	if !s.RotatedAt.IsZero() {
		t.Errorf("RotatedAt: got %v, want zero", s.RotatedAt)
	}
	if !s.Created.Equal(t0) {
		t.Errorf("Created: got %v, want %v", s.Created, t0)
	}
	if !s.LastRefreshed.Equal(t0) {
		t.Errorf("LastRefreshed: got %v, want %v", s.LastRefreshed, t0)
	}
	if !s.IdleExpires.Equal(c.IdleExpires) {
		t.Errorf("IdleExpires: got %v, want %v", s.IdleExpires, c.IdleExpires)
	}
	if !s.Expires.Equal(c.Expires) {
		t.Errorf("Expires: got %v, want %v", s.Expires, c.Expires)
	}
	if s.DeviceID != c.DeviceID || s.DeviceName != c.DeviceName || s.UserAgent != c.UserAgent || s.IP != c.IP {
		t.Errorf("device fields: got %q %q %q %q, want %q %q %q %q",
			s.DeviceID, s.DeviceName, s.UserAgent, s.IP, c.DeviceID, c.DeviceName, c.UserAgent, c.IP)
	}
	if s.Revoked {
		t.Errorf("Revoked: got true, want false")
	}
	if got := sessionIDs(fx.f.UserSessions(alice.ID)); !slices.Equal(got, []fsm.ID{s.ID}) {
		t.Errorf("UserSessions: got %v, want [%v]", got, s.ID)
	}
}

func TestCreateSessionClampsIdle(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	c := fx.sessionCommand(alice, t0)
	c.IdleExpires = c.Expires.Add(time.Hour)

	s := fx.mustApply(c).Session

	if !s.IdleExpires.Equal(c.Expires) {
		t.Errorf("IdleExpires: got %v, want %v", s.IdleExpires, c.Expires)
	}
	if !s.Expires.Equal(c.Expires) {
		t.Errorf("Expires: got %v, want %v", s.Expires, c.Expires)
	}
}

func TestCreateSessionAnyCredential(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	fx.mustApply(&fsm.SetPassword{At: t0, UserID: alice.ID, PasswordHash: "new", FromVersion: 0})
	c := fx.sessionCommand(alice, t0.Add(time.Minute))
	c.CredentialVersion = 0
	c.AnyCredential = true

	res := fx.apply(c)

	if res.Err != nil {
		t.Fatalf("Apply error: got %v, want nil", res.Err)
	}
	if res.Session.Generation != 1 {
		t.Errorf("Generation: got %d, want 1", res.Session.Generation)
	}
}

func TestCreateSessionRejects(t *testing.T) {
	tests := []struct {
		name string
		// prepare changes the state and the command before the command is applied.
		prepare func(fx *fixture, alice *fsm.User, c *fsm.CreateSession)
		want    error
	}{
		{
			name: "unknown user",
			prepare: func(fx *fixture, _ *fsm.User, c *fsm.CreateSession) {
				c.UserID = fx.id()
			},
			want: fsm.ErrUserNotFound,
		},
		{
			name: "disabled user",
			prepare: func(fx *fixture, alice *fsm.User, c *fsm.CreateSession) {
				u := fx.mustApply(&fsm.SetDisabled{At: t0, UserID: alice.ID, Disabled: true}).User
				c.CredentialVersion = u.CredentialVersion
			},
			want: fsm.ErrUserDisabled,
		},
		{
			name: "disabled user with any credential",
			prepare: func(fx *fixture, alice *fsm.User, c *fsm.CreateSession) {
				fx.mustApply(&fsm.SetDisabled{At: t0, UserID: alice.ID, Disabled: true})
				c.AnyCredential = true
			},
			want: fsm.ErrUserDisabled,
		},
		{
			name: "stale credential version",
			prepare: func(fx *fixture, alice *fsm.User, _ *fsm.CreateSession) {
				fx.mustApply(&fsm.SetPassword{At: t0, UserID: alice.ID, PasswordHash: "new", FromVersion: 0})
			},
			want: fsm.ErrStaleCredentials,
		},
		{
			name: "future credential version",
			prepare: func(_ *fixture, _ *fsm.User, c *fsm.CreateSession) {
				c.CredentialVersion = 7
			},
			want: fsm.ErrStaleCredentials,
		},
		{
			name: "session id reused",
			prepare: func(fx *fixture, alice *fsm.User, c *fsm.CreateSession) {
				first := fx.sessionCommand(alice, t0)
				fx.mustApply(first)
				c.SessionID = first.SessionID
			},
			want: fsm.ErrSessionExists,
		},
		{
			name: "session id of a revoked session",
			prepare: func(fx *fixture, alice *fsm.User, c *fsm.CreateSession) {
				s := fx.createSession(alice, t0)
				fx.mustApply(revokeCommand(s, t0))
				c.SessionID = s.ID
			},
			want: fsm.ErrSessionExists,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			alice := fx.createUser("alice")
			c := fx.sessionCommand(alice, t0.Add(time.Minute))
			tc.prepare(fx, alice, c)
			_, sessionsBefore := fx.f.Counts()
			before, existed := fx.f.Session(c.SessionID)

			res := fx.apply(c)

			wantErr(t, res, tc.want)
			if res.Session != nil {
				t.Errorf("Result.Session: got %+v, want nil", res.Session)
			}
			if _, sessions := fx.f.Counts(); sessions != sessionsBefore {
				t.Errorf("session count: got %d, want %d", sessions, sessionsBefore)
			}
			after, exists := fx.f.Session(c.SessionID)
			if exists != existed || after != before {
				t.Errorf("Session(%v): got %p, %v, want %p, %v", c.SessionID, after, exists, before, existed)
			}
		})
	}
}

func TestRotateSessionAdvances(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	old := fx.createSession(alice, t0)
	at := t0.Add(time.Hour)
	c := rotateCommand(old, at)
	c.UserAgent = "rotor-test/2.0"
	c.IP = "198.51.100.7"

	res := fx.mustApply(c)

	s := fx.session(old.ID)
	if res.Session != s {
		t.Errorf("Result.Session: got %p, want the stored record %p", res.Session, s)
	}
	if s.Generation != 2 {
		t.Errorf("Generation: got %d, want 2", s.Generation)
	}
	if !s.RotatedAt.Equal(at) {
		t.Errorf("RotatedAt: got %v, want %v", s.RotatedAt, at)
	}
	if !s.LastRefreshed.Equal(at) {
		t.Errorf("LastRefreshed: got %v, want %v", s.LastRefreshed, at)
	}
	if !s.IdleExpires.Equal(c.IdleExpires) {
		t.Errorf("IdleExpires: got %v, want %v", s.IdleExpires, c.IdleExpires)
	}
	if !s.Expires.Equal(old.Expires) {
		t.Errorf("Expires: got %v, want %v", s.Expires, old.Expires)
	}
	if !s.Created.Equal(old.Created) {
		t.Errorf("Created: got %v, want %v", s.Created, old.Created)
	}
	if s.Nonce != old.Nonce {
		t.Errorf("Nonce: got %v, want %v", s.Nonce, old.Nonce)
	}
	if s.UserAgent != c.UserAgent {
		t.Errorf("UserAgent: got %q, want %q", s.UserAgent, c.UserAgent)
	}
	if s.IP != c.IP {
		t.Errorf("IP: got %q, want %q", s.IP, c.IP)
	}
	if s.DeviceID != old.DeviceID {
		t.Errorf("DeviceID: got %q, want %q", s.DeviceID, old.DeviceID)
	}
}

func TestRotateSessionKeepsClientFields(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	old := fx.createSession(alice, t0)

	s := fx.mustApply(rotateCommand(old, t0.Add(time.Hour))).Session

	if s.UserAgent != old.UserAgent {
		t.Errorf("UserAgent: got %q, want %q", s.UserAgent, old.UserAgent)
	}
	if s.IP != old.IP {
		t.Errorf("IP: got %q, want %q", s.IP, old.IP)
	}
}

func TestRotateSessionCopyOnWrite(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	old := fx.createSession(alice, t0)
	snapshot := *old

	s := fx.mustApply(rotateCommand(old, t0.Add(time.Hour))).Session

	if s == old {
		t.Fatalf("Result.Session: got the old pointer %p, want a new record", s)
	}
	if *old != snapshot {
		t.Errorf("old record: got %+v, want unchanged %+v", *old, snapshot)
	}
}

func TestRotateSessionClampsIdle(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	old := fx.createSession(alice, t0)
	c := rotateCommand(old, t0.Add(time.Hour))
	c.IdleExpires = old.Expires.Add(48 * time.Hour)

	s := fx.mustApply(c).Session

	if !s.IdleExpires.Equal(old.Expires) {
		t.Errorf("IdleExpires: got %v, want %v", s.IdleExpires, old.Expires)
	}
	if !s.Expires.Equal(old.Expires) {
		t.Errorf("Expires: got %v, want %v", s.Expires, old.Expires)
	}
}

// TestRotateSessionAbsoluteDeadline rotates a session once a day until its
// absolute deadline and checks that no rotation moves that deadline.
func TestRotateSessionAbsoluteDeadline(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	s := fx.createSession(alice, t0)
	expires := s.Expires

	at := t0
	for at.Add(24 * time.Hour).Before(expires) {
		at = at.Add(23 * time.Hour)
		s = fx.mustApply(rotateCommand(s, at)).Session
		if !s.Expires.Equal(expires) {
			t.Fatalf("Expires after generation %d: got %v, want %v", s.Generation, s.Expires, expires)
		}
		if s.IdleExpires.After(expires) {
			t.Fatalf("IdleExpires after generation %d: got %v, want at most %v", s.Generation, s.IdleExpires, expires)
		}
	}

	if !s.IdleExpires.Equal(expires) {
		t.Fatalf("IdleExpires before the absolute deadline: got %v, want %v", s.IdleExpires, expires)
	}

	res := fx.apply(rotateCommand(s, expires))

	wantErr(t, res, fsm.ErrSessionExpired)
	last := fx.mustApply(rotateCommand(s, expires.Add(-time.Nanosecond))).Session
	if !last.Expires.Equal(expires) {
		t.Errorf("Expires after the last rotation: got %v, want %v", last.Expires, expires)
	}
}

func TestRotateSessionRejects(t *testing.T) {
	tests := []struct {
		name string
		// prepare changes the state and the command before the command is applied.
		prepare func(fx *fixture, s *fsm.Session, c *fsm.RotateSession)
		want    error
	}{
		{
			name: "unknown session",
			prepare: func(fx *fixture, _ *fsm.Session, c *fsm.RotateSession) {
				c.SessionID = fx.id()
			},
			want: fsm.ErrSessionNotFound,
		},
		{
			name: "generation zero",
			prepare: func(_ *fixture, _ *fsm.Session, c *fsm.RotateSession) {
				c.FromGeneration = 0
			},
			want: fsm.ErrGenerationMismatch,
		},
		{
			name: "future generation",
			prepare: func(_ *fixture, _ *fsm.Session, c *fsm.RotateSession) {
				c.FromGeneration = 2
			},
			want: fsm.ErrGenerationMismatch,
		},
		{
			name: "replayed generation",
			prepare: func(fx *fixture, s *fsm.Session, _ *fsm.RotateSession) {
				fx.mustApply(rotateCommand(s, t0.Add(time.Minute)))
			},
			want: fsm.ErrGenerationMismatch,
		},
		{
			name: "revoked",
			prepare: func(fx *fixture, s *fsm.Session, _ *fsm.RotateSession) {
				fx.mustApply(revokeCommand(s, t0.Add(time.Minute)))
			},
			want: fsm.ErrSessionRevoked,
		},
		{
			name: "revoked with stale generation",
			prepare: func(fx *fixture, s *fsm.Session, c *fsm.RotateSession) {
				fx.mustApply(revokeCommand(s, t0.Add(time.Minute)))
				c.FromGeneration = 5
			},
			want: fsm.ErrSessionRevoked,
		},
		{
			name: "at idle deadline",
			prepare: func(_ *fixture, s *fsm.Session, c *fsm.RotateSession) {
				c.At = s.IdleExpires
			},
			want: fsm.ErrSessionExpired,
		},
		{
			name: "past idle deadline",
			prepare: func(_ *fixture, s *fsm.Session, c *fsm.RotateSession) {
				c.At = s.IdleExpires.Add(time.Nanosecond)
			},
			want: fsm.ErrSessionExpired,
		},
		{
			name: "past absolute deadline",
			prepare: func(_ *fixture, s *fsm.Session, c *fsm.RotateSession) {
				c.At = s.Expires.Add(time.Hour)
			},
			want: fsm.ErrSessionExpired,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			alice := fx.createUser("alice")
			s := fx.createSession(alice, t0)
			c := rotateCommand(s, t0.Add(time.Hour))
			tc.prepare(fx, s, c)
			before, existed := fx.f.Session(s.ID)

			res := fx.apply(c)

			wantErr(t, res, tc.want)
			if res.Session != nil {
				t.Errorf("Result.Session: got %+v, want nil", res.Session)
			}
			after, exists := fx.f.Session(s.ID)
			if exists != existed || after != before {
				t.Errorf("Session: got %p, %v, want unchanged %p, %v", after, exists, before, existed)
			}
		})
	}
}

// TestRotateSessionDisabledUser restores a live session of a disabled user.
// Apply alone cannot build that state, because disabling a user revokes its
// sessions. Rotation must still be rejected.
func TestRotateSessionDisabledUser(t *testing.T) {
	user := &fsm.User{ID: fsm.ID{1}, Username: "alice", Disabled: true, Created: t0, CredentialVersion: 1}
	session := &fsm.Session{
		ID: fsm.ID{2}, UserID: user.ID, Generation: 1, Created: t0, LastRefreshed: t0,
		IdleExpires: t0.Add(idleLifetime), Expires: t0.Add(absoluteLifetime),
	}
	f := fsm.New(nil)
	if err := f.Restore(snapshotOf(t, 1, []*fsm.User{user}, []*fsm.Session{session})); err != nil {
		t.Fatalf("Restore: %v", err)
	}

	res := f.ApplyCommand(rotateCommand(session, t0.Add(time.Hour)))

	wantErr(t, res, fsm.ErrUserDisabled)
}

func TestRevokeSessionDenies(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	old := fx.createSession(alice, t0)
	c := revokeCommand(old, t0.Add(time.Hour))
	c.Reason = fsm.ReasonAdmin

	res := fx.mustApply(c)

	s := fx.session(old.ID)
	if res.Session != s {
		t.Errorf("Result.Session: got %p, want the stored record %p", res.Session, s)
	}
	if !slices.Equal(res.Revoked, []fsm.ID{old.ID}) {
		t.Errorf("Result.Revoked: got %v, want [%v]", res.Revoked, old.ID)
	}
	if !s.Revoked {
		t.Errorf("Revoked: got false, want true")
	}
	if !s.RevokedAt.Equal(c.At) {
		t.Errorf("RevokedAt: got %v, want %v", s.RevokedAt, c.At)
	}
	if s.RevokeReason != fsm.ReasonAdmin {
		t.Errorf("RevokeReason: got %v, want %v", s.RevokeReason, fsm.ReasonAdmin)
	}
	if !s.DenyUntil.Equal(c.DenyUntil) {
		t.Errorf("DenyUntil: got %v, want %v", s.DenyUntil, c.DenyUntil)
	}
	if old.Revoked {
		t.Errorf("old record Revoked: got true, want false")
	}
	if !fx.f.Revocations().Denied(old.ID) {
		t.Errorf("Denied: got false, want true")
	}
	want := []fsm.Revocation{{Session: old.ID, Until: c.DenyUntil}}
	if got := fx.f.Revocations().List(); !slices.Equal(got, want) {
		t.Errorf("Revocations: got %v, want %v", got, want)
	}
}

func TestRevokeSessionIdempotent(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	s := fx.createSession(alice, t0)
	first := revokeCommand(s, t0.Add(time.Hour))
	fx.mustApply(first)
	revoked := fx.session(s.ID)
	second := revokeCommand(s, t0.Add(2*time.Hour))
	second.Reason = fsm.ReasonAdmin

	res := fx.mustApply(second)

	if len(res.Revoked) != 0 {
		t.Errorf("Result.Revoked: got %v, want empty", res.Revoked)
	}
	if got := fx.session(s.ID); got != revoked {
		t.Errorf("Session: got %+v, want unchanged %+v", got, revoked)
	}
	want := []fsm.Revocation{{Session: s.ID, Until: first.DenyUntil}}
	if got := fx.f.Revocations().List(); !slices.Equal(got, want) {
		t.Errorf("Revocations: got %v, want %v", got, want)
	}
}

func TestRevokeSessionUnknown(t *testing.T) {
	fx := newFixture(t)

	res := fx.apply(&fsm.RevokeSession{At: t0, SessionID: fx.id(), Reason: fsm.ReasonLogout, DenyUntil: t0.Add(accessLifetime)})

	wantErr(t, res, fsm.ErrSessionNotFound)
	if n := fx.f.Revocations().Len(); n != 0 {
		t.Errorf("Revocations().Len: got %d, want 0", n)
	}
}

func TestRevokeUserSessions(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	bob := fx.createUser("bob")
	a1 := fx.createSession(alice, t0)
	a2 := fx.createSession(alice, t0.Add(time.Minute))
	keep := fx.createSession(alice, t0.Add(2*time.Minute))
	a3 := fx.createSession(alice, t0.Add(3*time.Minute))
	earlier := fx.createSession(alice, t0.Add(4*time.Minute))
	fx.mustApply(revokeCommand(earlier, t0.Add(5*time.Minute)))
	b1 := fx.createSession(bob, t0.Add(6*time.Minute))
	at := t0.Add(time.Hour)

	res := fx.mustApply(&fsm.RevokeUserSessions{At: at, UserID: alice.ID, Keep: keep.ID, Reason: fsm.ReasonUserWide, DenyUntil: at.Add(accessLifetime)})

	if want := []fsm.ID{a1.ID, a2.ID, a3.ID}; !slices.Equal(res.Revoked, want) {
		t.Errorf("Result.Revoked: got %v, want %v", res.Revoked, want)
	}
	for _, s := range []*fsm.Session{a1, a2, a3} {
		got := fx.session(s.ID)
		if !got.Revoked {
			t.Errorf("session %v Revoked: got false, want true", s.ID)
		}
		if got.RevokeReason != fsm.ReasonUserWide {
			t.Errorf("session %v RevokeReason: got %v, want %v", s.ID, got.RevokeReason, fsm.ReasonUserWide)
		}
		if !fx.f.Revocations().Denied(s.ID) {
			t.Errorf("session %v Denied: got false, want true", s.ID)
		}
		wantErr(t, fx.apply(rotateCommand(s, at.Add(time.Minute))), fsm.ErrSessionRevoked)
	}
	if got := fx.session(earlier.ID); got.RevokeReason != fsm.ReasonLogout {
		t.Errorf("earlier revoked session RevokeReason: got %v, want %v", got.RevokeReason, fsm.ReasonLogout)
	}
	for _, s := range []*fsm.Session{keep, b1} {
		if got := fx.session(s.ID); got.Revoked {
			t.Errorf("session %v Revoked: got true, want false", s.ID)
		}
		if fx.f.Revocations().Denied(s.ID) {
			t.Errorf("session %v Denied: got true, want false", s.ID)
		}
		fx.mustApply(rotateCommand(s, at.Add(time.Minute)))
	}

	later := fx.createSession(alice, at.Add(time.Minute))
	if later.Revoked {
		t.Errorf("later session Revoked: got true, want false")
	}
	fx.mustApply(rotateCommand(later, at.Add(2*time.Minute)))
}

func TestRevokeUserSessionsUnknownUser(t *testing.T) {
	fx := newFixture(t)

	res := fx.apply(&fsm.RevokeUserSessions{At: t0, UserID: fx.id(), Reason: fsm.ReasonUserWide})

	wantErr(t, res, fsm.ErrUserNotFound)
}

func TestSetRoles(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")

	res := fx.mustApply(&fsm.SetRoles{At: t0, UserID: alice.ID, Roles: []string{"admin"}})

	u := fx.user(alice.ID)
	if res.User != u {
		t.Errorf("Result.User: got %p, want the stored record %p", res.User, u)
	}
	if !slices.Equal(u.Roles, []string{"admin"}) {
		t.Errorf("Roles: got %v, want [admin]", u.Roles)
	}
	if len(alice.Roles) != 0 {
		t.Errorf("old record Roles: got %v, want empty", alice.Roles)
	}
	if u.CredentialVersion != alice.CredentialVersion {
		t.Errorf("CredentialVersion: got %d, want %d", u.CredentialVersion, alice.CredentialVersion)
	}
}

func TestSetRolesUnknownUser(t *testing.T) {
	fx := newFixture(t)

	res := fx.apply(&fsm.SetRoles{At: t0, UserID: fx.id(), Roles: []string{"admin"}})

	wantErr(t, res, fsm.ErrUserNotFound)
}

func TestSetDisabledRevokes(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	bob := fx.createUser("bob")
	a1 := fx.createSession(alice, t0)
	a2 := fx.createSession(alice, t0.Add(time.Minute))
	b1 := fx.createSession(bob, t0.Add(time.Minute))
	at := t0.Add(time.Hour)

	res := fx.mustApply(&fsm.SetDisabled{At: at, UserID: alice.ID, Disabled: true, DenyUntil: at.Add(accessLifetime)})

	u := fx.user(alice.ID)
	if !u.Disabled {
		t.Errorf("Disabled: got false, want true")
	}
	if u.CredentialVersion != alice.CredentialVersion+1 {
		t.Errorf("CredentialVersion: got %d, want %d", u.CredentialVersion, alice.CredentialVersion+1)
	}
	if want := []fsm.ID{a1.ID, a2.ID}; !slices.Equal(res.Revoked, want) {
		t.Errorf("Result.Revoked: got %v, want %v", res.Revoked, want)
	}
	for _, s := range []*fsm.Session{a1, a2} {
		got := fx.session(s.ID)
		if got.RevokeReason != fsm.ReasonDisabled {
			t.Errorf("session %v RevokeReason: got %v, want %v", s.ID, got.RevokeReason, fsm.ReasonDisabled)
		}
		if !fx.f.Revocations().Denied(s.ID) {
			t.Errorf("session %v Denied: got false, want true", s.ID)
		}
		wantErr(t, fx.apply(rotateCommand(s, at.Add(time.Minute))), fsm.ErrSessionRevoked)
	}
	if fx.session(b1.ID).Revoked {
		t.Errorf("other user's session Revoked: got true, want false")
	}

	stale := fx.sessionCommand(alice, at.Add(time.Minute))
	wantErr(t, fx.apply(stale), fsm.ErrUserDisabled)
}

func TestSetDisabledEnable(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	s := fx.createSession(alice, t0)
	fx.mustApply(&fsm.SetDisabled{At: t0.Add(time.Hour), UserID: alice.ID, Disabled: true, DenyUntil: t0.Add(time.Hour + accessLifetime)})
	at := t0.Add(2 * time.Hour)

	res := fx.mustApply(&fsm.SetDisabled{At: at, UserID: alice.ID, Disabled: false})

	u := fx.user(alice.ID)
	if res.User != u {
		t.Errorf("Result.User: got %p, want the stored record %p", res.User, u)
	}
	if u.Disabled {
		t.Errorf("Disabled: got true, want false")
	}
	if u.CredentialVersion != alice.CredentialVersion+2 {
		t.Errorf("CredentialVersion: got %d, want %d", u.CredentialVersion, alice.CredentialVersion+2)
	}
	if len(res.Revoked) != 0 {
		t.Errorf("Result.Revoked: got %v, want empty", res.Revoked)
	}
	if !fx.session(s.ID).Revoked {
		t.Errorf("session Revoked after enable: got false, want true")
	}
	if !fx.f.Revocations().Denied(s.ID) {
		t.Errorf("session Denied after enable: got false, want true")
	}
	wantErr(t, fx.apply(rotateCommand(s, at.Add(time.Minute))), fsm.ErrSessionRevoked)

	stale := fx.sessionCommand(alice, at.Add(time.Minute))
	wantErr(t, fx.apply(stale), fsm.ErrStaleCredentials)

	fx.createSession(u, at.Add(time.Minute))
}

func TestSetDisabledUnknownUser(t *testing.T) {
	fx := newFixture(t)

	res := fx.apply(&fsm.SetDisabled{At: t0, UserID: fx.id(), Disabled: true})

	wantErr(t, res, fsm.ErrUserNotFound)
}

func TestSetPasswordChangesHash(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	s := fx.createSession(alice, t0)

	res := fx.mustApply(&fsm.SetPassword{At: t0.Add(time.Hour), UserID: alice.ID, PasswordHash: "new", FromVersion: alice.CredentialVersion})

	u := fx.user(alice.ID)
	if res.User != u {
		t.Errorf("Result.User: got %p, want the stored record %p", res.User, u)
	}
	if u.PasswordHash != "new" {
		t.Errorf("PasswordHash: got %q, want %q", u.PasswordHash, "new")
	}
	if u.CredentialVersion != alice.CredentialVersion+1 {
		t.Errorf("CredentialVersion: got %d, want %d", u.CredentialVersion, alice.CredentialVersion+1)
	}
	if alice.PasswordHash != "hash-alice" {
		t.Errorf("old record PasswordHash: got %q, want %q", alice.PasswordHash, "hash-alice")
	}
	if len(res.Revoked) != 0 {
		t.Errorf("Result.Revoked: got %v, want empty", res.Revoked)
	}
	if fx.session(s.ID).Revoked {
		t.Errorf("session Revoked: got true, want false")
	}
	wantErr(t, fx.apply(fx.sessionCommand(alice, t0.Add(2*time.Hour))), fsm.ErrStaleCredentials)
}

func TestSetPasswordRevokeOthers(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	s1 := fx.createSession(alice, t0)
	keep := fx.createSession(alice, t0.Add(time.Minute))
	s3 := fx.createSession(alice, t0.Add(2*time.Minute))
	at := t0.Add(time.Hour)

	res := fx.mustApply(&fsm.SetPassword{
		At: at, UserID: alice.ID, PasswordHash: "new", FromVersion: alice.CredentialVersion,
		RevokeOthers: true, Keep: keep.ID, DenyUntil: at.Add(accessLifetime),
	})

	if want := []fsm.ID{s1.ID, s3.ID}; !slices.Equal(res.Revoked, want) {
		t.Errorf("Result.Revoked: got %v, want %v", res.Revoked, want)
	}
	for _, s := range []*fsm.Session{s1, s3} {
		if got := fx.session(s.ID); got.RevokeReason != fsm.ReasonPasswordChange {
			t.Errorf("session %v RevokeReason: got %v, want %v", s.ID, got.RevokeReason, fsm.ReasonPasswordChange)
		}
	}
	if fx.session(keep.ID).Revoked {
		t.Errorf("kept session Revoked: got true, want false")
	}
	fx.mustApply(rotateCommand(keep, at.Add(time.Minute)))
}

func TestSetPasswordRejects(t *testing.T) {
	tests := []struct {
		name string
		// prepare changes the state and the command before the command is applied.
		prepare func(fx *fixture, alice *fsm.User, c *fsm.SetPassword)
		want    error
	}{
		{
			name: "unknown user",
			prepare: func(fx *fixture, _ *fsm.User, c *fsm.SetPassword) {
				c.UserID = fx.id()
			},
			want: fsm.ErrUserNotFound,
		},
		{
			name: "stale version",
			prepare: func(fx *fixture, alice *fsm.User, _ *fsm.SetPassword) {
				fx.mustApply(&fsm.SetPassword{At: t0, UserID: alice.ID, PasswordHash: "other", FromVersion: alice.CredentialVersion})
			},
			want: fsm.ErrStaleCredentials,
		},
		{
			name: "future version",
			prepare: func(_ *fixture, _ *fsm.User, c *fsm.SetPassword) {
				c.FromVersion = 3
			},
			want: fsm.ErrStaleCredentials,
		},
		{
			name: "disabled user",
			prepare: func(fx *fixture, alice *fsm.User, c *fsm.SetPassword) {
				u := fx.mustApply(&fsm.SetDisabled{At: t0, UserID: alice.ID, Disabled: true}).User
				c.FromVersion = u.CredentialVersion
			},
			want: fsm.ErrUserDisabled,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			alice := fx.createUser("alice")
			s := fx.createSession(alice, t0)
			c := &fsm.SetPassword{
				At: t0.Add(time.Hour), UserID: alice.ID, PasswordHash: "new", FromVersion: alice.CredentialVersion,
				RevokeOthers: true, DenyUntil: t0.Add(time.Hour + accessLifetime),
			}
			tc.prepare(fx, alice, c)
			before := fx.user(alice.ID)
			sessionBefore := fx.session(s.ID)

			res := fx.apply(c)

			wantErr(t, res, tc.want)
			if got := fx.user(alice.ID); got != before {
				t.Errorf("User: got %+v, want unchanged %+v", got, before)
			}
			if got := fx.session(s.ID); got != sessionBefore {
				t.Errorf("Session: got %+v, want unchanged %+v", got, sessionBefore)
			}
		})
	}
}

func TestRotateSigningKeyFirst(t *testing.T) {
	fx := newFixture(t)

	fx.mustApply(&fsm.RotateSigningKey{At: t0, FromEpoch: 0})

	if got := fx.f.CurrentEpoch(); got != 1 {
		t.Errorf("CurrentEpoch: got %d, want 1", got)
	}
	want := []fsm.Epoch{{Number: 1, Activated: t0}}
	if got := fx.f.Epochs(); !slices.Equal(got, want) {
		t.Errorf("Epochs: got %v, want %v", got, want)
	}
}

func TestRotateSigningKeyRetiresPrevious(t *testing.T) {
	fx := newFixture(t)
	fx.mustApply(&fsm.RotateSigningKey{At: t0, FromEpoch: 0})
	at := t0.Add(24 * time.Hour)

	fx.mustApply(&fsm.RotateSigningKey{At: at, FromEpoch: 1})

	if got := fx.f.CurrentEpoch(); got != 2 {
		t.Errorf("CurrentEpoch: got %d, want 2", got)
	}
	want := []fsm.Epoch{{Number: 1, Activated: t0, Retired: at}, {Number: 2, Activated: at}}
	if got := fx.f.Epochs(); !slices.Equal(got, want) {
		t.Errorf("Epochs: got %v, want %v", got, want)
	}
}

func TestRotateSigningKeyRejects(t *testing.T) {
	tests := []struct {
		name      string
		rotations int
		fromEpoch uint64
	}{
		{name: "first from one", rotations: 0, fromEpoch: 1},
		{name: "replayed first", rotations: 1, fromEpoch: 0},
		{name: "stale", rotations: 3, fromEpoch: 2},
		{name: "future", rotations: 1, fromEpoch: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			for i := range tc.rotations {
				fx.mustApply(&fsm.RotateSigningKey{At: t0.Add(time.Duration(i) * time.Hour), FromEpoch: uint64(i)})
			}
			before := fx.f.Epochs()

			res := fx.apply(&fsm.RotateSigningKey{At: t0.Add(24 * time.Hour), FromEpoch: tc.fromEpoch})

			wantErr(t, res, fsm.ErrEpochMismatch)
			if got := fx.f.CurrentEpoch(); got != uint64(tc.rotations) {
				t.Errorf("CurrentEpoch: got %d, want %d", got, tc.rotations)
			}
			if got := fx.f.Epochs(); !slices.Equal(got, before) {
				t.Errorf("Epochs: got %v, want %v", got, before)
			}
		})
	}
}

func TestEpochsReturnsCopy(t *testing.T) {
	fx := newFixture(t)
	fx.mustApply(&fsm.RotateSigningKey{At: t0, FromEpoch: 0})

	epochs := fx.f.Epochs()
	epochs[0].Number = 99

	if got := fx.f.Epochs()[0].Number; got != 1 {
		t.Errorf("Epochs()[0].Number: got %d, want 1", got)
	}
}

func TestCleanupSessions(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	bob := fx.createUser("bob")

	// idle expires at t0+24h, before the cleanup.
	idle := fx.createSession(alice, t0)
	// atDeadline has its idle deadline exactly at the cleanup time.
	atDeadline := fx.createSession(alice, t0.Add(time.Hour))
	// live was rotated, which moved its idle deadline past the cleanup.
	live := fx.createSession(alice, t0.Add(2*time.Hour))
	live = fx.mustApply(rotateCommand(live, t0.Add(20*time.Hour))).Session
	// absolute has an absolute deadline of 12 hours, which also caps its idle one.
	absoluteCmd := fx.sessionCommand(bob, t0)
	absoluteCmd.Expires = t0.Add(12 * time.Hour)
	absolute := fx.mustApply(absoluteCmd).Session
	// revoked is past its deadline, but its access tokens are denied until after the cleanup.
	revoked := fx.createSession(bob, t0)
	revokeLong := revokeCommand(revoked, t0.Add(time.Hour))
	revokeLong.DenyUntil = t0.Add(48 * time.Hour)
	fx.mustApply(revokeLong)
	// denyOver is revoked and its deny entry ends before the cleanup.
	denyOver := fx.createSession(bob, t0.Add(3*time.Hour))
	fx.mustApply(revokeCommand(denyOver, t0.Add(4*time.Hour)))

	cleanupAt := t0.Add(25 * time.Hour)
	fx.mustApply(&fsm.Cleanup{At: cleanupAt, RetiredBefore: cleanupAt})

	tests := []struct {
		name    string
		session *fsm.Session
		kept    bool
		denied  bool
	}{
		{name: "past idle deadline", session: idle, kept: false},
		{name: "at idle deadline", session: atDeadline, kept: false},
		{name: "live", session: live, kept: true},
		{name: "past absolute deadline", session: absolute, kept: false},
		{name: "revoked before deny end", session: revoked, kept: true, denied: true},
		{name: "revoked after deny end", session: denyOver, kept: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := fx.f.Session(tc.session.ID); ok != tc.kept {
				t.Errorf("Session found: got %v, want %v", ok, tc.kept)
			}
			if got := fx.f.Revocations().Denied(tc.session.ID); got != tc.denied {
				t.Errorf("Denied: got %v, want %v", got, tc.denied)
			}
		})
	}

	if got, want := sessionIDs(fx.f.UserSessions(alice.ID)), []fsm.ID{live.ID}; !slices.Equal(got, want) {
		t.Errorf("UserSessions(alice): got %v, want %v", got, want)
	}
	if got, want := sessionIDs(fx.f.UserSessions(bob.ID)), []fsm.ID{revoked.ID}; !slices.Equal(got, want) {
		t.Errorf("UserSessions(bob): got %v, want %v", got, want)
	}
	if users, sessions := fx.f.Counts(); users != 2 || sessions != 2 {
		t.Errorf("Counts: got %d users, %d sessions, want 2, 2", users, sessions)
	}
	wantErr(t, fx.apply(rotateCommand(idle, cleanupAt)), fsm.ErrSessionNotFound)
}

func TestCleanupDropsRevokedAtDenyUntil(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	s := fx.createSession(alice, t0)
	c := revokeCommand(s, t0.Add(time.Hour))
	fx.mustApply(c)

	fx.mustApply(&fsm.Cleanup{At: c.DenyUntil.Add(-time.Nanosecond)})
	if _, ok := fx.f.Session(s.ID); !ok {
		t.Errorf("Session before DenyUntil: got dropped, want kept")
	}
	if !fx.f.Revocations().Denied(s.ID) {
		t.Errorf("Denied before DenyUntil: got false, want true")
	}

	fx.mustApply(&fsm.Cleanup{At: c.DenyUntil})
	if _, ok := fx.f.Session(s.ID); ok {
		t.Errorf("Session at DenyUntil: got kept, want dropped")
	}
	if fx.f.Revocations().Denied(s.ID) {
		t.Errorf("Denied at DenyUntil: got true, want false")
	}
	if got := fx.f.UserSessions(alice.ID); len(got) != 0 {
		t.Errorf("UserSessions: got %v, want empty", sessionIDs(got))
	}
}

func TestCleanupEpochs(t *testing.T) {
	fx := newFixture(t)
	for i := range 4 {
		fx.mustApply(&fsm.RotateSigningKey{At: t0.Add(time.Duration(i) * 24 * time.Hour), FromEpoch: uint64(i)})
	}
	// Epoch 1 retired at t0+24h, epoch 2 at t0+48h, epoch 3 at t0+72h; epoch 4 is current.

	fx.mustApply(&fsm.Cleanup{At: t0.Add(100 * 24 * time.Hour), RetiredBefore: t0.Add(48 * time.Hour)})

	var got []uint64
	for _, e := range fx.f.Epochs() {
		got = append(got, e.Number)
	}
	if want := []uint64{2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("epoch numbers: got %v, want %v", got, want)
	}
	if n := fx.f.CurrentEpoch(); n != 4 {
		t.Errorf("CurrentEpoch: got %d, want 4", n)
	}
	fx.mustApply(&fsm.RotateSigningKey{At: t0.Add(101 * 24 * time.Hour), FromEpoch: 4})
}

func TestCleanupKeepsCurrentEpoch(t *testing.T) {
	fx := newFixture(t)
	fx.mustApply(&fsm.RotateSigningKey{At: t0, FromEpoch: 0})

	fx.mustApply(&fsm.Cleanup{At: t0.Add(1000 * time.Hour), RetiredBefore: t0.Add(1000 * time.Hour)})

	if n := fx.f.CurrentEpoch(); n != 1 {
		t.Errorf("CurrentEpoch: got %d, want 1", n)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cmd  fsm.Command
	}{
		{name: "create user", cmd: &fsm.CreateUser{At: t0, UserID: fsm.ID{1}, Username: "alice", PasswordHash: "h", Roles: []string{"a"}}},
		{name: "create session", cmd: &fsm.CreateSession{At: t0, SessionID: fsm.ID{2}, UserID: fsm.ID{1}, Nonce: fsm.ID{3}, IdleExpires: t0.Add(time.Hour), Expires: t0.Add(2 * time.Hour), CredentialVersion: 4, AnyCredential: true, DeviceID: "d", DeviceName: "n", UserAgent: "ua", IP: "192.0.2.1"}},
		{name: "rotate session", cmd: &fsm.RotateSession{At: t0, SessionID: fsm.ID{2}, FromGeneration: 9, IdleExpires: t0.Add(time.Hour), UserAgent: "ua", IP: "192.0.2.1"}},
		{name: "revoke session", cmd: &fsm.RevokeSession{At: t0, SessionID: fsm.ID{2}, Reason: fsm.ReasonReuse, DenyUntil: t0.Add(time.Minute)}},
		{name: "revoke user sessions", cmd: &fsm.RevokeUserSessions{At: t0, UserID: fsm.ID{1}, Keep: fsm.ID{2}, Reason: fsm.ReasonUserWide, DenyUntil: t0.Add(time.Minute)}},
		{name: "set roles", cmd: &fsm.SetRoles{At: t0, UserID: fsm.ID{1}, Roles: []string{"a", "b"}}},
		{name: "set disabled", cmd: &fsm.SetDisabled{At: t0, UserID: fsm.ID{1}, Disabled: true, DenyUntil: t0.Add(time.Minute)}},
		{name: "set password", cmd: &fsm.SetPassword{At: t0, UserID: fsm.ID{1}, PasswordHash: "h", FromVersion: 2, RevokeOthers: true, Keep: fsm.ID{2}, DenyUntil: t0.Add(time.Minute)}},
		{name: "rotate signing key", cmd: &fsm.RotateSigningKey{At: t0, FromEpoch: 3}},
		{name: "cleanup", cmd: &fsm.Cleanup{At: t0, RetiredBefore: t0.Add(-time.Hour)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := fsm.Encode(tc.cmd)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got := fsm.CommandType(data[0]); got != tc.cmd.Type() {
				t.Errorf("type byte: got %d, want %d", got, tc.cmd.Type())
			}

			got, err := fsm.Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.cmd) {
				t.Errorf("Decode: got %#v, want %#v", got, tc.cmd)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		unknown bool
	}{
		{name: "nil", data: nil, unknown: true},
		{name: "empty", data: []byte{}, unknown: true},
		{name: "type zero", data: []byte("\x00{}"), unknown: true},
		{name: "type after last", data: []byte{byte(fsm.TypeSetRolePermissions) + 1, '{', '}'}, unknown: true},
		{name: "type 255", data: []byte("\xff{}"), unknown: true},
		{name: "type only", data: []byte{byte(fsm.TypeRotateSession)}},
		{name: "truncated json", data: []byte("\x03{\"at\":")},
		{name: "not json", data: []byte("\x03garbage")},
		{name: "wrong field type", data: []byte("\x03{\"from_generation\":\"two\"}")},
		{name: "bad id", data: []byte("\x03{\"session_id\":\"!!\"}")},
		{name: "bad time", data: []byte("\x03{\"at\":\"yesterday\"}")},
		{name: "array", data: []byte("\x01[1,2,3]")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := fsm.Decode(tc.data)

			if err == nil {
				t.Fatalf("Decode: got %#v, nil error, want an error", c)
			}
			if got := errors.Is(err, fsm.ErrUnknownCommand); got != tc.unknown {
				t.Errorf("errors.Is(%v, ErrUnknownCommand): got %v, want %v", err, got, tc.unknown)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range []fsm.Command{
		&fsm.CreateUser{At: t0, UserID: fsm.ID{1}, Username: "alice"},
		&fsm.RotateSession{At: t0, SessionID: fsm.ID{2}, FromGeneration: 1},
		&fsm.Cleanup{At: t0},
	} {
		data, err := fsm.Encode(c)
		if err != nil {
			f.Fatalf("Encode: %v", err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte("\x07{\"disabled\":true}"))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := fsm.Decode(data)
		if err != nil {
			return
		}
		if c == nil {
			t.Fatalf("Decode(%q): got nil command and nil error", data)
		}
		res := fsm.New(nil).Apply(&raft.Log{Type: raft.LogCommand, Data: data})
		if _, ok := res.(*fsm.Result); !ok {
			t.Fatalf("Apply(%q): got %T, want *Result", data, res)
		}
	})
}

func TestApplyUndecodable(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{name: "empty", data: nil},
		{name: "unknown type", data: []byte("\x63{}")},
		{name: "garbage json", data: []byte("\x02{{{")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fsm.New(nil)

			out := f.Apply(&raft.Log{Type: raft.LogCommand, Data: tc.data})

			res, ok := out.(*fsm.Result)
			if !ok {
				t.Fatalf("Apply: got %T, want *Result", out)
			}
			if res.Err == nil {
				t.Errorf("Result.Err: got nil, want an error")
			}
			if users, sessions := f.Counts(); users != 0 || sessions != 0 {
				t.Errorf("Counts: got %d, %d, want 0, 0", users, sessions)
			}
		})
	}
}

func TestApplyNonCommandLog(t *testing.T) {
	tests := []struct {
		name    string
		logType raft.LogType
	}{
		{name: "noop", logType: raft.LogNoop},
		{name: "barrier", logType: raft.LogBarrier},
		{name: "configuration", logType: raft.LogConfiguration},
	}
	valid, err := fsm.Encode(&fsm.CreateUser{At: t0, UserID: fsm.ID{1}, Username: "alice"})
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fsm.New(nil)

			out := f.Apply(&raft.Log{Type: tc.logType, Data: valid})

			if out != nil {
				t.Errorf("Apply: got %#v, want nil", out)
			}
			if users, _ := f.Counts(); users != 0 {
				t.Errorf("user count: got %d, want 0", users)
			}
		})
	}
}

func TestApplyBatchResults(t *testing.T) {
	f := fsm.New(nil)
	encode := func(c fsm.Command) []byte {
		t.Helper()
		data, err := fsm.Encode(c)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		return data
	}
	user := fsm.ID{1}
	session := fsm.ID{2}
	logs := []*raft.Log{
		{Type: raft.LogCommand, Data: encode(&fsm.CreateUser{At: t0, UserID: user, Username: "alice"})},
		{Type: raft.LogNoop},
		{Type: raft.LogCommand, Data: encode(&fsm.CreateSession{At: t0, SessionID: session, UserID: user, IdleExpires: t0.Add(idleLifetime), Expires: t0.Add(absoluteLifetime)})},
		{Type: raft.LogCommand, Data: []byte("\xee")},
		{Type: raft.LogCommand, Data: encode(&fsm.RotateSession{At: t0.Add(time.Minute), SessionID: session, FromGeneration: 1, IdleExpires: t0.Add(idleLifetime)})},
		{Type: raft.LogCommand, Data: encode(&fsm.RotateSession{At: t0.Add(time.Minute), SessionID: session, FromGeneration: 1, IdleExpires: t0.Add(idleLifetime)})},
	}

	out := f.ApplyBatch(logs)

	if len(out) != len(logs) {
		t.Fatalf("ApplyBatch: got %d results, want %d", len(out), len(logs))
	}
	if out[1] != nil {
		t.Errorf("result 1 (noop): got %#v, want nil", out[1])
	}
	wantErrs := map[int]error{0: nil, 2: nil, 4: nil, 5: fsm.ErrGenerationMismatch}
	for i, want := range wantErrs {
		res, ok := out[i].(*fsm.Result)
		if !ok {
			t.Errorf("result %d: got %T, want *Result", i, out[i])
			continue
		}
		if !errors.Is(res.Err, want) {
			t.Errorf("result %d error: got %v, want %v", i, res.Err, want)
		}
	}
	if res, ok := out[3].(*fsm.Result); !ok || !errors.Is(res.Err, fsm.ErrUnknownCommand) {
		t.Errorf("result 3: got %#v, want *Result with ErrUnknownCommand", out[3])
	}
	if s, _ := f.Session(session); s == nil || s.Generation != 2 {
		t.Errorf("Session after batch: got %+v, want generation 2", s)
	}
}

func TestOnRevokeReceivesEntries(t *testing.T) {
	f := fsm.New(nil)
	var got []fsm.Revocation
	f.OnRevoke(func(batch []fsm.Revocation) { got = append(got, batch...) })

	now := time.Unix(1_800_000_000, 0).UTC()
	user := fsm.ID{1}
	f.ApplyCommand(&fsm.CreateUser{At: now, UserID: user, Username: "hook"})
	for i := byte(1); i <= 3; i++ {
		f.ApplyCommand(&fsm.CreateSession{At: now, SessionID: fsm.ID{i}, UserID: user, Nonce: fsm.ID{i}, IdleExpires: now.Add(time.Hour), Expires: now.Add(time.Hour)})
	}
	f.ApplyCommand(&fsm.RevokeSession{At: now, SessionID: fsm.ID{1}, Reason: fsm.ReasonLogout, DenyUntil: now.Add(time.Minute)})
	f.ApplyCommand(&fsm.RevokeUserSessions{At: now, UserID: user, Reason: fsm.ReasonUserWide, DenyUntil: now.Add(2 * time.Minute)})

	want := []fsm.Revocation{
		{Session: fsm.ID{1}, Until: now.Add(time.Minute)},
		{Session: fsm.ID{2}, Until: now.Add(2 * time.Minute)},
		{Session: fsm.ID{3}, Until: now.Add(2 * time.Minute)},
	}
	if len(got) != len(want) {
		t.Fatalf("entries: got %d, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Session != want[i].Session || !got[i].Until.Equal(want[i].Until) {
			t.Errorf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestSetRolePermissions(t *testing.T) {
	fx := newFixture(t)
	now := time.Unix(1_700_000_000, 0)
	fx.mustApply(&fsm.SetRolePermissions{At: now, Role: "editor", Permissions: []string{"posts:write", "posts:read", "posts:write"}})
	fx.mustApply(&fsm.SetRolePermissions{At: now, Role: "viewer", Permissions: []string{"posts:read"}})

	if got, want := fx.f.RolePermissions()["editor"], []string{"posts:read", "posts:write"}; !slices.Equal(got, want) {
		t.Errorf("editor: got %v, want %v (sorted, without duplicates)", got, want)
	}
	if got, want := fx.f.PermissionsOf([]string{"viewer", "editor", "unknown"}), []string{"posts:read", "posts:write"}; !slices.Equal(got, want) {
		t.Errorf("PermissionsOf: got %v, want %v", got, want)
	}

	fx.mustApply(&fsm.SetRolePermissions{At: now, Role: "editor"})
	if _, ok := fx.f.RolePermissions()["editor"]; ok {
		t.Error("editor is still in the map after setting no permissions")
	}
	if got := fx.f.PermissionsOf([]string{"editor"}); len(got) != 0 {
		t.Errorf("PermissionsOf(editor) after removal: got %v, want none", got)
	}
}
