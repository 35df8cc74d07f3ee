package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// badRequest is one request that the API must reject with a 4xx and an
// error code, never with a 5xx.
type badRequest struct {
	name   string
	method string
	path   string
	body   []byte   // nil sends no body
	header []string // name, value pairs, Content-Type included
	status int
	code   string

	// goServer marks requests that Go's HTTP server rejects before Rotor's
	// handler runs (431 for oversized headers). Its plain-text response has
	// no code, so any 4xx passes.
	goServer bool
}

// jsonEndpoint describes a JSON endpoint for the generic bad-body rows.
type jsonEndpoint struct {
	name   string
	method string
	path   string
	auth   []string // credential header pairs
	valid  string   // a body that decodes, used as the base of the variants
	typo   string   // the valid body with a field of the wrong JSON type

	// emptyAccepted is set where an empty body is a valid request.
	emptyAccepted bool
}

const tenMiB = 10 << 20

// Oversized bodies, built once and shared by the rows because the requests
// only read them.
var (
	hugeJSON = []byte(`{"padding":"` + strings.Repeat("a", tenMiB) + `"}`)
	hugeForm = []byte("token=" + strings.Repeat("a", tenMiB))
)

// jsonBodyRows returns the decoding failures every JSON endpoint must reject
// the same way.
func jsonBodyRows(e jsonEndpoint) []badRequest {
	jsonType := append([]string{"Content-Type", "application/json"}, e.auth...)
	row := func(name, body string, header []string, status int, code string) badRequest {
		return badRequest{name: e.name + "/" + name, method: e.method, path: e.path, body: []byte(body), header: header, status: status, code: code}
	}
	withUnknown := strings.TrimSuffix(e.valid, "}") + `,"unknown_field":1}`
	huge := row("10 MiB body", "", jsonType, http.StatusRequestEntityTooLarge, "payload_too_large")
	huge.body = hugeJSON
	rows := []badRequest{
		row("malformed JSON", `{"`, jsonType, http.StatusBadRequest, "invalid_request"),
		row("wrong type", e.typo, jsonType, http.StatusBadRequest, "invalid_request"),
		row("array", "["+e.valid+"]", jsonType, http.StatusBadRequest, "invalid_request"),
		row("string", `"`+strings.ReplaceAll(e.valid, `"`, `\"`)+`"`, jsonType, http.StatusBadRequest, "invalid_request"),
		row("unknown field", withUnknown, jsonType, http.StatusBadRequest, "invalid_request"),
		row("trailing garbage", e.valid+" garbage", jsonType, http.StatusBadRequest, "invalid_request"),
		row("two objects", e.valid+e.valid, jsonType, http.StatusBadRequest, "invalid_request"),
		row("deep nesting", strings.Repeat("[", 20000)+strings.Repeat("]", 20000), jsonType, http.StatusBadRequest, "invalid_request"),
		huge,
		row("non-UTF-8", "{\"padding\":\"\xff\xfe\"}", jsonType, http.StatusBadRequest, "invalid_request"),
		row("text/plain", e.valid, append([]string{"Content-Type", "text/plain"}, e.auth...), http.StatusUnsupportedMediaType, "invalid_request"),
		row("form content type", e.valid, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, e.auth...), http.StatusUnsupportedMediaType, "invalid_request"),
		row("invalid content type", e.valid, append([]string{"Content-Type", "application/json; ==="}, e.auth...), http.StatusUnsupportedMediaType, "invalid_request"),
	}
	if !e.emptyAccepted {
		rows = append(rows, row("empty body", "", jsonType, http.StatusBadRequest, "invalid_request"))
	}
	return rows
}

// formBodyRows returns the decoding failures of an /oauth2 form endpoint.
func formBodyRows(name, path string, auth []string) []badRequest {
	form := append([]string{"Content-Type", "application/x-www-form-urlencoded"}, auth...)
	jsonType := append([]string{"Content-Type", "application/json"}, auth...)
	row := func(rowName, body string, header []string, status int, code string) badRequest {
		return badRequest{name: name + "/" + rowName, method: "POST", path: path, body: []byte(body), header: header, status: status, code: code}
	}
	huge := row("10 MiB body", "", form, http.StatusRequestEntityTooLarge, "payload_too_large")
	huge.body = hugeForm
	return []badRequest{
		row("malformed form", "token=%zz", form, http.StatusBadRequest, "invalid_request"),
		row("repeated parameter", "token=a&token=b", form, http.StatusBadRequest, "invalid_request"),
		row("empty body", "", form, http.StatusBadRequest, "invalid_request"),
		huge,
		row("non-UTF-8", "token=\xff\xfe", form, http.StatusBadRequest, "invalid_request"),
		row("malformed JSON", `{"token":`, jsonType, http.StatusBadRequest, "invalid_request"),
		row("JSON array", `["token"]`, jsonType, http.StatusBadRequest, "invalid_request"),
		row("JSON number field", `{"token":5}`, jsonType, http.StatusBadRequest, "invalid_request"),
		row("text/plain", "token=abc", append([]string{"Content-Type", "text/plain"}, auth...), http.StatusUnsupportedMediaType, "invalid_request"),
		row("100,000 dots", "token="+strings.Repeat(".", 100000), form, http.StatusRequestEntityTooLarge, "payload_too_large"),
	}
}

// forgedTokens returns access tokens that carry the claims and kid of real,
// but that the node never signed.
func forgedTokens(t *testing.T, real string) (algNone, foreignKey string) {
	t.Helper()
	header := jwtPart(t, real, 0)
	claims := jwtPart(t, real, 1)

	noneHeader, err := json.Marshal(map[string]any{"alg": "none", "typ": "at+jwt", "kid": header["kid"]})
	if err != nil {
		t.Fatalf("encode header: %v", err)
	}
	payload := strings.Split(real, ".")[1]
	algNone = base64.RawURLEncoding.EncodeToString(noneHeader) + "." + payload + "."

	_, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate Ed25519 key: %v", err)
	}
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(claims))
	forged.Header["kid"] = header["kid"]
	forged.Header["typ"] = "at+jwt"
	foreignKey, err = forged.SignedString(private)
	if err != nil {
		t.Fatalf("sign with a foreign key: %v", err)
	}
	return algNone, foreignKey
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	tn, admin := startAdminNode(t, map[string]string{"ROTOR_SERVICE_KEY": serviceKey})
	userID := tn.signup("uma", testPassword)
	user := tn.login("uma", testPassword)
	logoutSession := tn.login("uma", testPassword)
	targetID := tn.signup("victor", testPassword)

	bearer := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
	algNone, foreignKey := forgedTokens(t, user.Access)
	flippedSignature := []byte(user.Access)
	last := len(flippedSignature) - 5
	if flippedSignature[last] == 'A' {
		flippedSignature[last] = 'B'
	} else {
		flippedSignature[last] = 'A'
	}

	var rows []badRequest
	for _, e := range []jsonEndpoint{
		{name: "login", method: "POST", path: "/v1/login",
			valid: `{"username":"uma","password":"` + testPassword + `"}`,
			typo:  `{"username":5,"password":"` + testPassword + `"}`},
		{name: "users", method: "POST", path: "/v1/users",
			valid: `{"username":"newcomer","password":"` + testPassword + `"}`,
			typo:  `{"username":"newcomer","password":12345678}`},
		{name: "refresh", method: "POST", path: "/v1/refresh",
			valid: `{"refresh_token":"` + user.Refresh + `"}`,
			typo:  `{"refresh_token":5}`},
		{name: "logout", method: "POST", path: "/v1/logout", auth: bearer(logoutSession.Access),
			valid: `{"scope":"current"}`, typo: `{"scope":5}`, emptyAccepted: true},
		{name: "password", method: "PUT", path: "/v1/me/password", auth: bearer(user.Access),
			valid: `{"current_password":"wrong password 9","new_password":"another password"}`,
			typo:  `{"current_password":"wrong password 9","new_password":"another password","revoke_other_sessions":"yes"}`},
		{name: "roles", method: "PUT", path: "/v1/admin/users/" + targetID + "/roles", auth: bearer(admin.Access),
			valid: `{"roles":["editor"]}`, typo: `{"roles":"editor"}`},
		{name: "disabled", method: "PUT", path: "/v1/admin/users/" + targetID + "/disabled", auth: bearer(admin.Access),
			valid: `{"disabled":false}`, typo: `{"disabled":"true"}`},
		{name: "trusted session", method: "POST", path: "/v1/sessions", auth: bearer(serviceKey),
			valid: `{"user_id":"` + userID + `"}`, typo: `{"user_id":5}`},
	} {
		rows = append(rows, jsonBodyRows(e)...)
	}
	rows = append(rows, formBodyRows("oauth2 token", "/oauth2/token", nil)...)
	rows = append(rows, formBodyRows("oauth2 revoke", "/oauth2/revoke", nil)...)
	rows = append(rows, formBodyRows("oauth2 introspect", "/oauth2/introspect", bearer(serviceKey))...)

	jsonType := []string{"Content-Type", "application/json"}
	withJSON := func(pairs ...string) []string { return append(append([]string(nil), jsonType...), pairs...) }
	adminAuth := bearer(admin.Access)
	rows = append(rows, []badRequest{
		// Field validation after decoding.
		{name: "login/unknown token delivery", method: "POST", path: "/v1/login", header: jsonType,
			body: []byte(`{"username":"uma","password":"` + testPassword + `","token_delivery":"pigeon"}`), status: 400, code: "invalid_request"},
		{name: "login/control character in device name", method: "POST", path: "/v1/login", header: jsonType,
			body: []byte(`{"username":"uma","password":"` + testPassword + `","device_name":"a\u0007b"}`), status: 400, code: "invalid_request"},
		{name: "login/missing password", method: "POST", path: "/v1/login", header: jsonType,
			body: []byte(`{"username":"uma"}`), status: 400, code: "invalid_request"},
		{name: "users/short password", method: "POST", path: "/v1/users", header: jsonType,
			body: []byte(`{"username":"shorty","password":"short"}`), status: 400, code: "invalid_request"},
		{name: "users/space in username", method: "POST", path: "/v1/users", header: jsonType,
			body: []byte(`{"username":"a b","password":"` + testPassword + `"}`), status: 400, code: "invalid_request"},
		{name: "users/username too long", method: "POST", path: "/v1/users", header: jsonType,
			body: []byte(`{"username":"` + strings.Repeat("x", 65) + `","password":"` + testPassword + `"}`), status: 400, code: "invalid_request"},
		{name: "refresh/empty token", method: "POST", path: "/v1/refresh", header: jsonType,
			body: []byte(`{"refresh_token":""}`), status: 400, code: "invalid_request"},
		{name: "refresh/empty body", method: "POST", path: "/v1/refresh", header: jsonType,
			status: 400, code: "invalid_request"},
		{name: "refresh/10,000 dots", method: "POST", path: "/v1/refresh", header: jsonType,
			body: []byte(`{"refresh_token":"` + strings.Repeat(".", 10000) + `"}`), status: 401, code: "refresh_token_invalid"},
		{name: "refresh/100,000 dots", method: "POST", path: "/v1/refresh", header: jsonType,
			body: []byte(`{"refresh_token":"` + strings.Repeat(".", 100000) + `"}`), status: 413, code: "payload_too_large"},
		{name: "refresh/access token as refresh token", method: "POST", path: "/v1/refresh", header: jsonType,
			body: []byte(`{"refresh_token":"` + user.Access + `"}`), status: 401, code: "refresh_token_invalid"},
		{name: "logout/unknown scope", method: "POST", path: "/v1/logout", header: withJSON(bearer(logoutSession.Access)...),
			body: []byte(`{"scope":"everything"}`), status: 400, code: "invalid_request"},
		{name: "logout/garbage refresh token", method: "POST", path: "/v1/logout", header: jsonType,
			body: []byte(`{"refresh_token":"garbage"}`), status: 401, code: "refresh_token_invalid"},
		{name: "password/new password too short", method: "PUT", path: "/v1/me/password", header: withJSON(bearer(user.Access)...),
			body: []byte(`{"current_password":"` + testPassword + `","new_password":"short"}`), status: 400, code: "invalid_request"},
		{name: "password/missing current password", method: "PUT", path: "/v1/me/password", header: withJSON(bearer(user.Access)...),
			body: []byte(`{"new_password":"another password"}`), status: 400, code: "invalid_request"},
		{name: "roles/missing roles", method: "PUT", path: "/v1/admin/users/" + targetID + "/roles", header: withJSON(adminAuth...),
			body: []byte(`{}`), status: 400, code: "invalid_request"},
		{name: "roles/invalid role name", method: "PUT", path: "/v1/admin/users/" + targetID + "/roles", header: withJSON(adminAuth...),
			body: []byte(`{"roles":["Admin!"]}`), status: 400, code: "invalid_request"},
		{name: "roles/duplicate role", method: "PUT", path: "/v1/admin/users/" + targetID + "/roles", header: withJSON(adminAuth...),
			body: []byte(`{"roles":["a","a"]}`), status: 400, code: "invalid_request"},
		{name: "roles/unknown user", method: "PUT", path: "/v1/admin/users/AAAAAAAAAAAAAAAAAAAAAA/roles", header: withJSON(adminAuth...),
			body: []byte(`{"roles":[]}`), status: 404, code: "not_found"},
		{name: "roles/malformed user id", method: "PUT", path: "/v1/admin/users/nope/roles", header: withJSON(adminAuth...),
			body: []byte(`{"roles":[]}`), status: 404, code: "not_found"},
		{name: "disabled/missing field", method: "PUT", path: "/v1/admin/users/" + targetID + "/disabled", header: withJSON(adminAuth...),
			body: []byte(`{}`), status: 400, code: "invalid_request"},
		{name: "disabled/unknown user", method: "PUT", path: "/v1/admin/users/AAAAAAAAAAAAAAAAAAAAAA/disabled", header: withJSON(adminAuth...),
			body: []byte(`{"disabled":true}`), status: 404, code: "not_found"},
		{name: "trusted session/malformed user id", method: "POST", path: "/v1/sessions", header: withJSON(bearer(serviceKey)...),
			body: []byte(`{"user_id":"nope"}`), status: 400, code: "invalid_request"},
		{name: "trusted session/device name too long", method: "POST", path: "/v1/sessions", header: withJSON(bearer(serviceKey)...),
			body: []byte(`{"user_id":"` + userID + `","device_name":"` + strings.Repeat("d", 129) + `"}`), status: 400, code: "invalid_request"},
		{name: "oauth2 token/unsupported grant", method: "POST", path: "/oauth2/token", header: []string{"Content-Type", "application/x-www-form-urlencoded"},
			body: []byte("grant_type=client_credentials"), status: 400, code: "invalid_request"},
		{name: "oauth2 token/missing refresh token", method: "POST", path: "/oauth2/token", header: []string{"Content-Type", "application/x-www-form-urlencoded"},
			body: []byte("grant_type=refresh_token"), status: 400, code: "invalid_request"},
		{name: "oauth2 introspect/no credential", method: "POST", path: "/oauth2/introspect", header: []string{"Content-Type", "application/x-www-form-urlencoded"},
			body: []byte("token=abc"), status: 401, code: "unauthorized"},

		// Bad access tokens and Authorization headers.
		{name: "me/alg none", method: "GET", path: "/v1/me", header: bearer(algNone), status: 401, code: "unauthorized"},
		{name: "me/foreign Ed25519 key", method: "GET", path: "/v1/me", header: bearer(foreignKey), status: 401, code: "unauthorized"},
		{name: "me/signature changed", method: "GET", path: "/v1/me", header: bearer(string(flippedSignature)), status: 401, code: "unauthorized"},
		{name: "me/refresh token as access token", method: "GET", path: "/v1/me", header: bearer(user.Refresh), status: 401, code: "unauthorized"},
		{name: "me/10,000 dots", method: "GET", path: "/v1/me", header: bearer(strings.Repeat(".", 10000)), status: 401, code: "unauthorized"},
		{name: "me/100,000 dots", method: "GET", path: "/v1/me", header: bearer(strings.Repeat(".", 100000)), goServer: true},
		{name: "me/1 MiB header", method: "GET", path: "/v1/me", header: bearer(strings.Repeat("a", 1<<20)), goServer: true},
		{name: "me/empty bearer", method: "GET", path: "/v1/me", header: []string{"Authorization", "Bearer"}, status: 401, code: "unauthorized"},
		{name: "me/basic scheme", method: "GET", path: "/v1/me", header: []string{"Authorization", "Basic dW1hOnB3"}, status: 401, code: "unauthorized"},
		{name: "me/token with trailing word", method: "GET", path: "/v1/me", header: bearer(user.Access + " extra"), status: 401, code: "unauthorized"},
		{name: "me/non-UTF-8 token", method: "GET", path: "/v1/me", header: bearer("a.\xff.c"), status: 401, code: "unauthorized"},
		{name: "logout/alg none", method: "POST", path: "/v1/logout", header: bearer(algNone), status: 401, code: "unauthorized"},
		{name: "sessions/foreign Ed25519 key", method: "GET", path: "/v1/sessions", header: bearer(foreignKey), status: 401, code: "unauthorized"},
		{name: "introspect/alg none credential", method: "POST", path: "/oauth2/introspect",
			header: append([]string{"Content-Type", "application/x-www-form-urlencoded"}, bearer(algNone)...), body: []byte("token=abc"), status: 401, code: "unauthorized"},
		{name: "refresh cookie/100,000 dots", method: "POST", path: "/v1/refresh",
			header: []string{"Cookie", "rotor_refresh=" + strings.Repeat(".", 100000), "X-Rotor-CSRF", "1"}, goServer: true},
		{name: "refresh cookie/10,000 dots", method: "POST", path: "/v1/refresh",
			header: []string{"Cookie", "rotor_refresh=" + strings.Repeat(".", 10000), "X-Rotor-CSRF", "1"}, status: 401, code: "refresh_token_invalid"},

		// Routing.
		{name: "wrong method/login", method: "GET", path: "/v1/login", status: 405, code: "invalid_request"},
		{name: "wrong method/me", method: "DELETE", path: "/v1/me", status: 405, code: "invalid_request"},
		{name: "wrong method/refresh", method: "PUT", path: "/v1/refresh", status: 405, code: "invalid_request"},
		{name: "wrong method/jwks", method: "POST", path: "/.well-known/jwks.json", status: 405, code: "invalid_request"},
		{name: "wrong method/oauth2 token", method: "GET", path: "/oauth2/token", status: 405, code: "invalid_request"},
		{name: "unknown path", method: "GET", path: "/v1/nothing-here", status: 404, code: "not_found"},
	}...)

	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r, err := tn.send(row.method, row.path, row.body, row.header...)
			if err != nil {
				t.Fatalf("%s %s: %v", row.method, row.path, err)
			}
			if r.status >= 500 {
				t.Fatalf("got status %d, want a 4xx (body %s)", r.status, truncateForLog(r.body))
			}
			if row.goServer {
				if r.status < 400 {
					t.Errorf("got status %d, want a 4xx", r.status)
				}
				return
			}
			checkError(t, row.method+" "+row.path, r, row.status, row.code)
			if row.status == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
				t.Errorf("Allow header of the 405: got none, want the allowed methods")
			}
			if strings.HasPrefix(row.path, "/oauth2/") {
				checkOAuthErrorField(t, r)
			}
		})
	}

	// None of the rejected requests changed anything.
	tn = tn.forTest(t)
	next := tn.mustRefresh(user.Refresh)
	if got := tn.me(next.Access); got != http.StatusOK {
		t.Errorf("me after the bad requests: got %d, want 200", got)
	}
	tn.mustRefresh(logoutSession.Refresh)
	tn.login("uma", testPassword)
	r := tn.authed("GET", "/v1/admin/users/"+targetID, admin.Access, nil)
	if roles, _ := r.json(t)["roles"].([]any); len(roles) != 0 {
		t.Errorf("roles of the target after the bad requests: got %v, want []", roles)
	}
	if disabled, _ := r.json(t)["disabled"].(bool); disabled {
		t.Errorf("disabled of the target after the bad requests: got true, want false")
	}
}

// checkOAuthErrorField checks that an /oauth2 error carries its code as
// error_code next to an RFC 6749 error name.
func checkOAuthErrorField(t *testing.T, r response) {
	t.Helper()
	var body map[string]any
	if json.Unmarshal(r.body, &body) != nil {
		return // checkError already reported the missing code
	}
	if _, ok := body["error_code"].(string); !ok {
		t.Errorf("/oauth2 error body %s: want an error_code field", bytes.TrimSpace(r.body))
	}
	if _, ok := body["error"].(string); !ok {
		t.Errorf("/oauth2 error body %s: want an error field", bytes.TrimSpace(r.body))
	}
}
