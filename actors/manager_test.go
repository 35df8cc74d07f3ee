package actors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/cluster"
	"github.com/rotorhq/rotor/fsm"
	"github.com/rotorhq/rotor/token"
)

// fixture is a leader with real Raft and bbolt in a temp dir.
type fixture struct {
	state *fsm.FSM
	node  *cluster.Node
	keys  *token.Keyring
	m     *Manager
	user  fsm.ID
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	state := fsm.New(nil)
	rc := cluster.DefaultConfig()
	rc.NodeID = "actors-test"
	rc.RaftAddr = "127.0.0.1:0"
	rc.DataDir = t.TempDir()
	rc.Bootstrap = true
	rc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	node, err := cluster.Open(rc, state)
	if err != nil {
		t.Fatalf("open raft: %v", err)
	}
	t.Cleanup(func() { node.Close() })

	deadline := time.Now().Add(10 * time.Second)
	for !node.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	keys, err := token.NewKeyring([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = rc.Logger
	}
	f := &fixture{state: state, node: node, keys: keys, user: fsm.NewID()}
	f.m = NewManager(cfg, state, node, keys)
	f.m.SetLeading(true)
	f.apply(t, &fsm.CreateUser{At: time.Now(), UserID: f.user, Username: "u"})
	return f
}

func (f *fixture) apply(t *testing.T, c fsm.Command) *fsm.Result {
	t.Helper()
	res, err := f.node.Apply(context.Background(), c)
	if err != nil {
		t.Fatalf("apply %T: %v", c, err)
	}
	if res.Err != nil {
		t.Fatalf("apply %T: %v", c, res.Err)
	}
	return res
}

// newSession creates a session and returns its first refresh token.
func (f *fixture) newSession(t *testing.T) token.RefreshToken {
	t.Helper()
	now := time.Now()
	res := f.apply(t, &fsm.CreateSession{
		At: now, SessionID: fsm.NewID(), UserID: f.user, Nonce: fsm.NewID(),
		IdleExpires: now.Add(time.Hour), Expires: now.Add(2 * time.Hour),
	})
	s := res.Session
	tok, err := token.ParseRefresh(f.keys.MintRefresh(s.ID, s.Generation, s.Nonce))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func defaultConfig() Config {
	return Config{Grace: 10 * time.Second, IdleTTL: time.Hour, DenyFor: time.Minute}
}

func TestRefreshConcurrentSameSuccessor(t *testing.T) {
	f := newFixture(t, defaultConfig())
	tok := f.newSession(t)

	const n = 50
	results := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := f.m.Refresh(context.Background(), tok, "", "")
			results[i], errs[i] = res.RefreshToken, err
		}()
	}
	close(start)
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		if results[i] != results[0] {
			t.Fatalf("refresh %d: got successor %q, want %q", i, results[i], results[0])
		}
	}
	s, _ := f.state.Session(fsm.ID(tok.SessionID))
	if s.Generation != 2 {
		t.Fatalf("generation: got %d, want 2", s.Generation)
	}
}

func TestRefreshStrictGraceReuse(t *testing.T) {
	cfg := defaultConfig()
	cfg.Grace = 0
	f := newFixture(t, cfg)
	tok := f.newSession(t)

	if _, err := f.m.Refresh(context.Background(), tok, "", ""); err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	_, err := f.m.Refresh(context.Background(), tok, "", "")
	if !errors.Is(err, ErrReused) {
		t.Fatalf("second refresh: got %v, want ErrReused", err)
	}
	s, _ := f.state.Session(fsm.ID(tok.SessionID))
	if !s.Revoked {
		t.Fatal("session not revoked after reuse")
	}
}

func TestRefreshAfterRevokeFails(t *testing.T) {
	f := newFixture(t, defaultConfig())
	tok := f.newSession(t)
	if err := f.m.Revoke(context.Background(), fsm.ID(tok.SessionID), fsm.ReasonLogout); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := f.m.Refresh(context.Background(), tok, "", ""); !errors.Is(err, ErrRevoked) {
		t.Fatalf("refresh: got %v, want ErrRevoked", err)
	}
}

func TestRefreshBadMACInvalid(t *testing.T) {
	f := newFixture(t, defaultConfig())
	tok := f.newSession(t)
	bad := tok
	bad.MAC[0] ^= 1
	if _, err := f.m.Refresh(context.Background(), bad, "", ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("refresh: got %v, want ErrInvalidToken", err)
	}
	if _, err := f.m.Refresh(context.Background(), tok, "", ""); err != nil {
		t.Fatalf("refresh with the real token: %v", err)
	}
}

func TestActorsPassivate(t *testing.T) {
	cfg := defaultConfig()
	cfg.PassivateAfter = 50 * time.Millisecond
	f := newFixture(t, cfg)

	before := runtime.NumGoroutine()
	for range 20 {
		tok := f.newSession(t)
		if _, err := f.m.Refresh(context.Background(), tok, "", ""); err != nil {
			t.Fatalf("refresh: %v", err)
		}
	}
	if got := f.m.Active(); got == 0 {
		t.Fatal("active actors right after refreshes: got 0, want > 0")
	}

	deadline := time.Now().Add(5 * time.Second)
	for f.m.Active() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := f.m.Active(); got != 0 {
		t.Fatalf("active actors after idling: got %d, want 0", got)
	}
	// Allow a little slack for raft's own goroutines.
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Fatalf("goroutines after passivation: got %d, want at most %d", after, before+2)
	}
}

func TestNotLeaderRejects(t *testing.T) {
	f := newFixture(t, defaultConfig())
	tok := f.newSession(t)
	f.m.SetLeading(false)
	if _, err := f.m.Refresh(context.Background(), tok, "", ""); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("refresh: got %v, want ErrNotLeader", err)
	}
	if got := f.m.Active(); got != 0 {
		t.Fatalf("active actors: got %d, want 0", got)
	}
}

func TestPassivatedActorRestarts(t *testing.T) {
	cfg := defaultConfig()
	cfg.PassivateAfter = 20 * time.Millisecond
	f := newFixture(t, cfg)
	tok := f.newSession(t)
	first, err := f.m.Refresh(context.Background(), tok, "", "")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	// The new actor decides from the FSM: the old token is a grace replay.
	again, err := f.m.Refresh(context.Background(), tok, "", "")
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if again.RefreshToken != first.RefreshToken || !again.Replayed {
		t.Fatalf("replay: got %q replayed=%v, want %q replayed=true", again.RefreshToken, again.Replayed, first.RefreshToken)
	}
}

// A refresh whose caller is gone by the time the actor reaches it must not
// rotate: the client has moved on, and a late rotation of its old token
// would end its session as reuse.
func TestRefreshOfDepartedCallerDoesNothing(t *testing.T) {
	f := newFixture(t, defaultConfig())
	tok := f.newSession(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	a, err := f.m.acquire(fsm.ID(tok.SessionID))
	if err != nil {
		t.Fatal(err)
	}
	rep := a.handle(&request{ctx: ctx, kind: kindRefresh, token: tok})
	f.m.release(a)
	if !errors.Is(rep.err, context.Canceled) {
		t.Fatalf("refresh of a departed caller: got %v, want context.Canceled", rep.err)
	}
	if s, _ := f.state.Session(fsm.ID(tok.SessionID)); s.Generation != 1 {
		t.Fatalf("generation after the refresh of a departed caller: got %d, want 1", s.Generation)
	}
	if _, err := f.m.Refresh(context.Background(), tok, "", ""); err != nil {
		t.Fatalf("refresh by a caller who waits: %v", err)
	}
}
