package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestClusterFullRestart kills all three nodes with SIGKILL and starts them
// again. Every write the cluster acknowledged before the kill must survive.
func TestClusterFullRestart(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.signup(0, "durable")

	// Two sessions rotate, one stays at its login token, one is revoked.
	rotatedOnce := c.login(0, "durable")
	rotatedOnce = c.mustRefresh(1, rotatedOnce.Refresh)
	rotatedThrice := c.login(1, "durable")
	for k := range 3 {
		rotatedThrice = c.mustRefresh(k%len(c.nodes), rotatedThrice.Refresh)
	}
	untouched := c.login(2, "durable")
	revoked := c.login(2, "durable")
	r := c.mustDo(0, "POST", "/v1/logout", nil, "Authorization", "Bearer "+revoked.Access)
	if r.status != http.StatusNoContent {
		t.Fatalf("logout: got %d %s, want 204", r.status, truncateForLog(r.body))
	}

	for i := range c.nodes {
		c.kill(i)
	}
	restartedAt := time.Now()
	for i := range c.nodes {
		c.restart(i)
	}
	c.waitReady(30 * time.Second)
	t.Logf("all nodes ready %s after the restart", time.Since(restartedAt).Round(time.Millisecond))

	// The revoked session's access token is rejected on every node as soon
	// as the node is ready.
	for i, n := range c.nodes {
		got, err := c.me(i, revoked.Access)
		if err != nil {
			t.Fatalf("me on %s: %v", n.id, err)
		}
		if got != http.StatusUnauthorized {
			t.Errorf("me on %s with the revoked session's access token: got %d, want 401", n.id, got)
		}
	}

	for i, session := range []struct {
		step   string
		latest tokens
	}{
		{"refresh of the session rotated once", rotatedOnce},
		{"refresh of the session rotated three times", rotatedThrice},
		{"refresh of the session never rotated", untouched},
	} {
		r := c.refreshRetrying(i, session.latest.Refresh, 10*time.Second)
		checkStatus(t, session.step, r, http.StatusOK)
		if r.status != http.StatusOK {
			continue
		}
		if got := decodeTokens(t, r).Refresh; got == session.latest.Refresh {
			t.Errorf("%s: got the presented token back, want a new one", session.step)
		}
	}

	r = c.refreshRetrying(2, revoked.Refresh, 10*time.Second)
	checkError(t, "refresh of the revoked session", r, http.StatusUnauthorized, "session_revoked")

	r = c.mustDo(0, "POST", "/v1/login", map[string]string{"username": "durable", "password": testPassword})
	checkStatus(t, "login after the restart", r, http.StatusOK)
}

// TestClusterWipedNodeRejoins kills a follower, deletes its data dir and
// starts it again with the same flags. Once ready, the node must validate
// with the writes it missed and reach the leader's commit index.
func TestClusterWipedNodeRejoins(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	leader := c.leader(5 * time.Second)
	wiped := c.follower(leader)
	live := 3 - leader - wiped // the other follower, so writes are forwarded

	c.signup(live, "before")
	revokedWhileDown := c.login(live, "before")
	// A history of a few hundred entries, so the wiped node catches up over
	// several AppendEntries batches (raft sends up to 256 entries in one).
	before := c.mustView(leader)
	buildHistory(t, c, leader, "before", 16, 40)
	after := c.mustView(leader)
	t.Logf("log history: %d entries", after.CommitIndex-before.CommitIndex)

	c.kill(wiped)
	c.wipe(wiped)

	// Writes while the node is down: a new user with a session, and a
	// revocation of a session the node knew.
	c.signup(live, "during")
	createdWhileDown := c.login(live, "during")
	r := c.mustDo(live, "POST", "/v1/logout", nil, "Authorization", "Bearer "+revokedWhileDown.Access)
	if r.status != http.StatusNoContent {
		t.Fatalf("logout while %s is down: got %d %s, want 204", c.nodes[wiped].id, r.status, truncateForLog(r.body))
	}

	c.restart(wiped)
	t.Logf("%s ready %s after its restart with an empty data dir",
		c.nodes[wiped].id, c.waitNodeReady(wiped, 20*time.Second).Round(time.Millisecond))

	// A ready node may still be applying the log, because /readyz allows a
	// backlog. It forwards GET /v1/me for a user it has not applied yet, and
	// gossip brings it the revocation set, so both results must be right at
	// once.
	got, err := c.me(wiped, createdWhileDown.Access)
	if err != nil {
		t.Fatalf("me on %s: %v", c.nodes[wiped].id, err)
	}
	if got != http.StatusOK {
		t.Errorf("me on %s with a session created while it was down: got %d, want 200", c.nodes[wiped].id, got)
	}
	got, err = c.me(wiped, revokedWhileDown.Access)
	if err != nil {
		t.Fatalf("me on %s: %v", c.nodes[wiped].id, err)
	}
	if got != http.StatusUnauthorized {
		t.Errorf("me on %s with a session revoked while it was down: got %d, want 401", c.nodes[wiped].id, got)
	}

	// Its commit index reaches the leader's.
	leader = c.leader(5 * time.Second)
	var wipedView, leaderView raftView
	deadline := time.Now().Add(5 * time.Second)
	for {
		wipedView, err = c.view(wiped)
		if err != nil {
			t.Fatalf("cluster view of %s: %v", c.nodes[wiped].id, err)
		}
		leaderView, err = c.view(leader)
		if err != nil {
			t.Fatalf("cluster view of %s: %v", c.nodes[leader].id, err)
		}
		if wipedView.CommitIndex == leaderView.CommitIndex || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if wipedView.CommitIndex != leaderView.CommitIndex {
		t.Errorf("commit index of %s: got %d, want the leader's %d", c.nodes[wiped].id, wipedView.CommitIndex, leaderView.CommitIndex)
	}
	if wipedView.LeaderID != c.nodes[leader].id {
		t.Errorf("leader seen by %s: got %q, want %q", c.nodes[wiped].id, wipedView.LeaderID, c.nodes[leader].id)
	}
}

// buildHistory adds about sessions*rotations entries to the Raft log: it logs
// username in sessions times through node i and rotates each session
// rotations times, the sessions concurrently.
func buildHistory(t *testing.T, c *procCluster, i int, username string, sessions, rotations int) {
	t.Helper()
	logins := make([]tokens, sessions)
	for k := range logins {
		logins[k] = c.login(i, username)
	}
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	for _, login := range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			current := login.Refresh
			for range rotations {
				r, err := c.refresh(i, current)
				if err != nil {
					errs <- err
					return
				}
				if r.status != http.StatusOK {
					errs <- fmt.Errorf("refresh: got %d %s, want 200", r.status, truncateForLog(r.body))
					return
				}
				var next tokens
				if err := json.Unmarshal(r.body, &next); err != nil {
					errs <- err
					return
				}
				current = next.Refresh
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("build history on %s: %v", c.nodes[i].id, err)
	}
}
