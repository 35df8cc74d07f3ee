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
// The MAC is HMAC-SHA256, under a key derived from the cluster secret with
// its own HKDF info string, over sessionID || gen (8 bytes, big-endian) ||
// nonce. The nonce is not part of the token, so the server must store it.
// Minting is deterministic: the same keyring and inputs always give the same
// string, which lets a new leader re-create a token byte for byte.
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

// VerifyRefresh checks the token's MAC against its session ID and generation
// and the nonce that the server stored for that generation. It compares in
// constant time and returns an error wrapping ErrBadMAC on mismatch.
func (k *Keyring) VerifyRefresh(t RefreshToken, nonce [16]byte) error {
	want := k.refreshMAC(t.SessionID, t.Generation, nonce)
	if !hmac.Equal(t.MAC[:], want[:]) {
		return ErrBadMAC
	}
	return nil
}

func (k *Keyring) refreshMAC(sessionID [16]byte, gen uint64, nonce [16]byte) [refreshMACLen]byte {
	mac := hmac.New(sha256.New, k.refreshKey)

	var input [refreshSessionIDLen + refreshGenerationLen + 16]byte
	copy(input[:refreshSessionIDLen], sessionID[:])
	binary.BigEndian.PutUint64(input[refreshSessionIDLen:], gen)
	copy(input[refreshSessionIDLen+refreshGenerationLen:], nonce[:])
	mac.Write(input[:])

	var sum [refreshMACLen]byte
	mac.Sum(sum[:0])
	return sum
}
