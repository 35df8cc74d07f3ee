package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
)

// RefreshTokenMaxLen is the maximum length in bytes of a string that
// ParseRefresh decodes. Tokens of the current format are 80 bytes long, so
// the cap leaves room for a future format while keeping decoding cheap.
const RefreshTokenMaxLen = 128

// refreshPrefix starts every refresh token. It carries the format version
// and lets secret scanners find leaked tokens.
const refreshPrefix = "rtr1_"

// Layout of the decoded refresh token body:
// session ID (16 bytes), generation (8 bytes, big-endian), MAC (32 bytes).
const (
	refreshSessionIDLen  = 16
	refreshGenerationLen = 8
	refreshMACLen        = sha256.Size
	refreshBodyLen       = refreshSessionIDLen + refreshGenerationLen + refreshMACLen
)

// refreshTokenLen is the length of every token that MintRefresh returns (80).
var refreshTokenLen = len(refreshPrefix) + base64.RawURLEncoding.EncodedLen(refreshBodyLen)

// refreshEncoding rejects non-zero padding bits, so each body has exactly one
// encoding and no character of a token can change without changing the body.
var refreshEncoding = base64.RawURLEncoding.Strict()

// RefreshToken is a decoded refresh token: it names a session and a generation.
type RefreshToken struct {
	SessionID  [16]byte
	Generation uint64
	MAC        [32]byte
}

// MintRefresh returns the refresh token for generation gen of the session.
// The 32-byte MAC is two 16-byte HMAC-SHA256 tags under a key derived from
// the cluster secret with its own HKDF info string. The origin tag covers
// sessionID || gen (8 bytes, big-endian), so any holder of the secret can
// tell a token it minted from a forgery even after the session record is
// gone. The session tag also covers the nonce, which is not part of the
// token, so the server must store it. Minting is deterministic: the same
// keyring and inputs always give the same string, which lets a new leader
// re-create a token byte for byte.
func (k *Keyring) MintRefresh(sessionID [16]byte, gen uint64, nonce [16]byte) string {
	var body [refreshBodyLen]byte
	copy(body[:refreshSessionIDLen], sessionID[:])
	binary.BigEndian.PutUint64(body[refreshSessionIDLen:], gen)
	mac := k.refreshMAC(sessionID, gen, nonce)
	copy(body[refreshSessionIDLen+refreshGenerationLen:], mac[:])

	out := make([]byte, 0, refreshTokenLen)
	out = append(out, refreshPrefix...)
	out = base64.RawURLEncoding.AppendEncode(out, body[:])
	return string(out)
}

// ParseRefresh decodes a refresh token without checking its MAC, which needs
// the keyring and the nonce (see VerifyRefresh). It checks the length cap
// before anything else, then the prefix, the exact length and the base64url
// body. Every error wraps ErrMalformed.
func ParseRefresh(s string) (RefreshToken, error) {
	if len(s) > RefreshTokenMaxLen {
		return RefreshToken{}, fmt.Errorf("%w: refresh token is %d bytes, max %d", ErrMalformed, len(s), RefreshTokenMaxLen)
	}
	encoded, ok := strings.CutPrefix(s, refreshPrefix)
	if !ok {
		return RefreshToken{}, fmt.Errorf("%w: refresh token does not start with %q", ErrMalformed, refreshPrefix)
	}
	if len(s) != refreshTokenLen {
		return RefreshToken{}, fmt.Errorf("%w: refresh token is %d bytes, want %d", ErrMalformed, len(s), refreshTokenLen)
	}

	// DecodeString skips '\r' and '\n', so a token containing them decodes
	// to fewer bytes. The exact-length check below rejects those.
	body, err := refreshEncoding.DecodeString(encoded)
	if err != nil {
		return RefreshToken{}, fmt.Errorf("%w: refresh token is not valid base64url: %w", ErrMalformed, err)
	}
	if len(body) != refreshBodyLen {
		return RefreshToken{}, fmt.Errorf("%w: refresh token body is %d bytes, want %d", ErrMalformed, len(body), refreshBodyLen)
	}

	var t RefreshToken
	copy(t.SessionID[:], body[:refreshSessionIDLen])
	t.Generation = binary.BigEndian.Uint64(body[refreshSessionIDLen:])
	copy(t.MAC[:], body[refreshSessionIDLen+refreshGenerationLen:])
	return t, nil
}

// VerifyRefresh checks the token's whole MAC against its session ID and
// generation and the nonce that the server stored for the session. It
// compares in constant time and returns ErrBadMAC on mismatch.
func (k *Keyring) VerifyRefresh(t RefreshToken, nonce [16]byte) error {
	want := k.refreshMAC(t.SessionID, t.Generation, nonce)
	if !hmac.Equal(t.MAC[:], want[:]) {
		return ErrBadMAC
	}
	return nil
}

// VerifyRefreshOrigin checks only the origin tag: whether this cluster
// minted the token, without the session's nonce. A server uses it for a
// token whose session record no longer exists, to tell an expired session
// from a forgery. It returns ErrBadMAC on mismatch.
func (k *Keyring) VerifyRefreshOrigin(t RefreshToken) error {
	want := k.refreshTag(refreshOriginTag, t.SessionID, t.Generation, nil)
	if !hmac.Equal(t.MAC[:refreshTagLen], want[:]) {
		return ErrBadMAC
	}
	return nil
}

// Tag domains: the first input byte keeps the two tags independent.
const (
	refreshOriginTag  = 'o'
	refreshSessionTag = 's'
	refreshTagLen     = refreshMACLen / 2
)

func (k *Keyring) refreshMAC(sessionID [16]byte, gen uint64, nonce [16]byte) [refreshMACLen]byte {
	var sum [refreshMACLen]byte
	origin := k.refreshTag(refreshOriginTag, sessionID, gen, nil)
	session := k.refreshTag(refreshSessionTag, sessionID, gen, nonce[:])
	copy(sum[:refreshTagLen], origin[:])
	copy(sum[refreshTagLen:], session[:])
	return sum
}

// refreshTag returns HMAC-SHA256(domain || sessionID || gen || nonce),
// truncated to 16 bytes.
func (k *Keyring) refreshTag(domain byte, sessionID [16]byte, gen uint64, nonce []byte) [refreshTagLen]byte {
	mac := hmac.New(sha256.New, k.refreshKey)
	var input [1 + refreshSessionIDLen + refreshGenerationLen + 16]byte
	input[0] = domain
	copy(input[1:], sessionID[:])
	binary.BigEndian.PutUint64(input[1+refreshSessionIDLen:], gen)
	n := 1 + refreshSessionIDLen + refreshGenerationLen
	n += copy(input[n:], nonce)
	mac.Write(input[:n])

	var full [sha256.Size]byte
	var tag [refreshTagLen]byte
	copy(tag[:], mac.Sum(full[:0]))
	return tag
}
