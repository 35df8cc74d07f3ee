package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// levelRun paces the workers of one concurrency level: warm-up, then the
// measured phase, within the --max-requests bound.
type levelRun struct {
	ctx          context.Context
	cfg          *loadConfig
	start        time.Time // warm-up starts here, and so does the open-loop schedule
	measureStart time.Time
	measureEnd   time.Time
	started      atomic.Int64 // operations handed out, warm-up included
	hitMax       atomic.Bool
}

// next blocks until the caller may start its next operation and returns the
// time the operation counts from. In a closed loop that is now. In an open
// loop it is the operation's slot in the schedule, so a node that falls
// behind shows its queueing delay in the latency. ok is false once the level
// is over.
func (l *levelRun) next() (scheduled time.Time, ok bool) {
	n := l.started.Add(1)
	if n > l.cfg.maxRequests {
		l.hitMax.Store(true)
		return time.Time{}, false
	}
	if l.ctx.Err() != nil {
		return time.Time{}, false
	}
	if l.cfg.rate == 0 {
		now := time.Now()
		return now, now.Before(l.measureEnd)
	}
	scheduled = l.start.Add(time.Duration(float64(n-1) * float64(time.Second) / l.cfg.rate))
	if !scheduled.Before(l.measureEnd) {
		return scheduled, false
	}
	if err := sleep(l.ctx, time.Until(scheduled)); err != nil {
		return scheduled, false
	}
	return scheduled, true
}

// worker runs operations one after the other and keeps its own statistics,
// so workers share no counters on the hot path.
type worker struct {
	cfg     *loadConfig
	client  *apiClient
	pool    *pool
	session *session // refresh and mixed: owned by this worker; validate: shared, read only
	rng     *rand.Rand

	stats    map[string]*opStats
	relogins int64
}

// runLevel runs one concurrency level of a load workload and returns its report.
func runLevel(ctx context.Context, cfg *loadConfig, client *apiClient, p *pool, workers int) levelReport {
	l := &levelRun{ctx: ctx, cfg: cfg, start: time.Now()}
	l.measureStart = l.start.Add(cfg.warmup)
	l.measureEnd = l.measureStart.Add(cfg.duration)

	all := make([]*worker, workers)
	for i := range all {
		w := &worker{
			cfg:    cfg,
			client: client,
			pool:   p,
			rng:    rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
			stats:  map[string]*opStats{},
		}
		if len(p.sessions) > 0 {
			w.session = p.sessions[i%len(p.sessions)]
		}
		for _, op := range operationsOf(cfg) {
			w.stats[op] = newOpStats()
		}
		all[i] = w
	}

	var wg sync.WaitGroup
	for _, w := range all {
		wg.Go(func() { w.run(l) })
	}
	wg.Wait()
	end := time.Now()

	merged := map[string]*opStats{}
	var relogins int64
	for _, op := range operationsOf(cfg) {
		merged[op] = newOpStats()
	}
	for _, w := range all {
		for op, s := range w.stats {
			merged[op].merge(s)
		}
		relogins += w.relogins
	}

	stoppedBy := "duration"
	switch {
	case ctx.Err() != nil:
		stoppedBy = "interrupted"
	case l.hitMax.Load():
		stoppedBy = "max-requests"
	}
	if end.After(l.measureEnd) {
		end = l.measureEnd
	}
	measured := max(end.Sub(l.measureStart), 0)
	return newLevelReport(cfg, workers, measured, stoppedBy, relogins, merged)
}

// operationsOf lists the operation kinds a workload sends.
func operationsOf(cfg *loadConfig) []string {
	if cfg.workload != workloadMixed {
		return []string{cfg.workload}
	}
	var ops []string
	for _, e := range cfg.mix {
		if e.weight > 0 {
			ops = append(ops, e.op)
		}
	}
	return ops
}

func (w *worker) run(l *levelRun) {
	for {
		scheduled, ok := l.next()
		if !ok {
			return
		}
		op := w.pickOperation()
		var stats *opStats // nil during warm-up: nothing is recorded
		if !scheduled.Before(l.measureStart) {
			stats = w.stats[op]
		}

		succeeded, broken := w.do(l.ctx, op, stats)
		latency := time.Since(scheduled)
		if l.ctx.Err() != nil {
			return // interrupted: the operation did not finish on its own
		}
		stats.finish(latency, succeeded)

		if broken {
			// The session cannot be refreshed any more. A new login keeps
			// this worker busy, but only the count of relogins is reported.
			if w.pool.login(l.ctx, w.cfg, w.client, w.session) == nil && stats != nil {
				w.relogins++
			}
		}
	}
}

// pickOperation returns the workload's operation, or for the mixed workload
// one drawn at random by the --mix weights.
func (w *worker) pickOperation() string {
	if w.cfg.workload != workloadMixed {
		return w.cfg.workload
	}
	total := 0
	for _, e := range w.cfg.mix {
		total += e.weight
	}
	n := w.rng.IntN(total)
	for _, e := range w.cfg.mix {
		if n < e.weight {
			return e.op
		}
		n -= e.weight
	}
	return w.cfg.mix[len(w.cfg.mix)-1].op
}

// do sends one operation. broken reports that the worker's session was
// ended by the node and must be replaced.
func (w *worker) do(ctx context.Context, op string, stats *opStats) (succeeded, broken bool) {
	switch op {
	case workloadRefresh:
		return w.refresh(ctx, stats)
	case workloadValidate:
		return w.validate(ctx, stats), false
	default:
		return w.login(ctx, stats), false
	}
}

// refreshEndingCodes are the refresh errors after which the session is
// gone, so retrying with the same token cannot succeed.
var refreshEndingCodes = map[string]bool{
	"refresh_token_invalid": true,
	"refresh_token_reused":  true,
	"session_revoked":       true,
	"session_expired":       true,
}

// refresh rotates the worker's session. A 503 is retried with the same
// token, which inside the node's grace window returns the successor even if
// the first attempt rotated. After a request that got no response the token
// is kept for the next operation for the same reason.
func (w *worker) refresh(ctx context.Context, stats *opStats) (succeeded, broken bool) {
	for attempt := 0; ; attempt++ {
		resp, err := w.client.refresh(ctx, w.cfg.target, w.session.refresh)
		if err != nil {
			stats.failure(err)
			return false, false
		}
		stats.response(resp.status, resp.code)

		switch {
		case resp.status == http.StatusOK:
			tokens, err := parseTokens(resp.body)
			if err != nil {
				stats.failure(err)
				return false, false
			}
			w.session.access, w.session.refresh = tokens.AccessToken, tokens.RefreshToken
			return true, false
		case resp.status == http.StatusServiceUnavailable && attempt < w.cfg.maxRetries:
			stats.retry()
			if sleep(ctx, w.cfg.retryDelay) != nil {
				return false, false
			}
		default:
			return false, refreshEndingCodes[resp.code]
		}
	}
}

// validate sends GET /v1/me with the worker's access token.
func (w *worker) validate(ctx context.Context, stats *opStats) bool {
	resp, err := w.client.me(ctx, w.cfg.target, w.session.access)
	if err != nil {
		stats.failure(err)
		return false
	}
	stats.response(resp.status, resp.code)
	return resp.status == http.StatusOK
}

// login logs in the next user. The new session is not kept.
func (w *worker) login(ctx context.Context, stats *opStats) bool {
	resp, err := w.client.login(ctx, w.cfg.target, w.pool.nextUser())
	if err != nil {
		stats.failure(err)
		return false
	}
	stats.response(resp.status, resp.code)
	return resp.status == http.StatusOK
}
