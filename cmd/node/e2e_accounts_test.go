package main

import (
	"net/http"
	"testing"
)

func TestSignupUsernames(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)

	r := tn.do("POST", "/v1/users", map[string]string{"username": "Alice", "password": testPassword})
	checkStatus(t, "signup", r, http.StatusCreated)
	body := r.json(t)
	if got, _ := body["username"].(string); got != "alice" {
		t.Errorf("username: got %q, want %q (stored in lower case)", got, "alice")
	}
	if got, _ := body["user_id"].(string); got == "" {
		t.Errorf("user_id: got empty, want an id")
	}
	if roles, ok := body["roles"].([]any); !ok || len(roles) != 0 {
		t.Errorf("roles: got %v, want []", body["roles"])
	}

	cases := []struct {
		name     string
		username string
	}{
		{"same name", "Alice"},
		{"lower case", "alice"},
		{"upper case", "ALICE"},
		{"surrounding spaces", "  alice "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tn := tn.forTest(t)
			r := tn.do("POST", "/v1/users", map[string]string{"username": tc.username, "password": testPassword})
			checkError(t, "signup of a taken name", r, http.StatusConflict, "username_taken")
		})
	}

	t.Run("roles without admin", func(t *testing.T) {
		tn := tn.forTest(t)
		r := tn.do("POST", "/v1/users", map[string]any{"username": "mallory", "password": testPassword, "roles": []string{"admin"}})
		checkError(t, "signup with roles", r, http.StatusForbidden, "forbidden")
	})

	t.Run("login is case-insensitive", func(t *testing.T) {
		tn := tn.forTest(t)
		tn.login("ALICE", testPassword)
	})
}

func TestSignupTurnedOff(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, nil, "--signup=false")
	newUser := map[string]string{"username": "carol", "password": testPassword}

	r := tn.do("POST", "/v1/users", newUser)
	checkError(t, "signup without a token", r, http.StatusUnauthorized, "unauthorized")
	if got := r.header.Get("WWW-Authenticate"); got == "" {
		t.Errorf("WWW-Authenticate of the 401: got none, want a Bearer challenge")
	}

	r = tn.authed("POST", "/v1/users", admin.Access, newUser)
	checkStatus(t, "account creation by the admin", r, http.StatusCreated)

	carol := tn.login("carol", testPassword)
	r = tn.authed("POST", "/v1/users", carol.Access, map[string]string{"username": "dave", "password": testPassword})
	checkError(t, "account creation by a non-admin", r, http.StatusForbidden, "forbidden")

	r = tn.authed("POST", "/v1/admin/users", admin.Access, map[string]any{"username": "erin", "password": testPassword, "roles": []string{"support"}})
	checkStatus(t, "admin endpoint account creation", r, http.StatusCreated)
	if roles, _ := r.json(t)["roles"].([]any); len(roles) != 1 || roles[0] != "support" {
		t.Errorf("roles of the created account: got %v, want [support]", r.json(t)["roles"])
	}
}

func TestLoginFailures(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	tn.signup("frank", testPassword)

	cases := []struct {
		name     string
		username string
		password string
	}{
		{"wrong password", "frank", "wrong password 1"},
		{"unknown user", "nobody", testPassword},
		{"password case changed", "frank", "CORRECT HORSE BATTERY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tn := tn.forTest(t)
			r := tn.do("POST", "/v1/login", map[string]string{"username": tc.username, "password": tc.password})
			checkError(t, "login", r, http.StatusUnauthorized, "invalid_credentials")
			if r.header.Get("Set-Cookie") != "" {
				t.Errorf("Set-Cookie on a failed login: got %q, want none", r.header.Get("Set-Cookie"))
			}
		})
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	const newPassword = "new password 2"

	t.Run("revokes other sessions", func(t *testing.T) {
		t.Parallel()
		tn := tn.forTest(t)
		tn.signup("grace", testPassword)
		caller := tn.login("grace", testPassword)
		other := tn.login("grace", testPassword)

		r := tn.authed("PUT", "/v1/me/password", caller.Access, map[string]string{"current_password": "not the password", "new_password": newPassword})
		checkError(t, "change with a wrong current password", r, http.StatusUnauthorized, "invalid_credentials")
		tn.mustRefresh(other.Refresh)

		r = tn.authed("PUT", "/v1/me/password", caller.Access, map[string]string{"current_password": testPassword, "new_password": newPassword})
		checkStatus(t, "change password", r, http.StatusNoContent)

		checkError(t, "refresh of the other session", tn.refresh(other.Refresh), http.StatusUnauthorized, "session_revoked")
		if got := tn.me(other.Access); got != http.StatusUnauthorized {
			t.Errorf("me with the other session's access token: got %d, want 401", got)
		}
		if got := tn.me(caller.Access); got != http.StatusOK {
			t.Errorf("me with the caller's access token: got %d, want 200", got)
		}
		tn.mustRefresh(caller.Refresh)

		r = tn.do("POST", "/v1/login", map[string]string{"username": "grace", "password": testPassword})
		checkError(t, "login with the old password", r, http.StatusUnauthorized, "invalid_credentials")
		tn.login("grace", newPassword)
	})

	t.Run("keeps other sessions on request", func(t *testing.T) {
		t.Parallel()
		tn := tn.forTest(t)
		tn.signup("heidi", testPassword)
		caller := tn.login("heidi", testPassword)
		other := tn.login("heidi", testPassword)
		r := tn.authed("PUT", "/v1/me/password", caller.Access, map[string]any{
			"current_password": testPassword, "new_password": newPassword, "revoke_other_sessions": false,
		})
		checkStatus(t, "change password keeping sessions", r, http.StatusNoContent)
		tn.mustRefresh(other.Refresh)
		tn.login("heidi", newPassword)
	})
}
