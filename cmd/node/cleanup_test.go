package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/rotorhq/rotor/fsm"
)

// TestCleanupDropsExpiredState checks that the leader's cleanup removes an
// expired session from memory, keeps a revoked session's deny entry until
// its access tokens expire, and then drops that too.
func TestCleanupDropsExpiredState(t *testing.T) {
	tn := startTestNode(t,
		"--access-ttl", "2s", "--leeway", "0s", "--reuse-grace", "1s",
		"--refresh-idle-ttl", "3s", "--session-max-ttl", "60s",
		"--cleanup-interval", "1s")
	tn.signup("dora", "correct horse")
	idle := tn.login("dora", "correct horse")
	revoked := tn.login("dora", "correct horse")
	if got := tn.do("POST", "/v1/logout", nil, "Authorization", "Bearer "+revoked.Access).status; got != http.StatusNoContent {
		t.Fatalf("logout: got %d, want 204", got)
	}
	revokedID, err := fsm.ParseID(revoked.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	state := tn.node.state

	// Right after the logout the deny entry is there.
	if !state.Revocations().Denied(revokedID) {
		t.Fatal("deny entry missing right after logout")
	}

	// Past the deny period (2s) and the idle deadline (3s), plus cleanup
	// intervals, both sessions and the deny entry are gone.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, sessions := state.Counts()
		if sessions == 0 && state.Revocations().Len() == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, sessions := state.Counts(); sessions != 0 {
		t.Fatalf("sessions after cleanup: got %d, want 0", sessions)
	}
	if n := state.Revocations().Len(); n != 0 {
		t.Fatalf("deny entries after cleanup: got %d, want 0", n)
	}

	// Tokens of dropped sessions stay rejected, with session_expired.
	for name, tok := range map[string]string{"idle": idle.Refresh, "revoked": revoked.Refresh} {
		if code := tn.refresh(tok).code(t); code != "session_expired" {
			t.Errorf("%s session token after cleanup: got %q, want session_expired", name, code)
		}
	}
}
