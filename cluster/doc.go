// Package cluster owns how nodes form a cluster and talk to each other.
//
// The node's Raft instance turns fsm commands into log entries and back into
// results. It covers the bbolt log and stable store, file snapshots, the TCP
// transport, bootstrapping and leadership notifications. The gossip layer
// (hashicorp/memberlist) carries each node's addresses and spreads the
// revocation set to every node.
//
// Concurrency: Node methods are safe for concurrent use. Leadership hooks run
// one at a time on the node's notification goroutine, in the order raft
// reports the changes.
package cluster
