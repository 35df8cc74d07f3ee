package main

import (
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRefreshRotatesTokens(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	tn.signup("rita", testPassword)
	first := tn.login("rita", testPassword)

	second := tn.mustRefresh(first.Refresh)
	if second.Refresh == "" {
		t.Fatalf("refresh response has no refresh_token")
	}
	if second.Refresh == first.Refresh {
		t.Errorf("refresh token after refresh: got the presented token, want a new one")
	}
	if second.Access == first.Access {
		t.Errorf("access token after refresh: got the previous one, want a new one")
	}
	if second.SessionID != first.SessionID {
		t.Errorf("session_id after refresh: got %q, want %q", second.SessionID, first.SessionID)
	}
	if got := tn.me(second.Access); got != http.StatusOK {
		t.Errorf("me with the new access token: got %d, want 200", got)
	}

	// Within the grace window (10s by default) the presented token is no
	// longer current but still maps to the same successor.
	replay := tn.mustRefresh(first.Refresh)
	if replay.Refresh != second.Refresh {
		t.Errorf("replay of the previous token: got refresh token %q, want the successor %q", replay.Refresh, second.Refresh)
	}
	if replay.Access == second.Access {
		t.Errorf("replay of the previous token: got the same access token, want a fresh one")
	}

	third := tn.mustRefresh(second.Refresh)
	if third.Refresh == second.Refresh {
		t.Errorf("refresh of the successor: got the presented token, want a new one")
	}
}

func TestGraceReplayConcurrent(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	tn.signup("grace", testPassword)
	tk := tn.login("grace", testPassword)

	const n = 50
	responses := tn.concurrentRefresh(t, tk.Refresh, n)
	successors := map[string]int{}
	var accessTokens []string
	for i, r := range responses {
		if r.status != http.StatusOK {
			t.Errorf("refresh %d: got %d %s, want 200", i, r.status, truncateForLog(r.body))
			continue
		}
		next := decodeTokens(t, r)
		successors[next.Refresh]++
		accessTokens = append(accessTokens, next.Access)
	}
	if len(successors) != 1 {
		t.Fatalf("distinct successor refresh tokens: got %d, want 1", len(successors))
	}
	var successor string
	for s := range successors {
		successor = s
	}
	if successor == tk.Refresh {
		t.Fatalf("successor: got the presented token, want a new one")
	}

	for i, access := range accessTokens {
		if got := tn.me(access); got != http.StatusOK {
			t.Errorf("me with access token %d: got %d, want 200", i, got)
		}
	}

	next := tn.mustRefresh(successor)
	if next.Refresh == successor {
		t.Errorf("refresh of the successor: got the presented token, want a new one")
	}
}

func TestStrictGraceConcurrent(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t, "--reuse-grace", "0s")
	tn.signup("strict", testPassword)
	tk := tn.login("strict", testPassword)

	const n = 50
	responses := tn.concurrentRefresh(t, tk.Refresh, n)
	var winners []tokens
	codes := map[string]int{}
	for i, r := range responses {
		if r.status == http.StatusOK {
			winners = append(winners, decodeTokens(t, r))
			continue
		}
		if r.status != http.StatusUnauthorized {
			t.Errorf("refresh %d: got %d %s, want 200 or 401", i, r.status, truncateForLog(r.body))
		}
		codes[errorCode(r)]++
	}
	if len(winners) != 1 {
		t.Fatalf("successful refreshes: got %d, want 1", len(winners))
	}
	for code, count := range codes {
		if code != "refresh_token_reused" && code != "session_revoked" {
			t.Errorf("refresh failures: got %d with code %q, want refresh_token_reused or session_revoked", count, code)
		}
	}
	if codes["refresh_token_reused"] == 0 {
		t.Errorf("refresh failures with refresh_token_reused: got 0, want at least 1")
	}

	winner := winners[0]
	checkError(t, "refresh of the one successor", tn.refresh(winner.Refresh), http.StatusUnauthorized, "session_revoked")
	if got := tn.me(winner.Access); got != http.StatusUnauthorized {
		t.Errorf("me with the successor's access token: got %d, want 401", got)
	}
	if got := tn.me(tk.Access); got != http.StatusUnauthorized {
		t.Errorf("me with the login's access token: got %d, want 401", got)
	}
}

func TestReuseRevokesSession(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t, "--reuse-grace", "1s")
	tn.signup("reuse", testPassword)

	t.Run("predecessor after grace", func(t *testing.T) {
		t.Parallel()
		tn := tn.forTest(t)
		first := tn.login("reuse", testPassword)
		second := tn.mustRefresh(first.Refresh)

		time.Sleep(1200 * time.Millisecond)
		checkError(t, "refresh of the predecessor after the grace window", tn.refresh(first.Refresh), http.StatusUnauthorized, "refresh_token_reused")
		checkError(t, "refresh of the current token", tn.refresh(second.Refresh), http.StatusUnauthorized, "session_revoked")
		if got := tn.me(first.Access); got != http.StatusUnauthorized {
			t.Errorf("me with the login's access token: got %d, want 401", got)
		}
		if got := tn.me(second.Access); got != http.StatusUnauthorized {
			t.Errorf("me with the current access token: got %d, want 401", got)
		}
	})

	t.Run("two generations back", func(t *testing.T) {
		t.Parallel()
		tn := tn.forTest(t)
		first := tn.login("reuse", testPassword)
		second := tn.mustRefresh(first.Refresh)
		third := tn.mustRefresh(second.Refresh)

		checkError(t, "refresh of the token two generations back", tn.refresh(first.Refresh), http.StatusUnauthorized, "refresh_token_reused")
		checkError(t, "refresh of the current token", tn.refresh(third.Refresh), http.StatusUnauthorized, "session_revoked")
		// The immediate predecessor is still inside its grace window, but a
		// revoked session never comes back.
		checkError(t, "replay of the predecessor inside grace", tn.refresh(second.Refresh), http.StatusUnauthorized, "session_revoked")
		if got := tn.me(third.Access); got != http.StatusUnauthorized {
			t.Errorf("me with the current access token: got %d, want 401", got)
		}
	})
}

// Refresh token layout, as minted by the token package: the prefix, then
// unpadded base64url of session id (16 bytes), generation (8 bytes, big
// endian) and MAC (32 bytes).
const (
	refreshPrefix     = "rtr1_"
	generationOffset  = 16
	macOffsetInBody   = 24
	refreshBodyLength = 56
)

// decodeRefreshBody returns the binary body of a refresh token.
func decodeRefreshBody(t *testing.T, token string) []byte {
	t.Helper()
	encoded, ok := strings.CutPrefix(token, refreshPrefix)
	if !ok {
		t.Fatalf("refresh token %q does not start with %q", token, refreshPrefix)
	}
	body, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil || len(body) != refreshBodyLength {
		t.Fatalf("refresh token body: got %d bytes (%v), want %d", len(body), err, refreshBodyLength)
	}
	return body
}

func encodeRefreshBody(body []byte) string {
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(body)
}

func TestMangledRefreshToken(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	tn.signup("mangle", testPassword)
	tk := tn.login("mangle", testPassword)

	cases := []struct {
		name   string
		mangle func(t *testing.T, token string) string
	}{
		{"MAC byte flipped", func(t *testing.T, token string) string {
			body := decodeRefreshBody(t, token)
			body[macOffsetInBody+10] ^= 0x01
			return encodeRefreshBody(body)
		}},
		{"MAC character changed", func(t *testing.T, token string) string {
			// Character 60 encodes MAC bits; swapping it for another base64url
			// letter keeps the encoding valid.
			b := []byte(token)
			if b[60] == 'A' {
				b[60] = 'B'
			} else {
				b[60] = 'A'
			}
			return string(b)
		}},
		{"generation incremented", func(t *testing.T, token string) string {
			body := decodeRefreshBody(t, token)
			gen := binary.BigEndian.Uint64(body[generationOffset:])
			binary.BigEndian.PutUint64(body[generationOffset:], gen+1)
			return encodeRefreshBody(body)
		}},
		{"generation zero", func(t *testing.T, token string) string {
			body := decodeRefreshBody(t, token)
			binary.BigEndian.PutUint64(body[generationOffset:], 0)
			return encodeRefreshBody(body)
		}},
		{"truncated by one", func(t *testing.T, token string) string {
			return token[:len(token)-1]
		}},
		{"truncated to half", func(t *testing.T, token string) string {
			return token[:len(token)/2]
		}},
		{"character appended", func(t *testing.T, token string) string {
			return token + "A"
		}},
		{"prefix removed", func(t *testing.T, token string) string {
			return strings.TrimPrefix(token, refreshPrefix)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tn := tn.forTest(t)
			mangled := tc.mangle(t, tk.Refresh)
			if mangled == tk.Refresh {
				t.Fatalf("mangled token equals the real one")
			}
			checkError(t, "refresh with the mangled token", tn.refresh(mangled), http.StatusUnauthorized, "refresh_token_invalid")
		})
	}

	// None of the forgeries touched the real session.
	next := tn.mustRefresh(tk.Refresh)
	if got := tn.me(next.Access); got != http.StatusOK {
		t.Errorf("me after the forgeries: got %d, want 200", got)
	}
}

// Lifetimes short enough to watch: the session may live 4s, an unused
// refresh token 3s. Access tokens live 2s so that one minted just before a
// second boundary still works for the request that follows (JWT exp has
// whole-second precision and the leeway is 0).
var lifetimeFlags = []string{
	"--access-ttl", "2s",
	"--refresh-idle-ttl", "3s",
	"--session-max-ttl", "4s",
	"--reuse-grace", "500ms",
	"--leeway", "0s",
}

func TestSessionLifetimes(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t, lifetimeFlags...)
	tn.signup("life", testPassword)
	const idleTTL = 3 * time.Second

	t.Run("absolute deadline fixed", func(t *testing.T) {
		t.Parallel()
		tn := tn.forTest(t)
		tk := tn.login("life", testPassword)
		loginDone := time.Now()
		entry, ok := findSession(tn.sessions(tk.Access), tk.SessionID)
		if !ok {
			t.Fatalf("session %s not in the session list after login", tk.SessionID)
		}
		expiresAt := entry.ExpiresAt

		current, previous := tk, tk
		var lastSuccess time.Time
		for i := 0; ; i++ {
			if i > 20 {
				t.Fatalf("session still refreshes after %d rotations, want session_expired after 4s", i)
			}
			time.Sleep(500 * time.Millisecond)
			before := time.Now()
			r := tn.refresh(current.Refresh)
			after := time.Now()
			if r.status != http.StatusOK {
				checkError(t, "refresh past the absolute deadline", r, http.StatusUnauthorized, "session_expired")
				if after.Before(expiresAt) {
					t.Errorf("session expired at %s, before its expires_at %s", after.Format(time.RFC3339Nano), expiresAt.Format(time.RFC3339Nano))
				}
				break
			}
			lastSuccess = before
			next := decodeTokens(t, r)

			entry, ok := findSession(tn.sessions(next.Access), next.SessionID)
			if !ok {
				t.Fatalf("rotation %d: session not in the list", i)
			}
			if !entry.ExpiresAt.Equal(expiresAt) {
				t.Errorf("rotation %d: got expires_at %s, want %s as at login", i, entry.ExpiresAt, expiresAt)
			}
			if entry.IdleExpiresAt.After(expiresAt) {
				t.Errorf("rotation %d: got idle_expires_at %s, want at most expires_at %s", i, entry.IdleExpiresAt, expiresAt)
			}
			// The response counts whole seconds, so it may differ from the
			// exact time left by less than one second either way.
			if upper := expiresAt.Sub(before).Seconds() + 1; float64(next.RefreshIn) >= upper {
				t.Errorf("rotation %d: got refresh_token_expires_in %d, want below %.2f (1s past expires_at)", i, next.RefreshIn, upper)
			}
			if entry.IdleExpiresAt.Equal(expiresAt) {
				if lower := expiresAt.Sub(after).Seconds() - 1; float64(next.RefreshIn) <= lower {
					t.Errorf("rotation %d: got refresh_token_expires_in %d, want above %.2f (1s before expires_at)", i, next.RefreshIn, lower)
				}
			}
			previous, current = current, next
		}
		// An expired session stays expired, whichever of its tokens arrives.
		checkError(t, "replay of the predecessor after expiry", tn.refresh(previous.Refresh), http.StatusUnauthorized, "session_expired")

		// Rotation moved the idle deadline: a refresh after the login's own
		// idle deadline still succeeded.
		if !lastSuccess.After(loginDone.Add(idleTTL)) {
			t.Errorf("last successful refresh at %s, want one after the login's idle deadline %s",
				lastSuccess.Format(time.RFC3339Nano), loginDone.Add(idleTTL).Format(time.RFC3339Nano))
		}
	})

	t.Run("idle deadline", func(t *testing.T) {
		t.Parallel()
		tn := tn.forTest(t)
		tk := tn.login("life", testPassword)
		time.Sleep(idleTTL + 200*time.Millisecond)
		checkError(t, "refresh after the idle deadline", tn.refresh(tk.Refresh), http.StatusUnauthorized, "session_expired")

		fresh := tn.login("life", testPassword)
		if _, ok := findSession(tn.sessions(fresh.Access), tk.SessionID); ok {
			t.Errorf("expired session %s: still listed", tk.SessionID)
		}
	})
}
