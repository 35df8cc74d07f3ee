package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rotorhq/rotor/fsm"
	"github.com/rotorhq/rotor/internal/testcert"
)

// issue returns TLS files for a node certificate of ca.
func issue(ca *testcert.CA, name string) TLSFiles {
	cert, key := ca.Issue(name)
	return TLSFiles{CertFile: cert, KeyFile: key, CAFile: ca.File}
}

func TestRaftOverMutualTLS(t *testing.T) {
	ca := testcert.NewCA(t, "cluster")
	cfgA := testConfig(t.TempDir(), "", nil)
	cfgA.NodeID, cfgA.TLS = "a", issue(ca, "a")
	a, _ := openNode(t, cfgA)
	waitLeader(t, a)

	cfgB := testConfig(t.TempDir(), "", nil)
	cfgB.NodeID, cfgB.Bootstrap, cfgB.TLS = "b", false, issue(ca, "b")
	b, stateB := openNode(t, cfgB)
	if err := a.AddVoter("b", b.RaftAddr()); err != nil {
		t.Fatalf("AddVoter over TLS: %v", err)
	}
	if _, err := a.Apply(t.Context(), createUser("tess")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := stateB.UserByName("tess"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the follower did not receive the entry over TLS within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A peer with a certificate from another CA gets no connection.
	rogue, err := newTLSStream("127.0.0.1:0", nil, issue(testcert.NewCA(t, "rogue"), "mallory"))
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	if conn, err := rogue.Dial(raft.ServerAddress(a.RaftAddr()), 2*time.Second); err == nil {
		conn.Close()
		t.Fatal("a peer with a certificate of another CA connected")
	}
}

func TestRaftTLSNeedsAllFiles(t *testing.T) {
	files := issue(testcert.NewCA(t, "cluster"), "a")
	files.CAFile = ""
	cfg := testConfig(t.TempDir(), "", nil)
	cfg.TLS = files
	if _, err := Open(cfg, fsm.New(nil)); err == nil {
		t.Fatal("Open with a certificate but no CA file: got no error")
	}
}
