package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/testcert"
)

// TestClusterOverTLS runs three nodes that serve HTTPS and speak mutual TLS
// between Raft peers: writes sent to followers are forwarded to the leader
// over HTTPS, and the cluster behaves as over plain connections.
func TestClusterOverTLS(t *testing.T) {
	t.Parallel()
	ca := testcert.NewCA(t, "rotor-test")
	cert, key := ca.Issue("node")
	c := startCluster(t,
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-file", ca.File,
		"--raft-tls-cert-file", cert, "--raft-tls-key-file", key, "--raft-tls-ca-file", ca.File)

	leader := c.leader(10 * time.Second)
	f := c.follower(leader)
	c.signup(f, "tls-user")
	login := c.login(f, "tls-user")
	rotated := c.mustRefresh(c.follower(f), login.Refresh)
	if status, err := c.me(f, rotated.Access); err != nil || status != http.StatusOK {
		t.Fatalf("me over HTTPS: got %d, %v, want 200", status, err)
	}

	// Plain HTTP is not served.
	plain := strings.Replace(c.nodes[f].url, "https://", "http://", 1)
	if resp, err := http.Get(plain + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to a TLS node: got 200, want a refused request")
		}
	}
}
