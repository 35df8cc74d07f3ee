package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/fsm"
)

const testNodeID = "node1"

// testConfig returns DefaultConfig for one bootstrapping node in dir, on a
// free loopback port unless addr is set.
func testConfig(dir, addr string, logger *slog.Logger) Config {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg := DefaultConfig()
	cfg.NodeID = testNodeID
	cfg.RaftAddr = addr
	cfg.DataDir = dir
	cfg.Bootstrap = true
	cfg.Logger = logger
	return cfg
}

// openNode opens a node with cfg and a fresh FSM, and closes it at the end
// of the test unless the test closed it first.
func openNode(t *testing.T, cfg Config) (*Node, *fsm.FSM) {
	t.Helper()
	state := fsm.New(nil)
	n, err := Open(cfg, state)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		// Close panics on a second call, so skip nodes the test already
		// closed.
		if n.State() != "Shutdown" {
			_ = n.Close()
		}
	})
	return n, state
}

// closeNode closes n and fails the test on error.
func closeNode(t *testing.T, n *Node) {
	t.Helper()
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// waitLeader polls until n leads, for at most 10 seconds.
func waitLeader(t *testing.T, n *Node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatalf("node state: got %s after 10s, want Leader", n.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func createUser(name string) *fsm.CreateUser {
	return &fsm.CreateUser{At: time.Now(), UserID: fsm.NewID(), Username: name, Roles: []string{"user"}}
}

func TestOpenBootstrapLeads(t *testing.T) {
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)

	if got := n.State(); got != "Leader" {
		t.Errorf("State: got %q, want Leader", got)
	}
	addr, id := n.Leader()
	if id != testNodeID {
		t.Errorf("leader id: got %q, want %q", id, testNodeID)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") || addr == "127.0.0.1:0" {
		t.Errorf("leader address: got %q, want 127.0.0.1 with a bound port", addr)
	}
	if got := n.LastContact(); !got.IsZero() {
		t.Errorf("LastContact on the leader: got %v, want zero", got)
	}
}

func TestApplyReturnsResult(t *testing.T) {
	n, state := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)

	cmd := createUser("alice")
	res, err := n.Apply(context.Background(), cmd)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if res.Err != nil {
		t.Fatalf("Result.Err: got %v, want nil", res.Err)
	}
	if res.User == nil || res.User.ID != cmd.UserID {
		t.Errorf("Result.User: got %+v, want user %s", res.User, cmd.UserID)
	}
	if _, ok := state.UserByName("alice"); !ok {
		t.Errorf("UserByName(alice): got not found, want the applied user")
	}
}

func TestApplyRejectedPrecondition(t *testing.T) {
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)

	if _, err := n.Apply(context.Background(), createUser("alice")); err != nil {
		t.Fatalf("first Apply: %v", err)
	}
	res, err := n.Apply(context.Background(), createUser("alice"))
	if err != nil {
		t.Fatalf("second Apply: got error %v, want nil with Result.Err set", err)
	}
	if !errors.Is(res.Err, fsm.ErrUsernameTaken) {
		t.Errorf("Result.Err: got %v, want %v", res.Err, fsm.ErrUsernameTaken)
	}
}

func TestApplyDeadlineBelowTimeout(t *testing.T) {
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := n.Apply(ctx, createUser("bob"))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if res.Err != nil {
		t.Errorf("Result.Err: got %v, want nil", res.Err)
	}
}

func TestObserveApply(t *testing.T) {
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)

	observed := make(chan time.Duration, 1)
	n.ObserveApply(func(d time.Duration) { observed <- d })
	if _, err := n.Apply(context.Background(), createUser("alice")); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	select {
	case d := <-observed:
		if d <= 0 {
			t.Errorf("observed latency: got %v, want > 0", d)
		}
	default:
		t.Errorf("observed latency: got no call, want one call before Apply returned")
	}
}

func TestBarrierOnLeader(t *testing.T) {
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)

	if err := n.Barrier(5 * time.Second); err != nil {
		t.Errorf("Barrier: got %v, want nil", err)
	}
}

func TestVerifyLeaderOnLeader(t *testing.T) {
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)

	if err := n.VerifyLeader(); err != nil {
		t.Errorf("VerifyLeader: got %v, want nil", err)
	}
}

func TestServersSingleVoter(t *testing.T) {
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)

	servers, err := n.Servers()
	if err != nil {
		t.Fatalf("Servers: %v", err)
	}
	if len(servers) != 1 {
		t.Fatalf("servers: got %d (%+v), want 1", len(servers), servers)
	}
	leaderAddr, _ := n.Leader()
	want := Server{ID: testNodeID, Address: leaderAddr, Suffrage: "Voter"}
	if servers[0] != want {
		t.Errorf("server: got %+v, want %+v", servers[0], want)
	}
}

func TestOnLeadershipHook(t *testing.T) {
	// Raft waits at least HeartbeatTimeout (300ms) before its first election,
	// so a hook registered right after Open receives the first change.
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	changes := make(chan bool, 4)
	n.OnLeadership(func(leader bool) { changes <- leader })

	select {
	case got := <-changes:
		if !got {
			t.Errorf("first leadership change: got %v, want true", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("leadership hook: got no call in 10s, want a call with true")
	}
}

func TestSnapshotAfterApply(t *testing.T) {
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)
	if _, err := n.Apply(context.Background(), createUser("alice")); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	if err := n.Snapshot(); err != nil {
		t.Errorf("Snapshot: got %v, want nil", err)
	}
}

func TestReopenKeepsState(t *testing.T) {
	tests := []struct {
		name     string
		snapshot bool
	}{
		{"log only", false},
		{"after snapshot", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			firstLogger, firstLog := newJSONLogger(slog.LevelInfo)
			first, _ := openNode(t, testConfig(dir, "", firstLogger))
			waitLeader(t, first)
			addr, _ := first.Leader()
			cmd := createUser("alice")
			if _, err := first.Apply(context.Background(), cmd); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if tt.snapshot {
				if err := first.Snapshot(); err != nil {
					t.Fatalf("Snapshot: %v", err)
				}
			}
			closeNode(t, first)
			if !strings.Contains(firstLog.String(), "bootstrapped a single-node cluster") {
				t.Fatalf("first open log: got no bootstrap line, want one")
			}

			// Reopen on the same directory and address, as a restart does.
			secondLogger, secondLog := newJSONLogger(slog.LevelInfo)
			second, state := openNode(t, testConfig(dir, addr, secondLogger))
			waitLeader(t, second)
			if err := second.Barrier(5 * time.Second); err != nil {
				t.Fatalf("Barrier: %v", err)
			}

			u, ok := state.UserByName("alice")
			if !ok {
				t.Fatalf("UserByName(alice) after restart: got not found, want the applied user")
			}
			if u.ID != cmd.UserID {
				t.Errorf("user id after restart: got %s, want %s", u.ID, cmd.UserID)
			}
			if strings.Contains(secondLog.String(), "bootstrapped a single-node cluster") {
				t.Errorf("second open log: got a bootstrap line, want bootstrap skipped")
			}
			servers, err := second.Servers()
			if err != nil {
				t.Fatalf("Servers: %v", err)
			}
			if len(servers) != 1 {
				t.Errorf("servers after restart: got %d (%+v), want 1", len(servers), servers)
			}
		})
	}
}

func TestApplyWithoutBootstrap(t *testing.T) {
	// A node without Raft state and without Bootstrap has no configuration,
	// so it stays a follower and never learns a leader.
	cfg := testConfig(t.TempDir(), "", nil)
	cfg.Bootstrap = false
	n, _ := openNode(t, cfg)

	_, err := n.Apply(context.Background(), createUser("alice"))
	if !errors.Is(err, ErrNotLeader) {
		t.Errorf("Apply: got %v, want %v", err, ErrNotLeader)
	}
	if n.IsLeader() {
		t.Errorf("IsLeader: got true, want false")
	}
	if addr, id := n.Leader(); addr != "" || id != "" {
		t.Errorf("Leader: got (%q, %q), want empty", addr, id)
	}
}

func TestVerifyLeaderWithoutBootstrap(t *testing.T) {
	cfg := testConfig(t.TempDir(), "", nil)
	cfg.Bootstrap = false
	n, _ := openNode(t, cfg)

	if err := n.VerifyLeader(); !errors.Is(err, ErrNotLeader) {
		t.Errorf("VerifyLeader: got %v, want %v", err, ErrNotLeader)
	}
}

// callConcurrently runs call the given number of times at once and returns
// the errors of the calls that returned within wait. A call that is still
// blocked after wait leaks its goroutine.
func callConcurrently(calls int, wait time.Duration, call func() error) []error {
	results := make(chan error, calls)
	for range calls {
		go func() { results <- call() }()
	}
	var errs []error
	timeout := time.After(wait)
	for range calls {
		select {
		case err := <-results:
			errs = append(errs, err)
		case <-timeout:
			return errs
		}
	}
	return errs
}

// Raft's buffered apply channel (BatchApplyCh) still accepts an entry after
// Shutdown, and nothing responds to it. Several calls make the race show on
// almost every run instead of on half of them.
func TestApplyAfterClose(t *testing.T) {
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)
	closeNode(t, n)

	const calls = 16
	errs := callConcurrently(calls, 5*time.Second, func() error {
		_, err := n.Apply(context.Background(), createUser("alice"))
		return err
	})
	if len(errs) != calls {
		t.Errorf("Apply calls returned after Close: got %d of %d within 5s, want all", len(errs), calls)
	}
	for _, err := range errs {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Apply after Close: got %v, want %v", err, ErrUnavailable)
		}
	}
}

func TestBarrierAfterClose(t *testing.T) {
	n, _ := openNode(t, testConfig(t.TempDir(), "", nil))
	waitLeader(t, n)
	closeNode(t, n)

	const calls = 16
	errs := callConcurrently(calls, 5*time.Second, func() error {
		return n.Barrier(time.Second)
	})
	if len(errs) != calls {
		t.Errorf("Barrier calls returned after Close: got %d of %d within 5s, want all", len(errs), calls)
	}
	for _, err := range errs {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Barrier after Close: got %v, want %v", err, ErrUnavailable)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		cfg := DefaultConfig()
		cfg.NodeID = testNodeID
		cfg.RaftAddr = "127.0.0.1:0"
		cfg.DataDir = "/nonexistent/data"
		return cfg
	}
	tests := []struct {
		name    string
		change  func(c *Config)
		wantErr bool
	}{
		{"default", func(c *Config) {}, false},
		{"lease equals heartbeat", func(c *Config) { c.LeaderLeaseTimeout = c.HeartbeatTimeout }, false},
		{"empty node id", func(c *Config) { c.NodeID = "" }, true},
		{"empty raft address", func(c *Config) { c.RaftAddr = "" }, true},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, true},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = c.HeartbeatTimeout + time.Millisecond }, true},
		{"zero commit timeout", func(c *Config) { c.CommitTimeout = 0 }, true},
		{"negative commit timeout", func(c *Config) { c.CommitTimeout = -time.Second }, true},
		{"zero apply timeout", func(c *Config) { c.ApplyTimeout = 0 }, true},
		{"negative apply timeout", func(c *Config) { c.ApplyTimeout = -time.Second }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.change(&cfg)

			err := cfg.Validate()
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("Validate: got %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestConfigValidateFillsLogger(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeID = testNodeID
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.DataDir = "/nonexistent/data"

	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if cfg.Logger == nil {
		t.Errorf("Logger: got nil, want slog.Default")
	}
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig(t.TempDir(), "", nil)
	cfg.NodeID = ""

	n, err := Open(cfg, fsm.New(nil))
	if err == nil {
		_ = n.Close()
		t.Fatalf("Open: got nil error, want an invalid config error")
	}
}

// Validate leaves heartbeat and election timeouts to raft, whose own check
// must still stop Open.
func TestOpenRejectsZeroHeartbeat(t *testing.T) {
	cfg := testConfig(t.TempDir(), "", nil)
	cfg.HeartbeatTimeout = 0
	cfg.LeaderLeaseTimeout = 0

	n, err := Open(cfg, fsm.New(nil))
	if err == nil {
		_ = n.Close()
		t.Fatalf("Open: got nil error, want raft to reject the heartbeat timeout")
	}
}
