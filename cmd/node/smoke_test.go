package main

import (
	"net/http"
	"testing"
)

func TestNodeLoginRefreshLogout(t *testing.T) {
	tn := startTestNode(t)
	tn.signup("alice", "correct horse")
	tk := tn.login("alice", "correct horse")
	if got := tn.me(tk.Access); got != http.StatusOK {
		t.Fatalf("me: got %d, want 200", got)
	}
	r := tn.refresh(tk.Refresh)
	if r.status != http.StatusOK {
		t.Fatalf("refresh: got %d %s, want 200", r.status, r.body)
	}
}
