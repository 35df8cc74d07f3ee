package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// maxResponseBody caps how much of a response the tool reads. Rotor's largest
// response, a session list, is far below it.
const maxResponseBody = 1 << 20

// apiClient sends Rotor API requests over one shared, kept-alive transport.
type apiClient struct {
	http *http.Client
}

// newAPIClient returns a client whose transport keeps at least idlePerHost
// idle connections to each node, so a closed-loop worker never has to dial a
// new connection between two requests.
func newAPIClient(idlePerHost int, timeout time.Duration) *apiClient {
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 nil, // never send load through a proxy named in the environment
		DialContext:           dialer.DialContext,
		MaxIdleConns:          0, // no limit across hosts; MaxIdleConnsPerHost bounds each host
		MaxIdleConnsPerHost:   idlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	return &apiClient{http: &http.Client{Transport: transport, Timeout: timeout}}
}

func (c *apiClient) close() {
	c.http.CloseIdleConnections()
}

// apiResponse is the part of a response the workloads look at.
type apiResponse struct {
	status int
	code   string // the problem document's code, or the OAuth error_code
	body   []byte // kept only for 2xx responses
}

// send sends one request. body, when not nil, is encoded as JSON. A response
// with any status is not an error; only a request that got no response is.
func (c *apiClient) send(ctx context.Context, method, url, bearer string, body any) (apiResponse, error) {
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return apiResponse{}, err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, reader)
	if err != nil {
		return apiResponse{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("User-Agent", "rotor-jepsen-load")

	resp, err := c.http.Do(req)
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return apiResponse{}, err
	}
	out := apiResponse{status: resp.StatusCode}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		out.body = data
		return out, nil
	}
	var problem struct {
		Code      string `json:"code"`
		ErrorCode string `json:"error_code"`
	}
	if json.Unmarshal(data, &problem) == nil {
		out.code = problem.Code
		if out.code == "" {
			out.code = problem.ErrorCode
		}
	}
	return out, nil
}

// tokenResponse holds the fields of a token response that the tool uses.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
}

func parseTokens(body []byte) (tokenResponse, error) {
	var t tokenResponse
	if err := json.Unmarshal(body, &t); err != nil {
		return t, fmt.Errorf("decode token response: %w", err)
	}
	if t.AccessToken == "" || t.RefreshToken == "" {
		return t, fmt.Errorf("token response without access_token or refresh_token")
	}
	return t, nil
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginRequest struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	DeviceName string `json:"device_name,omitempty"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (c *apiClient) signup(ctx context.Context, base string, user credentials) (apiResponse, error) {
	return c.send(ctx, http.MethodPost, base+"/v1/users", "", user)
}

func (c *apiClient) login(ctx context.Context, base string, user credentials) (apiResponse, error) {
	return c.send(ctx, http.MethodPost, base+"/v1/login", "",
		loginRequest{Username: user.Username, Password: user.Password, DeviceName: "jepsen load"})
}

func (c *apiClient) refresh(ctx context.Context, base, refreshToken string) (apiResponse, error) {
	return c.send(ctx, http.MethodPost, base+"/v1/refresh", "", refreshRequest{RefreshToken: refreshToken})
}

func (c *apiClient) me(ctx context.Context, base, accessToken string) (apiResponse, error) {
	return c.send(ctx, http.MethodGet, base+"/v1/me", accessToken, nil)
}

// logout ends the session of the access token (scope "current").
func (c *apiClient) logout(ctx context.Context, base, accessToken string) (apiResponse, error) {
	return c.send(ctx, http.MethodPost, base+"/v1/logout", accessToken, nil)
}

// describeResponse formats a failed response for an error message.
func describeResponse(r apiResponse) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", r.status)
	if r.code != "" {
		fmt.Fprintf(&b, " %s", r.code)
	}
	return b.String()
}
