package cluster

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// newMemberlistLogger returns the *log.Logger memberlist writes to. Each line
// becomes a slog record with component=memberlist and the level of its
// bracketed prefix.
func newMemberlistLogger(logger *slog.Logger) *log.Logger {
	w := &memberlistLogWriter{
		logger:  logger.With("component", "memberlist"),
		limiter: logLimiter{limit: 10, window: time.Second},
	}
	return log.New(w, "", 0)
}

// memberlistLogWriter receives one formatted line per Write, because
// log.Logger calls Write once per message.
type memberlistLogWriter struct {
	logger *slog.Logger

	// limiter caps warnings and errors: memberlist logs one for every
	// packet that fails to decrypt or decode, which a misconfigured or
	// hostile sender can repeat at packet rate.
	limiter logLimiter
}

// memberlistLevels maps the prefixes memberlist v0.6.0 writes. It writes
// both [ERR] and [ERROR].
var memberlistLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[TRACE]", slog.LevelDebug - 4},
	{"[DEBUG]", slog.LevelDebug},
	{"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
}

// parseMemberlistLine splits "[WARN] memberlist: text" into a level and
// "text". Lines without a known prefix are logged at Info.
func parseMemberlistLine(line string) (slog.Level, string) {
	level := slog.LevelInfo
	for _, l := range memberlistLevels {
		if rest, ok := strings.CutPrefix(line, l.prefix); ok {
			level = l.level
			line = rest
			break
		}
	}
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "memberlist: ")
	return level, line
}

func (w *memberlistLogWriter) Write(p []byte) (int, error) {
	level, msg := parseMemberlistLine(strings.TrimRight(string(p), "\n"))
	ctx := context.Background()
	if !w.logger.Enabled(ctx, level) {
		return len(p), nil
	}
	var args []any
	if level >= slog.LevelWarn {
		ok, suppressed := w.limiter.allow(time.Now())
		if !ok {
			return len(p), nil
		}
		if suppressed > 0 {
			args = append(args, "suppressed", suppressed)
		}
	}
	w.logger.Log(ctx, level, msg, args...)
	return len(p), nil
}

// logLimiter allows up to limit lines per window and counts the rest, so
// that the next allowed line can report how many were dropped.
type logLimiter struct {
	limit  int
	window time.Duration

	mu         sync.Mutex
	start      time.Time // guarded by mu; start of the current window
	count      int       // guarded by mu; lines allowed in the current window
	suppressed int       // guarded by mu; lines dropped since the last allowed one
}

// allow reports whether a line at now may be logged and, if so, how many
// lines were dropped before it.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.window {
		l.start = now
		l.count = 0
	}
	if l.count >= l.limit {
		l.suppressed++
		return false, 0
	}
	l.count++
	suppressed = l.suppressed
	l.suppressed = 0
	return true, suppressed
}
