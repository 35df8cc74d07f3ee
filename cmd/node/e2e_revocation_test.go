package main

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUserRevocationRacingRefresh(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, nil)
	userID := tn.signup("victim", testPassword)

	const chains = 4
	logins := make([]tokens, chains)
	for i := range logins {
		logins[i] = tn.login("victim", testPassword)
	}

	// Each chain refreshes its own session's latest token until a refresh
	// fails, and records every token pair it was given.
	var (
		mu          sync.Mutex
		minted      = append([]tokens(nil), logins...)
		endCodes    = make([]string, chains)
		rotations   atomic.Int64
		revokedDone atomic.Bool
		lateSuccess atomic.Int64
		wg          sync.WaitGroup
	)
	const maxRotations = 400 // per chain, so a broken revocation cannot loop forever
	for i, login := range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			current := login.Refresh
			for range maxRotations {
				startedAfterRevoke := revokedDone.Load()
				r, err := tn.tryRefresh(current)
				if err != nil {
					t.Errorf("chain %d: %v", i, err)
					return
				}
				if r.status != http.StatusOK {
					endCodes[i] = errorCode(r)
					return
				}
				if startedAfterRevoke {
					lateSuccess.Add(1)
				}
				var next tokens
				if err := json.Unmarshal(r.body, &next); err != nil {
					t.Errorf("chain %d: decode token response: %v", i, err)
					return
				}
				mu.Lock()
				minted = append(minted, next)
				mu.Unlock()
				rotations.Add(1)
				current = next.Refresh
			}
			endCodes[i] = "still refreshing"
		}()
	}

	// Revoke while the chains are busy.
	deadline := time.Now().Add(5 * time.Second)
	for rotations.Load() < 5*chains && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	r := tn.authed("DELETE", "/v1/admin/users/"+userID+"/sessions", admin.Access, nil)
	revokedDone.Store(true)
	checkStatus(t, "revoke every session of the user", r, http.StatusNoContent)
	wg.Wait()

	t.Logf("%d rotations before the chains stopped", rotations.Load())
	if n := lateSuccess.Load(); n > 0 {
		t.Errorf("refreshes started after the revocation returned that succeeded: got %d, want 0", n)
	}
	for i, code := range endCodes {
		if code != "session_revoked" {
			t.Errorf("chain %d ended with %q, want session_revoked", i, code)
		}
	}
	for i, tk := range minted {
		if got := tn.me(tk.Access); got != http.StatusUnauthorized {
			t.Errorf("me with minted access token %d (session %s): got %d, want 401", i, tk.SessionID, got)
		}
		if r := tn.refresh(tk.Refresh); r.status == http.StatusOK {
			t.Errorf("refresh with minted refresh token %d (session %s): got 200, want a failure", i, tk.SessionID)
		}
	}
}

func TestDisableUserEndsSessions(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, nil)
	userID := tn.signup("dora", testPassword)
	first := tn.login("dora", testPassword)
	second := tn.login("dora", testPassword)

	r := tn.authed("PUT", "/v1/admin/users/"+userID+"/disabled", admin.Access, map[string]bool{"disabled": true})
	checkStatus(t, "disable user", r, http.StatusOK)
	if got, _ := r.json(t)["disabled"].(bool); !got {
		t.Errorf("disabled in the response: got false, want true")
	}
	for name, tk := range map[string]tokens{"first": first, "second": second} {
		checkError(t, "refresh of the "+name+" session", tn.refresh(tk.Refresh), http.StatusUnauthorized, "session_revoked")
		if got := tn.me(tk.Access); got != http.StatusUnauthorized {
			t.Errorf("me with the %s session's access token: got %d, want 401", name, got)
		}
	}
	login := tn.do("POST", "/v1/login", map[string]string{"username": "dora", "password": testPassword})
	checkError(t, "login of the disabled user", login, http.StatusForbidden, "user_disabled")

	// Enabling the user again lets it log in, but the ended sessions stay
	// ended.
	r = tn.authed("PUT", "/v1/admin/users/"+userID+"/disabled", admin.Access, map[string]bool{"disabled": false})
	checkStatus(t, "enable user", r, http.StatusOK)
	tn.login("dora", testPassword)
	checkError(t, "refresh of an ended session after enabling", tn.refresh(first.Refresh), http.StatusUnauthorized, "session_revoked")
}

func TestSessionsListAndDelete(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	tn.signup("alice", testPassword)
	tn.signup("bob", testPassword)
	mine := tn.login("alice", testPassword)
	other := tn.login("alice", testPassword)
	bobs := tn.login("bob", testPassword)

	list := tn.sessions(mine.Access)
	if len(list) != 2 {
		t.Fatalf("sessions listed: got %d, want 2", len(list))
	}
	self, ok := findSession(list, mine.SessionID)
	if !ok {
		t.Fatalf("caller's session %s not listed", mine.SessionID)
	}
	if !self.Current {
		t.Errorf("current of the caller's session: got false, want true")
	}
	if self.DeviceName != "test device" {
		t.Errorf("device_name: got %q, want %q", self.DeviceName, "test device")
	}
	if self.CreatedAt.IsZero() || self.ExpiresAt.IsZero() || self.IdleExpiresAt.IsZero() {
		t.Errorf("timestamps: got created_at %v, idle_expires_at %v, expires_at %v, want all set", self.CreatedAt, self.IdleExpiresAt, self.ExpiresAt)
	}
	sibling, ok := findSession(list, other.SessionID)
	if !ok {
		t.Fatalf("other session %s not listed", other.SessionID)
	}
	if sibling.Current {
		t.Errorf("current of the other session: got true, want false")
	}

	r := tn.authed("DELETE", "/v1/sessions/"+other.SessionID, mine.Access, nil)
	checkStatus(t, "delete own other session", r, http.StatusNoContent)
	list = tn.sessions(mine.Access)
	if _, ok := findSession(list, other.SessionID); ok {
		t.Errorf("deleted session %s: still listed", other.SessionID)
	}
	if len(list) != 1 {
		t.Errorf("sessions listed after delete: got %d, want 1", len(list))
	}
	checkError(t, "refresh of the deleted session", tn.refresh(other.Refresh), http.StatusUnauthorized, "session_revoked")
	if got := tn.me(other.Access); got != http.StatusUnauthorized {
		t.Errorf("me with the deleted session's access token: got %d, want 401", got)
	}

	r = tn.authed("DELETE", "/v1/sessions/"+bobs.SessionID, mine.Access, nil)
	checkError(t, "delete another user's session", r, http.StatusNotFound, "not_found")
	tn.mustRefresh(bobs.Refresh)

	r = tn.authed("DELETE", "/v1/sessions/not-a-session-id", mine.Access, nil)
	checkError(t, "delete a malformed session id", r, http.StatusNotFound, "not_found")
	r = tn.authed("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA", mine.Access, nil)
	checkError(t, "delete an unknown session id", r, http.StatusNotFound, "not_found")
}

func TestLogoutScopes(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)

	// Each case logs in twice as its own user, logs out with the caller's
	// credential from the first session, and checks which sessions survive.
	cases := []struct {
		name            string
		body            map[string]string // nil sends no body
		byRefreshToken  bool
		callerSurvives  bool
		siblingSurvives bool
	}{
		{"default scope", nil, false, false, true},
		{"current", map[string]string{"scope": "current"}, false, false, true},
		{"others", map[string]string{"scope": "others"}, false, true, false},
		{"all", map[string]string{"scope": "all"}, false, false, false},
		{"current by refresh token", map[string]string{"scope": "current"}, true, false, true},
		{"others by refresh token", map[string]string{"scope": "others"}, true, true, false},
		{"all by refresh token", map[string]string{"scope": "all"}, true, false, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tn := tn.forTest(t)
			user := "logout" + string(rune('a'+i))
			tn.signup(user, testPassword)
			caller := tn.login(user, testPassword)
			sibling := tn.login(user, testPassword)

			var r response
			if tc.byRefreshToken {
				body := map[string]string{"refresh_token": caller.Refresh}
				for k, v := range tc.body {
					body[k] = v
				}
				r = tn.do("POST", "/v1/logout", body)
			} else if tc.body == nil {
				r = tn.authed("POST", "/v1/logout", caller.Access, nil)
			} else {
				r = tn.authed("POST", "/v1/logout", caller.Access, tc.body)
			}
			checkStatus(t, "logout", r, http.StatusNoContent)

			for _, s := range []struct {
				name     string
				tk       tokens
				survives bool
			}{{"caller", caller, tc.callerSurvives}, {"sibling", sibling, tc.siblingSurvives}} {
				refreshed := tn.refresh(s.tk.Refresh)
				if s.survives {
					checkStatus(t, "refresh of the "+s.name+" session", refreshed, http.StatusOK)
					continue
				}
				checkError(t, "refresh of the "+s.name+" session", refreshed, http.StatusUnauthorized, "session_revoked")
				if got := tn.me(s.tk.Access); got != http.StatusUnauthorized {
					t.Errorf("me with the %s session's access token: got %d, want 401", s.name, got)
				}
			}
		})
	}

	t.Run("invalid scope", func(t *testing.T) {
		t.Parallel()
		tn := tn.forTest(t)
		tn.signup("logoutbad", testPassword)
		tk := tn.login("logoutbad", testPassword)
		r := tn.authed("POST", "/v1/logout", tk.Access, map[string]string{"scope": "everything"})
		checkError(t, "logout with an unknown scope", r, http.StatusBadRequest, "invalid_request")
		tn.mustRefresh(tk.Refresh)
	})

	t.Run("no credential", func(t *testing.T) {
		t.Parallel()
		tn := tn.forTest(t)
		r := tn.do("POST", "/v1/logout", map[string]string{"scope": "all"})
		checkError(t, "logout without a token", r, http.StatusUnauthorized, "unauthorized")
	})
}
