//go:build !jepsen

package main

import (
	"log/slog"
	"time"
)

// newClock returns the node's clock. Only the fault-injection build
// (-tags jepsen) can shift it; see clock_jepsen.go.
func newClock(*slog.Logger) func() time.Time { return time.Now }
