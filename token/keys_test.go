package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestNewKeyringSecretLength(t *testing.T) {
	tests := []struct {
		name    string
		length  int
		wantErr error
	}{
		{name: "empty", length: 0, wantErr: ErrSecretTooShort},
		{name: "one byte short", length: MinSecretLen - 1, wantErr: ErrSecretTooShort},
		{name: "minimum", length: MinSecretLen, wantErr: nil},
		{name: "long", length: 4 * MinSecretLen, wantErr: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyring, err := NewKeyring(make([]byte, tt.length))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewKeyring(%d bytes) error: got %v, want %v", tt.length, err, tt.wantErr)
			}
			if tt.wantErr == nil && keyring == nil {
				t.Fatalf("NewKeyring(%d bytes): got nil keyring, want non-nil", tt.length)
			}
		})
	}
}

func TestSigningKeyDeterministic(t *testing.T) {
	first := newTestKeyring(t)
	second := newTestKeyring(t)

	for _, epoch := range []uint64{0, 1, testEpoch, math.MaxUint64} {
		if !first.SigningKey(epoch).Equal(second.SigningKey(epoch)) {
			t.Errorf("epoch %d: keyrings with the same secret derived different signing keys", epoch)
		}
		if !first.SigningKey(epoch).Equal(first.SigningKey(epoch)) {
			t.Errorf("epoch %d: repeated SigningKey calls returned different keys", epoch)
		}
	}
}

func TestSigningKeyDiffersByEpochAndSecret(t *testing.T) {
	keyring := newTestKeyring(t)
	other, err := NewKeyring(testSecret(2))
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}

	if keyring.SigningKey(1).Equal(keyring.SigningKey(2)) {
		t.Error("epochs 1 and 2 derived the same signing key")
	}
	if keyring.SigningKey(1).Equal(other.SigningKey(1)) {
		t.Error("different secrets derived the same signing key for epoch 1")
	}
	if keyring.KeyID(1) == other.KeyID(1) {
		t.Errorf("different secrets gave the same key ID %q", keyring.KeyID(1))
	}
}

func TestSigningKeyMatchesHKDF(t *testing.T) {
	secret := testSecret(1)
	keyring := newTestKeyring(t)

	info := binary.BigEndian.AppendUint64([]byte("rotor access-token signing key"), testEpoch)
	seed, err := hkdf.Key(sha256.New, secret, nil, string(info), ed25519.SeedSize)
	if err != nil {
		t.Fatalf("hkdf.Key: %v", err)
	}
	want := ed25519.NewKeyFromSeed(seed)

	if got := keyring.SigningKey(testEpoch); !got.Equal(want) {
		t.Errorf("SigningKey(%d) does not match HKDF-SHA256 of the secret with the documented info string", testEpoch)
	}
}

func TestPublicKeyMatchesSigningKey(t *testing.T) {
	keyring := newTestKeyring(t)

	got := keyring.PublicKey(testEpoch)
	want := keyring.SigningKey(testEpoch).Public().(ed25519.PublicKey)
	if !got.Equal(want) {
		t.Errorf("PublicKey(%d): got %x, want %x", testEpoch, got, want)
	}
}

func TestKeyringKeepsNoReferences(t *testing.T) {
	secret := testSecret(1)
	keyring, err := NewKeyring(secret)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	wantPublic := keyring.PublicKey(1)

	clear(secret)
	if !keyring.PublicKey(2).Equal(newTestKeyring(t).PublicKey(2)) {
		t.Error("clearing the secret after NewKeyring changed the derived keys")
	}

	returnedPrivate := keyring.SigningKey(1)
	clear(returnedPrivate)
	returnedPublic := keyring.PublicKey(1)
	clear(returnedPublic)
	if got := keyring.PublicKey(1); !got.Equal(wantPublic) {
		t.Errorf("modifying returned keys changed the cached key: got %x, want %x", got, wantPublic)
	}
	if got := keyring.SigningKey(1); bytes.Equal(got, make([]byte, ed25519.PrivateKeySize)) {
		t.Error("modifying a returned signing key changed the cached key")
	}
}

func TestKeyIDRoundTrip(t *testing.T) {
	keyring := newTestKeyring(t)

	for _, epoch := range []uint64{0, 1, testEpoch, 1 << 40, math.MaxUint64} {
		keyID := keyring.KeyID(epoch)
		got, err := EpochFromKeyID(keyID)
		if err != nil {
			t.Errorf("EpochFromKeyID(%q): %v", keyID, err)
			continue
		}
		if got != epoch {
			t.Errorf("EpochFromKeyID(%q): got %d, want %d", keyID, got, epoch)
		}
	}
}

func TestKeyIDForm(t *testing.T) {
	keyring := newTestKeyring(t)

	keyID := keyring.KeyID(testEpoch)
	if want := "e7-"; !strings.HasPrefix(keyID, want) {
		t.Errorf("KeyID(%d) = %q: want prefix %q", testEpoch, keyID, want)
	}
	if got, want := len(keyID), len("e7-")+11; got != want {
		t.Errorf("KeyID(%d) = %q: got length %d, want %d", testEpoch, keyID, got, want)
	}
	if keyring.KeyID(testEpoch) != keyID {
		t.Errorf("KeyID(%d) is not stable", testEpoch)
	}
}

// TestDerivationPinned pins the outputs of key derivation. Every node of a
// cluster must derive the same keys from the same secret, so a change here
// means nodes running different versions reject each other's tokens. The
// expected values were checked against an independent HKDF, HMAC and Ed25519
// implementation (Python hmac, hashlib and cryptography).
func TestDerivationPinned(t *testing.T) {
	keyring := newTestKeyring(t)

	if got, want := keyring.KeyID(1), "e1-OLCDWrpXQDo"; got != want {
		t.Errorf("KeyID(1): got %q, want %q", got, want)
	}

	var sessionID, nonce [16]byte
	for i := range sessionID {
		sessionID[i] = byte(i)
		nonce[i] = byte(0xf0 + i)
	}
	if got, want := keyring.MintRefresh(sessionID, 3, nonce), "rtr1_AAECAwQFBgcICQoLDA0ODwAAAAAAAAAD5fjAT6WAq7f393F9CHD6BtCyYXJM0uf0qGkNkVFsEHY"; got != want {
		t.Errorf("MintRefresh: got %q, want %q", got, want)
	}
}

func TestEpochFromKeyIDRejectsGarbage(t *testing.T) {
	hash := "AAAAAAAAAAA" // 11 valid base64url characters
	tests := []struct {
		name  string
		keyID string
	}{
		{name: "empty", keyID: ""},
		{name: "prefix only", keyID: "e"},
		{name: "no separator", keyID: "e1" + hash},
		{name: "no hash", keyID: "e1-"},
		{name: "wrong prefix", keyID: "k1-" + hash},
		{name: "uppercase prefix", keyID: "E1-" + hash},
		{name: "no epoch", keyID: "e-" + hash},
		{name: "leading zero", keyID: "e01-" + hash},
		{name: "plus sign", keyID: "e+1-" + hash},
		{name: "minus sign", keyID: "e-1-" + hash},
		{name: "hex epoch", keyID: "e0x1-" + hash},
		{name: "epoch overflows uint64", keyID: "e18446744073709551616-" + hash},
		{name: "hash too short", keyID: "e1-AAAAAAAAAA"},
		{name: "hash too long", keyID: "e1-AAAAAAAAAAAA"},
		{name: "hash with padding", keyID: "e1-AAAAAAAAAA="},
		{name: "hash not base64url", keyID: "e1-AAAAAAAAAA+"},
		{name: "hash with nonzero padding bits", keyID: "e1-AAAAAAAAAAB"},
		{name: "non-UTF-8", keyID: "e1-\xff\xfe\xfdAAAAAAAA"},
		{name: "whitespace", keyID: " e1-" + hash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			epoch, err := EpochFromKeyID(tt.keyID)
			if !errors.Is(err, ErrUnknownKey) {
				t.Errorf("EpochFromKeyID(%q): got epoch %d, error %v, want %v", tt.keyID, epoch, err, ErrUnknownKey)
			}
		})
	}
}
