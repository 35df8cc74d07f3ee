package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotorhq/rotor/actors"
	"github.com/rotorhq/rotor/api"
	"github.com/rotorhq/rotor/cluster"
	"github.com/rotorhq/rotor/fsm"
	"github.com/rotorhq/rotor/internal/wait"
	"github.com/rotorhq/rotor/token"
)

// node is one running Rotor process: Raft with the FSM, the actors, the
// HTTP server and the leader's duties.
type node struct {
	cfg    *config
	log    *slog.Logger
	now    func() time.Time
	state  *fsm.FSM
	raft   *cluster.Node
	actors *actors.Manager
	api    *api.Server
	http   *http.Server
	ln     net.Listener

	members     *cluster.Membership
	stopForming context.CancelFunc

	// leading is true from the moment raft reports leadership until it
	// reports the loss; the revocation hook reads it on raft's goroutine.
	leading atomic.Bool

	// leaderCancel stops the current term's leader duties; guarded by mu.
	mu           sync.Mutex
	leaderCancel context.CancelFunc
	leaderDone   chan struct{}
}

// startNode opens storage, starts Raft and listens for HTTP. It returns once
// the listener is bound; serve runs the HTTP server.
func startNode(cfg *config, logger *slog.Logger) (*node, error) {
	// The service key first: a start that fails on it must not leave a
	// generated secret behind.
	serviceKey, err := loadServiceKey(cfg)
	if err != nil {
		return nil, err
	}
	secret, err := loadSecret(cfg, logger)
	if err != nil {
		return nil, err
	}
	keys, err := token.NewKeyring(secret)
	if err != nil {
		return nil, err
	}
	httpTLS, err := cfg.httpTLS()
	if err != nil {
		return nil, err
	}
	gossipKey, err := cfg.gossipKey(keys.GossipKey())
	if err != nil {
		return nil, err
	}

	n := &node{cfg: cfg, log: logger, now: newClock(logger), state: fsm.New(nil)}
	trusted, err := cfg.trustedNetworks()
	if err != nil {
		return nil, err
	}

	// HTTP first, so the advertised address has the bound port.
	n.ln, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on http address %q: %w", cfg.HTTPAddr, err)
	}
	if cfg.issuerFromAddr {
		cfg.Issuer = cfg.scheme() + "://" + n.ln.Addr().String()
	}
	peerTLS, err := cfg.peerTLS()
	if err != nil {
		n.ln.Close()
		return nil, err
	}

	// Raft, with the FSM. Only a one-node cluster bootstraps at once; a
	// larger one waits until its voters have met over gossip.
	rc := cluster.DefaultConfig()
	rc.NodeID = cfg.NodeID
	rc.RaftAddr = cfg.RaftAddr
	rc.DataDir = cfg.DataDir
	rc.Bootstrap = cfg.BootstrapExpect == 1
	rc.TLS = cluster.TLSFiles{CertFile: cfg.RaftTLSCertFile, KeyFile: cfg.RaftTLSKeyFile, CAFile: cfg.RaftTLSCAFile}
	rc.Logger = logger
	n.raft, err = cluster.Open(rc, n.state)
	if err != nil {
		n.ln.Close()
		return nil, err
	}

	// Gossip: membership, and the revocation set, which the leader
	// broadcasts as soon as it applies a revocation.
	n.members, err = cluster.StartMembership(cluster.MembershipConfig{
		NodeID:       cfg.NodeID,
		GossipAddr:   cfg.GossipAddr,
		HTTPAddr:     n.ln.Addr().String(),
		RaftAddr:     n.raft.RaftAddr(),
		Join:         cfg.joinAddrs(),
		SecretKey:    gossipKey,
		Revocations:  n.state.Revocations(),
		Bootstrapped: n.raft.HasState,
		Logger:       logger,
	})
	if err != nil {
		n.raft.Close()
		n.ln.Close()
		return nil, err
	}
	n.state.OnRevoke(func(entries []fsm.Revocation) {
		if n.leading.Load() {
			n.members.BroadcastRevocations(entries)
		}
	})

	// Actors and the API.
	n.actors = actors.NewManager(actors.Config{
		Grace:   cfg.ReuseGrace,
		IdleTTL: cfg.RefreshIdleTTL,
		DenyFor: cfg.AccessTTL + cfg.Leeway,
		Now:     n.now,
		Logger:  logger,
	}, n.state, n.raft, keys)
	n.api = api.New(api.Config{
		NodeID:         cfg.NodeID,
		Issuer:         cfg.Issuer,
		Audience:       cfg.Audience,
		AccessTTL:      cfg.AccessTTL,
		IdleTTL:        cfg.RefreshIdleTTL,
		MaxTTL:         cfg.SessionMaxTTL,
		Leeway:         cfg.Leeway,
		Signup:         cfg.Signup,
		ServiceKey:     serviceKey,
		AllowedOrigins: cfg.origins(),
		TrustedProxies: trusted,
		LeaderWait:     cfg.LeaderWait,
		MaxStaleness:   cfg.MaxStaleness,
		PeerTLS:        peerTLS,
		LoginPerUser:   cfg.loginPerUser,
		LoginPerAddr:   cfg.loginPerAddr,
		Now:            n.now,
		Logger:         logger,
	}, api.Deps{
		State: n.state, Node: n.raft, Actors: n.actors, Keys: keys,
		Directory: directory{n.members}, Gossip: n.members,
	})
	n.raft.ObserveApply(n.api.ObserveApply)
	n.raft.OnLeadership(n.leadershipChanged)
	if n.raft.IsLeader() {
		n.leadershipChanged(true)
	}
	n.members.OnChange(n.membershipChanged)

	ctx, cancel := context.WithCancel(context.Background())
	n.stopForming = cancel
	go n.formCluster(ctx)

	n.http = n.api.HTTPServer(cfg.HTTPAddr)
	n.http.TLSConfig = httpTLS
	logger.Info("node started", "node_id", cfg.NodeID, "http_addr", n.ln.Addr().String(),
		"raft_addr", n.raft.RaftAddr(), "gossip_addr", cfg.GossipAddr, "data_dir", cfg.DataDir,
		"bootstrap_expect", cfg.BootstrapExpect)
	return n, nil
}

// serve runs the HTTP server until stop.
func (n *node) serve() error {
	serve := func() error { return n.http.Serve(n.ln) }
	if n.http.TLSConfig != nil {
		serve = func() error { return n.http.ServeTLS(n.ln, "", "") }
	}
	if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// addr returns the bound HTTP address.
func (n *node) addr() string { return n.ln.Addr().String() }

// stop drains HTTP requests, ends the leader's duties and shuts Raft down.
func (n *node) stop(ctx context.Context) error {
	var errs []error
	if err := n.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down http: %w", err))
	}
	n.stopForming()
	n.leadershipChanged(false)
	if err := n.members.Leave(time.Second); err != nil {
		n.log.Warn("leaving the gossip cluster failed", "error", err)
	}
	if err := n.members.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("shut down gossip: %w", err))
	}
	if err := n.raft.Close(); err != nil {
		errs = append(errs, fmt.Errorf("shut down raft: %w", err))
	}
	n.log.Info("node stopped", "node_id", n.cfg.NodeID)
	return errors.Join(errs...)
}

// leadershipChanged starts the leader's duties when this node wins an
// election and stops them, with every actor, when it loses leadership.
func (n *node) leadershipChanged(leader bool) {
	n.leading.Store(leader)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leaderCancel != nil {
		n.leaderCancel()
		<-n.leaderDone
		n.leaderCancel = nil
	}
	n.actors.SetLeading(false)
	if !leader {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.leaderCancel = cancel
	n.leaderDone = make(chan struct{})
	go n.lead(ctx, n.leaderDone)
}

// lead runs for one term of leadership.
func (n *node) lead(ctx context.Context, done chan struct{}) {
	defer close(done)

	// Catch up: actors must decide on every entry the previous leader
	// committed, or a replay could be mistaken for reuse.
	for {
		err := n.raft.Barrier(5 * time.Second)
		if err == nil {
			break
		}
		n.log.Warn("barrier after election failed; retrying", "error", err)
		if !wait.Sleep(ctx, 200*time.Millisecond) {
			return
		}
	}

	// The first signing key, once per cluster.
	if n.state.CurrentEpoch() == 0 {
		if err := n.applyRetry(ctx, func() fsm.Command { return &fsm.RotateSigningKey{At: n.now(), FromEpoch: 0} }); err != nil {
			return
		}
		n.log.Info("created the first signing key epoch")
	}
	if n.cfg.AdminUsername != "" {
		if err := n.api.EnsureAdmin(ctx, n.cfg.AdminUsername, n.cfg.adminPassword); err != nil {
			n.log.Error("could not create the admin account", "username", n.cfg.AdminUsername, "error", err)
		}
	}
	n.actors.SetLeading(true)
	n.log.Info("serving as leader", "node_id", n.cfg.NodeID)
	n.addMissingVoters()

	// Cleanup, periodically, for as long as this term lasts.
	ticker := time.NewTicker(n.cfg.CleanupInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			now := n.now()
			if _, err := n.raft.Apply(ctx, &fsm.Cleanup{At: now, RetiredBefore: now.Add(-(n.cfg.AccessTTL + n.cfg.Leeway))}); err != nil {
				n.log.Warn("cleanup failed; retrying at the next interval", "error", err)
			}
		}
	}
}

// applyRetry applies the command build returns until it commits or ctx ends.
// A rejected precondition counts as done: another leader did the work.
func (n *node) applyRetry(ctx context.Context, build func() fsm.Command) error {
	for {
		_, err := n.raft.Apply(ctx, build())
		if err == nil {
			return nil
		}
		n.log.Warn("leader command failed; retrying", "error", err)
		if !wait.Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}
