// Package cluster owns the node's Raft instance: the bbolt log and stable
// store, file snapshots, the TCP transport, bootstrapping, leadership
// notifications and the leader's housekeeping (first signing key, periodic
// cleanup). It turns fsm commands into log entries and back into results.
//
// Concurrency: Node methods are safe for concurrent use. Leadership hooks run
// one at a time on the node's notification goroutine, in the order raft
// reports the changes.
package cluster
