package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials shared by the end-to-end tests. Every test starts its own node,
// so the same names never collide.
const (
	testPassword  = "correct horse battery"
	adminName     = "admin"
	adminPassword = "admin password 1"
	serviceKey    = "service-key-for-tests-0123456789"
)

// forTest returns a copy of tn that reports failures to t, so a subtest can
// send requests without failing its parent. The copy must not be restarted.
func (tn *testNode) forTest(t testing.TB) *testNode {
	c := *tn
	c.t = t
	return &c
}

// send is do without the test: it returns transport errors instead of
// failing, so goroutines can call it, and it sends body unchanged with no
// Content-Type unless header sets one. header holds name, value pairs.
func (tn *testNode) send(method, path string, body []byte, header ...string) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, tn.url+path, rd)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := tn.client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("read body of %s %s: %w", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// tryRefresh is refresh for goroutines.
func (tn *testNode) tryRefresh(refreshToken string) (response, error) {
	body, err := json.Marshal(map[string]string{"refresh_token": refreshToken})
	if err != nil {
		return response{}, err
	}
	return tn.send("POST", "/v1/refresh", body, "Content-Type", "application/json")
}

// form posts an application/x-www-form-urlencoded body.
func (tn *testNode) form(path, body string, header ...string) response {
	tn.t.Helper()
	return tn.do("POST", path, body, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, header...)...)
}

// authed sends a request with an access token (or a service key) as Bearer.
func (tn *testNode) authed(method, path, bearerToken string, body any) response {
	tn.t.Helper()
	return tn.do(method, path, body, "Authorization", "Bearer "+bearerToken)
}

// mustRefresh refreshes and fails the test unless the refresh succeeds.
func (tn *testNode) mustRefresh(refreshToken string) tokens {
	tn.t.Helper()
	r := tn.refresh(refreshToken)
	if r.status != http.StatusOK {
		tn.t.Fatalf("refresh: got %d %s, want 200", r.status, truncateForLog(r.body))
	}
	return decodeTokens(tn.t, r)
}

// sessions lists the caller's sessions with GET /v1/sessions.
func (tn *testNode) sessions(access string) []sessionInfo {
	tn.t.Helper()
	r := tn.authed("GET", "/v1/sessions", access, nil)
	if r.status != http.StatusOK {
		tn.t.Fatalf("list sessions: got %d %s, want 200", r.status, truncateForLog(r.body))
	}
	var list struct {
		Sessions []sessionInfo `json:"sessions"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		tn.t.Fatalf("decode session list %s: %v", truncateForLog(r.body), err)
	}
	return list.Sessions
}

// sessionInfo is one entry of a session list.
type sessionInfo struct {
	SessionID       string    `json:"session_id"`
	DeviceID        string    `json:"device_id"`
	DeviceName      string    `json:"device_name"`
	UserAgent       string    `json:"user_agent"`
	IP              string    `json:"ip"`
	CreatedAt       time.Time `json:"created_at"`
	LastRefreshedAt time.Time `json:"last_refreshed_at"`
	IdleExpiresAt   time.Time `json:"idle_expires_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	Current         bool      `json:"current"`
}

// findSession returns the entry of list with the session id.
func findSession(list []sessionInfo, id string) (sessionInfo, bool) {
	for _, s := range list {
		if s.SessionID == id {
			return s, true
		}
	}
	return sessionInfo{}, false
}

// decodeTokens decodes a token response.
func decodeTokens(t testing.TB, r response) tokens {
	t.Helper()
	var tk tokens
	if err := json.Unmarshal(r.body, &tk); err != nil {
		t.Fatalf("decode token response %s: %v", truncateForLog(r.body), err)
	}
	return tk
}

// errorCode returns the `code` of a problem body or the `error_code` of an
// OAuth error body, or "" when the body is neither, such as the plain-text
// 431 that Go's HTTP server writes itself.
func errorCode(r response) string {
	var m map[string]any
	if json.Unmarshal(r.body, &m) != nil {
		return ""
	}
	if c, ok := m["code"].(string); ok {
		return c
	}
	c, _ := m["error_code"].(string)
	return c
}

// checkError reports a failure of step unless r has the status and error
// code.
func checkError(t testing.TB, step string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: got status %d, want %d (body %s)", step, r.status, status, truncateForLog(r.body))
	}
	if got := errorCode(r); got != code {
		t.Errorf("%s: got code %q, want %q", step, got, code)
	}
}

// checkStatus reports a failure of step unless r has the status.
func checkStatus(t testing.TB, step string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: got status %d, want %d (body %s)", step, r.status, status, truncateForLog(r.body))
	}
}

// startAdminNode starts a node with the admin account and returns it with
// the admin's tokens. The node creates the admin after it wins the first
// election, so the login is retried until that has happened.
func startAdminNode(t testing.TB, env map[string]string, args ...string) (*testNode, tokens) {
	t.Helper()
	merged := map[string]string{"ROTOR_ADMIN_PASSWORD": adminPassword}
	for k, v := range env {
		merged[k] = v
	}
	tn := startTestNodeEnv(t, merged, append([]string{"--admin-username", adminName}, args...)...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := tn.do("POST", "/v1/login", map[string]string{"username": adminName, "password": adminPassword})
		if r.status == http.StatusOK {
			return tn, decodeTokens(t, r)
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin login: got %d %s, want 200 within 10s", r.status, truncateForLog(r.body))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jwtPart decodes segment i (0 header, 1 claims) of a JWT.
func jwtPart(t testing.TB, jwt string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d segments, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("decode JWT segment %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode JWT segment %d %s: %v", i, raw, err)
	}
	return m
}

// jwtRoles returns the roles claim of an access token.
func jwtRoles(t testing.TB, jwt string) []string {
	t.Helper()
	raw, ok := jwtPart(t, jwt, 1)["roles"].([]any)
	if !ok {
		t.Fatalf("access token has no roles array")
	}
	roles := make([]string, 0, len(raw))
	for _, r := range raw {
		s, _ := r.(string)
		roles = append(roles, s)
	}
	return roles
}

// concurrentRefresh presents the same refresh token n times at once: every
// goroutine waits on one channel before it sends. It returns the responses
// in no particular order and fails the test on transport errors.
func (tn *testNode) concurrentRefresh(t testing.TB, refreshToken string, n int) []response {
	t.Helper()
	start := make(chan struct{})
	out := make([]response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = tn.tryRefresh(refreshToken)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent refresh: %v", err)
		}
	}
	return out
}
