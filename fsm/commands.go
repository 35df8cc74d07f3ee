package fsm

import (
	"encoding/json"
	"fmt"
	"time"
)

// CommandType tags a log entry; it is the entry's first byte.
type CommandType uint8

// Command types. Values are part of the log format: never renumber them.
const (
	TypeCreateUser CommandType = iota + 1
	TypeCreateSession
	TypeRotateSession
	TypeRevokeSession
	TypeRevokeUserSessions
	TypeSetRoles
	TypeSetDisabled
	TypeSetPassword
	TypeRotateSigningKey
	TypeCleanup
	TypeSetRolePermissions
)

// Command is one change to the state. Every command carries At, the leader's
// clock when it built the command; Apply uses it instead of a clock.
type Command interface {
	Type() CommandType
}

// CreateUser adds an account.
type CreateUser struct {
	At           time.Time `json:"at"`
	UserID       ID        `json:"user_id"`
	Username     string    `json:"username"`
	PasswordHash string    `json:"password_hash,omitempty"`
	Roles        []string  `json:"roles,omitempty"`
}

// CreateSession starts a session at generation 1.
type CreateSession struct {
	At          time.Time `json:"at"`
	SessionID   ID        `json:"session_id"`
	UserID      ID        `json:"user_id"`
	Nonce       ID        `json:"nonce"`
	IdleExpires time.Time `json:"idle_expires"`
	Expires     time.Time `json:"expires"`

	// CredentialVersion is the user's version the password was checked
	// against; apply rejects the login if it has moved since. Trusted backends
	// that authenticated the user themselves set AnyCredential instead.
	CredentialVersion uint64 `json:"credential_version"`
	AnyCredential     bool   `json:"any_credential,omitempty"`

	DeviceID   string `json:"device_id,omitempty"`
	DeviceName string `json:"device_name,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
	IP         string `json:"ip,omitempty"`
}

// RotateSession moves a session from generation FromGeneration to the next.
type RotateSession struct {
	At             time.Time `json:"at"`
	SessionID      ID        `json:"session_id"`
	FromGeneration uint64    `json:"from_generation"`

	// IdleExpires is the new idle deadline; apply clamps it to the absolute one.
	IdleExpires time.Time `json:"idle_expires"`

	UserAgent string `json:"user_agent,omitempty"`
	IP        string `json:"ip,omitempty"`
}

// RevokeSession ends one session. Revoking a revoked session changes nothing.
type RevokeSession struct {
	At        time.Time    `json:"at"`
	SessionID ID           `json:"session_id"`
	Reason    RevokeReason `json:"reason"`

	// DenyUntil is when the session's last access token expires: At plus the
	// access-token lifetime and the verifiers' leeway.
	DenyUntil time.Time `json:"deny_until"`
}

// RevokeUserSessions ends every live session of a user at the moment it
// applies, except Keep when set. Sessions that commit after it are not touched.
type RevokeUserSessions struct {
	At        time.Time    `json:"at"`
	UserID    ID           `json:"user_id"`
	Keep      ID           `json:"keep,omitzero"`
	Reason    RevokeReason `json:"reason"`
	DenyUntil time.Time    `json:"deny_until"`
}

// SetRoles replaces a user's roles. Tokens carry the new roles from their next
// refresh on.
type SetRoles struct {
	At     time.Time `json:"at"`
	UserID ID        `json:"user_id"`
	Roles  []string  `json:"roles"`
}

// SetDisabled disables or enables a user. Disabling revokes every session of
// the user in the same entry.
type SetDisabled struct {
	At        time.Time `json:"at"`
	UserID    ID        `json:"user_id"`
	Disabled  bool      `json:"disabled"`
	DenyUntil time.Time `json:"deny_until"`
}

// SetPassword replaces a user's password hash if the credential version is
// still FromVersion, and optionally revokes the user's other sessions.
type SetPassword struct {
	At           time.Time `json:"at"`
	UserID       ID        `json:"user_id"`
	PasswordHash string    `json:"password_hash"`
	FromVersion  uint64    `json:"from_version"`
	RevokeOthers bool      `json:"revoke_others,omitempty"`
	Keep         ID        `json:"keep,omitzero"`
	DenyUntil    time.Time `json:"deny_until"`
}

// RotateSigningKey moves the signing-key epoch from FromEpoch to FromEpoch+1.
// FromEpoch 0 creates the first epoch.
type RotateSigningKey struct {
	At        time.Time `json:"at"`
	FromEpoch uint64    `json:"from_epoch"`
}

// SetRolePermissions sets the permissions a role grants. An empty list
// removes the role from the map.
type SetRolePermissions struct {
	At          time.Time `json:"at"`
	Role        string    `json:"role"`
	Permissions []string  `json:"permissions"`
}

// Cleanup drops what no longer serves any purpose at At: sessions past their
// deadlines, revoked sessions and deny entries past DenyUntil, and epochs
// retired before RetiredBefore.
type Cleanup struct {
	At            time.Time `json:"at"`
	RetiredBefore time.Time `json:"retired_before"`
}

// Type implementations.
func (CreateUser) Type() CommandType         { return TypeCreateUser }
func (CreateSession) Type() CommandType      { return TypeCreateSession }
func (RotateSession) Type() CommandType      { return TypeRotateSession }
func (RevokeSession) Type() CommandType      { return TypeRevokeSession }
func (RevokeUserSessions) Type() CommandType { return TypeRevokeUserSessions }
func (SetRoles) Type() CommandType           { return TypeSetRoles }
func (SetDisabled) Type() CommandType        { return TypeSetDisabled }
func (SetPassword) Type() CommandType        { return TypeSetPassword }
func (RotateSigningKey) Type() CommandType   { return TypeRotateSigningKey }
func (Cleanup) Type() CommandType            { return TypeCleanup }
func (SetRolePermissions) Type() CommandType { return TypeSetRolePermissions }

// Encode returns the log-entry bytes of a command: its type byte, then JSON.
func Encode(c Command) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", c.Type(), err)
	}
	out := make([]byte, 0, 1+len(body))
	out = append(out, byte(c.Type()))
	return append(out, body...), nil
}

// Decode parses log-entry bytes written by Encode.
func Decode(data []byte) (Command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty entry", ErrUnknownCommand)
	}
	var c Command
	switch CommandType(data[0]) {
	case TypeCreateUser:
		c = new(CreateUser)
	case TypeCreateSession:
		c = new(CreateSession)
	case TypeRotateSession:
		c = new(RotateSession)
	case TypeRevokeSession:
		c = new(RevokeSession)
	case TypeRevokeUserSessions:
		c = new(RevokeUserSessions)
	case TypeSetRoles:
		c = new(SetRoles)
	case TypeSetDisabled:
		c = new(SetDisabled)
	case TypeSetPassword:
		c = new(SetPassword)
	case TypeRotateSigningKey:
		c = new(RotateSigningKey)
	case TypeCleanup:
		c = new(Cleanup)
	case TypeSetRolePermissions:
		c = new(SetRolePermissions)
	default:
		return nil, fmt.Errorf("%w: type %d", ErrUnknownCommand, data[0])
	}
	if err := json.Unmarshal(data[1:], c); err != nil {
		return nil, fmt.Errorf("decode command %d: %w", data[0], err)
	}
	return c, nil
}
