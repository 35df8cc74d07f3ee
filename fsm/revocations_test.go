package fsm_test

import (
	"testing"
	"time"

	"github.com/rotorhq/rotor/fsm"
)

func TestRevocationsSince(t *testing.T) {
	r := fsm.NewRevocations()
	until := time.Unix(1_700_000_000, 0)
	a, b, c := fsm.NewID(), fsm.NewID(), fsm.NewID()
	r.Add(a, until)

	entries, cursor, full := r.Since(fsm.Cursor{})
	if !full || len(entries) != 1 {
		t.Fatalf("first read: got %d entries, full=%v, want the whole set of 1", len(entries), full)
	}
	r.Add(b, until)
	r.Add(a, until) // no change: not a new entry
	r.Add(c, until.Add(time.Minute))
	entries, next, full := r.Since(cursor)
	if full || len(entries) != 2 || entries[0].Session != b || entries[1].Session != c {
		t.Fatalf("changes: got %v, full=%v, want b then c", entries, full)
	}
	if entries, _, full := r.Since(next); full || len(entries) != 0 {
		t.Fatalf("nothing new: got %v, full=%v, want no entries", entries, full)
	}

	other := fsm.NewRevocations()
	if _, _, full := other.Since(next); !full {
		t.Error("a cursor of another set: got changes, want the whole set")
	}
	ahead := fsm.Cursor{Incarnation: next.Incarnation, Seq: next.Seq + 5}
	if _, _, full := r.Since(ahead); !full {
		t.Error("a cursor from the future: got changes, want the whole set")
	}
}

func TestRevocationsSinceTooOld(t *testing.T) {
	r := fsm.NewRevocations()
	_, start, _ := r.Since(fsm.Cursor{})
	until := time.Unix(1_700_000_000, 0)
	for range 5000 {
		r.Add(fsm.NewID(), until)
	}
	entries, _, full := r.Since(start)
	if !full || len(entries) != 5000 {
		t.Fatalf("a cursor older than the change log: got %d entries, full=%v, want all 5000", len(entries), full)
	}
}
