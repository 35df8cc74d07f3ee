package main

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestClusterSessions runs requests that leave the cluster intact on one
// cluster, one subtest after the other, so their timings do not disturb
// each other.
func TestClusterSessions(t *testing.T) {
	t.Parallel()
	c := startCluster(t)

	t.Run("GraceReplay", func(t *testing.T) { testClusterGraceReplay(t, c.forTest(t)) })
	t.Run("ConcurrentRefresh", func(t *testing.T) { testClusterConcurrentRefresh(t, c.forTest(t)) })
	t.Run("RevocationVisibility", func(t *testing.T) { testClusterRevocationVisibility(t, c.forTest(t)) })
}

// testClusterGraceReplay logs in on node 1, refreshes on node 2 and replays
// the login's refresh token on node 3, which must return the successor that
// node 2 returned.
func testClusterGraceReplay(t *testing.T, c *procCluster) {
	c.signup(0, "grace")
	login := c.login(0, "grace")
	rotated := c.mustRefresh(1, login.Refresh)

	r, err := c.refresh(2, login.Refresh)
	if err != nil {
		t.Fatalf("replay on %s: %v", c.nodes[2].id, err)
	}
	if r.status != http.StatusOK {
		t.Fatalf("replay on %s: got %d %s, want 200", c.nodes[2].id, r.status, truncateForLog(r.body))
	}
	replayed := decodeTokens(t, r)

	if replayed.Refresh != rotated.Refresh {
		t.Errorf("replay on %s: got refresh token %q, want the successor %q", c.nodes[2].id, replayed.Refresh, rotated.Refresh)
	}
	if replayed.SessionID != login.SessionID {
		t.Errorf("replay on %s: got session %q, want %q", c.nodes[2].id, replayed.SessionID, login.SessionID)
	}
	if replayed.Access == rotated.Access {
		t.Errorf("replay on %s: got the access token of the rotation, want a fresh one", c.nodes[2].id)
	}
	if got := c.awaitMe(2, replayed.Access, http.StatusOK, 2*time.Second); got != http.StatusOK {
		t.Errorf("me on %s with the replay's access token: got %d, want 200", c.nodes[2].id, got)
	}

	next := c.mustRefresh(0, rotated.Refresh)
	if next.Refresh == rotated.Refresh {
		t.Errorf("refresh of the successor: got the presented token back, want a new one")
	}
}

// testClusterConcurrentRefresh presents one refresh token 30 times at once,
// 10 times to each node. Every request must succeed with the same successor.
func testClusterConcurrentRefresh(t *testing.T, c *procCluster) {
	c.signup(1, "racer")
	login := c.login(1, "racer")

	const perNode = 10
	total := perNode * len(c.nodes)
	responses := make([]response, total)
	errs := make([]error, total)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			responses[k], errs[k] = c.refresh(k%len(c.nodes), login.Refresh)
		}()
	}
	close(start)
	wg.Wait()

	successors := map[string]int{}
	for k, r := range responses {
		node := c.nodes[k%len(c.nodes)].id
		if errs[k] != nil {
			t.Errorf("refresh %d on %s: %v", k, node, errs[k])
			continue
		}
		if r.status != http.StatusOK {
			t.Errorf("refresh %d on %s: got %d %s, want 200", k, node, r.status, truncateForLog(r.body))
			continue
		}
		successors[decodeTokens(t, r).Refresh]++
	}
	if len(successors) != 1 {
		t.Fatalf("distinct successors: got %d (%v), want 1", len(successors), successors)
	}
	for successor := range successors {
		if successor == login.Refresh {
			t.Fatalf("successor: got the presented token, want a new one")
		}
		c.mustRefresh(2, successor)
	}
}

// testClusterRevocationVisibility logs out through each node in turn and
// polls GET /v1/me on every node until it rejects the logged-out access
// token, for at most a second.
func testClusterRevocationVisibility(t *testing.T, c *procCluster) {
	const bound = time.Second
	t.Logf("%s leads", c.nodes[c.leader(5*time.Second)].id)
	c.signup(2, "leaver")
	for origin := range c.nodes {
		login := c.login(origin, "leaver")
		for i, n := range c.nodes {
			if got := c.awaitMe(i, login.Access, http.StatusOK, 2*time.Second); got != http.StatusOK {
				t.Fatalf("me on %s before logout: got %d, want 200", n.id, got)
			}
		}

		r := c.mustDo(origin, "POST", "/v1/logout", nil, "Authorization", "Bearer "+login.Access)
		loggedOut := time.Now()
		if r.status != http.StatusNoContent {
			t.Fatalf("logout on %s: got %d %s, want 204", c.nodes[origin].id, r.status, truncateForLog(r.body))
		}

		// Each node is polled by its own goroutine, so every delay counts
		// from the same instant.
		delays := make([]time.Duration, len(c.nodes))
		accepted := make([]int, len(c.nodes))
		last := make([]string, len(c.nodes))
		var wg sync.WaitGroup
		for i := range c.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				delays[i], accepted[i], last[i] = pollUntilRejected(c, i, login.Access, loggedOut, bound)
			}()
		}
		wg.Wait()

		for i, n := range c.nodes {
			if delays[i] < 0 {
				t.Errorf("logout on %s: me on %s got %s %s after the logout returned, want 401",
					c.nodes[origin].id, n.id, last[i], bound)
				continue
			}
			t.Logf("logout on %s: %s rejected the access token %s after the logout returned (polls that still accepted it: %d)",
				c.nodes[origin].id, n.id, delays[i].Round(100*time.Microsecond), accepted[i])
		}
	}
}

// pollUntilRejected sends GET /v1/me to node i every millisecond until the
// status is 401. It returns the time since since and the number of polls
// with another result. When bound passes first, it returns a time of -1 and
// the last other result.
func pollUntilRejected(c *procCluster, i int, access string, since time.Time, bound time.Duration) (time.Duration, int, string) {
	polls := 0
	lastResult := "nothing"
	for {
		status, err := c.me(i, access)
		if err == nil && status == http.StatusUnauthorized {
			return time.Since(since), polls, ""
		}
		polls++
		if err != nil {
			lastResult = err.Error()
		} else {
			lastResult = fmt.Sprint(status)
		}
		if time.Since(since) > bound {
			return -1, polls, lastResult
		}
		time.Sleep(time.Millisecond)
	}
}
