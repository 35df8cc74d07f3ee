package fsm

import (
	"sort"
	"sync"
	"time"
)

// Revocation is one deny entry: access tokens of Session are rejected until
// Until, when the last of them expires anyway.
type Revocation struct {
	Session ID        `json:"session"`
	Until   time.Time `json:"until"`
}

// Revocations is the deny set that access-token validation consults. The FSM
// adds an entry for every session it revokes. Gossip from the leader may add
// an entry before the local FSM applies the same revocation. The set has its
// own lock, so validation never waits for Apply.
type Revocations struct {
	mu      sync.RWMutex
	entries map[ID]time.Time // guarded by mu

	// Changes since this set was made or replaced, for readers that keep a
	// copy: each Add that changed an entry gets the next sequence number.
	// changes keeps the newest maxChanges of them; guarded by mu.
	incarnation ID
	seq         uint64
	changes     []change
}

type change struct {
	seq uint64
	Revocation
}

// maxChanges bounds the change log. A reader further behind gets the whole
// set instead.
const maxChanges = 4096

// NewRevocations returns an empty deny set.
func NewRevocations() *Revocations {
	return &Revocations{entries: make(map[ID]time.Time), incarnation: NewID()}
}

// Add denies the session's access tokens until until. A later until wins over
// an earlier one.
func (r *Revocations) Add(session ID, until time.Time) {
	r.mu.Lock()
	if cur, ok := r.entries[session]; !ok || until.After(cur) {
		r.entries[session] = until
		r.seq++
		if len(r.changes) == maxChanges {
			r.changes = append(r.changes[:0], r.changes[maxChanges/2:]...)
		}
		r.changes = append(r.changes, change{seq: r.seq, Revocation: Revocation{Session: session, Until: until}})
	}
	r.mu.Unlock()
}

// Cursor names a point in one deny set's history, for Since.
type Cursor struct {
	Incarnation ID
	Seq         uint64
}

// Since returns what changed after cursor and the cursor to ask with next
// time. When the cursor comes from another incarnation of the set (another
// node, or before a restore) or is too old for the change log, it returns
// the whole set with full set: the reader replaces its copy. Entries past
// their Until may be included; readers drop them.
func (r *Revocations) Since(cursor Cursor) (entries []Revocation, next Cursor, full bool) {
	r.mu.RLock()
	next = Cursor{Incarnation: r.incarnation, Seq: r.seq}
	oldest := r.seq + 1
	if len(r.changes) > 0 {
		oldest = r.changes[0].seq
	}
	incremental := cursor.Incarnation == r.incarnation && cursor.Seq <= r.seq && cursor.Seq+1 >= oldest
	if incremental {
		for _, c := range r.changes {
			if c.seq > cursor.Seq {
				entries = append(entries, c.Revocation)
			}
		}
		r.mu.RUnlock()
		return entries, next, false
	}
	r.mu.RUnlock()
	return r.List(), next, true
}

// Denied reports whether the session's access tokens are revoked.
func (r *Revocations) Denied(session ID) bool {
	r.mu.RLock()
	_, ok := r.entries[session]
	r.mu.RUnlock()
	return ok
}

// Len returns the number of deny entries.
func (r *Revocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.entries)
}

// Expire drops the entries whose Until is at or before t.
func (r *Revocations) Expire(t time.Time) {
	r.mu.Lock()
	for id, until := range r.entries {
		if !until.After(t) {
			delete(r.entries, id)
		}
	}
	r.mu.Unlock()
}

// List returns every entry, sorted by session id.
func (r *Revocations) List() []Revocation {
	r.mu.RLock()
	out := make([]Revocation, 0, len(r.entries))
	for id, until := range r.entries {
		out = append(out, Revocation{Session: id, Until: until})
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return lessID(out[i].Session, out[j].Session) })
	return out
}

// replace swaps in a whole new set; Restore uses it.
func (r *Revocations) replace(entries []Revocation) {
	m := make(map[ID]time.Time, len(entries))
	for _, e := range entries {
		m[e.Session] = e.Until
	}
	r.mu.Lock()
	r.entries = m
	r.incarnation, r.seq, r.changes = NewID(), 0, nil
	r.mu.Unlock()
}

func lessID(a, b ID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
