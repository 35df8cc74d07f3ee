package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestJWKSShape(t *testing.T) {
	keyring := newTestKeyring(t)
	encoded, err := json.Marshal(keyring.JWKS([]uint64{testEpoch}))
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}

	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(encoded, &set); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", encoded, err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("keys: got %d, want 1 in %s", len(set.Keys), encoded)
	}

	key := set.Keys[0]
	want := map[string]string{
		"kty": "OKP",
		"crv": "Ed25519",
		"x":   base64.RawURLEncoding.EncodeToString(keyring.PublicKey(testEpoch)),
		"kid": keyring.KeyID(testEpoch),
		"alg": "EdDSA",
		"use": "sig",
	}
	if len(key) != len(want) {
		t.Errorf("members: got %v, want %v", key, want)
	}
	for name, value := range want {
		if key[name] != value {
			t.Errorf("%q: got %q, want %q", name, key[name], value)
		}
	}
}

func TestJWKSPublicKeyDecodes(t *testing.T) {
	keyring := newTestKeyring(t)
	set := keyring.JWKS([]uint64{1, testEpoch})

	for i, epoch := range []uint64{1, testEpoch} {
		jwk := set.Keys[i]
		x, err := base64.RawURLEncoding.Strict().DecodeString(jwk.X)
		if err != nil {
			t.Fatalf("epoch %d: decode x %q: %v", epoch, jwk.X, err)
		}
		if !ed25519.PublicKey(x).Equal(keyring.PublicKey(epoch)) {
			t.Errorf("epoch %d: x decodes to %x, want %x", epoch, x, keyring.PublicKey(epoch))
		}
		if jwk.KeyID != keyring.KeyID(epoch) {
			t.Errorf("epoch %d: kid: got %q, want %q", epoch, jwk.KeyID, keyring.KeyID(epoch))
		}
	}
}

func TestJWKSEmpty(t *testing.T) {
	encoded, err := json.Marshal(newTestKeyring(t).JWKS(nil))
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if got, want := string(encoded), `{"keys":[]}`; got != want {
		t.Errorf("JWKS(nil): got %s, want %s", got, want)
	}
}

// TestJWKSVerifiesAccessToken checks that a party holding only the JWKS can
// verify an access token, choosing the key by kid.
func TestJWKSVerifiesAccessToken(t *testing.T) {
	keyring := newTestKeyring(t)
	encoded, err := json.Marshal(keyring.JWKS([]uint64{1, testEpoch}))
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	signed := signTestToken(t, newTestSigner(keyring), testEpoch, testStart)

	var set JWKS
	if err := json.Unmarshal(encoded, &set); err != nil {
		t.Fatalf("json.Unmarshal: %v", err)
	}
	keyFunc := func(token *jwt.Token) (any, error) {
		for _, jwk := range set.Keys {
			if jwk.KeyID == token.Header["kid"] {
				x, err := base64.RawURLEncoding.DecodeString(jwk.X)
				return ed25519.PublicKey(x), err
			}
		}
		return nil, errors.New("kid not in JWKS")
	}

	parser := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithoutClaimsValidation())
	if _, err := parser.Parse(signed, keyFunc); err != nil {
		t.Errorf("Parse with a key from the JWKS: %v", err)
	}
}
