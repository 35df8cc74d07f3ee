package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/testnode"
)

// testNode is a rotor binary running on free loopback ports.
type testNode struct {
	url  string
	logs *bytes.Buffer
}

// startTestNode builds ./cmd/node (or takes the binary named by
// JEPSEN_ROTOR_BINARY), starts it as a single node with a temp data dir and
// waits until /readyz returns 200. The node gets SIGTERM when the test ends.
func startTestNode(t *testing.T) *testNode {
	t.Helper()
	bin := os.Getenv("JEPSEN_ROTOR_BINARY")
	if bin == "" {
		bin = buildNodeBinary(t)
	}

	httpAddr := freeAddr(t)
	args := []string{
		"--node-id", "load-test",
		"--http-addr", httpAddr,
		"--raft-addr", freeAddr(t),
		"--data-dir", t.TempDir(),
		"--log-level", "warn",
	}
	if nodeHasFlag(t, bin, "gossip-addr") {
		args = append(args, "--gossip-addr", freeAddr(t))
	}

	cmd := exec.Command(bin, args...)
	cmd.Env = append(environWithoutRotor(), "ROTOR_CLUSTER_SECRET="+strings.Repeat("5e", 32))
	node := &testNode{url: "http://" + httpAddr, logs: &bytes.Buffer{}}
	cmd.Stdout = node.logs
	cmd.Stderr = node.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { stopTestNode(t, cmd, exited, node.logs) })

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(node.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return node
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("node exited before it was ready: %v; logs:\n%s", err, node.logs)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("node at %s not ready after 20s; logs:\n%s", node.url, node.logs)
		}
	}
}

func stopTestNode(t *testing.T, cmd *exec.Cmd, exited chan error, logs *bytes.Buffer) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("send SIGTERM to node: %v", err)
	}
	select {
	case err := <-exited:
		if err != nil && !t.Failed() {
			t.Errorf("node exit after SIGTERM: %v; logs:\n%s", err, logs)
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("node still running 15s after SIGTERM; killed it")
	}
}

// buildNodeBinary runs `go build -o TMP/rotor ./cmd/node` in the module root.
func buildNodeBinary(t *testing.T) string { return testnode.Binary(t) }

// nodeHasFlag reports whether `rotor -h` lists the flag, so the test runs
// against binaries from before and after a flag was added.
func nodeHasFlag(t *testing.T, bin, name string) bool {
	t.Helper()
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits with status 0 or 2
	return strings.Contains(string(out), "-"+name+" ")
}

// environWithoutRotor returns the environment without ROTOR_ variables,
// because the node reads every flag from one.
func environWithoutRotor() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROTOR_") {
			env = append(env, kv)
		}
	}
	return env
}

func freeAddr(t *testing.T) string { return testnode.FreeAddr(t) }

func TestMain(m *testing.M) { os.Exit(testnode.Run(m)) }

// runLoadForTest runs `jepsen load` with args and returns its report and
// its stdout.
func runLoadForTest(t *testing.T, args ...string) (*loadReport, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	report, err := runLoad(ctx, args, &stdout, &stderr)
	if err != nil {
		t.Fatalf("jepsen load %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return report, stdout.String()
}

// checkLevel checks one level of a load workload that ran without faults.
func checkLevel(t *testing.T, l levelReport, workers int) {
	t.Helper()
	if l.Concurrency != workers {
		t.Errorf("concurrency: got %d, want %d", l.Concurrency, workers)
	}
	if l.Requests <= 0 {
		t.Errorf("requests: got %d, want > 0", l.Requests)
	}
	if l.Errors != 0 {
		t.Errorf("errors: got %d, want 0; error codes %v, status codes %v", l.Errors, l.ErrorCodes, l.StatusCodes)
	}
	if len(l.ErrorCodes) != 0 {
		t.Errorf("error codes: got %v, want none", l.ErrorCodes)
	}
	if l.StatusCodes["200"] != l.Requests {
		t.Errorf("status 200: got %d, want %d requests; status codes %v", l.StatusCodes["200"], l.Requests, l.StatusCodes)
	}
	if l.StoppedBy != "duration" {
		t.Errorf("stopped by: got %q, want duration", l.StoppedBy)
	}
	if l.MeasuredSeconds < 0.9 || l.MeasuredSeconds > 1.1 {
		t.Errorf("measured seconds: got %g, want 1", l.MeasuredSeconds)
	}
	if want := float64(l.Requests) / l.MeasuredSeconds; l.Throughput < want*0.99 || l.Throughput > want*1.01 {
		t.Errorf("throughput: got %g, want requests/seconds = %g", l.Throughput, want)
	}
	checkLatency(t, "latency", l.Latency)
}

// checkLatency checks that quantiles are positive and in order.
func checkLatency(t *testing.T, name string, lat latencyReport) {
	t.Helper()
	if lat.P50 <= 0 {
		t.Errorf("%s p50: got %gµs, want > 0", name, lat.P50)
	}
	ordered := lat.P50 <= lat.P90 && lat.P90 <= lat.P99 && lat.P99 <= lat.P999 && lat.P999 <= lat.Max
	if !ordered {
		t.Errorf("%s quantiles out of order: %+v", name, lat)
	}
	if lat.Max > 10e6 {
		t.Errorf("%s max: got %gµs, want below the 10s request timeout", name, lat.Max)
	}
}

func TestLoadWorkloadsSingleNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a rotor node")
	}
	node := startTestNode(t)
	// Later flags win, so a subtest appends what it changes.
	common := []string{"--target", node.url, "--concurrency", "4", "--duration", "1s", "--warmup", "200ms", "--users", "4"}

	for _, workload := range []string{workloadRefresh, workloadValidate, workloadLogin, workloadMixed} {
		t.Run(workload, func(t *testing.T) {
			report, text := runLoadForTest(t, append(common, "--workload", workload)...)
			if len(report.Levels) != 1 {
				t.Fatalf("levels: got %d, want 1", len(report.Levels))
			}
			checkLevel(t, report.Levels[0], 4)
			if report.Interrupted {
				t.Error("report marked interrupted")
			}
			for _, want := range []string{"command:    jepsen load --target " + node.url, "--workload " + workload, "GOMAXPROCS", "p99.9"} {
				if !strings.Contains(text, want) {
					t.Errorf("text report lacks %q:\n%s", want, text)
				}
			}
		})
	}

	t.Run("mixed operations", func(t *testing.T) {
		report, _ := runLoadForTest(t, append(common, "--workload", "mixed", "--mix", "validate=5,refresh=5,login=1")...)
		ops := report.Levels[0].Operations
		for _, op := range []string{workloadRefresh, workloadValidate, workloadLogin} {
			if ops[op] == nil || ops[op].Requests == 0 {
				t.Errorf("operation %s: got %+v, want requests > 0", op, ops[op])
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		_, text := runLoadForTest(t, append(common, "--workload", "validate", "--concurrency", "1,2", "--json")...)
		var decoded struct {
			GOMAXPROCS int `json:"gomaxprocs"`
			Levels     []struct {
				Concurrency int     `json:"concurrency"`
				Requests    int64   `json:"requests"`
				Throughput  float64 `json:"throughput"`
				Latency     struct {
					P999 float64 `json:"p99_9"`
				} `json:"latency_us"`
			} `json:"levels"`
		}
		if err := json.Unmarshal([]byte(text), &decoded); err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%s", err, text)
		}
		if decoded.GOMAXPROCS < 1 {
			t.Errorf("gomaxprocs: got %d", decoded.GOMAXPROCS)
		}
		if len(decoded.Levels) != 2 || decoded.Levels[0].Concurrency != 1 || decoded.Levels[1].Concurrency != 2 {
			t.Fatalf("levels: got %+v, want concurrency 1 then 2", decoded.Levels)
		}
		for _, l := range decoded.Levels {
			if l.Requests <= 0 || l.Throughput <= 0 || l.Latency.P999 <= 0 {
				t.Errorf("level %d: got %+v, want requests, throughput and p99.9 > 0", l.Concurrency, l)
			}
		}
	})

	t.Run("open loop", func(t *testing.T) {
		report, _ := runLoadForTest(t, append(common, "--workload", "validate", "--rate", "200")...)
		l := report.Levels[0]
		checkLevel(t, l, 4)
		// 200/s for 1s: the schedule allows 200 operations, and a node this
		// idle keeps up with it.
		if l.Requests < 180 || l.Requests > 201 {
			t.Errorf("requests at --rate 200 for 1s: got %d, want about 200", l.Requests)
		}
	})

	t.Run("max requests", func(t *testing.T) {
		report, _ := runLoadForTest(t, append(common, "--workload", "validate", "--warmup", "0s", "--max-requests", "50")...)
		l := report.Levels[0]
		if l.Requests != 50 {
			t.Errorf("requests: got %d, want 50", l.Requests)
		}
		if l.StoppedBy != "max-requests" {
			t.Errorf("stopped by: got %q, want max-requests", l.StoppedBy)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		report, text := runLoadForTest(t, "--workload", "revoke", "--target", node.url, "--nodes", node.url,
			"--samples", "10", "--users", "2")
		if len(report.Revoke) != 1 {
			t.Fatalf("revoke levels: got %d, want 1", len(report.Revoke))
		}
		r := report.Revoke[0]
		if r.Concurrency != 1 {
			t.Errorf("concurrency: got %d, want the revoke default 1", r.Concurrency)
		}
		if r.Samples != 10 {
			t.Errorf("samples: got %d, want 10", r.Samples)
		}
		if r.Errors != 0 {
			t.Errorf("errors: got %d, want 0; codes %v", r.Errors, r.ErrorCodes)
		}
		if r.Polls < 20 {
			t.Errorf("polls: got %d, want at least 2 per sample", r.Polls)
		}
		checkLatency(t, "visible everywhere", r.VisibleEverywhere)
		checkLatency(t, "logout", r.Logout)
		if got := r.PerNode[node.url]; got != r.VisibleEverywhere {
			t.Errorf("per node %s: got %+v, want %+v as the only node", node.url, got, r.VisibleEverywhere)
		}
		if r.NodeTimeouts[node.url] != 0 {
			t.Errorf("node timeouts: got %d, want 0", r.NodeTimeouts[node.url])
		}
		if !strings.Contains(text, "visible on "+node.url) {
			t.Errorf("text report lacks the per-node row:\n%s", text)
		}
	})
}

func TestParseLoadFlagsRejectsBadInput(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown workload", []string{"--workload", "delete"}, `--workload "delete"`},
		{"zero concurrency", []string{"--concurrency", "1,0"}, `"0" must be a worker count`},
		{"target with path", []string{"--target", "http://127.0.0.1:8080/v1"}, "without path"},
		{"target without scheme", []string{"--target", "127.0.0.1:8080"}, "http:// or https://"},
		{"duplicate node", []string{"--nodes", "http://a:1,http://a:1"}, "listed twice"},
		{"short password", []string{"--password", "short"}, "--password must be 8 to 256"},
		{"unknown mix op", []string{"--mix", "logout=1"}, `unknown operation "logout"`},
		{"zero mix", []string{"--mix", "refresh=0"}, "add up to 0"},
		{"too few sessions", []string{"--concurrency", "8", "--sessions", "4"}, "needs a session per worker"},
		{"positional argument", []string{"extra"}, "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLoadFlags(tc.args, &bytes.Buffer{})
			if err == nil {
				t.Fatalf("parseLoadFlags(%q): got nil error, want one containing %q", tc.args, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseLoadFlags(%q): got %q, want it to contain %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestParseLoadFlagsDefaults(t *testing.T) {
	cfg, err := parseLoadFlags([]string{"--workload", "revoke"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.levels) != 1 || cfg.levels[0] != 1 {
		t.Errorf("revoke concurrency: got %v, want [1]", cfg.levels)
	}
	if len(cfg.nodes) != 1 || cfg.nodes[0] != "http://127.0.0.1:8080" {
		t.Errorf("nodes: got %v, want the target", cfg.nodes)
	}

	cfg, err = parseLoadFlags([]string{"--concurrency", "1,32,8", "--target", "http://127.0.0.1:8000/"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.sessions != 32 {
		t.Errorf("sessions: got %d, want the largest level 32", cfg.sessions)
	}
	if cfg.target != "http://127.0.0.1:8000" {
		t.Errorf("target: got %q, want the trailing slash removed", cfg.target)
	}
}
