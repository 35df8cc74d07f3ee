package token

import "errors"

// Sentinel errors. Functions in this package wrap them with detail, so
// compare with errors.Is, not ==.
var (
	// ErrSecretTooShort is returned when NewKeyring gets a secret shorter
	// than MinSecretLen bytes.
	ErrSecretTooShort = errors.New("token: cluster secret is too short")

	// ErrMalformed is returned when a refresh or access token does not parse:
	// it is too long, has the wrong prefix, version, length or number of
	// dots, or is not valid base64url or JSON.
	ErrMalformed = errors.New("token: malformed token")

	// ErrBadMAC is returned when a refresh token's MAC does not match its
	// session ID, generation and nonce.
	ErrBadMAC = errors.New("token: refresh token MAC does not match")

	// ErrInvalidSignature is returned when an access token's signature does
	// not verify, or when its alg header is anything other than EdDSA.
	ErrInvalidSignature = errors.New("token: invalid access token signature")

	// ErrUnknownKey is returned when an access token's kid does not name a
	// key that the verifier currently accepts, or when a key ID does not parse.
	ErrUnknownKey = errors.New("token: unknown signing key")

	// ErrExpired is returned when an access token is past its exp claim plus
	// the verifier's leeway.
	ErrExpired = errors.New("token: access token expired")

	// ErrInvalidClaims is returned when an access token has the wrong iss,
	// aud or typ, lacks a required claim (sub, sid, jti, exp, iat), or has an
	// iat or nbf in the future beyond the verifier's leeway.
	ErrInvalidClaims = errors.New("token: invalid access token claims")
)
