package api

import (
	"testing"
	"time"
)

func TestSecondsUntil(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		now  time.Time
		t    time.Time
		want int64
	}{
		{"whole seconds", base, base.Add(300 * time.Second), 300},
		{"same instant", base, base, 0},
		{"past", base, base.Add(-time.Minute), 0},
		{"same second", base.Add(100 * time.Millisecond), base.Add(900 * time.Millisecond), 0},
		{"now late in its second", base.Add(900 * time.Millisecond), base.Add(300 * time.Second), 300},
		{"both mid-second", base.Add(500 * time.Millisecond), base.Add(300*time.Second + 500*time.Millisecond), 300},
		{"target just before boundary", base, base.Add(300*time.Second - time.Millisecond), 299},
		{"next second", base.Add(999 * time.Millisecond), base.Add(time.Second), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := secondsUntil(tt.now, tt.t); got != tt.want {
				t.Errorf("secondsUntil(%s, %s): got %d, want %d", tt.now.Format(time.RFC3339Nano), tt.t.Format(time.RFC3339Nano), got, tt.want)
			}
		})
	}
}
