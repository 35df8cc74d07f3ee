package token

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// FuzzParseRefresh checks that ParseRefresh never panics, that every error
// wraps ErrMalformed, and that it accepts only the one canonical encoding of
// a body.
func FuzzParseRefresh(f *testing.F) {
	keyring := mustKeyring(f, testSecret(1))
	minted := keyring.MintRefresh(testSessionID, 3, testNonce)
	f.Add(minted)
	f.Add("")
	f.Add("rtr1_")
	f.Add(minted[:len(minted)-1] + "B")
	f.Add(strings.Repeat(".", 200))

	f.Fuzz(func(t *testing.T, input string) {
		parsed, err := ParseRefresh(input)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseRefresh(%q): error %v does not wrap %v", input, err, ErrMalformed)
			}
			return
		}

		body := make([]byte, 0, refreshBodyLen)
		body = append(body, parsed.SessionID[:]...)
		body = binary.BigEndian.AppendUint64(body, parsed.Generation)
		body = append(body, parsed.MAC[:]...)
		if reencoded := "rtr1_" + base64.RawURLEncoding.EncodeToString(body); reencoded != input {
			t.Fatalf("ParseRefresh accepted %q, which is not the canonical encoding %q", input, reencoded)
		}
	})
}

// FuzzVerify checks that Verify never panics, that every error wraps one of
// the sentinel errors, and that only tokens signed by the keyring verify.
func FuzzVerify(f *testing.F) {
	keyring := mustKeyring(f, testSecret(1))
	clock := newTestClock(testStart)
	// Fuzzing runs this setup again in each worker process, so the seed token
	// must be deterministic: fixed claims and Ed25519, unlike Sign's random jti.
	header := map[string]any{"kid": keyring.KeyID(testEpoch), "typ": "at+jwt"}
	signed := signCustom(f, keyring.SigningKey(testEpoch), header, validClaims())
	verifier := newTestVerifier(keyring, clock, newEpochSet(testEpoch), 64)

	f.Add(signed)
	f.Add(signed[:len(signed)-2])
	f.Add("")
	f.Add("..")
	f.Add(encodeSegment(f, map[string]any{"alg": "none", "typ": "at+jwt", "kid": keyring.KeyID(testEpoch)}) + "." + encodeSegment(f, validClaims()) + ".")
	f.Add(strings.Repeat(".", 5000))

	sentinels := []error{ErrMalformed, ErrInvalidSignature, ErrUnknownKey, ErrExpired, ErrInvalidClaims}
	f.Fuzz(func(t *testing.T, input string) {
		claims, err := verifier.Verify(input)
		if err == nil {
			if input != signed {
				t.Fatalf("Verify accepted %q, which this test never signed (claims %+v)", input, claims)
			}
			return
		}
		for _, sentinel := range sentinels {
			if errors.Is(err, sentinel) {
				return
			}
		}
		t.Fatalf("Verify(%q): error %v wraps none of the sentinel errors", input, err)
	})
}
