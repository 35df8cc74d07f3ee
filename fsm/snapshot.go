package fsm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"

	"github.com/hashicorp/raft"
)

// snapshotVersion is the format written by Persist. Restore rejects others.
const snapshotVersion = 1

// maxRestorePrealloc caps how many records Restore allocates room for before
// it has read them.
const maxRestorePrealloc = 1 << 20

// snapshotHeader is the first JSON value of a snapshot. Users and then
// sessions follow, one JSON value each, sorted by id so that equal states
// give byte-identical snapshots.
type snapshotHeader struct {
	Version  int     `json:"version"`
	Users    int     `json:"users"`
	Sessions int     `json:"sessions"`
	Epochs   []Epoch `json:"epochs"`
	// Roles maps each role to its permissions; absent in older snapshots.
	Roles map[string][]string `json:"roles,omitempty"`
}

type snapshot struct {
	users    []*User
	sessions []*Session
	epochs   []Epoch
	roles    map[string][]string
}

// Snapshot captures the state for raft. It copies only pointers under the
// lock, because records are copy-on-write; sorting and encoding happen in
// Persist, off raft's apply path.
// NOTE: the pointer copy is O(sessions) under the read lock, so a very large
// state delays Apply for that long (tens of milliseconds per million).
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := &snapshot{
		users:    make([]*User, 0, len(f.users)),
		sessions: make([]*Session, 0, len(f.sessions)),
		epochs:   slices.Clone(f.epochs),
		roles:    maps.Clone(f.rolePermissions),
	}
	for _, u := range f.users {
		s.users = append(s.users, u)
	}
	for _, ss := range f.sessions {
		s.sessions = append(s.sessions, ss)
	}
	return s, nil
}

// Persist writes the snapshot to sink.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.writeTo(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) writeTo(w io.Writer) error {
	sort.Slice(s.users, func(i, j int) bool { return lessID(s.users[i].ID, s.users[j].ID) })
	sort.Slice(s.sessions, func(i, j int) bool { return lessID(s.sessions[i].ID, s.sessions[j].ID) })

	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	header := snapshotHeader{Version: snapshotVersion, Users: len(s.users), Sessions: len(s.sessions), Epochs: s.epochs, Roles: s.roles}
	if err := enc.Encode(header); err != nil {
		return fmt.Errorf("write snapshot header: %w", err)
	}
	for _, u := range s.users {
		if err := enc.Encode(u); err != nil {
			return fmt.Errorf("write snapshot user: %w", err)
		}
	}
	for _, ss := range s.sessions {
		if err := enc.Encode(ss); err != nil {
			return fmt.Errorf("write snapshot session: %w", err)
		}
	}
	return bw.Flush()
}

// Release does nothing: the snapshot holds no resources.
func (s *snapshot) Release() {}

// Restore replaces the whole state with a snapshot written by Persist. The
// deny set and the per-user index are derived from the sessions.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(rc, 64<<10))

	var header snapshotHeader
	if err := dec.Decode(&header); err != nil {
		return fmt.Errorf("read snapshot header: %w", err)
	}
	if header.Version != snapshotVersion {
		return fmt.Errorf("snapshot version %d is not supported, want %d", header.Version, snapshotVersion)
	}
	if header.Users < 0 || header.Sessions < 0 {
		return fmt.Errorf("invalid snapshot header: %d users, %d sessions", header.Users, header.Sessions)
	}

	// The counts come from the stream, so they size the first allocation only
	// up to maxRestorePrealloc. A corrupt count then fails on a missing record
	// instead of allocating room for count records up front.
	users := make([]*User, 0, min(header.Users, maxRestorePrealloc))
	for i := range header.Users {
		u := new(User)
		if err := dec.Decode(u); err != nil {
			return fmt.Errorf("read snapshot user %d: %w", i, err)
		}
		users = append(users, u)
	}
	sessions := make([]*Session, 0, min(header.Sessions, maxRestorePrealloc))
	for i := range header.Sessions {
		s := new(Session)
		if err := dec.Decode(s); err != nil {
			return fmt.Errorf("read snapshot session %d: %w", i, err)
		}
		sessions = append(sessions, s)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.load(users, sessions, header.Epochs)
	for role, perms := range header.Roles {
		f.rolePermissions[role] = perms
	}
	return nil
}

// load installs decoded records. The caller holds f.mu for writing.
func (f *FSM) load(users []*User, sessions []*Session, epochs []Epoch) {
	f.reset()
	f.epochs = epochs
	for _, u := range users {
		f.users[u.ID] = u
		f.usernames[u.Username] = u.ID
	}

	// The per-user index keeps creation order, as Apply builds it.
	sort.SliceStable(sessions, func(i, j int) bool {
		if !sessions[i].Created.Equal(sessions[j].Created) {
			return sessions[i].Created.Before(sessions[j].Created)
		}
		return lessID(sessions[i].ID, sessions[j].ID)
	})
	var denied []Revocation
	for _, s := range sessions {
		f.sessions[s.ID] = s
		f.userSessions[s.UserID] = append(f.userSessions[s.UserID], s.ID)
		if s.Revoked {
			denied = append(denied, Revocation{Session: s.ID, Until: s.DenyUntil})
		}
	}
	f.revocations.replace(denied)
}
