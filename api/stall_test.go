package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestStallGuard(t *testing.T) {
	g := newStallGuard(newStatelessServer(t).log)
	if g.stalled() {
		t.Fatal("a guard that does not run reports a stall")
	}
	stop := make(chan struct{})
	defer close(stop)
	go g.run(stop)
	for !g.running.Load() {
		time.Sleep(time.Millisecond)
	}
	if g.stalled() {
		t.Fatal("a running guard reports a stall without one")
	}

	// The process "stops": the ticker's last beat falls far behind.
	g.lastBeat.Store(g.now() - int64(3*time.Second))
	if !g.stalled() {
		t.Fatal("an overdue ticker is not reported as a stall")
	}
	// The ticker runs again and notices the gap; writes stay refused for
	// the quarantine, then are taken again.
	deadline := time.Now().Add(5 * time.Second)
	for g.stallEnd.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the ticker did not notice the gap")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !g.stalled() {
		t.Fatal("no quarantine right after a stall")
	}
	for g.stalled() {
		if time.Now().After(deadline) {
			t.Fatal("the quarantine did not end")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWritesRefusedAfterStall(t *testing.T) {
	s := newStatelessServer(t)
	stop := make(chan struct{})
	defer close(stop)
	go s.stalls.run(stop)
	for !s.stalls.running.Load() {
		time.Sleep(time.Millisecond)
	}
	s.stalls.lastBeat.Store(s.stalls.now() - int64(3*time.Second))

	rec := serve(s, http.MethodPost, "/v1/refresh")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("refresh right after a stall: got %d with Retry-After %q, want 503 with Retry-After",
			rec.Code, rec.Header().Get("Retry-After"))
	}
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != CodeUnavailable {
		t.Fatalf("body: %s, want code unavailable", rec.Body)
	}
	if rec := serve(s, http.MethodGet, "/livez"); rec.Code != http.StatusOK {
		t.Errorf("livez right after a stall: got %d, want 200: reads stay served", rec.Code)
	}
}
