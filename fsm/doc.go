// Package fsm owns Rotor's replicated state: users, sessions (one refresh-token
// family per login on one device), the revocation set and the signing-key
// epochs. It implements raft.FSM and raft.BatchingFSM.
//
// Every change arrives as a Command in the Raft log. A command carries its own
// preconditions (compare-and-set: "rotate session S from generation g") and the
// leader's timestamp, and Apply re-checks the preconditions against the state it
// holds. Apply reads no clock, draws no random bytes and does no I/O, so every
// replica that applies the same log reaches the same state.
//
// Concurrency: Raft calls Apply, Snapshot and Restore from one goroutine. Readers
// (the HTTP layer, actors, validation) may call the accessor methods from any
// goroutine. Users and sessions are copy-on-write: Apply replaces a record
// instead of changing it, so a pointer returned by an accessor stays valid and
// unchanged, and callers must not modify it.
package fsm
