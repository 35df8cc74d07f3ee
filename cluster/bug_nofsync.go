//go:build inject_nofsync

package cluster

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// injectNoFsync is a deliberate fault for the fault-injection harness in
// jepsen/, which builds the node with -tags inject_nofsync to show that its
// checkers catch lost acknowledged writes. The log is then acknowledged
// before it is durable. Killing a process does not drop the kernel's page
// cache, so merely skipping fsync loses nothing in a test that kills
// processes. This build keeps new entries in process memory for
// deferredWrite instead. A SIGKILL loses them the way a power cut loses
// unsynced pages. Never build a release with this tag.
const injectNoFsync = true

const deferredWrite = time.Second

func wrapLogStore(s raft.LogStore) raft.LogStore {
	return &deferredLogStore{LogStore: s, pending: make(map[uint64]*raft.Log)}
}

// deferredLogStore returns from StoreLogs at once and writes the entries to the
// underlying store later, all at once.
type deferredLogStore struct {
	raft.LogStore

	mu        sync.Mutex
	pending   map[uint64]*raft.Log
	scheduled bool
}

func (d *deferredLogStore) StoreLog(l *raft.Log) error {
	return d.StoreLogs([]*raft.Log{l})
}

func (d *deferredLogStore) StoreLogs(logs []*raft.Log) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range logs {
		d.pending[l.Index] = l
	}
	if !d.scheduled {
		d.scheduled = true
		time.AfterFunc(deferredWrite, d.flush)
	}
	return nil
}

func (d *deferredLogStore) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.scheduled = false
	if len(d.pending) == 0 {
		return
	}
	batch := make([]*raft.Log, 0, len(d.pending))
	for _, l := range d.pending {
		batch = append(batch, l)
	}
	slices.SortFunc(batch, func(a, b *raft.Log) int { return cmp.Compare(a.Index, b.Index) })
	if err := d.LogStore.StoreLogs(batch); err != nil {
		// Keep the entries and try again later, as a disk would.
		d.scheduled = true
		time.AfterFunc(deferredWrite, d.flush)
		return
	}
	clear(d.pending)
}

func (d *deferredLogStore) GetLog(index uint64, out *raft.Log) error {
	d.mu.Lock()
	l, ok := d.pending[index]
	d.mu.Unlock()
	if ok {
		*out = *l
		return nil
	}
	return d.LogStore.GetLog(index, out)
}

func (d *deferredLogStore) FirstIndex() (uint64, error) {
	first, err := d.LogStore.FirstIndex()
	if err != nil || first != 0 {
		return first, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.pending {
		if first == 0 || i < first {
			first = i
		}
	}
	return first, nil
}

func (d *deferredLogStore) LastIndex() (uint64, error) {
	last, err := d.LogStore.LastIndex()
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.pending {
		last = max(last, i)
	}
	return last, nil
}

func (d *deferredLogStore) DeleteRange(minIndex, maxIndex uint64) error {
	d.mu.Lock()
	for i := range d.pending {
		if i >= minIndex && i <= maxIndex {
			delete(d.pending, i)
		}
	}
	d.mu.Unlock()
	return d.LogStore.DeleteRange(minIndex, maxIndex)
}
