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
}

// NewRevocations returns an empty deny set.
func NewRevocations() *Revocations {
	return &Revocations{entries: make(map[ID]time.Time)}
}

// Add denies the session's access tokens until until. A later until wins over
// an earlier one.
func (r *Revocations) Add(session ID, until time.Time) {
	r.mu.Lock()
	if cur, ok := r.entries[session]; !ok || until.After(cur) {
		r.entries[session] = until
	}
	r.mu.Unlock()
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
