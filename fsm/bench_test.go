package fsm_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rotorhq/rotor/fsm"
)

// benchExpires is far enough out that no benchmark reaches it.
const benchExpires = 365 * 24 * time.Hour

// numberedID returns an id that encodes kind and n, so benchmarks build
// distinct ids without crypto/rand.
func numberedID(kind byte, n int) fsm.ID {
	var id fsm.ID
	id[0] = kind
	id[12] = byte(n >> 24)
	id[13] = byte(n >> 16)
	id[14] = byte(n >> 8)
	id[15] = byte(n)
	return id
}

// benchUserAgent returns a 110-byte browser user agent that differs per n.
func benchUserAgent(n int) string {
	return fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.%04d.8 Safari/537.36 Edg/1", n%10000)
}

// benchSessionCommand returns a CreateSession with client fields of realistic
// size: a 36-character device id, a 20-character device name, a 110-byte
// user agent and an IPv4 address.
func benchSessionCommand(n int, user fsm.ID) *fsm.CreateSession {
	return &fsm.CreateSession{
		At:          t0,
		SessionID:   numberedID('s', n),
		UserID:      user,
		Nonce:       numberedID('n', n),
		IdleExpires: t0.Add(idleLifetime),
		Expires:     t0.Add(benchExpires),
		DeviceID:    fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", n, n&0xffff, n&0xfff, (n>>12)&0xfff, n*7919),
		DeviceName:  fmt.Sprintf("Pixel 8 Pro #%07d", n%10_000_000),
		UserAgent:   benchUserAgent(n),
		IP:          fmt.Sprintf("10.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff),
	}
}

// populate creates users and sessions, spreading the sessions round-robin
// over the users, and returns the session ids.
func populate(tb testing.TB, f *fsm.FSM, users, sessions int) []fsm.ID {
	tb.Helper()
	userIDs := make([]fsm.ID, users)
	for i := range userIDs {
		userIDs[i] = numberedID('u', i)
		c := &fsm.CreateUser{At: t0, UserID: userIDs[i], Username: fmt.Sprintf("user%07d", i), PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}
		if res := f.ApplyCommand(c); res.Err != nil {
			tb.Fatalf("create user %d: %v", i, res.Err)
		}
	}
	sessionIDs := make([]fsm.ID, sessions)
	for i := range sessionIDs {
		c := benchSessionCommand(i, userIDs[i%users])
		if res := f.ApplyCommand(c); res.Err != nil {
			tb.Fatalf("create session %d: %v", i, res.Err)
		}
		sessionIDs[i] = c.SessionID
	}
	return sessionIDs
}

func BenchmarkApplyRotate(b *testing.B) {
	const sessions = 10_000

	b.Run("command", func(b *testing.B) {
		f := fsm.New(nil)
		ids := populate(b, f, sessions/4, sessions)
		generations := make([]uint64, sessions)
		for i := range generations {
			generations[i] = 1
		}
		at := t0
		b.ReportAllocs()
		b.ResetTimer()

		for i := 0; i < b.N; i++ {
			k := i % sessions
			at = at.Add(time.Millisecond)
			c := &fsm.RotateSession{At: at, SessionID: ids[k], FromGeneration: generations[k], IdleExpires: at.Add(idleLifetime), IP: "10.1.2.3"}
			if res := f.ApplyCommand(c); res.Err != nil {
				b.Fatalf("rotation %d: %v", i, res.Err)
			}
			generations[k]++
		}
	})

	// batch64 applies 64 rotations of distinct sessions per ApplyBatch call,
	// as raft hands a batch of committed entries to the FSM. Encoding happens
	// with the timer stopped, because the leader does it before the entries
	// reach any FSM.
	b.Run("batch64", func(b *testing.B) {
		const batch = 64
		f := fsm.New(nil)
		ids := populate(b, f, sessions/4, sessions)
		generations := make([]uint64, sessions)
		for i := range generations {
			generations[i] = 1
		}
		logs := make([]*raft.Log, batch)
		at := t0
		next := 0
		b.ReportAllocs()
		b.ResetTimer()

		for i := 0; i < b.N; i++ {
			b.StopTimer()
			for j := range logs {
				k := (next + j) % sessions
				at = at.Add(time.Millisecond)
				data, err := fsm.Encode(&fsm.RotateSession{At: at, SessionID: ids[k], FromGeneration: generations[k], IdleExpires: at.Add(idleLifetime), IP: "10.1.2.3"})
				if err != nil {
					b.Fatalf("Encode: %v", err)
				}
				logs[j] = &raft.Log{Index: uint64(i*batch + j + 1), Type: raft.LogCommand, Data: data}
				generations[k]++
			}
			next = (next + batch) % sessions
			b.StartTimer()

			for j, out := range f.ApplyBatch(logs) {
				if res := out.(*fsm.Result); res.Err != nil {
					b.Fatalf("batch %d entry %d: %v", i, j, res.Err)
				}
			}
		}

		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/rotation")
	})
}

func BenchmarkApplyCreateSession(b *testing.B) {
	const users = 1000
	f := fsm.New(nil)
	populate(b, f, users, 0)
	b.ReportAllocs()
	b.ResetTimer()

	for i := 0; i < b.N; i++ {
		c := benchSessionCommand(i, numberedID('u', i%users))
		if res := f.ApplyCommand(c); res.Err != nil {
			b.Fatalf("create session %d: %v", i, res.Err)
		}
	}
}

// countingSink is a raft.SnapshotSink that discards the snapshot and counts
// its bytes.
type countingSink struct {
	written int64
}

func (s *countingSink) Write(p []byte) (int, error) {
	s.written += int64(len(p))
	return len(p), nil
}

func (s *countingSink) ID() string    { return "counting" }
func (s *countingSink) Cancel() error { return nil }
func (s *countingSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*countingSink)(nil)

func BenchmarkSnapshotPersist(b *testing.B) {
	const sessions = 100_000
	f := fsm.New(nil)
	populate(b, f, sessions/5, sessions)

	// Snapshot alone is the part that holds the FSM's read lock, so it
	// delays Apply.
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			snap, err := f.Snapshot()
			if err != nil {
				b.Fatalf("Snapshot: %v", err)
			}
			snap.Release()
		}
	})

	b.Run("snapshot+persist", func(b *testing.B) {
		b.ReportAllocs()
		var size int64
		for i := 0; i < b.N; i++ {
			snap, err := f.Snapshot()
			if err != nil {
				b.Fatalf("Snapshot: %v", err)
			}
			sink := &countingSink{}
			if err := snap.Persist(sink); err != nil {
				b.Fatalf("Persist: %v", err)
			}
			snap.Release()
			size = sink.written
		}
		b.SetBytes(size)
		b.ReportMetric(float64(size)/sessions, "B/session-on-disk")
	})

	b.Run("restore", func(b *testing.B) {
		snap, err := f.Snapshot()
		if err != nil {
			b.Fatalf("Snapshot: %v", err)
		}
		data := persistSnapshot(b, snap)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := fsm.New(nil).Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
				b.Fatalf("Restore: %v", err)
			}
		}
	})
}

// BenchmarkIdleSessionMemory measures the heap that one million idle
// sessions over 200,000 users hold, and checks that they hold no goroutine.
// One iteration takes several seconds, so the default -benchtime runs it
// once. The numbers come from runtime.MemStats.HeapAlloc after a full GC,
// so they include map overhead but not memory the runtime has freed yet.
func BenchmarkIdleSessionMemory(b *testing.B) {
	const (
		users    = 200_000
		sessions = 1_000_000
	)
	if n := len(benchUserAgent(0)); n != 110 {
		b.Fatalf("user agent length: got %d, want 110", n)
	}

	for i := 0; i < b.N; i++ {
		goroutinesBefore := runtime.NumGoroutine()
		base := heapAfterGC()

		f := fsm.New(nil)
		populate(b, f, users, 0)
		afterUsers := heapAfterGC()

		for j := range sessions {
			if res := f.ApplyCommand(benchSessionCommand(j, numberedID('u', j%users))); res.Err != nil {
				b.Fatalf("create session %d: %v", j, res.Err)
			}
		}
		afterSessions := heapAfterGC()
		goroutinesAfter := runtime.NumGoroutine()

		if u, s := f.Counts(); u != users || s != sessions {
			b.Fatalf("Counts: got %d users, %d sessions, want %d, %d", u, s, users, sessions)
		}
		start := time.Now()
		snap, err := f.Snapshot()
		if err != nil {
			b.Fatalf("Snapshot: %v", err)
		}
		snapshotTime := time.Since(start)
		snap.Release()
		runtime.KeepAlive(f)

		b.ReportMetric(float64(afterSessions-afterUsers)/sessions, "B/session")
		b.ReportMetric(float64(afterUsers-base)/users, "B/user")
		b.ReportMetric(float64(afterSessions-base)/(1<<20), "MiB-total")
		b.ReportMetric(float64(goroutinesAfter-goroutinesBefore), "goroutines")
		b.ReportMetric(float64(snapshotTime.Microseconds())/1000, "snapshot-ms")
		if goroutinesAfter > goroutinesBefore {
			b.Errorf("goroutines: got %d after creating sessions, want at most %d", goroutinesAfter, goroutinesBefore)
		}
	}
}

// heapAfterGC returns HeapAlloc after a full collection.
func heapAfterGC() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
