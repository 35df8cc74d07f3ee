package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinaryStartsAndStopsCleanly runs the real binary with only addresses
// and a data dir set, and checks that it generates a secret, serves, and
// exits 0 on SIGTERM.
func TestBinaryStartsAndStopsCleanly(t *testing.T) {
	bin := sharedBinary(t)
	dir := t.TempDir()
	httpAddr := clusterAddr(t)
	cmd := exec.Command(bin, "--http-addr", httpAddr, "--raft-addr", clusterAddr(t), "--gossip-addr", clusterAddr(t), "--data-dir", dir)
	cmd.Env = append(os.Environ(), "ROTOR_CLUSTER_SECRET=")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	defer cmd.Process.Kill()

	ready := false
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ready = true
				break
			}
		}
	}
	if !ready {
		t.Fatalf("node not ready after 15s; logs:\n%s", logs.String())
	}

	if _, err := os.Stat(filepath.Join(dir, secretFileName)); err != nil {
		t.Errorf("generated secret file: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: got %v, want status 0; logs:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("node still running 15s after SIGTERM")
	}

	for _, want := range []string{"generated a new cluster secret", "node started", "node stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs: missing %q", want)
		}
	}
	secret, _ := os.ReadFile(filepath.Join(dir, secretFileName))
	if s := strings.TrimSpace(string(secret)); s != "" && strings.Contains(logs.String(), s) {
		t.Error("logs contain the cluster secret")
	}
}
