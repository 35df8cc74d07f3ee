package fsm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rotorhq/rotor/fsm"
)

// memorySink is a raft.SnapshotSink that keeps the snapshot in memory.
type memorySink struct {
	bytes.Buffer
	closed    bool
	cancelled bool
}

var _ raft.SnapshotSink = (*memorySink)(nil)

func (s *memorySink) ID() string { return "memory" }

func (s *memorySink) Cancel() error {
	s.cancelled = true
	return nil
}

func (s *memorySink) Close() error {
	s.closed = true
	return nil
}

// trackingReader records whether Restore closed it.
type trackingReader struct {
	io.Reader
	closed bool
}

func (r *trackingReader) Close() error {
	r.closed = true
	return nil
}

// persist takes a snapshot of f and returns its bytes.
func persist(tb testing.TB, f *fsm.FSM) []byte {
	tb.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		tb.Fatalf("Snapshot: %v", err)
	}
	return persistSnapshot(tb, snap)
}

func persistSnapshot(tb testing.TB, snap raft.FSMSnapshot) []byte {
	tb.Helper()
	defer snap.Release()
	sink := &memorySink{}
	if err := snap.Persist(sink); err != nil {
		tb.Fatalf("Persist: %v", err)
	}
	if !sink.closed {
		tb.Fatalf("sink closed: got false, want true")
	}
	if sink.cancelled {
		tb.Fatalf("sink cancelled: got true, want false")
	}
	return sink.Bytes()
}

func restore(tb testing.TB, f *fsm.FSM, data []byte) {
	tb.Helper()
	r := &trackingReader{Reader: bytes.NewReader(data)}
	if err := f.Restore(r); err != nil {
		tb.Fatalf("Restore: %v", err)
	}
	if !r.closed {
		tb.Fatalf("reader closed after Restore: got false, want true")
	}
}

// snapshotOf returns a snapshot stream in the layout Persist writes: a header
// line, then one line per user and per session. It lets tests restore states
// that Apply cannot build.
func snapshotOf(tb testing.TB, version int, users []*fsm.User, sessions []*fsm.Session) io.ReadCloser {
	tb.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	header := map[string]any{"version": version, "users": len(users), "sessions": len(sessions), "epochs": nil}
	if err := enc.Encode(header); err != nil {
		tb.Fatalf("encode header: %v", err)
	}
	for _, u := range users {
		if err := enc.Encode(u); err != nil {
			tb.Fatalf("encode user: %v", err)
		}
	}
	for _, s := range sessions {
		if err := enc.Encode(s); err != nil {
			tb.Fatalf("encode session: %v", err)
		}
	}
	return io.NopCloser(&buf)
}

// sampleLog is a command log with the ids of the users and sessions it
// creates.
type sampleLog struct {
	commands []fsm.Command
	users    []fsm.ID
	sessions []fsm.ID
}

// newSampleLog returns a deterministic log that creates the given number of
// users. It covers every command type, includes commands that Apply rejects,
// and leaves live, rotated, revoked and cleaned-up sessions and several
// epochs behind. Every command has a later At than the one before.
func newSampleLog(seed uint64, users int) *sampleLog {
	rng := rand.New(rand.NewPCG(seed, 1))
	l := &sampleLog{}
	at := t0
	tick := func() time.Time {
		at = at.Add(time.Duration(1+rng.IntN(10)) * time.Second)
		return at
	}
	id := func(kind byte, n int) fsm.ID {
		var out fsm.ID
		out[0] = kind
		out[1] = byte(n >> 16)
		out[2] = byte(n >> 8)
		out[3] = byte(n)
		// Mix the low bytes so that id order differs from creation order.
		out[4] = byte(rng.Uint32())
		return out
	}

	l.commands = append(l.commands, &fsm.RotateSigningKey{At: tick(), FromEpoch: 0})
	l.commands = append(l.commands,
		&fsm.SetRolePermissions{At: tick(), Role: "member", Permissions: []string{"posts:read"}},
		&fsm.SetRolePermissions{At: tick(), Role: "editor", Permissions: []string{"posts:write", "posts:read"}})
	versions := make(map[fsm.ID]uint64)
	for i := range users {
		u := id('u', i)
		l.users = append(l.users, u)
		l.commands = append(l.commands, &fsm.CreateUser{
			At: tick(), UserID: u, Username: fmt.Sprintf("user-%04d", i),
			PasswordHash: fmt.Sprintf("hash-%d", i), Roles: []string{"member"},
		})
	}
	// A duplicate username, rejected.
	l.commands = append(l.commands, &fsm.CreateUser{At: tick(), UserID: id('u', users), Username: "user-0000"})

	generations := make(map[fsm.ID]uint64)
	for i, u := range l.users {
		for j := range 1 + rng.IntN(4) {
			s := id('s', i*8+j)
			now := tick()
			l.sessions = append(l.sessions, s)
			generations[s] = 1
			l.commands = append(l.commands, &fsm.CreateSession{
				At: now, SessionID: s, UserID: u, Nonce: id('n', i*8+j),
				IdleExpires: now.Add(time.Duration(1+rng.IntN(48)) * time.Hour), Expires: now.Add(absoluteLifetime),
				CredentialVersion: versions[u], DeviceID: fmt.Sprintf("device-%d-%d", i, j),
				DeviceName: "Phone", UserAgent: "rotor-test/1.0", IP: fmt.Sprintf("192.0.2.%d", j),
			})
		}
	}

	l.commands = append(l.commands, &fsm.RotateSigningKey{At: tick(), FromEpoch: 1})
	l.commands = append(l.commands, &fsm.RotateSigningKey{At: tick(), FromEpoch: 1}) // rejected
	for range 4 * len(l.sessions) {
		s := l.sessions[rng.IntN(len(l.sessions))]
		now := tick()
		switch rng.IntN(10) {
		case 0:
			l.commands = append(l.commands, &fsm.RevokeSession{At: now, SessionID: s, Reason: fsm.ReasonLogout, DenyUntil: now.Add(time.Duration(1+rng.IntN(24)) * time.Hour)})
		case 1:
			// A stale generation, rejected.
			l.commands = append(l.commands, &fsm.RotateSession{At: now, SessionID: s, FromGeneration: generations[s] + 5, IdleExpires: now.Add(idleLifetime)})
		default:
			l.commands = append(l.commands, &fsm.RotateSession{At: now, SessionID: s, FromGeneration: generations[s], IdleExpires: now.Add(idleLifetime), IP: "198.51.100.1"})
			generations[s]++
		}
	}

	epoch2Retired := tick()
	l.commands = append(l.commands, &fsm.RotateSigningKey{At: epoch2Retired, FromEpoch: 2})
	now := tick()
	l.commands = append(l.commands, &fsm.RevokeUserSessions{At: now, UserID: l.users[0], Reason: fsm.ReasonUserWide, DenyUntil: now.Add(24 * time.Hour)})
	now = tick()
	l.commands = append(l.commands, &fsm.SetDisabled{At: now, UserID: l.users[1], Disabled: true, DenyUntil: now.Add(24 * time.Hour)})
	now = tick()
	l.commands = append(l.commands, &fsm.SetPassword{At: now, UserID: l.users[2], PasswordHash: "changed", FromVersion: 0, RevokeOthers: true, DenyUntil: now.Add(24 * time.Hour)})
	l.commands = append(l.commands, &fsm.SetPassword{At: tick(), UserID: l.users[2], PasswordHash: "again", FromVersion: 0}) // rejected
	l.commands = append(l.commands, &fsm.SetRoles{At: tick(), UserID: l.users[3], Roles: []string{"admin", "member"}})
	l.commands = append(l.commands, &fsm.RotateSigningKey{At: tick(), FromEpoch: 3})
	// Drop the sessions whose idle deadline passed, and epoch 1, which was
	// retired before epoch 2.
	l.commands = append(l.commands, &fsm.Cleanup{At: tick().Add(6 * time.Hour), RetiredBefore: epoch2Retired})
	return l
}

// applySampleLog applies the log with ApplyCommand and returns how many
// commands were rejected.
func applySampleLog(tb testing.TB, f *fsm.FSM, l *sampleLog) int {
	tb.Helper()
	rejected := 0
	for _, c := range l.commands {
		if res := f.ApplyCommand(c); res.Err != nil {
			rejected++
		}
	}
	return rejected
}

func TestSnapshotRoundTrip(t *testing.T) {
	log := newSampleLog(7, 300)
	original := fsm.New(nil)
	applySampleLog(t, original, log)
	data := persist(t, original)
	users, sessions := original.Counts()
	if users < 300 || sessions < 300 {
		t.Fatalf("Counts: got %d users, %d sessions, want at least 300 of each", users, sessions)
	}
	if n := original.Revocations().Len(); n < 10 {
		t.Fatalf("Revocations().Len: got %d, want at least 10", n)
	}
	if n := len(original.Epochs()); n < 3 {
		t.Fatalf("len(Epochs()): got %d, want at least 3", n)
	}

	restored := fsm.New(nil)
	restore(t, restored, data)

	if again := persist(t, restored); !bytes.Equal(again, data) {
		t.Errorf("snapshot after restore: got %d bytes differing from the original %d bytes", len(again), len(data))
	}
	if gotUsers, gotSessions := restored.Counts(); gotUsers != users || gotSessions != sessions {
		t.Errorf("Counts: got %d, %d, want %d, %d", gotUsers, gotSessions, users, sessions)
	}
	if got, want := restored.Revocations().List(), original.Revocations().List(); !slices.Equal(got, want) {
		t.Errorf("Revocations: got %d entries, want %d equal entries", len(got), len(want))
	}
	if got, want := restored.Epochs(), original.Epochs(); !slices.Equal(got, want) {
		t.Errorf("Epochs: got %v, want %v", got, want)
	}
	if got, want := restored.CurrentEpoch(), original.CurrentEpoch(); got != want {
		t.Errorf("CurrentEpoch: got %d, want %d", got, want)
	}
	if got, want := restored.RolePermissions(), original.RolePermissions(); !reflect.DeepEqual(got, want) || len(want) == 0 {
		t.Errorf("RolePermissions: got %v, want %v (not empty)", got, want)
	}
	for _, id := range log.users {
		want, _ := original.User(id)
		got, _ := restored.User(id)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("User(%v): got %+v, want %+v", id, got, want)
			continue
		}
		if byName, _ := restored.UserByName(want.Username); !reflect.DeepEqual(byName, want) {
			t.Errorf("UserByName(%q): got %+v, want %+v", want.Username, byName, want)
		}
		if got, want := sessionIDs(restored.UserSessions(id)), sessionIDs(original.UserSessions(id)); !slices.Equal(got, want) {
			t.Errorf("UserSessions(%v): got %v, want %v", id, got, want)
		}
	}
	for _, id := range log.sessions {
		want, wantOK := original.Session(id)
		got, gotOK := restored.Session(id)
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Errorf("Session(%v): got %+v, %v, want %+v, %v", id, got, gotOK, want, wantOK)
		}
		if got, want := restored.Revocations().Denied(id), original.Revocations().Denied(id); got != want {
			t.Errorf("Denied(%v): got %v, want %v", id, got, want)
		}
	}
}

func TestSnapshotEmpty(t *testing.T) {
	data := persist(t, fsm.New(nil))
	restored := fsm.New(nil)

	restore(t, restored, data)

	if again := persist(t, restored); !bytes.Equal(again, data) {
		t.Errorf("snapshot after restore: got %q, want %q", again, data)
	}
	if users, sessions := restored.Counts(); users != 0 || sessions != 0 {
		t.Errorf("Counts: got %d, %d, want 0, 0", users, sessions)
	}
}

// TestSnapshotDeterministic applies one log to two fresh FSMs, one entry at a
// time and in raft batches, and compares their snapshots byte for byte.
func TestSnapshotDeterministic(t *testing.T) {
	log := newSampleLog(11, 200)
	single := fsm.New(nil)
	rejected := applySampleLog(t, single, log)
	if rejected < 10 {
		t.Fatalf("rejected commands: got %d, want at least 10", rejected)
	}

	batched := fsm.New(nil)
	entries := make([]*raft.Log, 0, len(log.commands))
	for i, c := range log.commands {
		data, err := fsm.Encode(c)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		entries = append(entries, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
	}
	rng := rand.New(rand.NewPCG(3, 3))
	batchRejected := 0
	for len(entries) > 0 {
		n := min(len(entries), 1+rng.IntN(64))
		for _, out := range batched.ApplyBatch(entries[:n]) {
			if out.(*fsm.Result).Err != nil {
				batchRejected++
			}
		}
		entries = entries[n:]
	}

	if batchRejected != rejected {
		t.Errorf("rejected commands in batches: got %d, want %d", batchRejected, rejected)
	}
	if a, b := persist(t, single), persist(t, batched); !bytes.Equal(a, b) {
		t.Errorf("snapshots: got %d and %d bytes that differ, want equal bytes", len(a), len(b))
	}
	if a, b := single.Revocations().List(), batched.Revocations().List(); !slices.Equal(a, b) {
		t.Errorf("Revocations: got %d and %d entries that differ, want equal lists", len(a), len(b))
	}
}

// TestSnapshotIsolation checks that a snapshot persists the state at the time
// Snapshot was called, whatever Apply does before Persist.
func TestSnapshotIsolation(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	s := fx.createSession(alice, t0)
	other := fx.createSession(alice, t0)
	want := persist(t, fx.f)
	snap, err := fx.f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}

	fx.mustApply(rotateCommand(s, t0.Add(time.Hour)))
	fx.mustApply(revokeCommand(other, t0.Add(time.Hour)))
	fx.mustApply(&fsm.SetRoles{At: t0.Add(time.Hour), UserID: alice.ID, Roles: []string{"admin"}})
	fx.createUser("bob")
	fx.mustApply(&fsm.RotateSigningKey{At: t0.Add(time.Hour), FromEpoch: 0})

	if got := persistSnapshot(t, snap); !bytes.Equal(got, want) {
		t.Errorf("snapshot taken before the changes: got\n%s\nwant\n%s", got, want)
	}
	if now := persist(t, fx.f); bytes.Equal(now, want) {
		t.Errorf("snapshot taken after the changes: got the old state, want the new one")
	}
}

func TestRestoreReplacesState(t *testing.T) {
	source := newFixture(t)
	source.idPrefix = 0xB0
	bob := source.createUser("bob")
	bobSession := source.createSession(bob, t0)
	data := persist(t, source.f)

	fx := newFixture(t)
	alice := fx.createUser("alice")
	aliceSession := fx.createSession(alice, t0)
	fx.mustApply(revokeCommand(aliceSession, t0.Add(time.Minute)))
	fx.mustApply(&fsm.RotateSigningKey{At: t0, FromEpoch: 0})

	restore(t, fx.f, data)

	if _, ok := fx.f.User(alice.ID); ok {
		t.Errorf("User(alice) after restore: got found, want not found")
	}
	if _, ok := fx.f.UserByName("alice"); ok {
		t.Errorf("UserByName(alice) after restore: got found, want not found")
	}
	if _, ok := fx.f.Session(aliceSession.ID); ok {
		t.Errorf("Session(alice's) after restore: got found, want not found")
	}
	if fx.f.Revocations().Denied(aliceSession.ID) {
		t.Errorf("Denied(alice's session) after restore: got true, want false")
	}
	if got := fx.f.UserSessions(alice.ID); len(got) != 0 {
		t.Errorf("UserSessions(alice) after restore: got %v, want empty", sessionIDs(got))
	}
	if n := fx.f.CurrentEpoch(); n != 0 {
		t.Errorf("CurrentEpoch after restore: got %d, want 0", n)
	}
	if got := fx.session(bobSession.ID); !reflect.DeepEqual(got, bobSession) {
		t.Errorf("Session(bob's) after restore: got %+v, want %+v", got, bobSession)
	}
	if got := sessionIDs(fx.f.UserSessions(bob.ID)); !slices.Equal(got, []fsm.ID{bobSession.ID}) {
		t.Errorf("UserSessions(bob) after restore: got %v, want [%v]", got, bobSession.ID)
	}
}

// TestRestoreRebuildsDenySet restores into an FSM whose deny set is shared
// with a validator, as a node wires it, and checks the validator's view.
func TestRestoreRebuildsDenySet(t *testing.T) {
	source := newFixture(t)
	alice := source.createUser("alice")
	revoked := source.createSession(alice, t0)
	live := source.createSession(alice, t0)
	c := revokeCommand(revoked, t0.Add(time.Minute))
	source.mustApply(c)
	data := persist(t, source.f)

	denySet := fsm.NewRevocations()
	f := fsm.New(denySet)
	restore(t, f, data)

	if f.Revocations() != denySet {
		t.Fatalf("Revocations(): got a different set, want the one passed to New")
	}
	want := []fsm.Revocation{{Session: revoked.ID, Until: c.DenyUntil}}
	if got := denySet.List(); !slices.Equal(got, want) {
		t.Errorf("deny set: got %v, want %v", got, want)
	}
	if denySet.Denied(live.ID) {
		t.Errorf("Denied(live): got true, want false")
	}
}

func TestRestoreRejects(t *testing.T) {
	user := &fsm.User{ID: fsm.ID{1}, Username: "carol", Created: t0}
	valid, err := io.ReadAll(snapshotOf(t, 1, []*fsm.User{user}, nil))
	if err != nil {
		t.Fatalf("read snapshot: %v", err)
	}
	header := func(version, users, sessions int) string {
		return fmt.Sprintf(`{"version":%d,"users":%d,"sessions":%d,"epochs":null}`+"\n", version, users, sessions)
	}
	userLine := string(valid[strings.IndexByte(string(valid), '\n')+1:])

	tests := []struct {
		name string
		data string
	}{
		{name: "empty", data: ""},
		{name: "garbage", data: "not a snapshot"},
		{name: "binary", data: "\x00\x01\x02\xff\xfe"},
		{name: "header array", data: "[1,2,3]\n"},
		{name: "version zero", data: header(0, 1, 0) + userLine},
		{name: "version two", data: header(2, 1, 0) + userLine},
		{name: "missing header version", data: `{"users":1,"sessions":0}` + "\n" + userLine},
		{name: "missing users", data: header(1, 2, 0) + userLine},
		{name: "missing sessions", data: header(1, 1, 3) + userLine},
		{name: "truncated record", data: header(1, 1, 0) + userLine[:len(userLine)/2]},
		{name: "bad user record", data: header(1, 1, 0) + "[1]\n"},
		{name: "bad session id", data: header(1, 0, 1) + `{"id":"short"}` + "\n"},
		{name: "bad epochs", data: `{"version":1,"users":0,"sessions":0,"epochs":"x"}` + "\n"},
		{name: "negative users", data: header(1, -1, 0)},
		{name: "negative sessions", data: header(1, 0, -5)},
		{name: "huge user count", data: header(1, 1<<40, 0) + userLine},
		{name: "huge session count", data: header(1, 0, 1<<62)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			alice := fx.createUser("alice")
			s := fx.createSession(alice, t0)
			fx.mustApply(revokeCommand(s, t0.Add(time.Minute)))
			before := persist(t, fx.f)
			r := &trackingReader{Reader: strings.NewReader(tc.data)}

			err := fx.f.Restore(r)

			if err == nil {
				t.Fatalf("Restore: got nil error, want an error")
			}
			if !r.closed {
				t.Errorf("reader closed: got false, want true")
			}
			if after := persist(t, fx.f); !bytes.Equal(after, before) {
				t.Errorf("state after failed Restore: got\n%s\nwant unchanged\n%s", after, before)
			}
			if !fx.f.Revocations().Denied(s.ID) {
				t.Errorf("Denied after failed Restore: got false, want true")
			}
		})
	}
}

// TestRestoreValidSnapshotOf checks that a stream written by snapshotOf
// restores, so that the cases of TestRestoreRejects fail for the reason they
// name.
func TestRestoreValidSnapshotOf(t *testing.T) {
	user := &fsm.User{ID: fsm.ID{1}, Username: "carol", Created: t0}
	f := fsm.New(nil)

	err := f.Restore(snapshotOf(t, 1, []*fsm.User{user}, nil))

	if err != nil {
		t.Fatalf("Restore: got %v, want nil", err)
	}
	if got, ok := f.UserByName("carol"); !ok || !reflect.DeepEqual(got, user) {
		t.Errorf("UserByName(carol): got %+v, %v, want %+v, true", got, ok, user)
	}
}

func TestPersistCancelsOnWriteError(t *testing.T) {
	fx := newFixture(t)
	alice := fx.createUser("alice")
	fx.createSession(alice, t0)
	snap, err := fx.f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	sink := &failingSink{}

	err = snap.Persist(sink)

	if !errors.Is(err, errSinkFull) {
		t.Errorf("Persist error: got %v, want %v", err, errSinkFull)
	}
	if !sink.cancelled {
		t.Errorf("sink cancelled: got false, want true")
	}
	if sink.closed {
		t.Errorf("sink closed: got true, want false")
	}
}

var errSinkFull = errors.New("sink full")

// failingSink rejects every write.
type failingSink struct {
	memorySink
}

func (s *failingSink) Write([]byte) (int, error) { return 0, errSinkFull }
