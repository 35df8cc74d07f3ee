// Package client is what a Go service needs beside a Rotor cluster.
//
// A resource server validates Rotor's access tokens itself, without a call
// to Rotor per request. A Validator keeps the cluster's signing keys from
// /.well-known/jwks.json, fetched again when a token names an unknown key,
// at most once per cooldown. It also keeps a copy of the revocation set,
// polled for changes from GET /v1/revocations. Its Middleware admits a
// request only with a valid, unrevoked token that has the roles or
// permissions the route requires.
//
// API is a small client for Rotor's own endpoints: sign-up, login, refresh,
// logout and the caller's account.
package client
