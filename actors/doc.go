// Package actors serializes every change to a session on the Raft leader
// through one goroutine per active session, the session's actor.
//
// Concurrent refreshes of one session queue in its actor's mailbox, so the
// second one finds the rotation already committed and, inside the grace
// window, receives the same successor without another log entry. No lock is
// held across a Raft commit. The actor's decision is only a proposal: the FSM
// re-checks its preconditions on apply, so a revocation that commits first
// always wins.
//
// Actors exist only while this node leads. An actor exits after an idle
// period (passivation), so stored sessions cost no goroutine. Every actor
// stops when leadership is lost. Requests waiting in a mailbox then fail with
// ErrNotLeader, and the client retries on the new leader.
//
// Concurrency: Manager methods are safe for concurrent use.
package actors
