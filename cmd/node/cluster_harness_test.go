package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/testnode"
)

func TestMain(m *testing.M) { os.Exit(testnode.Run(m)) }

// sharedBinary returns the rotor binary, built once for every process test.
func sharedBinary(t testing.TB) string { return testnode.Binary(t) }

// procNode is one node of a process-level cluster.
type procNode struct {
	id       string
	httpAddr string
	raftAddr string
	gossip   string
	dataDir  string
	url      string
	cmd      *exec.Cmd
	logs     *testnode.Buffer
	exited   chan struct{}
}

// procCluster is three real rotor processes on loopback.
type procCluster struct {
	t      testing.TB
	bin    string
	secret string
	extra  []string
	nodes  []*procNode
	client *http.Client
	scheme string // https when extra sets --tls-cert-file
}

// startCluster starts three nodes with --bootstrap-expect 3 and waits until
// every one is ready. extra flags go to every node.
func startCluster(t testing.TB, extra ...string) *procCluster {
	t.Helper()
	c := &procCluster{
		t:      t,
		bin:    sharedBinary(t),
		secret: "process-test-cluster-secret-0123456789abcdef",
		extra:  extra,
		client: &http.Client{Timeout: 10 * time.Second},
		scheme: "http",
	}
	if i := slices.Index(extra, "--tls-ca-file"); i >= 0 && i+1 < len(extra) {
		// The nodes serve HTTPS with certificates of this CA.
		pem, err := os.ReadFile(extra[i+1])
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		c.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		c.scheme = "https"
	}
	for i := range 3 {
		c.nodes = append(c.nodes, &procNode{
			id:       fmt.Sprintf("node-%d", i+1),
			httpAddr: clusterAddr(t),
			raftAddr: clusterAddr(t),
			gossip:   clusterAddr(t),
			dataDir:  t.TempDir(),
		})
	}
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(c.stopAll)
	c.waitReady(20 * time.Second)
	return c
}

// clusterAddrs contains every address that clusterAddr has returned.
var clusterAddrs = struct {
	sync.Mutex
	seen map[string]bool
}{seen: map[string]bool{}}

// clusterAddr returns a free loopback address that it has not returned
// before in this test binary. freeAddr alone can return a port again once
// its probe listener has closed, and two nodes given the same port fail to
// start.
func clusterAddr(t testing.TB) string {
	t.Helper()
	clusterAddrs.Lock()
	defer clusterAddrs.Unlock()
	for range 100 {
		addr := freeAddr(t)
		if !clusterAddrs.seen[addr] {
			clusterAddrs.seen[addr] = true
			return addr
		}
	}
	t.Fatal("find free port: freeAddr returned only ports handed out before, in 100 tries")
	return ""
}

func (c *procCluster) start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	var join []string
	for j, other := range c.nodes {
		if j != i {
			join = append(join, other.gossip)
		}
	}

	args := append([]string{
		"--node-id", n.id,
		"--http-addr", n.httpAddr,
		"--raft-addr", n.raftAddr,
		"--gossip-addr", n.gossip,
		"--data-dir", n.dataDir,
		"--bootstrap-expect", "3",
		"--join", strings.Join(join, ","),
		"--issuer", "http://rotor.test",
		"--log-level", "info",
	}, c.extra...)

	n.cmd = exec.Command(c.bin, args...)
	n.cmd.Env = append(os.Environ(), "ROTOR_CLUSTER_SECRET="+c.secret)
	if n.logs == nil {
		n.logs = &testnode.Buffer{}
	}
	n.cmd.Stdout = n.logs
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", n.id, err)
	}

	n.url = c.scheme + "://" + n.httpAddr
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(n.cmd, n.exited)
}

// kill sends SIGKILL to node i and waits for it to exit.
func (c *procCluster) kill(i int) {
	c.t.Helper()
	n := c.nodes[i]
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// restart starts node i again with the same flags and data dir.
func (c *procCluster) restart(i int) { c.start(i) }

// wipe deletes node i's data dir. The node must be stopped first.
func (c *procCluster) wipe(i int) {
	c.t.Helper()
	n := c.nodes[i]
	if err := os.RemoveAll(n.dataDir); err != nil {
		c.t.Fatalf("wipe %s: %v", n.id, err)
	}
	if err := os.MkdirAll(n.dataDir, 0o700); err != nil {
		c.t.Fatalf("wipe %s: %v", n.id, err)
	}
}

// stopAll sends SIGTERM to every running node at once and waits for them,
// killing a node that is still running after 10 s. It prints the nodes' logs
// when the test failed.
func (c *procCluster) stopAll() {
	// A node's HTTP shutdown waits for idle kept-alive connections, so the
	// client closes its own first.
	c.client.CloseIdleConnections()
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n.cmd == nil || n.cmd.Process == nil || !c.running(n) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.exited:
			case <-time.After(10 * time.Second):
				_ = n.cmd.Process.Kill()
				<-n.exited
			}
		}()
	}
	wg.Wait()
	if c.t.Failed() {
		for _, n := range c.nodes {
			c.t.Logf("logs of %s:\n%s", n.id, n.logs.String())
		}
	}
}

// forTest returns a copy of c that reports failures to t, so a subtest can
// use the cluster without failing its parent from the wrong goroutine.
func (c *procCluster) forTest(t testing.TB) *procCluster {
	copied := *c
	copied.t = t
	return &copied
}

// running reports whether the node's process has not exited.
func (c *procCluster) running(n *procNode) bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// waitReady waits until /readyz returns 200 on every running node. It fails
// the test at once when one of them exits meanwhile.
func (c *procCluster) waitReady(bound time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(bound)
	var waiting []int
	for i, n := range c.nodes {
		if c.running(n) {
			waiting = append(waiting, i)
		}
	}
	for len(waiting) > 0 {
		var still []int
		for _, i := range waiting {
			n := c.nodes[i]
			if !c.running(n) {
				c.stopAll()
				c.t.Fatalf("%s not ready: process exited (%v)", n.id, n.cmd.ProcessState)
			}
			if c.readyStatus(i) != http.StatusOK {
				still = append(still, i)
			}
		}
		waiting = still
		if len(waiting) > 0 && time.Now().After(deadline) {
			c.stopAll()
			c.t.Fatalf("%s not ready: /readyz did not return 200 within %s", c.nodes[waiting[0]].id, bound)
		}
		if len(waiting) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// waitNodeReady waits until /readyz of node i returns 200 and returns how
// long that took.
func (c *procCluster) waitNodeReady(i int, bound time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	if err := c.pollReady(i, start.Add(bound)); err != nil {
		c.t.Fatalf("%s not ready: %v", c.nodes[i].id, err)
	}
	return time.Since(start)
}

// pollReady polls /readyz of node i every 5 ms until it returns 200. It
// returns an error when the deadline passes or the process exits first. The
// short interval lets a test send its first request soon after a node turns
// ready.
func (c *procCluster) pollReady(i int, deadline time.Time) error {
	n := c.nodes[i]
	start := time.Now()
	for {
		if c.readyStatus(i) == http.StatusOK {
			return nil
		}
		if !c.running(n) {
			return fmt.Errorf("process exited (%v) after %s", n.cmd.ProcessState, time.Since(start).Round(time.Millisecond))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz did not return 200 within %s", deadline.Sub(start).Round(time.Millisecond))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readyStatus returns the status of node i's /readyz, or 0 on a transport
// error.
func (c *procCluster) readyStatus(i int) int {
	resp, err := c.client.Get(c.nodes[i].url + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// leader returns the index of the node that leads, waiting up to bound.
func (c *procCluster) leader(bound time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		for i, n := range c.nodes {
			if !c.running(n) {
				continue
			}
			if view, err := c.view(i); err == nil && view.State == "Leader" {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no leader after %s", bound)
	return -1
}

// follower returns the index of a running node other than leader.
func (c *procCluster) follower(leader int) int {
	c.t.Helper()
	for i, n := range c.nodes {
		if i != leader && c.running(n) {
			return i
		}
	}
	c.t.Fatalf("no running node besides %s", c.nodes[leader].id)
	return -1
}

// raftView is the part of GET /v1/cluster that the tests read.
type raftView struct {
	NodeID       string `json:"node_id"`
	State        string `json:"state"`
	LeaderID     string `json:"leader_id"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// view returns node i's GET /v1/cluster.
func (c *procCluster) view(i int) (raftView, error) {
	var v raftView
	err := c.getJSON(c.nodes[i].url+"/v1/cluster", &v)
	return v, err
}

func (c *procCluster) getJSON(url string, v any) error {
	resp, err := c.client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// do sends a request with a JSON body to node i.
func (c *procCluster) do(i int, method, path string, body any, header ...string) (response, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.nodes[i].url+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k := 0; k+1 < len(header); k += 2 {
		req.Header.Set(header[k], header[k+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// mustDo is do that fails the test on a transport error.
func (c *procCluster) mustDo(i int, method, path string, body any, header ...string) response {
	c.t.Helper()
	r, err := c.do(i, method, path, body, header...)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, c.nodes[i].id, err)
	}
	return r
}

// mustView is view that fails the test on an error.
func (c *procCluster) mustView(i int) raftView {
	c.t.Helper()
	v, err := c.view(i)
	if err != nil {
		c.t.Fatalf("cluster view of %s: %v", c.nodes[i].id, err)
	}
	return v
}

// signup creates an account through node i and fails the test unless it
// succeeds.
func (c *procCluster) signup(i int, username string) {
	c.t.Helper()
	r := c.mustDo(i, "POST", "/v1/users", map[string]string{"username": username, "password": testPassword})
	if r.status != http.StatusCreated {
		c.t.Fatalf("signup %s on %s: got %d %s, want 201", username, c.nodes[i].id, r.status, truncateForLog(r.body))
	}
}

// login logs username in through node i and fails the test unless it
// succeeds.
func (c *procCluster) login(i int, username string) tokens {
	c.t.Helper()
	r := c.mustDo(i, "POST", "/v1/login", map[string]string{"username": username, "password": testPassword})
	if r.status != http.StatusOK {
		c.t.Fatalf("login %s on %s: got %d %s, want 200", username, c.nodes[i].id, r.status, truncateForLog(r.body))
	}
	return decodeTokens(c.t, r)
}

// refresh presents a refresh token to node i. It is safe to call from any
// goroutine.
func (c *procCluster) refresh(i int, refreshToken string) (response, error) {
	return c.do(i, "POST", "/v1/refresh", map[string]string{"refresh_token": refreshToken})
}

// mustRefresh refreshes through node i and fails the test unless the
// refresh succeeds.
func (c *procCluster) mustRefresh(i int, refreshToken string) tokens {
	c.t.Helper()
	r, err := c.refresh(i, refreshToken)
	if err != nil {
		c.t.Fatalf("refresh on %s: %v", c.nodes[i].id, err)
	}
	if r.status != http.StatusOK {
		c.t.Fatalf("refresh on %s: got %d %s, want 200", c.nodes[i].id, r.status, truncateForLog(r.body))
	}
	return decodeTokens(c.t, r)
}

// refreshRetrying refreshes through node i and sends the same token again
// after a 503 or a transport error, as a client does during an election,
// until bound has passed. It returns the last response.
func (c *procCluster) refreshRetrying(i int, refreshToken string, bound time.Duration) response {
	c.t.Helper()
	deadline := time.Now().Add(bound)
	for {
		r, err := c.refresh(i, refreshToken)
		if err == nil && r.status != http.StatusServiceUnavailable {
			return r
		}
		if time.Now().After(deadline) {
			if err != nil {
				c.t.Fatalf("refresh on %s: %v after retrying for %s", c.nodes[i].id, err, bound)
			}
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// me calls GET /v1/me on node i with an access token. It is safe to call
// from any goroutine.
func (c *procCluster) me(i int, access string) (int, error) {
	r, err := c.do(i, "GET", "/v1/me", nil, "Authorization", "Bearer "+access)
	return r.status, err
}

// awaitMe polls GET /v1/me on node i every 10 ms until the status is want or
// bound has passed, and returns the last status (0 after a transport error).
func (c *procCluster) awaitMe(i int, access string, want int, bound time.Duration) int {
	deadline := time.Now().Add(bound)
	for {
		status, err := c.me(i, access)
		if err != nil {
			status = 0
		}
		if status == want || time.Now().After(deadline) {
			return status
		}
		time.Sleep(10 * time.Millisecond)
	}
}
