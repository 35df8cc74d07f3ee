package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestTestCommandNeedsRoot(t *testing.T) {
	if err := requireRoot(1000); err == nil || !strings.Contains(err.Error(), "needs root") {
		t.Errorf("without root: got %v, want an error that says root is needed", err)
	}
	if err := requireRoot(0); err != nil {
		t.Errorf("as root: got %v, want nil", err)
	}
}

func TestTestCommandRejectsBadFlags(t *testing.T) {
	cases := map[string][]string{
		"unknown nemesis":   {"--nemesis", "partition,flood"},
		"unknown bug":       {"--inject-bug", "typo"},
		"short time limit":  {"--time-limit", "1s"},
		"short grace":       {"--reuse-grace", "1s"},
		"no clients":        {"--clients", "0"},
		"stray argument":    {"extra"},
		"negative recovery": {"--recovery", "-1s"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"test"}, args...), &stdout, &stderr); code != 2 {
				t.Errorf("exit status: got %d, want 2 (stderr %q)", code, stderr.String())
			}
		})
	}
}

// harnessRun runs the fault test in this process and returns its exit
// status, its output and the results it wrote.
func harnessRun(t *testing.T, args ...string) (int, string, resultsFile) {
	t.Helper()
	store := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"test", "--store", store}, args...), &stdout, &stderr)
	out := stdout.String() + stderr.String()
	var results resultsFile
	data, err := os.ReadFile(filepath.Join(store, "results.json"))
	if err != nil {
		t.Fatalf("results.json: %v\n%s", err, out)
	}
	if err := json.Unmarshal(data, &results); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	for _, name := range []string{"history.jsonl", "latency.png", "throughput.png", "haproxy.log", "n1/node.log"} {
		if _, err := os.Stat(filepath.Join(store, name)); err != nil {
			t.Errorf("store lacks %s: %v", name, err)
		}
	}
	return code, out, results
}

func failedCheckers(r resultsFile) []string {
	var names []string
	for _, c := range r.Checkers {
		if !c.Valid {
			names = append(names, c.Name)
		}
	}
	return names
}

// TestFaultHarness runs the harness three times: on the real build, where
// every checker must pass, and on two builds with a deliberate bug, where
// the checker made for that bug must fail with a counterexample.
func TestFaultHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three clusters for about two minutes")
	}
	if os.Geteuid() != 0 {
		t.Skip("the fault harness needs root for network namespaces")
	}
	for _, tool := range []string{"haproxy", "nft", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}

	t.Run("real build passes", func(t *testing.T) {
		code, out, results := harnessRun(t, "--time-limit", "20s", "--nemesis", "partition,kill,pause",
			"--fault-duration", "4s", "--fault-interval", "2s")
		if code != 0 || results.Failed != 0 {
			t.Fatalf("exit %d, failed checkers %v:\n%s", code, failedCheckers(results), out)
		}
		if len(results.Faults) < 3 {
			t.Errorf("got %d faults, want at least 3", len(results.Faults))
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if last := lines[len(lines)-1]; last != "7 passed, 0 failed" {
			t.Errorf("last line: got %q, want %q", last, "7 passed, 0 failed")
		}
	})

	bugs := []struct {
		bug, catcher string
		args         []string
	}{
		// A thief replays tokens older than the grace window; the faulty
		// build rotates them, forking the family.
		{"skip-cas", "one-successor", []string{"--time-limit", "30s", "--nemesis", "kill",
			"--reuse-grace", "4s", "--fault-duration", "4s", "--fault-interval", "3s"}},
		// Killing every node loses the writes the faulty build had not
		// stored yet, although it acknowledged them.
		{"no-fsync", "no-lost-writes", []string{"--time-limit", "20s", "--nemesis", "restart-all",
			"--fault-duration", "5s", "--fault-interval", "3s"}},
	}
	for _, b := range bugs {
		t.Run(b.bug+" is caught", func(t *testing.T) {
			code, out, results := harnessRun(t, append([]string{"--inject-bug", b.bug}, b.args...)...)
			if code != 1 {
				t.Fatalf("exit status: got %d, want 1:\n%s", code, out)
			}
			for _, c := range results.Checkers {
				if c.Name == b.catcher {
					if c.Valid || len(c.Counterexample) == 0 {
						t.Fatalf("%s: got valid=%v with %d counterexample events, want a failure with a counterexample:\n%s",
							c.Name, c.Valid, len(c.Counterexample), out)
					}
					return
				}
			}
			t.Fatalf("no %s checker in the results:\n%s", b.catcher, out)
		})
	}
}
