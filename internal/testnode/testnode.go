// Package testnode runs real rotor processes for the tests of other
// packages: it builds ./cmd/node once per test binary, starts single nodes
// on free loopback ports and collects their output.
package testnode

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer that a process and the test may use at once.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// Run runs the tests of m and then removes the binary Binary built. Call it
// from TestMain: os.Exit(testnode.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	return code
}

// Binary builds ./cmd/node once per test binary and returns its path. Run
// removes it when the tests end.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			build.err = err
			return
		}
		build.dir, build.err = os.MkdirTemp("", "rotor-testnode-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "rotor")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/node")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("go build ./cmd/node: %v\n%s", build.err, build.out)
	}
	return build.path
}

// Node is a rotor process started by Start.
type Node struct {
	URL  string
	Logs *Buffer

	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs a single node with a fixed cluster secret, a temporary data
// directory, the given extra flags and environment, until the test ends. It
// returns once GET /readyz answers 200.
func Start(t testing.TB, env []string, args ...string) *Node {
	t.Helper()
	addr := FreeAddr(t)
	n := &Node{URL: "http://" + addr, Logs: &Buffer{}, done: make(chan struct{})}
	base := []string{"--node-id", "test-node", "--http-addr", addr, "--raft-addr", FreeAddr(t),
		"--gossip-addr", FreeAddr(t), "--data-dir", t.TempDir(), "--log-level", "warn"}
	n.cmd = exec.Command(Binary(t), append(base, args...)...)
	n.cmd.Env = append(append(os.Environ(), "ROTOR_CLUSTER_SECRET="+strings.Repeat("ab", 32)), env...)
	n.cmd.Stdout, n.cmd.Stderr = n.Logs, n.Logs
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start rotor: %v", err)
	}
	go func() {
		n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(n.Stop)

	deadline := time.Now().Add(20 * time.Second)
	for !n.ready() {
		if time.Now().After(deadline) {
			t.Fatalf("node not ready within 20s; log:\n%s", n.Logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

func (n *Node) ready() bool {
	resp, err := http.Get(n.URL + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop sends SIGTERM and kills the node if it has not exited 10 s later.
func (n *Node) Stop() {
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}
