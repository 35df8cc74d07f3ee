package main

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

// refreshRetrying refreshes and retries while the node returns 503, as a
// client does while a restarted node takes up leadership.
func (tn *testNode) refreshRetrying(refreshToken string) response {
	tn.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := tn.refresh(refreshToken)
		if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return r
		}
		tn.t.Logf("refresh answered 503 %s; retrying", truncateForLog(r.body))
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRestartKeepsSessions(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	tn.signup("rhea", testPassword)
	rotated := tn.login("rhea", testPassword)
	revoked := tn.login("rhea", testPassword)

	chain := []tokens{rotated}
	for range 3 {
		chain = append(chain, tn.mustRefresh(chain[len(chain)-1].Refresh))
	}
	latest, previous := chain[len(chain)-1], chain[len(chain)-2]
	r := tn.authed("DELETE", "/v1/sessions/"+revoked.SessionID, latest.Access, nil)
	checkStatus(t, "delete the second session", r, http.StatusNoContent)
	before := tn.sessions(latest.Access)

	tn.restart()

	// The previous token first: once the latest rotates, the previous one is
	// two generations back and would count as reuse.
	r = tn.refreshRetrying(previous.Refresh)
	checkStatus(t, "replay of the previous token after restart", r, http.StatusOK)
	if r.status == http.StatusOK {
		if got := decodeTokens(t, r).Refresh; got != latest.Refresh {
			t.Errorf("replay after restart: got refresh token %q, want the latest %q", got, latest.Refresh)
		}
	}

	checkError(t, "refresh of the revoked session", tn.refresh(revoked.Refresh), http.StatusUnauthorized, "session_revoked")
	if got := tn.me(revoked.Access); got != http.StatusUnauthorized {
		t.Errorf("me with the revoked session's access token: got %d, want 401", got)
	}
	if got := tn.me(latest.Access); got != http.StatusOK {
		t.Errorf("me with the rotated session's access token: got %d, want 200", got)
	}

	after := tn.sessions(latest.Access)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("sessions after restart:\n got %+v\nwant %+v", after, before)
	}

	next := tn.mustRefresh(latest.Refresh)
	if next.Refresh == latest.Refresh {
		t.Errorf("refresh of the latest token after restart: got the presented token, want a new one")
	}

	// The generation count survived too: the login's token is now four
	// generations back.
	checkError(t, "refresh of the login's token after restart", tn.refresh(rotated.Refresh), http.StatusUnauthorized, "refresh_token_reused")
	checkError(t, "refresh of the newest token after reuse", tn.refresh(next.Refresh), http.StatusUnauthorized, "session_revoked")
}
