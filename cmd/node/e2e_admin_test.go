package main

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
)

func TestAdminRolesReachToken(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, nil)
	userID := tn.signup("ivan", testPassword)
	tk := tn.login("ivan", testPassword)

	r := tn.authed("GET", "/v1/admin/users/"+userID, admin.Access, nil)
	checkStatus(t, "get user", r, http.StatusOK)
	user := r.json(t)
	if got, _ := user["username"].(string); got != "ivan" {
		t.Errorf("username: got %q, want %q", got, "ivan")
	}
	if got, ok := user["disabled"].(bool); !ok || got {
		t.Errorf("disabled: got %v, want false", user["disabled"])
	}
	if got, _ := user["created_at"].(string); got == "" {
		t.Errorf("created_at: got empty, want a timestamp")
	}

	want := []string{"billing", "editor"}
	r = tn.authed("PUT", "/v1/admin/users/"+userID+"/roles", admin.Access, map[string][]string{"roles": want})
	checkStatus(t, "set roles", r, http.StatusOK)

	if got := jwtRoles(t, tk.Access); len(got) != 0 {
		t.Errorf("roles in the access token minted before the change: got %v, want []", got)
	}
	next := tn.mustRefresh(tk.Refresh)
	if got := jwtRoles(t, next.Access); !slices.Equal(got, want) {
		t.Errorf("roles in the access token after refresh: got %v, want %v", got, want)
	}
	r = tn.authed("GET", "/v1/me", next.Access, nil)
	checkStatus(t, "me", r, http.StatusOK)
	var roles []string
	for _, role := range r.json(t)["roles"].([]any) {
		roles = append(roles, role.(string))
	}
	if !slices.Equal(roles, want) {
		t.Errorf("roles from me: got %v, want %v", roles, want)
	}

	r = tn.authed("PUT", "/v1/admin/users/"+userID+"/roles", admin.Access, map[string][]string{"roles": {}})
	checkStatus(t, "remove roles", r, http.StatusOK)
	if got := jwtRoles(t, tn.mustRefresh(next.Refresh).Access); len(got) != 0 {
		t.Errorf("roles in the access token after removing them: got %v, want []", got)
	}
}

func TestAdminRoleChecked(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, nil)
	userID := tn.signup("judy", testPassword)
	judy := tn.login("judy", testPassword)

	endpoints := []struct {
		name, method, path string
		body               any
	}{
		{"create user", "POST", "/v1/admin/users", map[string]string{"username": "kim", "password": testPassword}},
		{"get user", "GET", "/v1/admin/users/" + userID, nil},
		{"list sessions", "GET", "/v1/admin/users/" + userID + "/sessions", nil},
		{"revoke user sessions", "DELETE", "/v1/admin/users/" + userID + "/sessions", nil},
		{"get session", "GET", "/v1/admin/sessions/" + judy.SessionID, nil},
		{"revoke session", "DELETE", "/v1/admin/sessions/" + judy.SessionID, nil},
		{"set roles", "PUT", "/v1/admin/users/" + userID + "/roles", map[string][]string{"roles": {"admin"}}},
		{"disable user", "PUT", "/v1/admin/users/" + userID + "/disabled", map[string]bool{"disabled": true}},
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			tn := tn.forTest(t)
			checkError(t, "without a token", tn.do(ep.method, ep.path, ep.body), http.StatusUnauthorized, "unauthorized")
			checkError(t, "with a non-admin token", tn.authed(ep.method, ep.path, judy.Access, ep.body), http.StatusForbidden, "forbidden")
		})
	}
	// None of the rejected calls took effect.
	next := tn.mustRefresh(judy.Refresh)
	if got := jwtRoles(t, next.Access); len(got) != 0 {
		t.Errorf("roles after rejected calls: got %v, want []", got)
	}

	// The role is checked on the current record, not on the token's claim.
	r := tn.authed("PUT", "/v1/admin/users/"+userID+"/roles", admin.Access, map[string][]string{"roles": {"admin"}})
	checkStatus(t, "grant admin", r, http.StatusOK)
	checkStatus(t, "admin read with a token minted before the grant", tn.authed("GET", "/v1/admin/users/"+userID, next.Access, nil), http.StatusOK)
	r = tn.authed("PUT", "/v1/admin/users/"+userID+"/roles", admin.Access, map[string][]string{"roles": {}})
	checkStatus(t, "revoke admin", r, http.StatusOK)
	checkError(t, "admin read after the role was removed", tn.authed("GET", "/v1/admin/users/"+userID, next.Access, nil), http.StatusForbidden, "forbidden")
}

func TestAdminRevokeSession(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, nil)
	userID := tn.signup("ken", testPassword)
	target := tn.login("ken", testPassword)
	survivor := tn.login("ken", testPassword)

	r := tn.authed("GET", "/v1/admin/users/"+userID+"/sessions", admin.Access, nil)
	checkStatus(t, "list the user's sessions", r, http.StatusOK)
	if got, _ := r.json(t)["sessions"].([]any); len(got) != 2 {
		t.Errorf("sessions listed: got %d, want 2", len(got))
	}

	r = tn.authed("DELETE", "/v1/admin/sessions/"+target.SessionID, admin.Access, nil)
	checkStatus(t, "revoke one session", r, http.StatusNoContent)
	checkError(t, "refresh of the revoked session", tn.refresh(target.Refresh), http.StatusUnauthorized, "session_revoked")
	if got := tn.me(target.Access); got != http.StatusUnauthorized {
		t.Errorf("me with the revoked session's access token: got %d, want 401", got)
	}
	tn.mustRefresh(survivor.Refresh)

	r = tn.authed("GET", "/v1/admin/users/"+userID+"/sessions", admin.Access, nil)
	if got, _ := r.json(t)["sessions"].([]any); len(got) != 1 {
		t.Errorf("sessions listed after the revocation: got %d, want 1", len(got))
	}

	checkError(t, "revoke an unknown session", tn.authed("DELETE", "/v1/admin/sessions/AAAAAAAAAAAAAAAAAAAAAA", admin.Access, nil), http.StatusNotFound, "not_found")
	checkError(t, "revoke a malformed session id", tn.authed("DELETE", "/v1/admin/sessions/nope", admin.Access, nil), http.StatusNotFound, "not_found")
	checkError(t, "get an unknown user", tn.authed("GET", "/v1/admin/users/AAAAAAAAAAAAAAAAAAAAAA", admin.Access, nil), http.StatusNotFound, "not_found")
}

func TestTrustedBackendSession(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, map[string]string{"ROTOR_SERVICE_KEY": serviceKey})
	userID := tn.signup("liam", testPassword)
	body := map[string]string{"user_id": userID, "device_name": "backend"}

	r := tn.authed("POST", "/v1/sessions", serviceKey, body)
	checkStatus(t, "start a session with the service key", r, http.StatusOK)
	tk := decodeTokens(t, r)
	if tk.Refresh == "" || tk.Access == "" || tk.SessionID == "" {
		t.Fatalf("token response %s: want access_token, refresh_token and session_id", truncateForLog(r.body))
	}
	if got := r.str(t, "token_type"); got != "Bearer" {
		t.Errorf("token_type: got %q, want Bearer", got)
	}
	me := tn.authed("GET", "/v1/me", tk.Access, nil)
	checkStatus(t, "me with the trusted session", me, http.StatusOK)
	if got := me.str(t, "user_id"); got != userID {
		t.Errorf("user_id from me: got %q, want %q", got, userID)
	}
	tn.mustRefresh(tk.Refresh)

	checkError(t, "wrong service key", tn.authed("POST", "/v1/sessions", "not-the-service-key-000000000000", body), http.StatusForbidden, "forbidden")
	checkError(t, "no service key", tn.do("POST", "/v1/sessions", body), http.StatusUnauthorized, "unauthorized")
	checkError(t, "access token as service key", tn.authed("POST", "/v1/sessions", tk.Access, body), http.StatusForbidden, "forbidden")
	checkError(t, "unknown user", tn.authed("POST", "/v1/sessions", serviceKey, map[string]string{"user_id": "AAAAAAAAAAAAAAAAAAAAAA"}), http.StatusNotFound, "not_found")

	r = tn.authed("PUT", "/v1/admin/users/"+userID+"/disabled", admin.Access, map[string]bool{"disabled": true})
	checkStatus(t, "disable user", r, http.StatusOK)
	checkError(t, "session for a disabled user", tn.authed("POST", "/v1/sessions", serviceKey, body), http.StatusForbidden, "user_disabled")
}

func TestAdminReadsSession(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, nil)
	userID := tn.signup("lena", testPassword)
	tk := tn.login("lena", testPassword)
	tn.mustRefresh(tk.Refresh)

	path := "/v1/admin/sessions/" + tk.SessionID
	r := tn.authed("GET", path, admin.Access, nil)
	checkStatus(t, "read live session", r, http.StatusOK)
	got := r.json(t)
	if got["state"] != "live" || got["generation"] != 2.0 || got["user_id"] != userID || got["session_id"] != tk.SessionID {
		t.Errorf("live session: got %v, want state live, generation 2, user %s", got, userID)
	}

	checkStatus(t, "revoke", tn.authed("DELETE", path, admin.Access, nil), http.StatusNoContent)
	r = tn.authed("GET", path, admin.Access, nil)
	checkStatus(t, "read revoked session", r, http.StatusOK)
	got = r.json(t)
	if got["state"] != "revoked" || got["revoke_reason"] != "admin" || got["revoked_at"] == nil {
		t.Errorf("revoked session: got %v, want state revoked by admin with revoked_at", got)
	}

	checkError(t, "unknown session", tn.authed("GET", "/v1/admin/sessions/AAAAAAAAAAAAAAAAAAAAAA", admin.Access, nil),
		http.StatusNotFound, "not_found")
	checkError(t, "malformed session id", tn.authed("GET", "/v1/admin/sessions/%25zz", admin.Access, nil),
		http.StatusNotFound, "not_found")
}

func jwtPermissions(t testing.TB, jwt string) []string {
	t.Helper()
	raw, _ := jwtPart(t, jwt, 1)["permissions"].([]any)
	perms := make([]string, 0, len(raw))
	for _, p := range raw {
		s, _ := p.(string)
		perms = append(perms, s)
	}
	return perms
}

func TestAdminRolePermissionsReachToken(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, nil)
	userID := tn.signup("kate", testPassword)
	tk := tn.login("kate", testPassword)
	if got := jwtPermissions(t, tk.Access); len(got) != 0 {
		t.Fatalf("permissions before any role: got %v, want none", got)
	}

	r := tn.authed("PUT", "/v1/admin/roles/editor", admin.Access, map[string][]string{"permissions": {"posts:write", "posts:read"}})
	checkStatus(t, "map editor", r, http.StatusOK)
	if got := r.json(t)["permissions"]; fmt.Sprint(got) != "[posts:read posts:write]" {
		t.Errorf("mapped permissions: got %v, want [posts:read posts:write]", got)
	}
	r = tn.authed("GET", "/v1/admin/roles", admin.Access, nil)
	checkStatus(t, "list roles", r, http.StatusOK)
	if got := fmt.Sprint(r.json(t)["roles"]); got != "map[editor:[posts:read posts:write]]" {
		t.Errorf("role map: got %s", got)
	}

	checkStatus(t, "give kate editor", tn.authed("PUT", "/v1/admin/users/"+userID+"/roles", admin.Access,
		map[string][]string{"roles": {"editor"}}), http.StatusOK)
	next := tn.mustRefresh(tk.Refresh)
	if got, want := jwtPermissions(t, next.Access), []string{"posts:read", "posts:write"}; !slices.Equal(got, want) {
		t.Errorf("permissions after the role was given: got %v, want %v", got, want)
	}
	r = tn.authed("GET", "/v1/me", next.Access, nil)
	if got := fmt.Sprint(r.json(t)["permissions"]); got != "[posts:read posts:write]" {
		t.Errorf("permissions in me: got %s", got)
	}

	checkStatus(t, "narrow editor", tn.authed("PUT", "/v1/admin/roles/editor", admin.Access,
		map[string][]string{"permissions": {"posts:read"}}), http.StatusOK)
	next = tn.mustRefresh(next.Refresh)
	if got, want := jwtPermissions(t, next.Access), []string{"posts:read"}; !slices.Equal(got, want) {
		t.Errorf("permissions after the map changed: got %v, want %v", got, want)
	}

	checkStatus(t, "delete editor", tn.authed("DELETE", "/v1/admin/roles/editor", admin.Access, nil), http.StatusNoContent)
	if got := jwtPermissions(t, tn.mustRefresh(next.Refresh).Access); len(got) != 0 {
		t.Errorf("permissions after the role was deleted: got %v, want none", got)
	}
	checkError(t, "delete it again", tn.authed("DELETE", "/v1/admin/roles/editor", admin.Access, nil), http.StatusNotFound, "not_found")
	checkError(t, "no permissions", tn.authed("PUT", "/v1/admin/roles/editor", admin.Access,
		map[string][]string{"permissions": {}}), http.StatusBadRequest, "invalid_request")
	checkError(t, "bad permission name", tn.authed("PUT", "/v1/admin/roles/editor", admin.Access,
		map[string][]string{"permissions": {"Posts Write"}}), http.StatusBadRequest, "invalid_request")
	checkError(t, "bad role name", tn.authed("PUT", "/v1/admin/roles/Bad%20Role", admin.Access,
		map[string][]string{"permissions": {"posts:read"}}), http.StatusBadRequest, "invalid_request")
	checkError(t, "non-admin", tn.authed("PUT", "/v1/admin/roles/editor", next.Access,
		map[string][]string{"permissions": {"posts:read"}}), http.StatusForbidden, "forbidden")
}

func jwksKeyIDs(t *testing.T, tn *testNode) []string {
	t.Helper()
	r := tn.do("GET", "/.well-known/jwks.json", nil)
	checkStatus(t, "jwks", r, http.StatusOK)
	var ids []string
	for _, k := range r.json(t)["keys"].([]any) {
		ids = append(ids, k.(map[string]any)["kid"].(string))
	}
	return ids
}

func jwtKeyID(t *testing.T, jwt string) string {
	t.Helper()
	kid, _ := jwtPart(t, jwt, 0)["kid"].(string)
	return kid
}

// Rotating the signing key rejects no live token: the new key was published
// before the rotation, and the old one stays accepted until its tokens expire.
func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, nil)
	tn.signup("liam", testPassword)
	before := tn.login("liam", testPassword)
	oldKID := jwtKeyID(t, before.Access)

	published := jwksKeyIDs(t, tn)
	if len(published) != 2 || published[0] != oldKID {
		t.Fatalf("key set before rotation: got %v, want the current key %s and the next one", published, oldKID)
	}
	nextKID := published[1]

	r := tn.authed("POST", "/v1/admin/signing-keys/rotate", admin.Access, nil)
	checkStatus(t, "rotate", r, http.StatusOK)
	body := r.json(t)
	if body["kid"] != nextKID || body["previous_kid"] != oldKID || body["epoch"] != 2.0 {
		t.Fatalf("rotate response: got %v, want kid %s after %s at epoch 2", body, nextKID, oldKID)
	}

	checkStatus(t, "me with a token of the previous key", tn.authed("GET", "/v1/me", before.Access, nil), http.StatusOK)
	checkStatus(t, "admin token of the previous key", tn.authed("GET", "/v1/admin/roles", admin.Access, nil), http.StatusOK)
	after := tn.mustRefresh(before.Refresh)
	if got := jwtKeyID(t, after.Access); got != nextKID {
		t.Errorf("key of a token minted after rotation: got %s, want %s", got, nextKID)
	}
	checkStatus(t, "me with a token of the new key", tn.authed("GET", "/v1/me", after.Access, nil), http.StatusOK)

	published = jwksKeyIDs(t, tn)
	if len(published) != 3 || published[0] != oldKID || published[1] != nextKID {
		t.Errorf("key set after rotation: got %v, want the previous, the current and the next key", published)
	}
	checkError(t, "rotate as a user", tn.authed("POST", "/v1/admin/signing-keys/rotate", after.Access, nil),
		http.StatusForbidden, "forbidden")
}
