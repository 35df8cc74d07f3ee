package api

import (
	"encoding/json"
	"net/http"
	"strconv"
)

func writeRaw(w http.ResponseWriter, v any) error {
	w.WriteHeader(http.StatusOK)
	return json.NewEncoder(w).Encode(v)
}

func (s *Server) handleLivez(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// handleReadyz reports whether this node can serve: it knows a leader, has
// applied everything it knows to be committed, and holds signing keys.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	node := s.deps.Node
	leaderAddr, _ := node.Leader()
	var reason string
	switch {
	case leaderAddr == "":
		reason = "no leader known"
	case node.AppliedIndex() < node.CommitIndex():
		reason = "applying committed entries"
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

type clusterView struct {
	NodeID       string `json:"node_id"`
	State        string `json:"state"`
	LeaderID     string `json:"leader_id"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Nodes        []node `json:"nodes"`
}

type node struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
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
		Nodes:        []node{},
	}
	servers, err := n.Servers()
	if err != nil {
		return unavailable(err)
	}
	for _, srv := range servers {
		view.Nodes = append(view.Nodes, node{ID: srv.ID, RaftAddr: srv.Address, Suffrage: srv.Suffrage, Leader: srv.ID == leaderID})
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}
