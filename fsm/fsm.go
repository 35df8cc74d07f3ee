package fsm

import (
	"slices"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is Rotor's replicated state machine.
type FSM struct {
	// mu guards the maps and slices below. Raft's apply goroutine holds it for
	// writing; accessors hold it for reading.
	mu           sync.RWMutex
	users        map[ID]*User
	usernames    map[string]ID
	sessions     map[ID]*Session
	userSessions map[ID][]ID // session ids per user, in creation order
	epochs       []Epoch     // oldest first; the last one is current

	// rolePermissions maps a role to the permissions it grants. Values are
	// sorted and never changed in place.
	rolePermissions map[string][]string

	// revocations has its own lock; Apply adds to it while holding mu.
	revocations *Revocations

	// onRevoke, when set, receives the deny entries each Apply or
	// ApplyBatch added, after mu is released. pending collects them; it is
	// touched only by raft's apply goroutine.
	onRevoke func([]Revocation)
	pending  []Revocation
}

// OnRevoke registers fn to receive every deny entry the FSM adds, right after
// the entry that added it is applied. Call it before raft starts. fn runs on
// raft's apply goroutine and must not block: the leader uses it to queue a
// gossip broadcast.
func (f *FSM) OnRevoke(fn func([]Revocation)) {
	f.onRevoke = fn
}

// notifyRevoked hands the pending deny entries to the hook. The caller must
// not hold mu.
func (f *FSM) notifyRevoked() {
	if len(f.pending) == 0 {
		return
	}
	batch := f.pending
	f.pending = nil
	if f.onRevoke != nil {
		f.onRevoke(batch)
	}
}

var _ raft.BatchingFSM = (*FSM)(nil)

// New returns an empty state machine that records revocations in revs. A nil
// revs gets a fresh set.
func New(revs *Revocations) *FSM {
	if revs == nil {
		revs = NewRevocations()
	}
	f := &FSM{revocations: revs}
	f.reset()
	return f
}

func (f *FSM) reset() {
	f.users = make(map[ID]*User)
	f.usernames = make(map[string]ID)
	f.sessions = make(map[ID]*Session)
	f.userSessions = make(map[ID][]ID)
	f.epochs = nil
	f.rolePermissions = make(map[string][]string)
}

// RolePermissions returns a copy of the role-to-permission map.
func (f *FSM) RolePermissions() map[string][]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string][]string, len(f.rolePermissions))
	for role, perms := range f.rolePermissions {
		out[role] = perms // shared: never changed in place
	}
	return out
}

// PermissionsOf returns the sorted union of the permissions the roles grant.
func (f *FSM) PermissionsOf(roles []string) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []string
	for _, role := range roles {
		out = append(out, f.rolePermissions[role]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Apply applies one log entry. It returns a *Result for command entries and
// nil for entries of other kinds.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	res := f.applyLog(l)
	f.mu.Unlock()
	f.notifyRevoked()
	return res
}

// ApplyBatch applies the entries raft committed together under one lock.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	f.mu.Lock()
	for i, l := range logs {
		out[i] = f.applyLog(l)
	}
	f.mu.Unlock()
	f.notifyRevoked()
	return out
}

func (f *FSM) applyLog(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := Decode(l.Data)
	if err != nil {
		// An entry this version cannot read changes nothing, and the
		// caller that proposed it receives the error.
		return &Result{Err: err}
	}
	return f.apply(c)
}

// ApplyCommand applies a command directly, without Raft. Tests and
// benchmarks use it; a running node applies only through the log.
func (f *FSM) ApplyCommand(c Command) *Result {
	data, err := Encode(c)
	if err != nil {
		return &Result{Err: err}
	}
	res, _ := f.Apply(&raft.Log{Type: raft.LogCommand, Data: data}).(*Result)
	return res
}

// User returns the user with the given id.
func (f *FSM) User(id ID) (*User, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	u, ok := f.users[id]
	return u, ok
}

// UserByName returns the user with the given normalized username.
func (f *FSM) UserByName(username string) (*User, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.usernames[username]
	if !ok {
		return nil, false
	}
	return f.users[id], true
}

// Session returns the session with the given id, revoked or not.
func (f *FSM) Session(id ID) (*Session, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s, ok := f.sessions[id]
	return s, ok
}

// UserSessions returns the user's sessions, revoked ones included, in creation
// order.
func (f *FSM) UserSessions(user ID) []*Session {
	f.mu.RLock()
	defer f.mu.RUnlock()
	ids := f.userSessions[user]
	out := make([]*Session, 0, len(ids))
	for _, id := range ids {
		out = append(out, f.sessions[id])
	}
	return out
}

// Revocations returns the deny set the FSM writes to.
func (f *FSM) Revocations() *Revocations { return f.revocations }

// CurrentEpoch returns the signing-key epoch new tokens are signed with; 0
// means no key exists yet.
func (f *FSM) CurrentEpoch() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.currentEpoch()
}

// Epochs returns every epoch still kept, oldest first.
func (f *FSM) Epochs() []Epoch {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.epochs)
}

// Counts returns how many users and sessions the state holds.
func (f *FSM) Counts() (users, sessions int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.users), len(f.sessions)
}

// Epoch returns the kept epoch with the given number. It does not allocate,
// because access-token validation calls it on every request.
func (f *FSM) Epoch(number uint64) (Epoch, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for i := len(f.epochs) - 1; i >= 0; i-- {
		if f.epochs[i].Number == number {
			return f.epochs[i], true
		}
	}
	return Epoch{}, false
}
