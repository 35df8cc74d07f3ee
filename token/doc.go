// Package token mints and checks the credentials that Rotor hands to clients.
//
// It owns four things:
//
//   - Key derivation. A [Keyring] derives every key from one cluster secret
//     with HKDF-SHA256, so all nodes that share the secret derive the same keys
//     without exchanging them. Access-token signing keys are Ed25519 keys
//     indexed by an epoch number, so keys can be rotated by publishing a new
//     epoch and retiring an old one.
//   - Refresh tokens. These are opaque strings with the prefix "rtr1_". They
//     name a session and a generation and carry an HMAC-SHA256 tag over both
//     plus a nonce that the server stores and the token does not contain.
//     Minting is deterministic, so any node can re-create a token byte for byte.
//   - Access tokens. These are JWTs signed with EdDSA (Ed25519) and the header
//     typ "at+jwt". [Signer] mints them and [Verifier] checks them. The
//     Verifier caches tokens it has already verified.
//   - JWKS. [Keyring.JWKS] renders the public keys of chosen epochs as a JSON
//     Web Key Set, so other services can verify access tokens themselves.
//
// The package does no I/O. It reads the clock only through values the caller
// passes: the now argument of [Signer.Sign] and [VerifierConfig.Now]. It reads
// crypto/rand only for the jti of each access token.
//
// Concurrency: [Keyring] and [Verifier] are safe for concurrent use. A
// [Signer] is safe for concurrent use as long as its fields are not changed
// after the first call to Sign. [RefreshToken] is a plain value.
//
// Errors returned by this package wrap one of the sentinel errors in
// errors.go, so callers can branch with errors.Is.
package token
