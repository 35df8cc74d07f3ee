package main

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// refreshAttempt is one request of a refresh stream.
type refreshAttempt struct {
	sent     time.Time
	received time.Time
	node     int
	status   int // 0 after a transport error
	code     string
	err      error
	rotated  bool
	repeated bool // the response returned a successor that an earlier response returned
}

// refreshStream refreshes one session's chain in a loop, round-robin over
// the nodes, as a client behind a load balancer would. It sends the same
// token again after a 503 or a transport error and the successor after a
// 200, and stops at the first other status.
type refreshStream struct {
	c       *procCluster
	current string

	mu        sync.Mutex
	attempts  []refreshAttempt
	presented string // the last token that got a 200
	successor string // the refresh token of that 200
	rotations atomic.Int64
}

// maxStreamAttempts bounds a stream's requests in case it never stops.
const maxStreamAttempts = 20000

// run sends refreshes until stop is closed or a status other than 200 or 503
// arrives. It is the only writer of current.
func (s *refreshStream) run(stop <-chan struct{}) {
	seen := map[string]bool{}
	for k := range maxStreamAttempts {
		select {
		case <-stop:
			return
		default:
		}
		i := k % len(s.c.nodes)
		a := refreshAttempt{sent: time.Now(), node: i}
		r, err := s.c.refresh(i, s.current)
		a.received = time.Now()
		if err != nil {
			a.err = err
		} else {
			a.status = r.status
			a.code = errorCode(r)
		}
		if a.status == http.StatusOK {
			var next tokens
			if err := json.Unmarshal(r.body, &next); err != nil {
				a.status, a.err = 0, err
			} else {
				a.rotated = true
				a.repeated = seen[next.Refresh]
				seen[next.Refresh] = true
				s.mu.Lock()
				s.presented, s.successor = s.current, next.Refresh
				s.mu.Unlock()
				s.current = next.Refresh
				s.rotations.Add(1)
			}
		}
		s.mu.Lock()
		s.attempts = append(s.attempts, a)
		s.mu.Unlock()

		if a.status != http.StatusOK && a.status != http.StatusServiceUnavailable && a.err == nil {
			return
		}
		if !a.rotated {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// awaitRotations waits until the stream has rotated n times in total or
// bound has passed, and reports whether it got there.
func (s *refreshStream) awaitRotations(n int64, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for s.rotations.Load() < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestClusterLeaderKill kills the leader with SIGKILL while a client
// refreshes one session continuously through every node. The client must see
// only 200 and 503, and its session must survive the failover.
func TestClusterLeaderKill(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.signup(0, "stream")
	login := c.login(1, "stream")
	oldLeader := c.leader(5 * time.Second)

	stream := &refreshStream{c: c, current: login.Refresh}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		stream.run(stop)
	}()
	stopStream := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}
	defer stopStream()

	const beforeKill = 20
	if !stream.awaitRotations(beforeKill, 10*time.Second) {
		stopStream()
		t.Fatalf("rotations before the kill: got %d in 10s, want %d", stream.rotations.Load(), beforeKill)
	}
	killedAt := time.Now()
	c.kill(oldLeader)
	newLeader := c.leader(10 * time.Second)
	t.Logf("killed leader %s, and %s leads %s after the kill", c.nodes[oldLeader].id, c.nodes[newLeader].id, time.Since(killedAt).Round(time.Millisecond))

	const afterKill = 20
	rotatedBeforeKill := stream.rotations.Load()
	reached := stream.awaitRotations(rotatedBeforeKill+afterKill, 15*time.Second)
	stopStream()
	if !reached {
		t.Errorf("rotations after the kill: got %d in 15s, want %d", stream.rotations.Load()-rotatedBeforeKill, afterKill)
	}

	// Every status was 200 or 503, and the first 200 of a request sent
	// after the kill shows how long the client was without service.
	var unavailable, transportErrors, repeats int
	firstSuccess := time.Duration(-1)
	for _, a := range stream.attempts {
		switch {
		case a.err != nil:
			transportErrors++
		case a.status == http.StatusServiceUnavailable:
			unavailable++
		case a.status != http.StatusOK:
			t.Errorf("refresh on %s sent at %s from the kill: got %d %s, want 200 or 503",
				c.nodes[a.node].id, a.sent.Sub(killedAt).Round(time.Millisecond), a.status, a.code)
		}
		if a.repeated {
			repeats++
		}
		if a.rotated && firstSuccess < 0 && a.sent.After(killedAt) {
			firstSuccess = a.received.Sub(killedAt)
		}
	}
	t.Logf("%d refreshes: %d returned 200, %d returned 503, %d transport errors",
		len(stream.attempts), stream.rotations.Load(), unavailable, transportErrors)
	if firstSuccess < 0 {
		t.Fatalf("no refresh sent after the kill succeeded")
	}
	t.Logf("first successful refresh returned %s after the kill", firstSuccess.Round(time.Millisecond))
	if repeats > 0 {
		t.Errorf("responses that repeated an earlier successor: got %d, want 0", repeats)
	}

	// Within the grace window, the last token that got a 200 returns the
	// same successor, and the successor itself still rotates.
	stream.mu.Lock()
	presented, successor := stream.presented, stream.successor
	stream.mu.Unlock()
	follower := c.follower(newLeader)
	r := c.refreshRetrying(follower, presented, 5*time.Second)
	if r.status != http.StatusOK {
		t.Fatalf("replay of the last presented token on %s: got %d %s, want 200", c.nodes[follower].id, r.status, truncateForLog(r.body))
	}
	if got := decodeTokens(t, r).Refresh; got != successor {
		t.Errorf("replay of the last presented token: got refresh token %q, want the successor %q", got, successor)
	}
	next := c.mustRefresh(newLeader, successor)

	// The killed node comes back, becomes ready and validates the newest
	// access token.
	c.restart(oldLeader)
	t.Logf("%s ready %s after its restart", c.nodes[oldLeader].id, c.waitNodeReady(oldLeader, 20*time.Second).Round(time.Millisecond))
	if got := c.awaitMe(oldLeader, next.Access, http.StatusOK, 5*time.Second); got != http.StatusOK {
		t.Errorf("me on the restarted %s: got %d, want 200", c.nodes[oldLeader].id, got)
	}
}

// TestClusterIsolatedNode kills two of the three nodes. The survivor must
// fail /readyz and reject writes with 503 unavailable after --leader-wait,
// never with 401, while it still validates access tokens.
func TestClusterIsolatedNode(t *testing.T) {
	t.Parallel()
	const leaderWait = 2 * time.Second // the default of --leader-wait
	c := startCluster(t)
	c.signup(0, "alone")
	login := c.login(0, "alone")

	survivor := c.leader(5 * time.Second)
	for i, n := range c.nodes {
		if got := c.awaitMe(i, login.Access, http.StatusOK, 2*time.Second); got != http.StatusOK {
			t.Fatalf("me on %s before the kill: got %d, want 200", n.id, got)
		}
	}
	killedAt := time.Now()
	for i := range c.nodes {
		if i != survivor {
			c.kill(i)
		}
	}

	// /readyz fails within a few seconds.
	var ready response
	for deadline := time.Now().Add(5 * time.Second); ; {
		ready = c.mustDo(survivor, "GET", "/readyz", nil)
		if ready.status != http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ready.status != http.StatusServiceUnavailable {
		t.Fatalf("readyz of the survivor %s: got %d 5s after the kill, want 503", c.nodes[survivor].id, ready.status)
	}
	t.Logf("readyz of the survivor %s failed %s after the kill: %s",
		c.nodes[survivor].id, time.Since(killedAt).Round(time.Millisecond), ready.str(t, "reason"))

	// A login and a refresh wait for a leader, then return 503.
	type write struct {
		name    string
		path    string
		body    map[string]string
		elapsed time.Duration
		r       response
		err     error
	}
	writes := []*write{
		{name: "login", path: "/v1/login", body: map[string]string{"username": "alone", "password": testPassword}},
		{name: "refresh", path: "/v1/refresh", body: map[string]string{"refresh_token": login.Refresh}},
	}
	var wg sync.WaitGroup
	for _, w := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			w.r, w.err = c.do(survivor, "POST", w.path, w.body)
			w.elapsed = time.Since(start)
		}()
	}
	wg.Wait()
	for _, w := range writes {
		if w.err != nil {
			t.Errorf("%s on the survivor: %v", w.name, w.err)
			continue
		}
		t.Logf("%s on the survivor returned %d after %s", w.name, w.r.status, w.elapsed.Round(time.Millisecond))
		checkError(t, w.name+" on the survivor", w.r, http.StatusServiceUnavailable, "unavailable")
		if got := w.r.header.Get("Retry-After"); got == "" {
			t.Errorf("%s on the survivor: got no Retry-After header, want one", w.name)
		}
		if w.elapsed < leaderWait-100*time.Millisecond {
			t.Errorf("%s on the survivor: returned after %s, want about %s", w.name, w.elapsed, leaderWait)
		}
		if w.elapsed > leaderWait+2*time.Second {
			t.Errorf("%s on the survivor: returned after %s, want about %s", w.name, w.elapsed, leaderWait)
		}
	}

	// Validation is local, so the survivor still accepts the access token.
	got, err := c.me(survivor, login.Access)
	if err != nil {
		t.Fatalf("me on the survivor: %v", err)
	}
	if got != http.StatusOK {
		t.Errorf("me on the survivor: got %d, want 200", got)
	}
}
