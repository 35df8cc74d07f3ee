package api

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// Stall detection. A process that was stopped (SIGSTOP, a frozen virtual
// machine, a swap storm) resumes with requests that waited in its sockets
// meanwhile. Their clients may have given up long ago and retried
// elsewhere. Carrying out such a write is harmful: a refresh token that the
// client has since rotated past arrives as reuse and ends the session. A
// client that gave up has closed its connection, which cancels the
// request's context, but the server may read the request before it notices.
// So for a moment after a stall, the node rejects writes with 503 and lets
// clients that are still connected retry.
//
// NOTE: a stall shorter than stallGap goes unnoticed, so a request that
// waited less than a second in a socket is still carried out.
const (
	stallTick       = 50 * time.Millisecond
	stallGap        = time.Second // a tick this late means the process did not run
	stallQuarantine = time.Second // how long writes are rejected after a stall
)

var errStalled = errors.New("process was stalled; queued requests may be stale")

type stallGuard struct {
	base     time.Time
	running  atomic.Bool
	lastBeat atomic.Int64 // monotonic nanoseconds since base
	stallEnd atomic.Int64 // when the last stall was noticed; 0 if never
	log      *slog.Logger
}

func newStallGuard(log *slog.Logger) *stallGuard {
	return &stallGuard{base: time.Now(), log: log}
}

func (g *stallGuard) now() int64 { return int64(time.Since(g.base)) }

// run ticks until stop is closed, noting each gap between ticks that is
// longer than stallGap.
func (g *stallGuard) run(stop <-chan struct{}) {
	g.lastBeat.Store(g.now())
	g.running.Store(true)
	defer g.running.Store(false)
	ticker := time.NewTicker(stallTick)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			now := g.now()
			if gap := time.Duration(now - g.lastBeat.Load()); gap > stallGap {
				g.stallEnd.Store(now)
				g.log.Warn("process did not run for a while; refusing writes for a moment", "gap", gap.Round(time.Millisecond).String())
			}
			g.lastBeat.Store(now)
		}
	}
}

// stalled reports whether the process has just come back from a stall: the
// ticker is overdue (it has not run since), or it noticed a stall less than
// stallQuarantine ago.
func (g *stallGuard) stalled() bool {
	if !g.running.Load() {
		return false
	}
	now := g.now()
	if time.Duration(now-g.lastBeat.Load()) > stallGap {
		return true
	}
	end := g.stallEnd.Load()
	return end != 0 && time.Duration(now-end) < stallQuarantine
}
