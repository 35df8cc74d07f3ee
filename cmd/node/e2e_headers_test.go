package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestTokenResponsesNoStore(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, map[string]string{"ROTOR_SERVICE_KEY": serviceKey})
	userID := tn.signup("sam", testPassword)

	cases := []struct {
		name string
		call func(tn *testNode) response
	}{
		{"login", func(tn *testNode) response {
			return tn.do("POST", "/v1/login", map[string]string{"username": "sam", "password": testPassword})
		}},
		{"cookie login", func(tn *testNode) response {
			return tn.do("POST", "/v1/login", map[string]string{"username": "sam", "password": testPassword, "token_delivery": "cookie"})
		}},
		{"refresh", func(tn *testNode) response {
			return tn.refresh(tn.login("sam", testPassword).Refresh)
		}},
		{"grace replay", func(tn *testNode) response {
			tk := tn.login("sam", testPassword)
			tn.mustRefresh(tk.Refresh)
			return tn.refresh(tk.Refresh)
		}},
		{"oauth2 token", func(tn *testNode) response {
			return tn.form("/oauth2/token", refreshForm(tn.login("sam", testPassword).Refresh))
		}},
		{"trusted session", func(tn *testNode) response {
			return tn.authed("POST", "/v1/sessions", serviceKey, map[string]string{"user_id": userID})
		}},
		{"introspection", func(tn *testNode) response {
			return tn.form("/oauth2/introspect", url.Values{"token": {admin.Access}}.Encode(), "Authorization", "Bearer "+serviceKey)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.call(tn.forTest(t))
			checkStatus(t, tc.name, r, http.StatusOK)
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", got)
			}
		})
	}
}

func TestUnauthorizedChallenge(t *testing.T) {
	t.Parallel()
	tn, _ := startAdminNode(t, map[string]string{"ROTOR_SERVICE_KEY": serviceKey})
	tn.signup("tina", testPassword)
	revoked := tn.login("tina", testPassword)
	checkStatus(t, "logout", tn.authed("POST", "/v1/logout", revoked.Access, nil), http.StatusNoContent)

	endpoints := []struct {
		name, method, path string
		body               any
	}{
		{"me", "GET", "/v1/me", nil},
		{"sessions", "GET", "/v1/sessions", nil},
		{"delete session", "DELETE", "/v1/sessions/" + revoked.SessionID, nil},
		{"change password", "PUT", "/v1/me/password", map[string]string{"current_password": testPassword, "new_password": "another password"}},
		{"admin user", "GET", "/v1/admin/users/AAAAAAAAAAAAAAAAAAAAAA", nil},
		{"admin revoke", "DELETE", "/v1/admin/sessions/" + revoked.SessionID, nil},
	}
	credentials := []struct {
		name   string
		header []string
	}{
		{"missing", nil},
		{"garbage", []string{"Authorization", "Bearer garbage"}},
		{"revoked", []string{"Authorization", "Bearer " + revoked.Access}},
		{"basic scheme", []string{"Authorization", "Basic dGluYTpwYXNz"}},
	}
	for _, ep := range endpoints {
		for _, cred := range credentials {
			t.Run(ep.name+"/"+cred.name, func(t *testing.T) {
				tn := tn.forTest(t)
				r := tn.do(ep.method, ep.path, ep.body, cred.header...)
				checkError(t, ep.name, r, http.StatusUnauthorized, "unauthorized")
				if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
				}
			})
		}
	}

	// Logout also accepts a refresh token, so it sends a challenge only when
	// the request carries a bad access token.
	t.Run("logout/revoked", func(t *testing.T) {
		tn := tn.forTest(t)
		r := tn.authed("POST", "/v1/logout", revoked.Access, nil)
		checkError(t, "logout", r, http.StatusUnauthorized, "unauthorized")
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
		}
	})
}
