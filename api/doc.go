// Package api owns Rotor's HTTP interface. It covers routing (gorilla/mux),
// request limits, JSON and form decoding, and the authentication of access
// tokens, refresh tokens, service keys and admins. It writes RFC 9457
// problems on /v1 and RFC 6749 errors on /oauth2, maps each endpoint onto
// the actors, the FSM and Raft, and forwards a follower's writes to the
// leader.
//
// Validation of access tokens is local: signature, claims, then the deny set.
// Writes go through Raft on the leader.
//
// Concurrency: a Server is safe for concurrent use. It keeps no per-request
// state outside the request.
package api
