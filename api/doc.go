// Package api owns Rotor's HTTP interface: routing (gorilla/mux), request
// limits, JSON and form decoding, authentication of access tokens, refresh
// tokens, service keys and admins, the error formats (RFC 9457 problems on
// /v1, RFC 6749 errors on /oauth2), and the mapping of each endpoint onto the
// actors, the FSM and Raft.
//
// Validation of access tokens is local: signature, claims, then the deny set.
// Writes go through Raft on the leader.
//
// Concurrency: a Server is safe for concurrent use; it keeps no per-request
// state outside the request.
package api
