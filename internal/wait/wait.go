// Package wait has the one helper that several packages need to pause
// without outliving their context.
package wait

import (
	"context"
	"time"
)

// Sleep pauses for d and reports true, or returns false as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
