package main

import (
	"net/http"
	"testing"
)

// TestRestartFromSnapshot restarts a node whose state comes from a snapshot
// instead of a full log replay.
func TestRestartFromSnapshot(t *testing.T) {
	tn := startTestNode(t)
	tn.signup("carol", "correct horse")
	live := tn.login("carol", "correct horse")
	revoked := tn.login("carol", "correct horse")

	r := tn.refresh(live.Refresh)
	if r.status != http.StatusOK {
		t.Fatalf("refresh: got %d, want 200", r.status)
	}
	next := r.str(t, "refresh_token")
	if got := tn.do("POST", "/v1/logout", nil, "Authorization", "Bearer "+revoked.Access).status; got != http.StatusNoContent {
		t.Fatalf("logout: got %d, want 204", got)
	}

	if err := tn.node.raft.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	tn.restart()

	if r := tn.refresh(next); r.status != http.StatusOK {
		t.Fatalf("refresh after restart: got %d %s, want 200", r.status, r.body)
	}
	if r := tn.refresh(revoked.Refresh); r.code(t) != "session_revoked" {
		t.Fatalf("revoked session after restart: got %s, want session_revoked", r.code(t))
	}
	if got := tn.me(revoked.Access); got != http.StatusUnauthorized {
		t.Fatalf("revoked access token after restart: got %d, want 401", got)
	}
	if got := tn.me(live.Access); got != http.StatusOK {
		t.Fatalf("live access token after restart: got %d, want 200", got)
	}
}
