package main

import (
	"sync"
	"time"
)

// recorder collects the events of a run in the order they happen. Times are
// monotonic nanoseconds since the recorder was made.
type recorder struct {
	start time.Time

	mu      sync.Mutex
	events  []Event
	invoked map[int]int64 // process -> time of its open invocation
}

func newRecorder() *recorder {
	return &recorder{start: time.Now(), invoked: make(map[int]int64)}
}

// since returns the run time of t.
func (r *recorder) since(t time.Time) int64 { return int64(t.Sub(r.start)) }

// now returns the current run time.
func (r *recorder) now() int64 { return r.since(time.Now()) }

// invoke records e as an invocation and returns it with its index and time.
func (r *recorder) invoke(e Event) Event {
	e.Type = typeInvoke
	return r.add(e)
}

// complete records the completion of inv with type typ. fill, when not nil,
// sets the completion's own fields; the process, operation and node are
// copied from inv.
func (r *recorder) complete(inv Event, typ string, fill func(*Event)) Event {
	e := Event{Process: inv.Process, F: inv.F, Node: inv.Node, Session: inv.Session, User: inv.User, Type: typ}
	if fill != nil {
		fill(&e)
	}
	e.Type = typ
	return r.add(e)
}

func (r *recorder) add(e Event) Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.Time = r.now()
	e.Index = len(r.events)
	if e.Type == typeInvoke {
		r.invoked[e.Process] = e.Time
	} else if t, ok := r.invoked[e.Process]; ok {
		e.Latency = e.Time - t
		delete(r.invoked, e.Process)
	}
	r.events = append(r.events, e)
	return e
}

// history returns a copy of the events so far.
func (r *recorder) history() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
