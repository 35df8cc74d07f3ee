package actors

import "errors"

// Errors returned by Manager methods. The HTTP layer maps each to one error
// code.
var (
	// ErrInvalidToken is returned when a refresh token names no known session,
	// fails its MAC check, or names a generation the session never reached.
	ErrInvalidToken = errors.New("refresh token invalid")

	// ErrReused is returned when a rotated refresh token is presented outside
	// the grace window. The session has been revoked by the time it returns.
	ErrReused = errors.New("refresh token reused")

	// ErrRevoked is returned when the session was revoked.
	ErrRevoked = errors.New("session revoked")

	// ErrExpired is returned when the session is past its idle or absolute
	// deadline.
	ErrExpired = errors.New("session expired")

	// ErrNotLeader is returned when this node does not lead, or stopped
	// leading before the request was served.
	ErrNotLeader = errors.New("not the leader")

	// ErrUnavailable is returned when a commit failed for a reason other than
	// leadership (timeout, shutdown).
	ErrUnavailable = errors.New("commit unavailable")
)

// ErrNotFound is returned when Revoke names a session that does not exist.
var ErrNotFound = errors.New("session not found")
