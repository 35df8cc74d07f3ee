package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzJSONBodies feeds arbitrary bytes to the JSON decoding and validation
// that every handler runs on its body before it touches state. Each body
// must be accepted or rejected with a 4xx Error; nothing may panic or
// produce another kind of error.
func FuzzJSONBodies(f *testing.F) {
	s := newStatelessServer(f)
	for _, seed := range []string{
		`{"username":"alice","password":"correct horse"}`,
		`{"username":"alice","password":"correct horse","token_delivery":"cookie","device_name":"laptop"}`,
		`{"refresh_token":"rtr1_AAAA"}`,
		`{"scope":"others"}`,
		`{"roles":["admin","editor"]}`,
		`{"permissions":["posts:read"]}`,
		`{"current_password":"a","new_password":"b","revoke_other_sessions":false}`,
		``, `null`, `[]`, `{}`, `{"username":1}`, `{"a":1,"a":2}`, "\xff\xfe", strings.Repeat("[", 1000),
	} {
		f.Add([]byte(seed))
	}

	targets := []struct {
		name       string
		allowEmpty bool
		decode     func(body []byte, allowEmpty bool) error
	}{
		{"login", false, func(b []byte, e bool) error {
			var req loginRequest
			if err := parseJSON(b, &req, e); err != nil {
				return err
			}
			return validateLogin(&req)
		}},
		{"sign-up", false, func(b []byte, e bool) error {
			var req createUserRequest
			if err := parseJSON(b, &req, e); err != nil {
				return err
			}
			_, err := validateUsername(req.Username)
			if err == nil {
				err = validatePassword("password", req.Password)
			}
			return err
		}},
		{"refresh", true, func(b []byte, e bool) error {
			var req refreshRequest
			return parseJSON(b, &req, e)
		}},
		{"logout", true, func(b []byte, e bool) error {
			var req logoutRequest
			return parseJSON(b, &req, e)
		}},
		{"password", false, func(b []byte, e bool) error {
			var req changePasswordRequest
			if err := parseJSON(b, &req, e); err != nil {
				return err
			}
			return validatePassword("new_password", req.NewPassword)
		}},
		{"roles", false, func(b []byte, e bool) error {
			var req rolesRequest
			if err := parseJSON(b, &req, e); err != nil {
				return err
			}
			return validateRoles(req.Roles)
		}},
		{"role permissions", false, func(b []byte, e bool) error {
			var req rolePermissionsRequest
			if err := parseJSON(b, &req, e); err != nil {
				return err
			}
			return validatePermissions(req.Permissions)
		}},
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		for _, target := range targets {
			err := target.decode(body, target.allowEmpty)
			if err == nil {
				continue
			}
			var apiErr *Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("%s: body %q gave %T %v, want *Error", target.name, body, err, err)
			}
			if status := apiErr.status(); status < 400 || status > 499 {
				t.Fatalf("%s: body %q gave status %d, want 4xx", target.name, body, status)
			}
		}

		// The whole path through the router, for a local endpoint that
		// reads a form body.
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		s.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("introspect with body %q: got %d, want a 4xx", body, rec.Code)
		}
	})
}
