package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/testnode"
)

// testNode is a real node in-process: Raft with bbolt in a temp dir and
// HTTP on a loopback port.
type testNode struct {
	t      testing.TB
	cfg    *config
	node   *node
	url    string
	client *http.Client
	served chan error
}

// startTestNode starts a single node. args are extra command-line flags, as
// a user would pass them; the data dir persists across restart.
func startTestNode(t testing.TB, args ...string) *testNode {
	t.Helper()
	return startTestNodeEnv(t, nil, args...)
}

// startTestNodeEnv starts a single node that reads its ROTOR_ environment
// variables (ROTOR_ADMIN_PASSWORD, ROTOR_SERVICE_KEY and the flag variables)
// from env in place of the process environment. A nil env sets none.
func startTestNodeEnv(t testing.TB, env map[string]string, args ...string) *testNode {
	t.Helper()
	base := []string{
		"--node-id", "test-1",
		// Port 0: the kernel picks free ports at bind time, so parallel
		// tests cannot race for one. start records the bound ports, so a
		// restart reuses them.
		"--http-addr", "127.0.0.1:0",
		"--raft-addr", "127.0.0.1:0",
		"--gossip-addr", "127.0.0.1:0",
		"--data-dir", t.TempDir(),
		"--log-level", "warn",
	}
	getenv := func(name string) string { return env[name] }
	cfg, err := parseConfig(append(base, args...), getenv, io.Discard)
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	tn := &testNode{t: t, cfg: cfg, client: &http.Client{Timeout: 30 * time.Second}}
	tn.start()
	t.Cleanup(tn.stop)
	return tn
}

func freeAddr(t testing.TB) string { return testnode.FreeAddr(t) }

func (tn *testNode) start() {
	tn.t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{tn.t}, &slog.HandlerOptions{Level: slog.LevelError}))
	n, err := startNode(tn.cfg, logger)
	if err != nil {
		tn.t.Fatalf("start node: %v", err)
	}
	tn.node = n
	tn.url = "http://" + n.addr()
	tn.cfg.HTTPAddr = n.addr()
	tn.cfg.RaftAddr = n.raft.RaftAddr()
	tn.served = make(chan error, 1)
	go func() { tn.served <- n.serve() }()
	tn.waitReady()
}

// stop shuts the node down; calling it twice is harmless.
func (tn *testNode) stop() {
	if tn.node == nil {
		return
	}
	// http.Server.Shutdown waits up to 5s for connections that never sent a
	// request. Concurrent requests leave such spare connections in the
	// client's pool, so the client closes them first.
	tn.client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tn.node.stop(ctx); err != nil {
		tn.t.Errorf("stop node: %v", err)
	}
	<-tn.served
	tn.node = nil
}

// restart stops the node and starts it again on the same data dir.
func (tn *testNode) restart() {
	tn.t.Helper()
	tn.stop()
	tn.start()
}

func (tn *testNode) waitReady() {
	tn.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := tn.client.Get(tn.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && tn.node.actors != nil && tn.node.raft.IsLeader() {
				// readyz needs the first key; the actors start right after.
				time.Sleep(20 * time.Millisecond)
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tn.t.Fatalf("node at %s not ready after 10s", tn.url)
}

// response is a decoded HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode body %q: %v", truncateForLog(r.body), err)
	}
	return m
}

// str returns a string field of the JSON body.
func (r response) str(t testing.TB, field string) string {
	t.Helper()
	v, _ := r.json(t)[field].(string)
	return v
}

// code returns the error code of a problem or OAuth error body.
func (r response) code(t testing.TB) string {
	t.Helper()
	m := r.json(t)
	if c, ok := m["code"].(string); ok {
		return c
	}
	c, _ := m["error_code"].(string)
	return c
}

func truncateForLog(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// do sends a request. body may be nil, a string or []byte (sent as is), or any
// other value (sent as JSON). header holds pairs: name, value, name, value.
func (tn *testNode) do(method, path string, body any, header ...string) response {
	tn.t.Helper()

	// The body.
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, contentType = strings.NewReader(b), "application/json"
	case []byte:
		rd, contentType = bytes.NewReader(b), "application/json"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tn.t.Fatalf("encode body: %v", err)
		}
		rd, contentType = bytes.NewReader(data), "application/json"
	}

	// The request.
	req, err := http.NewRequest(method, tn.url+path, rd)
	if err != nil {
		tn.t.Fatalf("build request: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}

	// The response.
	resp, err := tn.client.Do(req)
	if err != nil {
		tn.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tn.t.Fatalf("read body of %s %s: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// signup creates an account and returns its user id.
func (tn *testNode) signup(username, password string) string {
	tn.t.Helper()
	r := tn.do("POST", "/v1/users", map[string]string{"username": username, "password": password})
	if r.status != http.StatusCreated {
		tn.t.Fatalf("signup %s: got %d %s, want 201", username, r.status, truncateForLog(r.body))
	}
	return r.str(tn.t, "user_id")
}

// tokens is a token response.
type tokens struct {
	Access    string `json:"access_token"`
	Refresh   string `json:"refresh_token"`
	SessionID string `json:"session_id"`
	ExpiresIn int64  `json:"expires_in"`
	RefreshIn int64  `json:"refresh_token_expires_in"`
}

// login logs in and fails the test unless it succeeds.
func (tn *testNode) login(username, password string) tokens {
	tn.t.Helper()
	r := tn.do("POST", "/v1/login", map[string]string{"username": username, "password": password, "device_name": "test device"})
	if r.status != http.StatusOK {
		tn.t.Fatalf("login %s: got %d %s, want 200", username, r.status, truncateForLog(r.body))
	}
	var tk tokens
	if err := json.Unmarshal(r.body, &tk); err != nil {
		tn.t.Fatalf("decode login response: %v", err)
	}
	return tk
}

// refresh presents a refresh token and returns the raw response.
func (tn *testNode) refresh(refreshToken string) response {
	tn.t.Helper()
	return tn.do("POST", "/v1/refresh", map[string]string{"refresh_token": refreshToken})
}

// me calls GET /v1/me with an access token and returns the status.
func (tn *testNode) me(access string) int {
	tn.t.Helper()
	return tn.do("GET", "/v1/me", nil, "Authorization", "Bearer "+access).status
}

// testWriter routes node logs to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
