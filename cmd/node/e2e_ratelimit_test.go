package main

import (
	"net/http"
	"strconv"
	"testing"
)

func loginAttempt(tn *testNode, username, password string) response {
	return tn.do("POST", "/v1/login", map[string]string{"username": username, "password": password})
}

func checkThrottled(t *testing.T, step string, r response) {
	t.Helper()
	checkError(t, step, r, http.StatusTooManyRequests, "rate_limited")
	seconds, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || seconds < 1 {
		t.Errorf("%s: Retry-After %q, want a positive number of seconds", step, r.header.Get("Retry-After"))
	}
}

func TestLoginLimitPerUsername(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t, "--login-limit-user", "3/1m", "--login-limit-ip", "0")
	tn.signup("erin", testPassword)

	for i := range 3 {
		checkError(t, "wrong password "+strconv.Itoa(i+1), loginAttempt(tn, "erin", "wrong password"),
			http.StatusUnauthorized, "invalid_credentials")
	}
	checkThrottled(t, "fourth wrong password", loginAttempt(tn, "erin", "wrong password"))
	checkThrottled(t, "right password while throttled", loginAttempt(tn, "erin", testPassword))
	checkThrottled(t, "another spelling of the name", loginAttempt(tn, "ERIN", testPassword))

	// Another account is not affected, and unknown names are limited too.
	tn.signup("frank", testPassword)
	tn.login("frank", testPassword)
	for range 3 {
		checkError(t, "unknown user", loginAttempt(tn, "nobody-here", "wrong password"), http.StatusUnauthorized, "invalid_credentials")
	}
	checkThrottled(t, "unknown user after three failures", loginAttempt(tn, "nobody-here", "wrong password"))
}

func TestLoginLimitPerAddress(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t, "--login-limit-user", "0", "--login-limit-ip", "4/1m")
	tn.signup("gina", testPassword)
	tn.signup("hank", testPassword)

	for _, name := range []string{"gina", "hank", "gina", "hank"} {
		checkError(t, "wrong password for "+name, loginAttempt(tn, name, "wrong password"), http.StatusUnauthorized, "invalid_credentials")
	}
	checkThrottled(t, "fifth failure from the address", loginAttempt(tn, "gina", "wrong password"))
	checkThrottled(t, "another account from the same address", loginAttempt(tn, "hank", testPassword))
}

// An office behind one address, or a test suite, logs in again and again:
// only failures spend the budget.
func TestLoginLimitIgnoresSuccesses(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t, "--login-limit-user", "2/1m", "--login-limit-ip", "2/1m")
	tn.signup("ivy", testPassword)
	for i := range 25 {
		if r := loginAttempt(tn, "ivy", testPassword); r.status != http.StatusOK {
			t.Fatalf("successful login %d: got %d %s, want 200", i+1, r.status, truncateForLog(r.body))
		}
	}
}

func TestUsernameNormalized(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	id := tn.signup("Jules", testPassword)

	for _, spelling := range []string{"jules", "JULES", "  Jules ", "\uff2a\uff55\uff4c\uff45\uff53"} {
		r := loginAttempt(tn, spelling, testPassword)
		checkStatus(t, "login as "+strconv.Quote(spelling), r, http.StatusOK)
	}
	checkError(t, "sign up the full-width spelling", tn.do("POST", "/v1/users",
		map[string]string{"username": "\uff2a\uff35\uff2c\uff25\uff33", "password": testPassword}), http.StatusConflict, "username_taken")
	r := tn.authed("GET", "/v1/me", tn.login("jules", testPassword).Access, nil)
	checkStatus(t, "me", r, http.StatusOK)
	if got := r.str(t, "user_id"); got != id {
		t.Errorf("user_id: got %s, want %s", got, id)
	}
	checkError(t, "sign up with a symbol", tn.do("POST", "/v1/users",
		map[string]string{"username": "smiley\u263a", "password": testPassword}), http.StatusBadRequest, "invalid_request")
}
