package fsm

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"
)

// ID names a user or a session, and is also the shape of a session's MAC
// nonce. The leader draws it from crypto/rand and stamps it into the command.
type ID [16]byte

// NewID returns a random ID. Only the leader calls it, before it builds a
// command; Apply never does.
func NewID() ID {
	var id ID
	// crypto/rand.Read never returns an error on supported platforms.
	_, _ = rand.Read(id[:])
	return id
}

// String returns the ID in unpadded base64url, the form used in the API.
func (id ID) String() string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// IsZero reports whether the ID is unset.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes the ID as unpadded base64url.
func (id ID) MarshalText() ([]byte, error) {
	return []byte(id.String()), nil
}

// UnmarshalText decodes an ID written by MarshalText.
func (id *ID) UnmarshalText(text []byte) error {
	parsed, err := ParseID(string(text))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseID decodes the base64url form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != base64.RawURLEncoding.EncodedLen(len(id)) {
		return id, fmt.Errorf("invalid id %q: want %d base64url characters", truncate(s, 40), base64.RawURLEncoding.EncodedLen(len(id)))
	}
	n, err := base64.RawURLEncoding.Decode(id[:], []byte(s))
	if err != nil || n != len(id) {
		return ID{}, fmt.Errorf("invalid id %q: not base64url", truncate(s, 40))
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// User is an account. Records are copy-on-write: Apply replaces them.
type User struct {
	ID ID `json:"id"`

	// Username is the normalized login name; it is unique.
	Username string `json:"username"`

	// PasswordHash is an encoded argon2id hash, or empty for accounts that only
	// trusted backends start sessions for.
	PasswordHash string `json:"password_hash,omitempty"`

	Roles    []string  `json:"roles,omitempty"`
	Disabled bool      `json:"disabled,omitempty"`
	Created  time.Time `json:"created"`

	// CredentialVersion grows with every password change and every disable or
	// enable. A login decided against an older version is rejected on apply.
	CredentialVersion uint64 `json:"credential_version"`
}

// RevokeReason is the cause of a session's revocation.
type RevokeReason uint8

// Reasons a session was revoked.
const (
	ReasonNone RevokeReason = iota
	ReasonLogout
	ReasonReuse
	ReasonUserWide
	ReasonAdmin
	ReasonDisabled
	ReasonPasswordChange
)

var reasonNames = [...]string{"", "logout", "reuse", "user_wide", "admin", "disabled", "password_change"}

// String returns the reason's stable name.
func (r RevokeReason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Session is one refresh-token family: one login on one device. Records are
// copy-on-write: Apply replaces them.
type Session struct {
	ID     ID `json:"id"`
	UserID ID `json:"user_id"`

	// Nonce is mixed into every refresh token's MAC, so tokens can be derived
	// again from the cluster secret and this record, but not from this record
	// alone.
	Nonce ID `json:"nonce"`

	// Generation is the generation of the current refresh token; it starts at 1.
	Generation uint64 `json:"generation"`

	// RotatedAt is when Generation became current; zero for generation 1.
	// The grace window for replaying generation-1 counts from here.
	RotatedAt time.Time `json:"rotated_at"`

	Created       time.Time `json:"created"`
	LastRefreshed time.Time `json:"last_refreshed"`

	// IdleExpires moves forward with each rotation but never past Expires.
	IdleExpires time.Time `json:"idle_expires"`

	// Expires is the absolute deadline, fixed at creation.
	Expires time.Time `json:"expires"`

	DeviceID   string `json:"device_id,omitempty"`
	DeviceName string `json:"device_name,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
	IP         string `json:"ip,omitempty"`

	Revoked      bool         `json:"revoked,omitempty"`
	RevokedAt    time.Time    `json:"revoked_at,omitzero"`
	RevokeReason RevokeReason `json:"revoke_reason,omitempty"`

	// DenyUntil is when the last access token of a revoked session expires;
	// the record and its deny entry are kept until then.
	DenyUntil time.Time `json:"deny_until,omitzero"`
}

// Deadline returns the earlier of the idle and the absolute deadline.
func (s *Session) Deadline() time.Time {
	if s.IdleExpires.Before(s.Expires) {
		return s.IdleExpires
	}
	return s.Expires
}

// ExpiredAt reports whether the session can no longer be refreshed at t.
func (s *Session) ExpiredAt(t time.Time) bool {
	return !t.Before(s.Deadline())
}

// Epoch is one signing-key epoch. Keys are derived from the cluster secret and
// the epoch number; the state stores only the numbers and times.
type Epoch struct {
	Number    uint64    `json:"number"`
	Activated time.Time `json:"activated"`

	// Retired is when a newer epoch replaced this one; zero for the current
	// epoch. Tokens signed before it stay valid until they expire.
	Retired time.Time `json:"retired,omitzero"`
}
