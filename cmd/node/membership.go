package main

import (
	"context"
	"time"

	"github.com/rotorhq/rotor/cluster"
	"github.com/rotorhq/rotor/internal/wait"
)

// directory adapts the gossip membership to what the HTTP layer needs.
type directory struct{ members *cluster.Membership }

func (d directory) HTTPAddr(nodeID string) (string, bool) {
	m, ok := d.members.Member(nodeID)
	if !ok || m.HTTPAddr == "" {
		return "", false
	}
	return m.HTTPAddr, true
}

func (d directory) IsPeerIP(ip string) bool { return d.members.IsPeerIP(ip) }

// formCluster bootstraps Raft once --bootstrap-expect voters have met over
// gossip. Every founding node computes the same voter list (the first ones
// by node id), so it does not matter which of them bootstraps first. A node
// that finds a member that already has Raft state is joining, or replacing
// a member of, a formed cluster: it waits for the leader to reach it
// instead, and catches up from a snapshot.
func (n *node) formCluster(ctx context.Context) {
	defer n.members.UpdateMeta()
	if n.cfg.BootstrapExpect == 1 || n.raft.HasState() {
		return
	}
	n.log.Info("waiting for voters to form the cluster", "bootstrap_expect", n.cfg.BootstrapExpect)
	members, err := n.members.WaitForMembers(ctx, n.cfg.BootstrapExpect)
	if err != nil {
		return
	}
	for _, m := range members {
		if m.Bootstrapped && m.NodeID != n.cfg.NodeID {
			n.log.Info("joining an existing cluster; waiting for its leader", "member", m.NodeID)
			n.waitForState(ctx)
			return
		}
	}

	var servers []cluster.Server
	for _, m := range members[:n.cfg.BootstrapExpect] {
		servers = append(servers, cluster.Server{ID: m.NodeID, Address: m.RaftAddr})
	}
	if err := n.raft.BootstrapServers(servers); err != nil {
		n.log.Error("bootstrapping the cluster failed", "error", err)
		return
	}
	n.log.Info("bootstrapped the cluster", "voters", len(servers))
}

// waitForState returns once raft has received state from a leader, so the
// gossip metadata can report it.
func (n *node) waitForState(ctx context.Context) {
	for !n.raft.HasState() {
		if !wait.Sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

// membershipChanged runs on a gossip goroutine when a member joins, leaves
// or updates. The leader adds new members as voters.
func (n *node) membershipChanged() {
	if n.leading.Load() {
		go n.addMissingVoters()
	}
}

// addMissingVoters adds every alive member that the Raft configuration does
// not have, with its current Raft address. Members that leave are not
// removed: a node that crashed will be back, and removing a voter is an
// operator's decision.
func (n *node) addMissingVoters() {
	servers, err := n.raft.Servers()
	if err != nil {
		return
	}
	known := make(map[string]string, len(servers))
	for _, s := range servers {
		known[s.ID] = s.Address
	}
	for _, m := range n.members.Members() {
		if addr, ok := known[m.NodeID]; ok && addr == m.RaftAddr {
			continue
		}
		if m.RaftAddr == "" {
			continue
		}
		if err := n.raft.AddVoter(m.NodeID, m.RaftAddr); err != nil {
			n.log.Warn("adding a voter failed", "member", m.NodeID, "raft_addr", m.RaftAddr, "error", err)
			continue
		}
		n.log.Info("added a voter", "member", m.NodeID, "raft_addr", m.RaftAddr)
	}
}
