package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/rotorhq/rotor/fsm"
	"github.com/rotorhq/rotor/token"
)

// testMaxBodyBytes is the body limit of newStatelessServer, small so that
// oversize bodies are cheap to build.
const testMaxBodyBytes = 1024

// newStatelessServer returns a Server over an FSM with one signing epoch and
// no Raft node. Only handlers and helpers that never commit may be called.
func newStatelessServer(t testing.TB) *Server {
	t.Helper()
	state := fsm.New(nil)
	if res := state.ApplyCommand(&fsm.RotateSigningKey{At: time.Now(), FromEpoch: 0}); res.Err != nil {
		t.Fatalf("RotateSigningKey: %v", res.Err)
	}
	keys, err := token.NewKeyring([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return New(Config{
		Issuer: "http://rotor.test", Audience: "rotor", AccessTTL: 5 * time.Minute, Leeway: 10 * time.Second,
		MaxBodyBytes: testMaxBodyBytes,
		Passwords:    PasswordParams{MemoryKiB: 64, Passes: 1, Lanes: 1},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, Deps{State: state, Keys: keys})
}

// serve sends one request through the server's router.
func serve(s *Server, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestMethodNotAllowed(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		path      string
		wantAllow string
	}{
		{"login get", http.MethodGet, "/v1/login", "POST"},
		{"sessions delete", http.MethodDelete, "/v1/sessions", "GET, POST"},
		{"session get", http.MethodGet, "/v1/sessions/abc", "DELETE"},
		{"admin user sessions post", http.MethodPost, "/v1/admin/users/abc/sessions", "GET, DELETE"},
		{"password post", http.MethodPost, "/v1/me/password", "PUT"},
		{"livez put", http.MethodPut, "/livez", "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(newStatelessServer(t), tt.method, tt.path)

			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("status: got %d, want %d", rec.Code, http.StatusMethodNotAllowed)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow: got %q, want %q", got, tt.wantAllow)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type: got %q, want application/problem+json", got)
			}
			var body problem
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("decode body %q: %v", rec.Body.String(), err)
			}
			if body.Code != CodeInvalidRequest {
				t.Errorf("code: got %q, want %q", body.Code, CodeInvalidRequest)
			}
			if body.Status != http.StatusMethodNotAllowed {
				t.Errorf("status field: got %d, want %d", body.Status, http.StatusMethodNotAllowed)
			}
		})
	}
}

func TestMethodNotAllowedOAuth(t *testing.T) {
	rec := serve(newStatelessServer(t), http.MethodGet, "/oauth2/token")

	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("status: got %d, want %d", rec.Code, http.StatusMethodNotAllowed)
	}
	if got := rec.Header().Get("Allow"); got != "POST" {
		t.Errorf("Allow: got %q, want POST", got)
	}
	var body oauthError
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("decode body %q: %v", rec.Body.String(), err)
	}
	if body.Error != "invalid_request" {
		t.Errorf("error: got %q, want invalid_request", body.Error)
	}
	if body.Code != CodeInvalidRequest {
		t.Errorf("error_code: got %q, want %q", body.Code, CodeInvalidRequest)
	}
}

func TestAllowedMethodsDirect(t *testing.T) {
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"users", "/v1/users", []string{"POST"}},
		{"sessions", "/v1/sessions", []string{"GET", "POST"}},
		{"admin user sessions", "/v1/admin/users/abc/sessions", []string{"GET", "DELETE"}},
		{"unknown path", "/v1/nothing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStatelessServer(t)
			req := httptest.NewRequest(http.MethodPatch, tt.path, nil)

			if got := allowedMethods(s.router, req); !slices.Equal(got, tt.want) {
				t.Errorf("allowedMethods(%s): got %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		wantType  string
		wantOAuth bool
	}{
		{"problem", "/v1/nothing", "application/problem+json", false},
		{"oauth", "/oauth2/nothing", "application/json", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(newStatelessServer(t), http.MethodGet, tt.path)

			if rec.Code != http.StatusNotFound {
				t.Errorf("status: got %d, want %d", rec.Code, http.StatusNotFound)
			}
			if got := rec.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type: got %q, want %q", got, tt.wantType)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("decode body %q: %v", rec.Body.String(), err)
			}
			codeKey := "code"
			if tt.wantOAuth {
				codeKey = "error_code"
			}
			if got := body[codeKey]; got != string(CodeNotFound) {
				t.Errorf("%s: got %v, want %s", codeKey, got, CodeNotFound)
			}
		})
	}
}

func TestLivez(t *testing.T) {
	rec := serve(newStatelessServer(t), http.MethodGet, "/livez")

	if rec.Code != http.StatusOK {
		t.Errorf("status: got %d, want %d", rec.Code, http.StatusOK)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", got)
	}
}
