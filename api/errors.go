package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Code is a stable machine-readable error code sent as `code` in problems and
// as `error_code` in OAuth errors.
type Code string

// Error codes. Clients branch on these; never rename one.
const (
	CodeInvalidRequest     Code = "invalid_request"
	CodeInvalidCredentials Code = "invalid_credentials"
	CodeUsernameTaken      Code = "username_taken"
	CodeUserDisabled       Code = "user_disabled"
	CodeUnauthorized       Code = "unauthorized"
	CodeForbidden          Code = "forbidden"
	CodeNotFound           Code = "not_found"
	CodeRefreshInvalid     Code = "refresh_token_invalid"
	CodeRefreshReused      Code = "refresh_token_reused"
	CodeSessionRevoked     Code = "session_revoked"
	CodeSessionExpired     Code = "session_expired"
	CodeRateLimited        Code = "rate_limited"
	CodePayloadTooLarge    Code = "payload_too_large"
	CodeUnavailable        Code = "unavailable"
)

// codeInfo is the wire form of one code: its HTTP status, its problem title
// and its RFC 6749 error name on /oauth2 endpoints.
type codeInfo struct {
	status int
	title  string
	oauth  string
}

var codes = map[Code]codeInfo{
	CodeInvalidRequest:     {http.StatusBadRequest, "Invalid request", "invalid_request"},
	CodeInvalidCredentials: {http.StatusUnauthorized, "Invalid username or password", "invalid_grant"},
	CodeUsernameTaken:      {http.StatusConflict, "Username taken", "invalid_request"},
	CodeUserDisabled:       {http.StatusForbidden, "User disabled", "invalid_grant"},
	CodeUnauthorized:       {http.StatusUnauthorized, "Authentication required", "invalid_client"},
	CodeForbidden:          {http.StatusForbidden, "Forbidden", "access_denied"},
	CodeNotFound:           {http.StatusNotFound, "Not found", "invalid_request"},
	CodeRefreshInvalid:     {http.StatusUnauthorized, "Refresh token invalid", "invalid_grant"},
	CodeRefreshReused:      {http.StatusUnauthorized, "Refresh token reused; session revoked", "invalid_grant"},
	CodeSessionRevoked:     {http.StatusUnauthorized, "Session revoked", "invalid_grant"},
	CodeSessionExpired:     {http.StatusUnauthorized, "Session expired", "invalid_grant"},
	CodeRateLimited:        {http.StatusTooManyRequests, "Too many requests", "slow_down"},
	CodePayloadTooLarge:    {http.StatusRequestEntityTooLarge, "Payload too large", "invalid_request"},
	CodeUnavailable:        {http.StatusServiceUnavailable, "Service unavailable", "temporarily_unavailable"},
}

// Error is an error with its code and a detail safe to show the client. The
// cause stays in logs only.
type Error struct {
	Code   Code
	Detail string

	// Status overrides the code's status (405, 415 keep invalid_request).
	Status int

	// RetryAfter, in seconds, is sent as Retry-After when positive.
	RetryAfter int

	// Challenge is the RFC 6750 error attribute for WWW-Authenticate.
	Challenge string

	// OAuthError overrides the RFC 6749 error name.
	OAuthError string

	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Detail)
}

func (e *Error) Unwrap() error { return e.Cause }

func (e *Error) status() int {
	if e.Status != 0 {
		return e.Status
	}
	return codes[e.Code].status
}

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

func unavailable(cause error) *Error {
	return &Error{Code: CodeUnavailable, Detail: "no leader can take the write now; retry shortly", RetryAfter: 1, Cause: cause}
}

// problem is an RFC 9457 problem document.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   Code   `json:"code"`
}

// oauthError is an RFC 6749 section 5.2 error with Rotor's code added.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Code        Code   `json:"error_code"`
}

// writeError sends err as a problem (or as an OAuth error when oauth is set).
// Errors that are not *Error become a 503: the handlers return *Error for
// every client mistake, so anything else is a fault on our side that a retry
// may clear, and must never read as "logged out".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error, oauth bool) {
	var e *Error
	if !errors.As(err, &e) {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		e = unavailable(err)
	} else if e.status() >= 500 {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "error", e)
	} else {
		s.log.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "code", e.Code, "detail", e.Detail)
	}

	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	status := e.status()
	oauthName := ""
	if oauth {
		oauthName = e.OAuthError
		if oauthName == "" {
			oauthName = codes[e.Code].oauth
		}
		if oauthName == "invalid_grant" {
			// RFC 6749 section 5.2 returns 400 for a bad grant. 401 is
			// for client authentication only.
			status = http.StatusBadRequest
		}
	}
	switch {
	case e.Challenge != "":
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="rotor", error=%q, error_description=%q`, e.Challenge, e.Detail))
	case status == http.StatusUnauthorized:
		// HTTP requires a challenge on every 401.
		h.Set("WWW-Authenticate", `Bearer realm="rotor"`)
	}

	if oauth {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(oauthError{Error: oauthName, Description: e.Detail, Code: e.Code})
		return
	}
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{
		Type:   "https://rotor.dev/errors/" + string(e.Code),
		Title:  codes[e.Code].title,
		Status: status,
		Detail: e.Detail,
		Code:   e.Code,
	})
}

// writeJSON sends v with status. Every response of this API may carry a token
// or session data, so none may be cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
