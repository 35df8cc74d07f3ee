//go:build jepsen

package main

import (
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// clockOffsetEnv names a file holding a Go duration, such as "-3s", that the
// node adds to its clock. It exists only in the build the fault-injection
// harness in jepsen/ makes (-tags jepsen), which rewrites the file to skew
// one node's clock while the node runs.
const clockOffsetEnv = "ROTOR_TEST_CLOCK_OFFSET_FILE"

// clockPoll is how often the offset file is read again.
const clockPoll = 100 * time.Millisecond

func newClock(logger *slog.Logger) func() time.Time {
	path := os.Getenv(clockOffsetEnv)
	if path == "" {
		return time.Now
	}
	logger.Warn("test build: the clock follows an offset file", "path", path)
	var offset atomic.Int64
	read := func() {
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		d, err := time.ParseDuration(strings.TrimSpace(string(b)))
		if err != nil {
			return
		}
		if old := time.Duration(offset.Swap(int64(d))); old != d {
			logger.Warn("test clock offset changed", "offset", d.String())
		}
	}
	read()
	go func() {
		for range time.Tick(clockPoll) {
			read()
		}
	}()
	return func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
}
