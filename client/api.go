package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// API calls Rotor's endpoints for one user. It keeps no tokens: the caller
// stores them (see docs/storage.md) and passes them in.
type API struct {
	BaseURL string       // such as "https://auth.example.com"
	HTTP    *http.Client // nil means http.DefaultClient
}

// Tokens is a token response of login and refresh.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
}

// Account is the caller's account as GET /v1/me returns it.
type Account struct {
	UserID      string   `json:"user_id"`
	Username    string   `json:"username"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
	SessionID   string   `json:"session_id"`
}

// Error is an error response of the API: its status and stable code.
type Error struct {
	Status     int
	Code       string // such as "refresh_token_reused"; see docs/api.md
	Detail     string
	RetryAfter int // seconds, for 429 and 503
}

func (e *Error) Error() string {
	return fmt.Sprintf("rotor: HTTP %d %s: %s", e.Status, e.Code, e.Detail)
}

// Temporary reports whether the request may succeed when retried unchanged
// after RetryAfter: a 503 or 429. Keep the tokens then; the user is not
// logged out.
func (e *Error) Temporary() bool {
	return e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests
}

// SignUp creates an account and returns its user id.
func (a *API) SignUp(ctx context.Context, username, password string) (string, error) {
	var out struct {
		UserID string `json:"user_id"`
	}
	err := a.do(ctx, http.MethodPost, "/v1/users", "", map[string]string{"username": username, "password": password}, &out)
	return out.UserID, err
}

// Login starts a session.
func (a *API) Login(ctx context.Context, username, password, deviceName string) (Tokens, error) {
	var t Tokens
	err := a.do(ctx, http.MethodPost, "/v1/login", "",
		map[string]string{"username": username, "password": password, "device_name": deviceName}, &t)
	return t, err
}

// Refresh rotates the refresh token. After a *Error that is Temporary, or a
// network error, retry with the same refresh token: within the grace window
// Rotor returns the same successor.
func (a *API) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	var t Tokens
	err := a.do(ctx, http.MethodPost, "/v1/refresh", "", map[string]string{"refresh_token": refreshToken}, &t)
	return t, err
}

// Logout ends the session of the access token.
func (a *API) Logout(ctx context.Context, accessToken string) error {
	return a.do(ctx, http.MethodPost, "/v1/logout", accessToken, nil, nil)
}

// Me returns the caller's account.
func (a *API) Me(ctx context.Context, accessToken string) (Account, error) {
	var acc Account
	err := a.do(ctx, http.MethodGet, "/v1/me", accessToken, nil, &acc)
	return acc, err
}

// do sends one request. It decodes a 2xx body into out, when out is set,
// and turns any other status into an *Error.
func (a *API) do(ctx context.Context, method, path, bearer string, body, out any) error {
	req, err := a.newRequest(ctx, method, path, bearer, body)
	if err != nil {
		return err
	}
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return err
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

func (a *API) newRequest(ctx context.Context, method, path, bearer string, body any) (*http.Request, error) {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.BaseURL, "/")+path, reader)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return req, nil
}

// responseError reads the problem document of an error response.
func responseError(resp *http.Response, data []byte) *Error {
	apiErr := &Error{Status: resp.StatusCode}
	var problem struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(data, &problem) == nil {
		apiErr.Code, apiErr.Detail = problem.Code, problem.Detail
	}
	apiErr.RetryAfter, _ = strconv.Atoi(resp.Header.Get("Retry-After"))
	return apiErr
}
