package main

import (
	"encoding/json"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkRefreshHTTP measures refreshes over HTTP on one node with fsync
// on: each parallel worker rotates its own session's token chain, so every
// operation is one Raft commit.
func BenchmarkRefreshHTTP(b *testing.B) {
	tn := startTestNode(b)
	tn.signup("bench", "correct horse")

	// One session per worker, logged in before the timer starts: login
	// costs an argon2id hash and is not what this measures.
	const parallelism = 16
	b.SetParallelism(parallelism)
	workers := parallelism * runtime.GOMAXPROCS(0)
	sessions := make(chan string, workers)
	for range workers {
		sessions <- tn.login("bench", "correct horse").Refresh
	}

	var failures atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		current := <-sessions
		for pb.Next() {
			r := tn.refresh(current)
			if r.status != http.StatusOK {
				failures.Add(1)
				continue
			}
			var next tokens
			if err := json.Unmarshal(r.body, &next); err != nil {
				failures.Add(1)
				continue
			}
			current = next.Refresh
		}
	})
	b.StopTimer()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d refreshes failed", n)
	}
}

// BenchmarkValidateHTTP measures GET /v1/me with one access token: local
// validation (cached signature check, deny-set lookup) plus the HTTP stack.
func BenchmarkValidateHTTP(b *testing.B) {
	tn := startTestNode(b)
	tn.signup("bench", "correct horse")
	tk := tn.login("bench", "correct horse")
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if got := tn.me(tk.Access); got != http.StatusOK {
				b.Errorf("me: got %d, want 200", got)
				return
			}
		}
	})
}
