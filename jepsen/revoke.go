package main

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Error codes of a failed revoke sample. They name the step that failed.
const (
	revokeLoginFailed    = "login_failed"
	revokeNotValid       = "not_valid_before_logout"
	revokeLogoutFailed   = "logout_failed"
	revokeNotRevoked     = "still_valid_after_timeout"
	revokeInterruptedRun = "interrupted"
)

// revokeStats collects the samples of one revoke worker.
type revokeStats struct {
	samples    int64 // samples that completed on every node
	errors     int64
	codes      map[string]int64
	everywhere histogram   // logout response to 401 on the last node
	perNode    []histogram // logout response to 401, by index in cfg.nodes
	timeouts   []int64     // samples in which a node still accepted the token after --revoke-timeout
	logout     histogram   // POST /v1/logout request to response
}

func newRevokeStats(nodes int) *revokeStats {
	return &revokeStats{codes: map[string]int64{}, perNode: make([]histogram, nodes), timeouts: make([]int64, nodes)}
}

func (s *revokeStats) fail(code string) {
	s.errors++
	s.codes[code]++
}

func (s *revokeStats) merge(o *revokeStats) {
	s.samples += o.samples
	s.errors += o.errors
	for k, v := range o.codes {
		s.codes[k] += v
	}
	s.everywhere.merge(&o.everywhere)
	for i := range s.perNode {
		s.perNode[i].merge(&o.perNode[i])
		s.timeouts[i] += o.timeouts[i]
	}
	s.logout.merge(&o.logout)
}

// revoker measures how long a logout takes to reach every node.
type revoker struct {
	cfg    *loadConfig
	client *apiClient
	pool   *pool
	polls  atomic.Int64
}

// runRevokeLevel takes cfg.samples samples with the given number of workers,
// or fewer if cfg.duration passes first.
func runRevokeLevel(ctx context.Context, cfg *loadConfig, client *apiClient, p *pool, workers int) revokeLevelReport {
	r := &revoker{cfg: cfg, client: client, pool: p}
	started := time.Now()
	deadline := started.Add(cfg.duration)
	var samplesStarted atomic.Int64

	all := make([]*revokeStats, workers)
	var wg sync.WaitGroup
	for i := range all {
		stats := newRevokeStats(len(cfg.nodes))
		all[i] = stats
		wg.Go(func() {
			for samplesStarted.Add(1) <= int64(cfg.samples) && time.Now().Before(deadline) && ctx.Err() == nil {
				r.sample(ctx, stats)
			}
		})
	}
	wg.Wait()

	merged := newRevokeStats(len(cfg.nodes))
	for _, s := range all {
		merged.merge(s)
	}
	return newRevokeLevelReport(cfg, workers, time.Since(started), r.polls.Load(), merged)
}

// sample logs in a new session, waits until its access token is accepted by
// every node, logs it out through the target and polls every node until it
// rejects the token.
func (r *revoker) sample(ctx context.Context, stats *revokeStats) {
	s := &session{user: r.pool.nextUserIndex()}
	if err := r.pool.login(ctx, r.cfg, r.client, s); err != nil {
		stats.fail(revokeLoginFailed)
		return
	}
	if _, ok := r.pollAll(ctx, s.access, http.StatusOK, time.Now()); !ok {
		stats.fail(revokeNotValid)
		return
	}

	sent := time.Now()
	resp, err := r.client.logout(ctx, r.cfg.target, s.access)
	acknowledged := time.Now()
	if err != nil || resp.status != http.StatusNoContent {
		stats.fail(revokeLogoutFailed)
		return
	}

	visible, ok := r.pollAll(ctx, s.access, http.StatusUnauthorized, acknowledged)
	if ctx.Err() != nil {
		stats.fail(revokeInterruptedRun)
		return
	}
	stats.logout.record(acknowledged.Sub(sent))
	if !ok {
		for i, d := range visible {
			if d < 0 {
				stats.timeouts[i]++
			}
		}
		stats.fail(revokeNotRevoked)
		return
	}
	var everywhere time.Duration
	for i, d := range visible {
		stats.perNode[i].record(d)
		everywhere = max(everywhere, d)
	}
	stats.everywhere.record(everywhere)
	stats.samples++
}

// pollAll polls GET /v1/me with token on every node at once, each every
// cfg.pollInterval, until each returns status want. It returns, per node, the
// time from since until the response that had that status arrived, or -1 for
// a node that did not return it within cfg.revokeTimeout. ok is true when
// every node did.
func (r *revoker) pollAll(ctx context.Context, token string, want int, since time.Time) (elapsed []time.Duration, ok bool) {
	elapsed = make([]time.Duration, len(r.cfg.nodes))
	var wg sync.WaitGroup
	for i, node := range r.cfg.nodes {
		wg.Go(func() { elapsed[i] = r.pollNode(ctx, node, token, want, since) })
	}
	wg.Wait()
	for _, d := range elapsed {
		if d < 0 {
			return elapsed, false
		}
	}
	return elapsed, true
}

func (r *revoker) pollNode(ctx context.Context, node, token string, want int, since time.Time) time.Duration {
	deadline := time.Now().Add(r.cfg.revokeTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for {
		sent := time.Now()
		resp, err := r.client.me(ctx, node, token)
		received := time.Now()
		r.polls.Add(1)
		if err == nil && resp.status == want {
			return received.Sub(since)
		}
		if ctx.Err() != nil {
			return -1 // deadline passed or run interrupted
		}
		if sleep(ctx, time.Until(sent.Add(r.cfg.pollInterval))) != nil {
			return -1
		}
	}
}
