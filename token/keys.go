package token

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// MinSecretLen is the minimum length in bytes of the cluster secret, which
// gives HKDF at least 256 bits of input keying material.
const MinSecretLen = 32

// HKDF info strings. Each derived key has its own, so that no two purposes
// ever share a key even though all of them come from one secret. Changing
// any of them changes every key derived for that purpose.
const (
	signingKeyInfo = "rotor access-token signing key"
	refreshKeyInfo = "rotor refresh-token mac key"
	gossipKeyInfo  = "rotor gossip encryption key"
)

// keyIDHashLen is the number of bytes of SHA-256(public key) in a key ID.
// Eight bytes tell keys apart and reveal nothing useful about the key, which
// is public anyway.
const keyIDHashLen = 8

// keyIDHashChars is the length of the base64url form of keyIDHashLen bytes.
var keyIDHashChars = base64.RawURLEncoding.EncodedLen(keyIDHashLen)

// Keyring derives all keys of this package from the cluster secret. It is
// safe for concurrent use. Create it with NewKeyring.
type Keyring struct {
	// pseudorandomKey is the HKDF-Extract output of the secret. The keyring
	// keeps it in place of the secret itself.
	pseudorandomKey []byte

	// refreshKey is the HMAC-SHA256 key for refresh tokens.
	refreshKey []byte

	// epochs caches *epochKeys by epoch (uint64). It grows by one entry per
	// distinct epoch asked for and never shrinks.
	epochs sync.Map
}

// epochKeys are the derived keys of one epoch. They are never modified after
// they are stored.
type epochKeys struct {
	private ed25519.PrivateKey
	public  ed25519.PublicKey
	keyID   string
}

// NewKeyring returns a keyring for the cluster secret, which must be at least
// MinSecretLen bytes of high-entropy data. The keyring does not keep a
// reference to secret.
func NewKeyring(secret []byte) (*Keyring, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("%w: got %d bytes, want at least %d", ErrSecretTooShort, len(secret), MinSecretLen)
	}

	// A nil salt is allowed by RFC 5869, and domain separation comes from
	// the info strings.
	pseudorandomKey, err := hkdf.Extract(sha256.New, secret, nil)
	if err != nil {
		return nil, fmt.Errorf("token: derive keys: %w", err)
	}
	refreshKey, err := hkdf.Expand(sha256.New, pseudorandomKey, refreshKeyInfo, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("token: derive refresh-token key: %w", err)
	}

	return &Keyring{pseudorandomKey: pseudorandomKey, refreshKey: refreshKey}, nil
}

// GossipKey returns the 32-byte AES-256 key that encrypts and authenticates
// the cluster's gossip, derived with its own HKDF info string, so only nodes
// with the same cluster secret can join.
func (k *Keyring) GossipKey() []byte {
	key, err := hkdf.Expand(sha256.New, k.pseudorandomKey, gossipKeyInfo, 32)
	if err != nil {
		// The same conditions as in deriveEpochKeys apply, and none holds
		// for a 32-byte SHA-256 output.
		panic(fmt.Sprintf("token: derive gossip key: %v", err))
	}
	return key
}

// SigningKey returns the Ed25519 private key of the epoch. The key is derived
// with HKDF-SHA256 from the secret, the info string
// "rotor access-token signing key" and the epoch as 8 big-endian bytes, and
// cached after the first call. The result is a copy that the caller may keep.
func (k *Keyring) SigningKey(epoch uint64) ed25519.PrivateKey {
	return append(ed25519.PrivateKey(nil), k.keys(epoch).private...)
}

// PublicKey returns the Ed25519 public key of the epoch as a copy.
func (k *Keyring) PublicKey(epoch uint64) ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), k.keys(epoch).public...)
}

// KeyID returns the JWT kid of the epoch: "e", the epoch in decimal, "-", and
// the first 8 bytes of SHA-256 of the public key as 11 base64url characters.
// The key ID depends only on the public key and the epoch.
func (k *Keyring) KeyID(epoch uint64) string {
	return k.keys(epoch).keyID
}

// EpochFromKeyID returns the epoch that a key ID made by KeyID names. It
// checks the form only and not that the hash matches any key. It returns an
// error wrapping ErrUnknownKey for anything KeyID cannot produce, including
// leading zeros and signs in the epoch.
func EpochFromKeyID(keyID string) (uint64, error) {
	rest, ok := strings.CutPrefix(keyID, "e")
	if !ok {
		return 0, fmt.Errorf("%w: key ID does not start with \"e\"", ErrUnknownKey)
	}
	digits, hash, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, fmt.Errorf("%w: key ID has no \"-\" after the epoch", ErrUnknownKey)
	}

	epoch, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || strconv.FormatUint(epoch, 10) != digits {
		return 0, fmt.Errorf("%w: key ID epoch is not a canonical decimal number", ErrUnknownKey)
	}

	if len(hash) != keyIDHashChars {
		return 0, fmt.Errorf("%w: key ID hash has %d characters, want %d", ErrUnknownKey, len(hash), keyIDHashChars)
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(hash); err != nil {
		return 0, fmt.Errorf("%w: key ID hash is not base64url", ErrUnknownKey)
	}

	return epoch, nil
}

// keys returns the cached keys of the epoch, deriving them on first use.
// Callers must not modify the result.
func (k *Keyring) keys(epoch uint64) *epochKeys {
	if cached, ok := k.epochs.Load(epoch); ok {
		return cached.(*epochKeys)
	}

	// Two goroutines may derive the same epoch at once. Both derive equal
	// keys, and LoadOrStore makes them share one.
	derived := k.deriveEpochKeys(epoch)
	actual, _ := k.epochs.LoadOrStore(epoch, derived)
	return actual.(*epochKeys)
}

func (k *Keyring) deriveEpochKeys(epoch uint64) *epochKeys {
	info := binary.BigEndian.AppendUint64([]byte(signingKeyInfo), epoch)
	seed, err := hkdf.Expand(sha256.New, k.pseudorandomKey, string(info), ed25519.SeedSize)
	if err != nil {
		// In Go 1.26, crypto/hkdf.Expand fails only for an output longer than
		// 255 hash blocks, or in FIPS 140-only mode for a key under 112 bits
		// or a non-SHA-2/3 hash. None applies here.
		panic(fmt.Sprintf("token: derive signing key of epoch %d: %v", epoch, err))
	}

	private := ed25519.NewKeyFromSeed(seed)
	public := private.Public().(ed25519.PublicKey)
	hash := sha256.Sum256(public)
	keyID := "e" + strconv.FormatUint(epoch, 10) + "-" + base64.RawURLEncoding.EncodeToString(hash[:keyIDHashLen])

	return &epochKeys{private: private, public: public, keyID: keyID}
}
