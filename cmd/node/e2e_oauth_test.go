package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// refreshForm is the RFC 6749 refresh_token grant as a form body.
func refreshForm(refreshToken string) string {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}.Encode()
}

func TestOAuthTokenGrant(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	tn.signup("nina", testPassword)
	tk := tn.login("nina", testPassword)

	r := tn.form("/oauth2/token", refreshForm(tk.Refresh))
	checkStatus(t, "form grant", r, http.StatusOK)
	body := r.json(t)
	for _, field := range []string{"access_token", "refresh_token", "session_id"} {
		if got, _ := body[field].(string); got == "" {
			t.Errorf("%s: got empty, want a value", field)
		}
	}
	if got, _ := body["token_type"].(string); got != "Bearer" {
		t.Errorf("token_type: got %q, want Bearer", got)
	}
	if got, _ := body["expires_in"].(float64); got <= 0 {
		t.Errorf("expires_in: got %v, want a positive number of seconds", body["expires_in"])
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", got)
	}
	next := decodeTokens(t, r)

	r = tn.do("POST", "/oauth2/token", map[string]string{"grant_type": "refresh_token", "refresh_token": next.Refresh})
	checkStatus(t, "JSON grant", r, http.StatusOK)

	r = tn.form("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"nina"}, "password": {testPassword}}.Encode())
	checkError(t, "password grant", r, http.StatusBadRequest, "invalid_request")
	checkOAuthShape(t, r, "unsupported_grant_type")

	r = tn.form("/oauth2/token", url.Values{"refresh_token": {next.Refresh}}.Encode())
	checkError(t, "grant without grant_type", r, http.StatusBadRequest, "invalid_request")
	checkOAuthShape(t, r, "invalid_request")
}

// checkOAuthShape checks that r is an RFC 6749 section 5.2 error body with
// Rotor's error_code and no problem fields.
func checkOAuthShape(t *testing.T, r response, wantError string) {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Errorf("OAuth error body %q: %v", truncateForLog(r.body), err)
		return
	}
	if got, _ := body["error"].(string); got != wantError {
		t.Errorf("error: got %q, want %q", got, wantError)
	}
	if got, _ := body["error_description"].(string); got == "" {
		t.Errorf("error_description: got empty, want a description")
	}
	if _, ok := body["code"]; ok {
		t.Errorf("OAuth error body has a problem field code, want error_code only")
	}
	if got := r.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("Content-Type: got %q, want application/json", got)
	}
}

func TestOAuthTokenGrantErrors(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	tn.signup("olga", testPassword)

	// RFC 6749 section 5.2 requires 400 Bad Request for invalid_grant. Only
	// invalid_client may use 401.
	cases := []struct {
		name     string
		token    func(t *testing.T, tn *testNode) string
		wantCode string
	}{
		{"unknown token", func(t *testing.T, tn *testNode) string {
			return "rtr1_" + strings.Repeat("A", 75)
		}, "refresh_token_invalid"},
		{"reused token", func(t *testing.T, tn *testNode) string {
			first := tn.login("olga", testPassword)
			second := tn.mustRefresh(first.Refresh)
			tn.mustRefresh(second.Refresh)
			return first.Refresh
		}, "refresh_token_reused"},
		{"revoked session", func(t *testing.T, tn *testNode) string {
			tk := tn.login("olga", testPassword)
			checkStatus(t, "logout", tn.authed("POST", "/v1/logout", tk.Access, nil), http.StatusNoContent)
			return tk.Refresh
		}, "session_revoked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tn := tn.forTest(t)
			r := tn.form("/oauth2/token", refreshForm(tc.token(t, tn)))
			checkError(t, "token grant", r, http.StatusBadRequest, tc.wantCode)
			checkOAuthShape(t, r, "invalid_grant")
		})
	}
}

func TestOAuthRevoke(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	tn.signup("oscar", testPassword)

	t.Run("refresh token", func(t *testing.T) {
		tn := tn.forTest(t)
		tk := tn.login("oscar", testPassword)
		r := tn.form("/oauth2/revoke", url.Values{"token": {tk.Refresh}, "token_type_hint": {"refresh_token"}}.Encode())
		checkStatus(t, "revoke", r, http.StatusOK)
		checkError(t, "refresh after revoke", tn.refresh(tk.Refresh), http.StatusUnauthorized, "session_revoked")
		if got := tn.me(tk.Access); got != http.StatusUnauthorized {
			t.Errorf("me after revoke: got %d, want 401", got)
		}
	})

	t.Run("access token", func(t *testing.T) {
		tn := tn.forTest(t)
		tk := tn.login("oscar", testPassword)
		r := tn.form("/oauth2/revoke", url.Values{"token": {tk.Access}}.Encode())
		checkStatus(t, "revoke", r, http.StatusOK)
		if got := tn.me(tk.Access); got != http.StatusUnauthorized {
			t.Errorf("me after revoke: got %d, want 401", got)
		}
		checkError(t, "refresh after revoke", tn.refresh(tk.Refresh), http.StatusUnauthorized, "session_revoked")
	})

	t.Run("revoked token again", func(t *testing.T) {
		tn := tn.forTest(t)
		tk := tn.login("oscar", testPassword)
		checkStatus(t, "first revoke", tn.form("/oauth2/revoke", "token="+tk.Refresh), http.StatusOK)
		checkStatus(t, "second revoke", tn.form("/oauth2/revoke", "token="+tk.Refresh), http.StatusOK)
	})

	for _, garbage := range []struct{ name, token string }{
		{"garbage", "not-a-token"},
		{"forged refresh token", "rtr1_" + strings.Repeat("A", 75)},
		{"three segments", "a.b.c"},
	} {
		t.Run(garbage.name, func(t *testing.T) {
			tn := tn.forTest(t)
			checkStatus(t, "revoke", tn.form("/oauth2/revoke", url.Values{"token": {garbage.token}}.Encode()), http.StatusOK)
		})
	}

	t.Run("missing token", func(t *testing.T) {
		tn := tn.forTest(t)
		r := tn.form("/oauth2/revoke", "token_type_hint=refresh_token")
		checkError(t, "revoke without token", r, http.StatusBadRequest, "invalid_request")
		checkOAuthShape(t, r, "invalid_request")
	})
}

func TestOAuthIntrospect(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, map[string]string{"ROTOR_SERVICE_KEY": serviceKey})
	userID := tn.signup("pia", testPassword)
	live := tn.login("pia", testPassword)
	rotated := tn.login("pia", testPassword)
	successor := tn.mustRefresh(rotated.Refresh)
	revoked := tn.login("pia", testPassword)
	checkStatus(t, "logout", tn.authed("POST", "/v1/logout", revoked.Access, nil), http.StatusNoContent)

	credentials := []struct{ name, bearer string }{
		{"service key", serviceKey},
		{"admin token", admin.Access},
	}
	tokenCases := []struct {
		name     string
		token    string
		wantType string // "" for inactive
		wantSID  string
	}{
		{"live access token", live.Access, "access_token", live.SessionID},
		{"live refresh token", live.Refresh, "refresh_token", live.SessionID},
		{"current refresh token after rotation", successor.Refresh, "refresh_token", rotated.SessionID},
		{"rotated refresh token", rotated.Refresh, "", ""},
		{"revoked access token", revoked.Access, "", ""},
		{"revoked refresh token", revoked.Refresh, "", ""},
		{"garbage", "garbage", "", ""},
	}
	for _, cred := range credentials {
		for _, tc := range tokenCases {
			t.Run(cred.name+"/"+tc.name, func(t *testing.T) {
				tn := tn.forTest(t)
				r := tn.form("/oauth2/introspect", url.Values{"token": {tc.token}}.Encode(), "Authorization", "Bearer "+cred.bearer)
				checkStatus(t, "introspect", r, http.StatusOK)
				body := r.json(t)
				if tc.wantType == "" {
					if len(body) != 1 || body["active"] != false {
						t.Errorf("introspection: got %s, want exactly {\"active\":false}", strings.TrimSpace(string(r.body)))
					}
					return
				}
				if body["active"] != true {
					t.Errorf("active: got %v, want true", body["active"])
				}
				if got, _ := body["token_type"].(string); got != tc.wantType {
					t.Errorf("token_type: got %q, want %q", got, tc.wantType)
				}
				if got, _ := body["sub"].(string); got != userID {
					t.Errorf("sub: got %q, want %q", got, userID)
				}
				if got, _ := body["sid"].(string); got != tc.wantSID {
					t.Errorf("sid: got %q, want %q", got, tc.wantSID)
				}
				if got, _ := body["username"].(string); got != "pia" {
					t.Errorf("username: got %q, want %q", got, "pia")
				}
			})
		}
	}

	t.Run("no credential", func(t *testing.T) {
		tn := tn.forTest(t)
		r := tn.form("/oauth2/introspect", url.Values{"token": {live.Access}}.Encode())
		checkError(t, "introspect without a credential", r, http.StatusUnauthorized, "unauthorized")
		checkOAuthShape(t, r, "invalid_client")
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
		}
	})

	t.Run("non-admin token", func(t *testing.T) {
		tn := tn.forTest(t)
		r := tn.form("/oauth2/introspect", url.Values{"token": {live.Access}}.Encode(), "Authorization", "Bearer "+live.Access)
		checkError(t, "introspect with a non-admin token", r, http.StatusForbidden, "forbidden")
	})
}

func TestJWKSAndMetadata(t *testing.T) {
	t.Parallel()
	tn := startTestNode(t)
	tn.signup("quinn", testPassword)
	tk := tn.login("quinn", testPassword)
	header := jwtPart(t, tk.Access, 0)
	claims := jwtPart(t, tk.Access, 1)

	if header["alg"] != "EdDSA" {
		t.Errorf("alg: got %v, want EdDSA", header["alg"])
	}
	if header["typ"] != "at+jwt" {
		t.Errorf("typ: got %v, want at+jwt", header["typ"])
	}
	for _, claim := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "sid", "roles"} {
		if _, ok := claims[claim]; !ok {
			t.Errorf("claim %s: missing", claim)
		}
	}
	if claims["sid"] != tk.SessionID {
		t.Errorf("sid: got %v, want %q", claims["sid"], tk.SessionID)
	}

	r := tn.do("GET", "/.well-known/jwks.json", nil)
	checkStatus(t, "jwks", r, http.StatusOK)
	var set struct {
		Keys []struct {
			Kty, Crv, X, Kid, Alg, Use string
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatalf("decode jwks %s: %v", truncateForLog(r.body), err)
	}
	kid, _ := header["kid"].(string)
	i := slices.IndexFunc(set.Keys, func(k struct{ Kty, Crv, X, Kid, Alg, Use string }) bool { return k.Kid == kid })
	if i < 0 {
		t.Fatalf("jwks: no key with kid %q among %d keys", kid, len(set.Keys))
	}
	key := set.Keys[i]
	if key.Kty != "OKP" || key.Crv != "Ed25519" || key.Alg != "EdDSA" {
		t.Errorf("jwk: got kty %q crv %q alg %q, want OKP Ed25519 EdDSA", key.Kty, key.Crv, key.Alg)
	}
	public, err := base64.RawURLEncoding.DecodeString(key.X)
	if err != nil || len(public) != ed25519.PublicKeySize {
		t.Fatalf("jwk x: got %d bytes (%v), want %d", len(public), err, ed25519.PublicKeySize)
	}
	dot := strings.LastIndex(tk.Access, ".")
	signature, err := base64.RawURLEncoding.DecodeString(tk.Access[dot+1:])
	if err != nil {
		t.Fatalf("decode signature: %v", err)
	}
	if !ed25519.Verify(public, []byte(tk.Access[:dot]), signature) {
		t.Errorf("access token signature: does not verify with the published key")
	}

	r = tn.do("GET", "/.well-known/oauth-authorization-server", nil)
	checkStatus(t, "metadata", r, http.StatusOK)
	meta := r.json(t)
	issuer, _ := meta["issuer"].(string)
	if issuer != tn.url {
		t.Errorf("issuer: got %q, want %q", issuer, tn.url)
	}
	if claims["iss"] != issuer {
		t.Errorf("iss claim: got %v, want the issuer %q", claims["iss"], issuer)
	}
	for field, path := range map[string]string{
		"token_endpoint":         "/oauth2/token",
		"revocation_endpoint":    "/oauth2/revoke",
		"introspection_endpoint": "/oauth2/introspect",
		"jwks_uri":               "/.well-known/jwks.json",
	} {
		if got, _ := meta[field].(string); got != issuer+path {
			t.Errorf("%s: got %q, want %q", field, got, issuer+path)
		}
	}
	if grants, _ := meta["grant_types_supported"].([]any); !slices.Contains(grants, any("refresh_token")) {
		t.Errorf("grant_types_supported: got %v, want it to contain refresh_token", meta["grant_types_supported"])
	}
}
