package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// writeTestError runs writeError for a request to path and returns the
// recorded response.
func writeTestError(t *testing.T, err error, path string, oauth bool) *httptest.ResponseRecorder {
	t.Helper()
	s := newStatelessServer(t)
	rec := httptest.NewRecorder()
	s.writeError(rec, httptest.NewRequest(http.MethodPost, path, nil), err, oauth)
	return rec
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) problem {
	t.Helper()
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode problem %q: %v", rec.Body.String(), err)
	}
	return p
}

func decodeOAuthError(t *testing.T, rec *httptest.ResponseRecorder) oauthError {
	t.Helper()
	var o oauthError
	if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil {
		t.Fatalf("decode OAuth error %q: %v", rec.Body.String(), err)
	}
	return o
}

func TestWriteErrorProblem(t *testing.T) {
	tests := []struct {
		name       string
		err        *Error
		wantStatus int
		wantTitle  string
	}{
		{"invalid request", errorf(CodeInvalidRequest, "username is required"), http.StatusBadRequest, "Invalid request"},
		{"username taken", errorf(CodeUsernameTaken, "choose another username"), http.StatusConflict, "Username taken"},
		{"forbidden", errorf(CodeForbidden, "admin role required"), http.StatusForbidden, "Forbidden"},
		{"not found", errorf(CodeNotFound, "session not found"), http.StatusNotFound, "Not found"},
		{"rate limited", errorf(CodeRateLimited, "slow down"), http.StatusTooManyRequests, "Too many requests"},
		{"payload too large", errorf(CodePayloadTooLarge, "too big"), http.StatusRequestEntityTooLarge, "Payload too large"},
		{"session expired", errorf(CodeSessionExpired, "log in again"), http.StatusUnauthorized, "Session expired"},
		{"status override", &Error{Code: CodeInvalidRequest, Status: http.StatusMethodNotAllowed, Detail: "use POST"},
			http.StatusMethodNotAllowed, "Invalid request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := writeTestError(t, tt.err, "/v1/test", false)

			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type: got %q, want application/problem+json", got)
			}
			p := decodeProblem(t, rec)
			if want := "https://rotor.dev/errors/" + string(tt.err.Code); p.Type != want {
				t.Errorf("type: got %q, want %q", p.Type, want)
			}
			if p.Title != tt.wantTitle {
				t.Errorf("title: got %q, want %q", p.Title, tt.wantTitle)
			}
			if p.Status != tt.wantStatus {
				t.Errorf("status field: got %d, want %d", p.Status, tt.wantStatus)
			}
			if p.Detail != tt.err.Detail {
				t.Errorf("detail: got %q, want %q", p.Detail, tt.err.Detail)
			}
			if p.Code != tt.err.Code {
				t.Errorf("code: got %q, want %q", p.Code, tt.err.Code)
			}
		})
	}
}

func TestWriteErrorOAuth(t *testing.T) {
	tests := []struct {
		name       string
		err        *Error
		wantStatus int
		wantError  string
	}{
		{"refresh invalid", errorf(CodeRefreshInvalid, "refresh token is not valid"), http.StatusBadRequest, "invalid_grant"},
		{"refresh reused", errorf(CodeRefreshReused, "already used"), http.StatusBadRequest, "invalid_grant"},
		{"session revoked", errorf(CodeSessionRevoked, "log in again"), http.StatusBadRequest, "invalid_grant"},
		{"user disabled", errorf(CodeUserDisabled, "disabled"), http.StatusBadRequest, "invalid_grant"},
		{"invalid request", errorf(CodeInvalidRequest, "grant_type is required"), http.StatusBadRequest, "invalid_request"},
		{"unauthorized", errorf(CodeUnauthorized, "client authentication failed"), http.StatusUnauthorized, "invalid_client"},
		{"rate limited", errorf(CodeRateLimited, "slow down"), http.StatusTooManyRequests, "slow_down"},
		{"unavailable", unavailable(errors.New("no leader")), http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"override", &Error{Code: CodeInvalidRequest, OAuthError: "unsupported_grant_type", Detail: "only refresh_token"},
			http.StatusBadRequest, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := writeTestError(t, tt.err, "/oauth2/token", true)

			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", got)
			}
			o := decodeOAuthError(t, rec)
			if o.Error != tt.wantError {
				t.Errorf("error: got %q, want %q", o.Error, tt.wantError)
			}
			if o.Description != tt.err.Detail {
				t.Errorf("error_description: got %q, want %q", o.Description, tt.err.Detail)
			}
			if o.Code != tt.err.Code {
				t.Errorf("error_code: got %q, want %q", o.Code, tt.err.Code)
			}
		})
	}
}

func TestWriteErrorRetryAfter(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		oauth bool
		want  string
	}{
		{"unavailable", unavailable(errors.New("no leader")), false, "1"},
		{"unavailable oauth", unavailable(errors.New("no leader")), true, "1"},
		{"explicit seconds", &Error{Code: CodeRateLimited, Detail: "slow down", RetryAfter: 30}, false, "30"},
		{"plain error", errors.New("disk full"), false, "1"},
		{"client error", errorf(CodeInvalidRequest, "bad"), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := writeTestError(t, tt.err, "/v1/test", tt.oauth)

			if got := rec.Header().Get("Retry-After"); got != tt.want {
				t.Errorf("Retry-After: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteErrorChallengeOn401(t *testing.T) {
	for code, info := range codes {
		if info.status != http.StatusUnauthorized {
			continue
		}
		t.Run(string(code), func(t *testing.T) {
			rec := writeTestError(t, errorf(code, "detail"), "/v1/test", false)

			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status: got %d, want %d", rec.Code, http.StatusUnauthorized)
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="rotor"`) {
				t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
			}
		})
	}
}

func TestWriteErrorChallengeOAuth401(t *testing.T) {
	rec := writeTestError(t, errorf(CodeUnauthorized, "client authentication failed"), "/oauth2/introspect", true)

	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status: got %d, want %d", rec.Code, http.StatusUnauthorized)
	}
	if got := rec.Header().Get("WWW-Authenticate"); got == "" {
		t.Errorf("WWW-Authenticate: got none, want a challenge on a 401")
	}
}

func TestWriteErrorChallengeAttribute(t *testing.T) {
	err := &Error{Code: CodeUnauthorized, Detail: "token expired", Challenge: "invalid_token"}
	rec := writeTestError(t, err, "/v1/me", false)

	want := `Bearer realm="rotor", error="invalid_token", error_description="token expired"`
	if got := rec.Header().Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate: got %q, want %q", got, want)
	}
}

func TestWriteErrorNoChallengeOn400(t *testing.T) {
	rec := writeTestError(t, errorf(CodeInvalidRequest, "bad"), "/v1/test", false)

	if got := rec.Header().Get("WWW-Authenticate"); got != "" {
		t.Errorf("WWW-Authenticate: got %q, want none", got)
	}
}

func TestWriteErrorPlainError(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		oauth bool
	}{
		{"problem", errors.New("bolt: database not open"), false},
		{"oauth", errors.New("bolt: database not open"), true},
		{"wrapped plain", fmt.Errorf("commit: %w", errors.New("timeout")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := writeTestError(t, tt.err, "/v1/test", tt.oauth)

			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("status: got %d, want %d", rec.Code, http.StatusServiceUnavailable)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("decode body %q: %v", rec.Body.String(), err)
			}
			codeKey := "code"
			if tt.oauth {
				codeKey = "error_code"
			}
			if got := body[codeKey]; got != string(CodeUnavailable) {
				t.Errorf("%s: got %v, want %s", codeKey, got, CodeUnavailable)
			}
			if strings.Contains(rec.Body.String(), "bolt") || strings.Contains(rec.Body.String(), "timeout") {
				t.Errorf("body: got %s, want the cause kept out of the response", rec.Body.String())
			}
		})
	}
}

func TestWriteErrorWrappedError(t *testing.T) {
	err := fmt.Errorf("load session: %w", errorf(CodeNotFound, "session not found"))
	rec := writeTestError(t, err, "/v1/test", false)

	if rec.Code != http.StatusNotFound {
		t.Errorf("status: got %d, want %d", rec.Code, http.StatusNotFound)
	}
	if got := decodeProblem(t, rec).Code; got != CodeNotFound {
		t.Errorf("code: got %q, want %q", got, CodeNotFound)
	}
}

func TestWriteErrorNoStore(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		oauth bool
	}{
		{"problem", errorf(CodeInvalidRequest, "bad"), false},
		{"oauth", errorf(CodeRefreshInvalid, "bad"), true},
		{"plain error", errors.New("disk full"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := writeTestError(t, tt.err, "/v1/test", tt.oauth)

			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", got)
			}
		})
	}
}

func TestErrorCodesComplete(t *testing.T) {
	all := []Code{
		CodeInvalidRequest, CodeInvalidCredentials, CodeUsernameTaken, CodeUserDisabled,
		CodeUnauthorized, CodeForbidden, CodeNotFound, CodeRefreshInvalid, CodeRefreshReused,
		CodeSessionRevoked, CodeSessionExpired, CodeRateLimited, CodePayloadTooLarge, CodeUnavailable,
	}
	for _, code := range all {
		info, ok := codes[code]
		if !ok {
			t.Errorf("codes[%q]: got missing, want an entry", code)
			continue
		}
		if info.status < 400 || info.status > 599 {
			t.Errorf("codes[%q].status: got %d, want 4xx or 5xx", code, info.status)
		}
		if info.status == http.StatusInternalServerError {
			t.Errorf("codes[%q].status: got 500, want a specific status", code)
		}
		if info.title == "" {
			t.Errorf("codes[%q].title: got empty, want a title", code)
		}
		if info.oauth == "" {
			t.Errorf("codes[%q].oauth: got empty, want an RFC 6749 error name", code)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"without cause", errorf(CodeNotFound, "session not found"), "not_found: session not found"},
		{"with cause", &Error{Code: CodeUnavailable, Detail: "retry", Cause: errors.New("no leader")}, "unavailable: retry: no leader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error(): got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	cause := errors.New("no leader")
	err := unavailable(cause)

	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(unavailable(cause), cause): got false, want true")
	}
}
