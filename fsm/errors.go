package fsm

import "errors"

// Errors returned by Apply when a command's preconditions do not hold. They
// travel back to the caller of raft.Apply inside a *Result.
var (
	// ErrUsernameTaken is returned when CreateUser names a username that exists.
	ErrUsernameTaken = errors.New("username taken")

	// ErrUserExists is returned when CreateUser reuses an existing user id.
	ErrUserExists = errors.New("user id exists")

	// ErrUserNotFound is returned when a command names an unknown user.
	ErrUserNotFound = errors.New("user not found")

	// ErrUserDisabled is returned when a session would be created or rotated for
	// a disabled user.
	ErrUserDisabled = errors.New("user disabled")

	// ErrStaleCredentials is returned when a command was decided against a
	// credential version that has changed since (password change, disable).
	ErrStaleCredentials = errors.New("credentials changed")

	// ErrSessionExists is returned when CreateSession reuses a session id.
	ErrSessionExists = errors.New("session id exists")

	// ErrSessionNotFound is returned when a command names an unknown session.
	ErrSessionNotFound = errors.New("session not found")

	// ErrSessionRevoked is returned when a revoked session would be rotated.
	ErrSessionRevoked = errors.New("session revoked")

	// ErrSessionExpired is returned when a session would be rotated at or past
	// its idle or absolute deadline.
	ErrSessionExpired = errors.New("session expired")

	// ErrGenerationMismatch is returned when RotateSession names a generation
	// that is no longer the current one.
	ErrGenerationMismatch = errors.New("generation mismatch")

	// ErrEpochMismatch is returned when RotateSigningKey does not start from the
	// current epoch.
	ErrEpochMismatch = errors.New("signing epoch mismatch")

	// ErrUnknownCommand is returned when a log entry holds no command this
	// version understands.
	ErrUnknownCommand = errors.New("unknown command")
)
