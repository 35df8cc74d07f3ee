package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/rotorhq/rotor/fsm"
)

// Errors returned by Apply and Barrier.
var (
	// ErrNotLeader is returned when this node is not the Raft leader, or lost
	// leadership before the entry committed. The entry may still commit under
	// a later leader; callers retry with the same preconditions.
	ErrNotLeader = errors.New("not the raft leader")

	// ErrUnavailable is returned when raft could not take or commit the entry
	// in time, or is shutting down.
	ErrUnavailable = errors.New("raft unavailable")
)

// Config is the Raft part of a node's configuration.
type Config struct {
	// NodeID is this node's Raft server id.
	NodeID string

	// RaftAddr is the TCP address Raft binds and advertises.
	RaftAddr string

	// DataDir holds raft.db (log and stable store) and snapshots/.
	DataDir string

	// Bootstrap makes a node with no Raft state start a cluster of one.
	Bootstrap bool

	// HeartbeatTimeout and ElectionTimeout bound how long followers wait for
	// the leader before they start an election. LeaderLeaseTimeout bounds how
	// long a leader keeps leading without a quorum's contact.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration

	// CommitTimeout is the longest a follower waits to learn a commit when
	// no new entries arrive.
	CommitTimeout time.Duration

	// ApplyTimeout bounds how long Apply waits for raft to take an entry.
	ApplyTimeout time.Duration

	// SnapshotThreshold is how many entries trigger a snapshot.
	SnapshotThreshold uint64

	// TLS, when set, makes Raft connections mutual TLS.
	TLS TLSFiles

	// NoSync turns off fsync of the log. Only benchmarks and fault-injection
	// builds set it: an acknowledged write may then be lost on power failure.
	NoSync bool

	Logger *slog.Logger
}

// DefaultConfig returns the timeouts Rotor runs with: failover in well under
// a second on a loaded two-core machine, and a commit interval short enough
// that followers apply revocations within milliseconds.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		ApplyTimeout:       5 * time.Second,
		SnapshotThreshold:  16384,
	}
}

// Validate checks the configuration and fills the logger.
func (c *Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("node id is empty")
	case c.RaftAddr == "":
		return errors.New("raft address is empty")
	case c.DataDir == "":
		return errors.New("data dir is empty")
	case c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("leader lease timeout %s must not exceed heartbeat timeout %s", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	case c.CommitTimeout <= 0 || c.ApplyTimeout <= 0:
		return errors.New("commit and apply timeouts must be positive")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Node is one Raft member with Rotor's FSM.
type Node struct {
	cfg   Config
	fsm   *fsm.FSM
	raft  *raft.Raft
	store *raftboltdb.BoltStore
	trans *raft.NetworkTransport

	notify chan bool
	done   chan struct{}

	mu    sync.Mutex
	hooks []func(leader bool) // guarded by mu; called on the notify goroutine

	// closed is set when Close starts.
	closed atomic.Bool

	// observeApply, when set, receives the latency of every Apply.
	observeApply atomic.Pointer[func(time.Duration)]
}

// ObserveApply registers a function that receives the latency of every
// successful Apply, for metrics.
func (n *Node) ObserveApply(fn func(time.Duration)) {
	n.observeApply.Store(&fn)
}

// Open starts Raft on cfg.DataDir with the given state machine.
func Open(cfg Config, state *fsm.FSM) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid raft config: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{cfg: cfg, fsm: state, notify: make(chan bool, 8), done: make(chan struct{})}
	hlog := NewHCLogger(cfg.Logger, "raft")

	// Storage: one bbolt file for the log and the stable store, fsync on
	// every batch unless NoSync.
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:   filepath.Join(cfg.DataDir, "raft.db"),
		NoSync: cfg.NoSync || injectNoFsync,
		// The log is appended at the end and truncated at the front, which
		// leaves the file full of free pages. Writing the freelist on every
		// commit then costs more with each snapshot; without it, bbolt
		// rebuilds the freelist when it opens the file.
		BoltOptions: &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft store: %w", err)
	}
	n.store = store
	logs, err := raft.NewLogCache(1024, wrapLogStore(store))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("create log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hlog.Named("snapshot"))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}

	// Transport.
	addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("resolve raft address %q: %w", cfg.RaftAddr, err)
	}
	var advertise net.Addr = addr
	if addr.Port == 0 {
		// Port 0 picks a free port; raft then advertises the bound one.
		advertise = nil
	}
	trans, err := newTransport(cfg, advertise, hlog)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("listen on raft address %q: %w", cfg.RaftAddr, err)
	}
	n.trans = trans

	// Raft itself.
	rc := n.raftConfig(hlog)
	r, err := raft.NewRaft(rc, state, logs, store, snaps, trans)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	go n.watchLeadership()

	if cfg.Bootstrap {
		if err := n.bootstrapSelf(logs, store, snaps); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

func (n *Node) raftConfig(hlog hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.NotifyCh = n.notify
	rc.Logger = hlog

	// Larger batches per StoreLogs: each batch costs one bbolt transaction
	// with its fsyncs, so throughput grows with the applies in flight.
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	return rc
}

// bootstrapSelf starts a one-voter cluster unless raft already has state, so
// the same command line is safe on every restart.
func (n *Node) bootstrapSelf(logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore) error {
	has, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("check raft state: %w", err)
	}
	if has {
		return nil
	}
	cfg := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter,
		ID:       raft.ServerID(n.cfg.NodeID),
		Address:  n.trans.LocalAddr(),
	}}}
	if err := n.raft.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft: %w", err)
	}
	n.cfg.Logger.Info("bootstrapped a single-node cluster", "node_id", n.cfg.NodeID)
	return nil
}

// OnLeadership registers a hook that runs whenever this node gains (true) or
// loses (false) leadership. Register hooks before the node can win an
// election, or call Leading afterwards to learn the current state.
func (n *Node) OnLeadership(hook func(leader bool)) {
	n.mu.Lock()
	n.hooks = append(n.hooks, hook)
	n.mu.Unlock()
}

func (n *Node) watchLeadership() {
	for {
		select {
		case leader := <-n.notify:
			if leader {
				n.cfg.Logger.Info("gained raft leadership", "node_id", n.cfg.NodeID)
			} else {
				n.cfg.Logger.Info("lost raft leadership", "node_id", n.cfg.NodeID)
			}
			n.mu.Lock()
			hooks := append([]func(bool){}, n.hooks...)
			n.mu.Unlock()
			for _, h := range hooks {
				h(leader)
			}
		case <-n.done:
			return
		}
	}
}

// Apply commits a command and returns the FSM's result. The error is
// ErrNotLeader or ErrUnavailable (wrapping raft's cause) when the entry did
// not commit here; a rejected precondition is in Result.Err instead.
func (n *Node) Apply(ctx context.Context, c fsm.Command) (*fsm.Result, error) {
	data, err := fsm.Encode(c)
	if err != nil {
		return nil, err
	}
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	start := time.Now()
	f := n.raft.Apply(data, timeout)
	if err := n.wait(f); err != nil {
		return nil, err
	}
	if fn := n.observeApply.Load(); fn != nil {
		(*fn)(time.Since(start))
	}
	res, ok := f.Response().(*fsm.Result)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected apply response %T", ErrUnavailable, f.Response())
	}
	return res, nil
}

// Barrier waits until every entry committed before the call is applied to
// the local FSM. A new leader calls it before it serves anything.
func (n *Node) Barrier(timeout time.Duration) error {
	return n.wait(n.raft.Barrier(timeout))
}

// VerifyLeader confirms with a quorum that this node still leads.
func (n *Node) VerifyLeader() error {
	return n.wait(n.raft.VerifyLeader())
}

// wait returns the future's error, or ErrUnavailable once the node closes.
// With BatchApplyCh, raft v1.7.2 may queue an entry into its buffered apply
// channel after shutdown, and then nothing ever completes the future.
// Waiting on done as well keeps such a caller from hanging.
func (n *Node) wait(f raft.Future) error {
	if n.closed.Load() {
		return fmt.Errorf("%w: node is closed", ErrUnavailable)
	}
	result := make(chan error, 1)
	go func() { result <- f.Error() }()
	select {
	case err := <-result:
		if err != nil {
			return classify(err)
		}
		return nil
	case <-n.done:
		return fmt.Errorf("%w: node is closed", ErrUnavailable)
	}
}

func classify(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	default:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}

// IsLeader reports whether raft believes this node leads now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's Raft address and id, empty when none is known.
func (n *Node) Leader() (addr, id string) {
	a, i := n.raft.LeaderWithID()
	return string(a), string(i)
}

// Stats returns raft's own counters (state, term, commit and applied index).
func (n *Node) Stats() map[string]string { return n.raft.Stats() }

// State returns the raft state name: Leader, Follower, Candidate, Shutdown.
func (n *Node) State() string { return n.raft.State().String() }

// AppliedIndex returns the index of the last entry applied to the FSM.
func (n *Node) AppliedIndex() uint64 { return n.raft.AppliedIndex() }

// CommitIndex returns the highest log index this node has seen committed.
func (n *Node) CommitIndex() uint64 { return n.raft.CommitIndex() }

// LastContact returns when this node last heard from the leader; zero on the
// leader itself.
func (n *Node) LastContact() time.Time { return n.raft.LastContact() }

// Close shuts raft down and closes its storage.
func (n *Node) Close() error {
	if n.closed.Swap(true) {
		return nil
	}
	close(n.done)
	var errs []error
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	errs = append(errs, n.store.Close())
	return errors.Join(errs...)
}

// Server is one member of the Raft configuration.
type Server struct {
	ID       string
	Address  string
	Suffrage string
}

// Servers returns the current Raft configuration.
func (n *Node) Servers() ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, classify(err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Suffrage: s.Suffrage.String()})
	}
	return out, nil
}

// Snapshot takes a snapshot now and compacts the log behind it.
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("take snapshot: %w", err)
	}
	return nil
}

// HasState reports whether raft has a log, a snapshot or a term on disk, that
// is, whether this node is or was part of a formed cluster.
func (n *Node) HasState() bool {
	// LastIndex covers both the log and the last snapshot.
	return n.raft.LastIndex() > 0
}

// BootstrapServers forms a new cluster of the given voters. Every founding
// node calls it with the same list; raft ignores it on a node with state.
func (n *Node) BootstrapServers(servers []Server) error {
	cfg := raft.Configuration{}
	for _, s := range servers {
		cfg.Servers = append(cfg.Servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(s.ID),
			Address:  raft.ServerAddress(s.Address),
		})
	}
	if err := n.raft.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft: %w", err)
	}
	return nil
}

// AddVoter adds a node to the configuration, or updates its address. Only
// the leader can.
func (n *Node) AddVoter(id, addr string) error {
	return n.wait(n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second))
}

// RemoveServer removes a node from the configuration. Only the leader can.
func (n *Node) RemoveServer(id string) error {
	return n.wait(n.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second))
}

// RaftAddr returns the address raft advertises, with the bound port when
// the configured port was 0.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }
