package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

func writeRaw(w http.ResponseWriter, v any) error {
	w.WriteHeader(http.StatusOK)
	return json.NewEncoder(w).Encode(v)
}

func (s *Server) handleLivez(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// maxApplyLag is how many committed entries a ready node may still have to
// apply. Raft updates the applied index a moment after the commit index, so
// a busy node is always a few entries behind. A node replaying its log after
// a restart is thousands behind.
const maxApplyLag = 1024

// handleReadyz reports whether this node can serve: a leader is known and
// was heard from recently, this node has applied what the leader committed,
// and it has a signing key.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	node := s.deps.Node
	leaderAddr, _ := node.Leader()
	stale := s.staleness()
	var reason string
	switch {
	case leaderAddr == "":
		reason = "no leader known"
	case stale > s.cfg.MaxStaleness:
		reason = fmt.Sprintf("no contact with the leader for %s", stale.Round(time.Millisecond))
	case s.applyBacklog() > maxApplyLag:
		reason = fmt.Sprintf("applying a backlog of %d committed entries", s.applyBacklog())
	case s.deps.State.CurrentEpoch() == 0:
		reason = "no signing key yet"
	}
	if reason != "" {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// staleness returns how long this node has gone without hearing from the
// leader: zero on the leader, and on a follower the time since raft's last
// contact (since start when there was none).
func (s *Server) staleness() time.Duration {
	node := s.deps.Node
	if node.IsLeader() {
		return 0
	}
	last := node.LastContact()
	if last.IsZero() {
		last = s.started
	}
	return s.cfg.Now().Sub(last)
}

// applyBacklog returns how many entries the cluster has committed that this
// node has not applied. A follower's own commit index stops at the last
// entry it holds, so while it catches up it looks current. The leader's
// commit index, fetched over HTTP and cached briefly, shows the real gap.
func (s *Server) applyBacklog() uint64 {
	node := s.deps.Node
	commit := node.CommitIndex()
	if !node.IsLeader() {
		commit = max(commit, s.leaderCommit())
	}
	applied := node.AppliedIndex()
	if commit <= applied {
		return 0
	}
	return commit - applied
}

// leaderCommit returns the leader's commit index, at most
// leaderCommitMaxAge old, or 0 when the leader cannot be asked.
func (s *Server) leaderCommit() uint64 {
	s.leaderCommitMu.Lock()
	defer s.leaderCommitMu.Unlock()
	if time.Since(s.leaderCommitAt) < leaderCommitMaxAge {
		return s.leaderCommitValue
	}
	s.leaderCommitAt = time.Now()
	s.leaderCommitValue = 0

	_, id := s.deps.Node.Leader()
	if id == "" || s.deps.Directory == nil {
		return 0
	}
	addr, ok := s.deps.Directory.HTTPAddr(id)
	if !ok {
		return 0
	}
	client := http.Client{Transport: s.forwardTransport, Timeout: 250 * time.Millisecond}
	resp, err := client.Get("http://" + addr + "/v1/cluster")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var view clusterView
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&view) != nil {
		return 0
	}
	s.leaderCommitValue = view.CommitIndex
	return view.CommitIndex
}

// leaderCommitMaxAge bounds how often /readyz requests the leader's commit
// index.
const leaderCommitMaxAge = 250 * time.Millisecond

// handleReadyzLeader returns 200 only on a ready leader. A load balancer
// that health-checks it can send writes straight to the leader and save the
// follower's forwarding hop, though any node would still accept them.
func (s *Server) handleReadyzLeader(w http.ResponseWriter, r *http.Request) error {
	if !s.deps.Node.IsLeader() || !s.deps.Actors.Leading() {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "not the leader"})
		return nil
	}
	return s.handleReadyz(w, r)
}

type clusterView struct {
	NodeID       string `json:"node_id"`
	State        string `json:"state"`
	LeaderID     string `json:"leader_id"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`

	// StalenessMS is how long ago this node last heard from the leader, in
	// milliseconds; 0 on the leader.
	StalenessMS int64 `json:"staleness_ms"`

	Revocations int    `json:"revocations"`
	Nodes       []node `json:"nodes"`
}

type node struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

func (s *Server) handleCluster(w http.ResponseWriter, r *http.Request) error {
	n := s.deps.Node
	_, leaderID := n.Leader()
	term, _ := strconv.ParseUint(n.Stats()["term"], 10, 64)
	view := clusterView{
		NodeID:       s.cfg.NodeID,
		State:        n.State(),
		LeaderID:     leaderID,
		Term:         term,
		CommitIndex:  n.CommitIndex(),
		AppliedIndex: n.AppliedIndex(),
		StalenessMS:  s.staleness().Milliseconds(),
		Revocations:  s.deps.State.Revocations().Len(),
		Nodes:        []node{},
	}
	servers, err := n.Servers()
	if err != nil {
		return unavailable(err)
	}
	for _, srv := range servers {
		entry := node{ID: srv.ID, RaftAddr: srv.Address, Suffrage: srv.Suffrage, Leader: srv.ID == leaderID}
		if s.deps.Directory != nil {
			entry.HTTPAddr, _ = s.deps.Directory.HTTPAddr(srv.ID)
		}
		view.Nodes = append(view.Nodes, entry)
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}
