package main

import (
	"net/http"
	"slices"
	"testing"
)

// refreshCookie returns the rotor_refresh cookie that r sets.
func refreshCookie(t *testing.T, r response) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "rotor_refresh" {
			return c
		}
	}
	t.Fatalf("response sets no rotor_refresh cookie; Set-Cookie: %q", r.header.Values("Set-Cookie"))
	return nil
}

// cookieLogin logs in with cookie delivery and returns the response.
func (tn *testNode) cookieLogin(username string) response {
	tn.t.Helper()
	r := tn.do("POST", "/v1/login", map[string]string{"username": username, "password": testPassword, "token_delivery": "cookie"})
	if r.status != http.StatusOK {
		tn.t.Fatalf("cookie login: got %d %s, want 200", r.status, truncateForLog(r.body))
	}
	return r
}

func TestCookieDelivery(t *testing.T) {
	t.Parallel()
	const allowedOrigin = "https://app.rotor.test"
	tn := startTestNode(t, "--allowed-origins", allowedOrigin)
	tn.signup("rosa", testPassword)

	login := tn.cookieLogin("rosa")
	if _, ok := login.json(t)["refresh_token"]; ok {
		t.Errorf("login body with cookie delivery: has refresh_token, want none")
	}
	if got := login.str(t, "access_token"); got == "" {
		t.Errorf("login body with cookie delivery: no access_token")
	}
	cookie := refreshCookie(t, login)
	if cookie.Value == "" {
		t.Fatalf("rotor_refresh cookie is empty")
	}
	if !cookie.HttpOnly {
		t.Errorf("HttpOnly: got false, want true")
	}
	if cookie.SameSite != http.SameSiteStrictMode {
		t.Errorf("SameSite: got %v, want Strict", cookie.SameSite)
	}
	if cookie.Secure {
		t.Errorf("Secure on plain-http loopback: got true, want false")
	}
	var paths []string
	for _, c := range (&http.Response{Header: login.header}).Cookies() {
		if c.Name == "rotor_refresh" {
			paths = append(paths, c.Path)
		}
	}
	if !slices.Equal(paths, []string{"/v1/refresh", "/v1/logout"}) {
		t.Errorf("cookie paths: got %v, want only /v1/refresh and /v1/logout", paths)
	}
	if cookie.MaxAge <= 0 {
		t.Errorf("Max-Age: got %d, want positive", cookie.MaxAge)
	}
	sent := "rotor_refresh=" + cookie.Value

	r := tn.do("POST", "/v1/refresh", nil, "Cookie", sent)
	checkError(t, "cookie refresh without the CSRF header", r, http.StatusForbidden, "forbidden")
	r = tn.do("POST", "/v1/refresh", nil, "Cookie", sent, "X-Rotor-CSRF", "1", "Origin", "http://other.rotor.test")
	checkError(t, "cookie refresh from a foreign origin", r, http.StatusForbidden, "forbidden")
	r = tn.do("POST", "/v1/refresh", nil, "Cookie", sent, "X-Rotor-CSRF", "0")
	checkError(t, "cookie refresh with CSRF header 0", r, http.StatusForbidden, "forbidden")

	r = tn.do("POST", "/v1/refresh", nil, "Cookie", sent, "X-Rotor-CSRF", "1")
	checkStatus(t, "cookie refresh", r, http.StatusOK)
	if _, ok := r.json(t)["refresh_token"]; ok {
		t.Errorf("refresh body with cookie delivery: has refresh_token, want none")
	}
	rotated := refreshCookie(t, r)
	if rotated.Value == cookie.Value {
		t.Errorf("cookie after refresh: got the same token, want a rotated one")
	}
	sent = "rotor_refresh=" + rotated.Value

	for _, origin := range []string{tn.url, allowedOrigin} {
		r = tn.do("POST", "/v1/refresh", nil, "Cookie", sent, "X-Rotor-CSRF", "1", "Origin", origin)
		checkStatus(t, "cookie refresh from origin "+origin, r, http.StatusOK)
		sent = "rotor_refresh=" + refreshCookie(t, r).Value
	}

	r = tn.do("POST", "/v1/logout", nil, "Cookie", sent)
	checkError(t, "cookie logout without the CSRF header", r, http.StatusForbidden, "forbidden")
	r = tn.do("POST", "/v1/logout", nil, "Cookie", sent, "X-Rotor-CSRF", "1")
	checkStatus(t, "cookie logout", r, http.StatusNoContent)
	cleared := refreshCookie(t, r)
	if cleared.Value != "" || cleared.MaxAge >= 0 {
		t.Errorf("cookie after logout: got value %q Max-Age %d, want an empty value that expires now", cleared.Value, cleared.MaxAge)
	}

	r = tn.do("POST", "/v1/refresh", nil, "Cookie", sent, "X-Rotor-CSRF", "1")
	checkError(t, "cookie refresh after logout", r, http.StatusUnauthorized, "session_revoked")
	if cleared := refreshCookie(t, r); cleared.MaxAge >= 0 {
		t.Errorf("cookie after a failed refresh: got Max-Age %d, want it cleared", cleared.MaxAge)
	}
}

func TestCORSForAllowedOrigins(t *testing.T) {
	t.Parallel()
	const allowedOrigin = "https://app.rotor.test"
	tn := startTestNode(t, "--allowed-origins", allowedOrigin)

	r := tn.do("OPTIONS", "/v1/refresh", nil, "Origin", allowedOrigin,
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type, x-rotor-csrf")
	checkStatus(t, "preflight from an allowed origin", r, http.StatusNoContent)
	want := map[string]string{
		"Access-Control-Allow-Origin":      allowedOrigin,
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Headers":     "Authorization, Content-Type, X-Rotor-CSRF",
	}
	for name, value := range want {
		if got := r.header.Get(name); got != value {
			t.Errorf("preflight %s: got %q, want %q", name, got, value)
		}
	}

	r = tn.do("OPTIONS", "/v1/refresh", nil, "Origin", "https://evil.rotor.test", "Access-Control-Request-Method", "POST")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" || r.status < 400 {
		t.Errorf("preflight from another origin: got %d with Allow-Origin %q, want a 4xx without CORS headers", r.status, got)
	}

	r = tn.do("GET", "/livez", nil, "Origin", allowedOrigin)
	if got := r.header.Get("Access-Control-Allow-Origin"); got != allowedOrigin {
		t.Errorf("response to an allowed origin: Allow-Origin %q, want %q", got, allowedOrigin)
	}
	r = tn.do("GET", "/livez", nil, "Origin", "https://evil.rotor.test")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("response to another origin: Allow-Origin %q, want none", got)
	}
}
