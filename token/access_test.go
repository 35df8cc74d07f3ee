package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	keyring := newTestKeyring(t)
	clock := newTestClock(testStart)
	verifier := newTestVerifier(keyring, clock, newEpochSet(testEpoch), 0)

	signed, expiry, err := newTestSigner(keyring).Sign(testEpoch, testStart, "user-42", "session-9",
		Grants{Roles: []string{"admin", "reader"}, Permissions: []string{"posts:read", "posts:write"}})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if want := testStart.Add(testTTL); !expiry.Equal(want) {
		t.Errorf("Sign expiry: got %v, want %v", expiry, want)
	}

	claims, err := verifier.Verify(signed)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.Issuer != testIssuer {
		t.Errorf("iss: got %q, want %q", claims.Issuer, testIssuer)
	}
	if !slices.Equal(claims.Audience, jwt.ClaimStrings{testAudience}) {
		t.Errorf("aud: got %q, want [%q]", claims.Audience, testAudience)
	}
	if claims.Subject != "user-42" {
		t.Errorf("sub: got %q, want %q", claims.Subject, "user-42")
	}
	if claims.SessionID != "session-9" {
		t.Errorf("sid: got %q, want %q", claims.SessionID, "session-9")
	}
	if !slices.Equal(claims.Roles, []string{"admin", "reader"}) {
		t.Errorf("roles: got %q, want %q", claims.Roles, []string{"admin", "reader"})
	}
	if !slices.Equal(claims.Permissions, []string{"posts:read", "posts:write"}) {
		t.Errorf("permissions: got %q, want %q", claims.Permissions, []string{"posts:read", "posts:write"})
	}
	if !claims.IssuedAt.Equal(testStart) {
		t.Errorf("iat: got %v, want %v", claims.IssuedAt, testStart)
	}
	if !claims.ExpiresAt.Equal(expiry) {
		t.Errorf("exp: got %v, want %v", claims.ExpiresAt, expiry)
	}
	if jti, err := base64.RawURLEncoding.DecodeString(claims.ID); err != nil || len(jti) != 16 {
		t.Errorf("jti %q: got %d bytes, error %v, want 16 bytes of base64url", claims.ID, len(jti), err)
	}
}

func TestSignHeader(t *testing.T) {
	keyring := newTestKeyring(t)
	signed := signTestToken(t, newTestSigner(keyring), testEpoch, testStart)

	header := decodeHeader(t, signed)
	want := map[string]any{"alg": "EdDSA", "kid": keyring.KeyID(testEpoch), "typ": "at+jwt"}
	if len(header) != len(want) {
		t.Errorf("header: got %v, want %v", header, want)
	}
	for name, value := range want {
		if header[name] != value {
			t.Errorf("header %q: got %v, want %v", name, header[name], value)
		}
	}
}

func TestSignUniqueJTI(t *testing.T) {
	keyring := newTestKeyring(t)
	signer := newTestSigner(keyring)

	first := signTestToken(t, signer, testEpoch, testStart)
	second := signTestToken(t, signer, testEpoch, testStart)
	if first == second {
		t.Error("two tokens signed with the same inputs are equal, want distinct jti")
	}
}

func TestSignRejectsBadInput(t *testing.T) {
	keyring := newTestKeyring(t)
	tests := []struct {
		name      string
		signer    Signer
		subject   string
		sessionID string
	}{
		{name: "nil keyring", signer: Signer{Issuer: testIssuer, Audience: testAudience, TTL: testTTL}, subject: "u", sessionID: "s"},
		{name: "empty issuer", signer: Signer{Keyring: keyring, Audience: testAudience, TTL: testTTL}, subject: "u", sessionID: "s"},
		{name: "empty audience", signer: Signer{Keyring: keyring, Issuer: testIssuer, TTL: testTTL}, subject: "u", sessionID: "s"},
		{name: "zero TTL", signer: Signer{Keyring: keyring, Issuer: testIssuer, Audience: testAudience}, subject: "u", sessionID: "s"},
		{name: "sub-second TTL", signer: Signer{Keyring: keyring, Issuer: testIssuer, Audience: testAudience, TTL: time.Millisecond}, subject: "u", sessionID: "s"},
		{name: "empty subject", signer: *newTestSigner(keyring), subject: "", sessionID: "s"},
		{name: "empty session ID", signer: *newTestSigner(keyring), subject: "u", sessionID: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed, _, err := tt.signer.Sign(testEpoch, testStart, tt.subject, tt.sessionID, Grants{})
			if err == nil {
				t.Errorf("Sign: got token %q, want an error", signed)
			}
		})
	}
}

func TestVerifyExpiry(t *testing.T) {
	keyring := newTestKeyring(t)
	expiry := testStart.Add(testTTL)
	tests := []struct {
		name    string
		now     time.Time
		wantErr error
	}{
		{name: "just issued", now: testStart, wantErr: nil},
		{name: "after exp within leeway", now: expiry.Add(testLeeway - time.Second), wantErr: nil},
		{name: "at exp plus leeway", now: expiry.Add(testLeeway), wantErr: ErrExpired},
		{name: "long expired", now: expiry.Add(24 * time.Hour), wantErr: ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed := signTestToken(t, newTestSigner(keyring), testEpoch, testStart)
			verifier := newTestVerifier(keyring, newTestClock(tt.now), newEpochSet(testEpoch), 0)

			_, err := verifier.Verify(signed)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify at %v: got %v, want %v", tt.now, err, tt.wantErr)
			}
		})
	}
}

func TestVerifyExpiryOnCacheHit(t *testing.T) {
	keyring := newTestKeyring(t)
	clock := newTestClock(testStart)
	verifier := newTestVerifier(keyring, clock, newEpochSet(testEpoch), 0)
	signed := signTestToken(t, newTestSigner(keyring), testEpoch, testStart)

	if _, err := verifier.Verify(signed); err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	clock.add(testTTL + testLeeway)
	if _, err := verifier.Verify(signed); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify of a cached token after exp plus leeway: got %v, want %v", err, ErrExpired)
	}
}

func TestVerifyIssuedAt(t *testing.T) {
	keyring := newTestKeyring(t)
	tests := []struct {
		name     string
		issuedAt time.Time
		wantErr  error
	}{
		{name: "in the past", issuedAt: testStart.Add(-time.Minute), wantErr: nil},
		{name: "future within leeway", issuedAt: testStart.Add(testLeeway), wantErr: nil},
		{name: "future beyond leeway", issuedAt: testStart.Add(testLeeway + time.Second), wantErr: ErrInvalidClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed := signTestToken(t, newTestSigner(keyring), testEpoch, tt.issuedAt)
			verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)

			_, err := verifier.Verify(signed)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify of iat %v at %v: got %v, want %v", tt.issuedAt, testStart, err, tt.wantErr)
			}
		})
	}
}

func TestVerifyRejectsWrongIssuerAudience(t *testing.T) {
	keyring := newTestKeyring(t)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)
	tests := []struct {
		name   string
		signer *Signer
	}{
		{name: "wrong issuer", signer: &Signer{Keyring: keyring, Issuer: "https://other.test", Audience: testAudience, TTL: testTTL}},
		{name: "wrong audience", signer: &Signer{Keyring: keyring, Issuer: testIssuer, Audience: "other-api", TTL: testTTL}},
		{name: "issuer differs in case", signer: &Signer{Keyring: keyring, Issuer: strings.ToUpper(testIssuer), Audience: testAudience, TTL: testTTL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed := signTestToken(t, tt.signer, testEpoch, testStart)
			if _, err := verifier.Verify(signed); !errors.Is(err, ErrInvalidClaims) {
				t.Errorf("Verify: got %v, want %v", err, ErrInvalidClaims)
			}
		})
	}
}

func TestVerifyRequiredClaims(t *testing.T) {
	keyring := newTestKeyring(t)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)
	header := map[string]any{"kid": keyring.KeyID(testEpoch), "typ": "at+jwt"}

	tests := []struct {
		name   string
		change func(claims map[string]any)
	}{
		{name: "no sub", change: func(c map[string]any) { delete(c, "sub") }},
		{name: "empty sub", change: func(c map[string]any) { c["sub"] = "" }},
		{name: "no sid", change: func(c map[string]any) { delete(c, "sid") }},
		{name: "no jti", change: func(c map[string]any) { delete(c, "jti") }},
		{name: "no exp", change: func(c map[string]any) { delete(c, "exp") }},
		{name: "no iat", change: func(c map[string]any) { delete(c, "iat") }},
		{name: "no iss", change: func(c map[string]any) { delete(c, "iss") }},
		{name: "no aud", change: func(c map[string]any) { delete(c, "aud") }},
		{name: "nbf beyond leeway", change: func(c map[string]any) { c["nbf"] = testStart.Add(testLeeway + time.Minute).Unix() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := validClaims()
			tt.change(claims)
			signed := signCustom(t, keyring.SigningKey(testEpoch), header, claims)

			if _, err := verifier.Verify(signed); !errors.Is(err, ErrInvalidClaims) {
				t.Errorf("Verify: got %v, want %v", err, ErrInvalidClaims)
			}
		})
	}
}

func TestVerifyCustomClaimsControl(t *testing.T) {
	// The unchanged claims of TestVerifyRequiredClaims must verify, so that
	// its failures come from the single change each case makes.
	keyring := newTestKeyring(t)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)
	header := map[string]any{"kid": keyring.KeyID(testEpoch), "typ": "at+jwt"}

	signed := signCustom(t, keyring.SigningKey(testEpoch), header, validClaims())
	if _, err := verifier.Verify(signed); err != nil {
		t.Errorf("Verify: got %v, want nil", err)
	}
}

func TestVerifyTypeHeader(t *testing.T) {
	keyring := newTestKeyring(t)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)
	tests := []struct {
		name    string
		typ     any
		wantErr error
	}{
		{name: "at+jwt", typ: "at+jwt", wantErr: nil},
		{name: "media type form", typ: "application/at+jwt", wantErr: nil},
		{name: "JWT", typ: "JWT", wantErr: ErrInvalidClaims},
		{name: "missing", typ: nil, wantErr: ErrInvalidClaims},
		{name: "not a string", typ: 1, wantErr: ErrInvalidClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]any{"kid": keyring.KeyID(testEpoch), "typ": tt.typ}
			signed := signCustom(t, keyring.SigningKey(testEpoch), header, validClaims())

			if _, err := verifier.Verify(signed); !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify with typ %v: got %v, want %v", tt.typ, err, tt.wantErr)
			}
		})
	}
}

func TestVerifyRejectsAlgNone(t *testing.T) {
	keyring := newTestKeyring(t)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)
	header := map[string]any{"alg": "none", "kid": keyring.KeyID(testEpoch), "typ": "at+jwt"}

	unsigned := encodeSegment(t, header) + "." + encodeSegment(t, validClaims()) + "."
	if _, err := verifier.Verify(unsigned); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("Verify of alg none: got %v, want %v", err, ErrInvalidSignature)
	}
}

func TestVerifyRejectsOtherAlgorithms(t *testing.T) {
	keyring := newTestKeyring(t)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)
	header := map[string]any{"kid": keyring.KeyID(testEpoch), "typ": "at+jwt"}

	// HS256 keyed with the public key is the classic key-confusion attempt
	// against verifiers that take the algorithm from the token.
	hs256 := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(validClaims()))
	for name, value := range header {
		hs256.Header[name] = value
	}
	signed, err := hs256.SignedString([]byte(keyring.PublicKey(testEpoch)))
	if err != nil {
		t.Fatalf("SignedString: %v", err)
	}

	unknownAlg := map[string]any{"alg": "XX512", "kid": keyring.KeyID(testEpoch), "typ": "at+jwt"}
	noAlg := map[string]any{"kid": keyring.KeyID(testEpoch), "typ": "at+jwt"}
	signature := "." + base64.RawURLEncoding.EncodeToString(make([]byte, ed25519.SignatureSize))

	tests := []struct {
		name  string
		token string
	}{
		{name: "HS256 keyed with public key", token: signed},
		{name: "unknown alg", token: encodeSegment(t, unknownAlg) + "." + encodeSegment(t, validClaims()) + signature},
		{name: "no alg", token: encodeSegment(t, noAlg) + "." + encodeSegment(t, validClaims()) + signature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := verifier.Verify(tt.token); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("Verify: got %v, want %v", err, ErrInvalidSignature)
			}
		})
	}
}

func TestVerifyRejectsBadSignature(t *testing.T) {
	keyring := newTestKeyring(t)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(1, testEpoch), 0)
	header := map[string]any{"kid": keyring.KeyID(testEpoch), "typ": "at+jwt"}

	_, foreignKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	signed := signTestToken(t, newTestSigner(keyring), testEpoch, testStart)
	headerPart, rest, _ := strings.Cut(signed, ".")
	_, signaturePart, _ := strings.Cut(rest, ".")
	otherClaims := validClaims()
	otherClaims["sub"] = "admin"

	tests := []struct {
		name  string
		token string
	}{
		{name: "foreign key with valid kid", token: signCustom(t, foreignKey, header, validClaims())},
		{name: "key of another accepted epoch", token: signCustom(t, keyring.SigningKey(1), header, validClaims())},
		{name: "claims swapped", token: headerPart + "." + encodeSegment(t, otherClaims) + "." + signaturePart},
		{name: "signature empty", token: headerPart + "." + strings.Split(signed, ".")[1] + "."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := verifier.Verify(tt.token); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("Verify: got %v, want %v", err, ErrInvalidSignature)
			}
		})
	}
}

func TestVerifyKeyID(t *testing.T) {
	keyring := newTestKeyring(t)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)
	goodKeyID := keyring.KeyID(testEpoch)
	wrongHash := goodKeyID[:len(goodKeyID)-2] + "AA"
	if wrongHash == goodKeyID {
		wrongHash = goodKeyID[:len(goodKeyID)-2] + "BA"
	}

	tests := []struct {
		name  string
		keyID any
	}{
		{name: "epoch not accepted", keyID: keyring.KeyID(testEpoch + 1)},
		{name: "hash does not match epoch", keyID: wrongHash},
		{name: "garbage", keyID: "not-a-key-id"},
		{name: "missing", keyID: nil},
		{name: "not a string", keyID: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]any{"kid": tt.keyID, "typ": "at+jwt"}
			signed := signCustom(t, keyring.SigningKey(testEpoch), header, validClaims())

			if _, err := verifier.Verify(signed); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("Verify with kid %v: got %v, want %v", tt.keyID, err, ErrUnknownKey)
			}
		})
	}
}

func TestVerifyNilAcceptEpochAcceptsNone(t *testing.T) {
	keyring := newTestKeyring(t)
	verifier := NewVerifier(VerifierConfig{Keyring: keyring, Issuer: testIssuer, Audience: testAudience})
	signed := signTestToken(t, newTestSigner(keyring), testEpoch, time.Now())

	if _, err := verifier.Verify(signed); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify: got %v, want %v", err, ErrUnknownKey)
	}
}

func TestVerifyEpochRetiredAfterCacheHit(t *testing.T) {
	keyring := newTestKeyring(t)
	epochs := newEpochSet(testEpoch)
	verifier := newTestVerifier(keyring, newTestClock(testStart), epochs, 0)
	signed := signTestToken(t, newTestSigner(keyring), testEpoch, testStart)

	first, err := verifier.Verify(signed)
	if err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	second, err := verifier.Verify(signed)
	if err != nil {
		t.Fatalf("second Verify: %v", err)
	}
	if first != second {
		t.Fatal("second Verify returned new claims, want the cached claims")
	}

	epochs.setEpochs(testEpoch + 1)
	if _, err := verifier.Verify(signed); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify after the epoch was retired: got %v, want %v", err, ErrUnknownKey)
	}

	epochs.setEpochs(testEpoch)
	if _, err := verifier.Verify(signed); err != nil {
		t.Errorf("Verify after the epoch was accepted again: got %v, want nil", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	keyring := newTestKeyring(t)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)
	signed := signTestToken(t, newTestSigner(keyring), testEpoch, testStart)
	parts := strings.Split(signed, ".")

	tests := []struct {
		name  string
		token string
	}{
		{name: "empty", token: ""},
		{name: "no dots", token: "abc"},
		{name: "one dot", token: parts[0] + "." + parts[1]},
		{name: "three dots", token: signed + "."},
		{name: "100000 dots", token: strings.Repeat(".", 100_000)},
		{name: "4000 dots within length", token: strings.Repeat(".", 4000)},
		{name: "10 MiB", token: parts[0] + "." + strings.Repeat("A", 10<<20) + "." + parts[2]},
		{name: "one byte over max", token: parts[0] + "." + parts[1] + "." + strings.Repeat("A", MaxAccessTokenLen-len(parts[0])-len(parts[1])-1)},
		{name: "header not base64url", token: "!!!." + parts[1] + "." + parts[2]},
		{name: "header not JSON", token: base64.RawURLEncoding.EncodeToString([]byte("{")) + "." + parts[1] + "." + parts[2]},
		{name: "claims not JSON", token: parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("[1,2")) + "." + parts[2]},
		{name: "signature not base64url", token: parts[0] + "." + parts[1] + ".***"},
		{name: "non-UTF-8", token: "\xff\xfe." + parts[1] + "." + parts[2]},
		{name: "signature with nonzero padding bits", token: flipPaddingBit(t, signed)},
		{name: "exp not a number", token: parts[0] + "." + encodeSegment(t, map[string]any{"exp": "soon"}) + "." + parts[2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := verifier.Verify(tt.token)
			elapsed := time.Since(start)

			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Verify: got %v, want %v", err, ErrMalformed)
			}
			// Oversized input is rejected before parsing. The bound is loose
			// for slow, loaded or race-instrumented runs.
			if elapsed > 50*time.Millisecond {
				t.Errorf("Verify took %v, want under 50ms", elapsed)
			}
		})
	}
}

func TestVerifyCacheBounded(t *testing.T) {
	keyring := newTestKeyring(t)
	signer := newTestSigner(keyring)
	tests := []struct {
		name      string
		cacheSize int
		tokens    int
	}{
		{name: "smaller than shard count", cacheSize: 10, tokens: 50},
		{name: "not a multiple of shards", cacheSize: 100, tokens: 400},
		{name: "many shards", cacheSize: 256, tokens: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), tt.cacheSize)
			tokens := make([]string, tt.tokens)
			for i := range tokens {
				tokens[i] = signTestToken(t, signer, testEpoch, testStart)
			}

			for i, signed := range tokens {
				if _, err := verifier.Verify(signed); err != nil {
					t.Fatalf("Verify token %d: %v", i, err)
				}
				if got := verifier.cache.len(); got > tt.cacheSize {
					t.Fatalf("after %d tokens: cache holds %d entries, want at most %d", i+1, got, tt.cacheSize)
				}
			}
			if got := verifier.cache.len(); got == 0 {
				t.Errorf("cache holds 0 entries after %d verifications, want some", tt.tokens)
			}
			// Evicted tokens must still verify on the uncached path.
			for i, signed := range tokens {
				if _, err := verifier.Verify(signed); err != nil {
					t.Fatalf("second Verify of token %d: %v", i, err)
				}
			}
		})
	}
}

func TestVerifyCacheEvictsExpiredFirst(t *testing.T) {
	keyring := newTestKeyring(t)
	signer := newTestSigner(keyring)
	clock := newTestClock(testStart)
	verifier := newTestVerifier(keyring, clock, newEpochSet(testEpoch), 0)
	// Replace the cache by one shard of four entries, so that the order of
	// eviction is visible.
	verifier.cache = &verifiedCache{
		seed:          maphash.MakeSeed(),
		shardMask:     0,
		shardCapacity: 4,
		shards:        []cacheShard{{entries: make(map[string]verifiedToken)}},
	}

	old := signTestToken(t, signer, testEpoch, testStart)
	if _, err := verifier.Verify(old); err != nil {
		t.Fatalf("Verify old token: %v", err)
	}

	later := testStart.Add(testTTL + testLeeway)
	clock.set(later)
	fresh := make([]string, 4)
	for i := range fresh {
		fresh[i] = signTestToken(t, signer, testEpoch, later)
		if _, err := verifier.Verify(fresh[i]); err != nil {
			t.Fatalf("Verify fresh token %d: %v", i, err)
		}
	}

	entries := verifier.cache.shards[0].entries
	if _, ok := entries[old]; ok {
		t.Error("expired token is still cached after the shard filled")
	}
	for i, signed := range fresh {
		if _, ok := entries[signed]; !ok {
			t.Errorf("fresh token %d was evicted while an expired entry existed", i)
		}
	}
}

func TestVerifyCacheDisabled(t *testing.T) {
	keyring := newTestKeyring(t)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), -1)
	signed := signTestToken(t, newTestSigner(keyring), testEpoch, testStart)

	if verifier.cache != nil {
		t.Fatal("CacheSize -1: got a cache, want none")
	}
	for i := range 2 {
		if _, err := verifier.Verify(signed); err != nil {
			t.Errorf("Verify %d: %v", i, err)
		}
	}
}

func TestVerifyConcurrent(t *testing.T) {
	keyring := newTestKeyring(t)
	signer := newTestSigner(keyring)
	// A small cache makes goroutines evict entries while others read them.
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 8)

	valid := make([]string, 32)
	for i := range valid {
		valid[i] = signTestToken(t, signer, testEpoch, testStart)
	}
	foreign := signTestToken(t, newTestSigner(mustKeyring(t, testSecret(9))), testEpoch, testStart)

	const goroutines = 8
	const rounds = 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for round := range rounds {
				signed := valid[(g+round)%len(valid)]
				if _, err := verifier.Verify(signed); err != nil {
					errs <- fmt.Errorf("goroutine %d round %d: valid token: %w", g, round, err)
					return
				}
				if _, err := verifier.Verify(foreign); !errors.Is(err, ErrUnknownKey) {
					errs <- fmt.Errorf("goroutine %d round %d: token of another secret: got %v, want %v", g, round, err, ErrUnknownKey)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func mustKeyring(t testing.TB, secret []byte) *Keyring {
	t.Helper()
	keyring, err := NewKeyring(secret)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return keyring
}

// flipPaddingBit returns token with the lowest bit of its last base64url
// character flipped. The last character of a 64-byte signature carries 2 bits
// of data and 4 unused bits, so the result decodes to the same signature
// unless the decoder is strict.
func flipPaddingBit(t testing.TB, token string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	index := strings.IndexByte(alphabet, token[len(token)-1])
	if index < 0 {
		t.Fatalf("last character %q of the token is not base64url", token[len(token)-1])
	}
	return token[:len(token)-1] + string(alphabet[index^1])
}

func TestSignUntilCapsExpiry(t *testing.T) {
	signer := newTestSigner(newTestKeyring(t))
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name     string
		notAfter time.Time
		want     time.Time
	}{
		{"no cap", time.Time{}, now.Add(testTTL)},
		{"cap later than ttl", now.Add(testTTL + time.Hour), now.Add(testTTL)},
		{"cap on a whole second", now.Add(10 * time.Second), now.Add(10 * time.Second)},
		{"cap rounded up", now.Add(10*time.Second + 300*time.Millisecond), now.Add(11 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, exp, err := signer.SignUntil(1, now, tt.notAfter, "subject", "session", Grants{})
			if err != nil {
				t.Fatalf("SignUntil: %v", err)
			}
			if !exp.Equal(tt.want) {
				t.Fatalf("exp: got %s, want %s", exp, tt.want)
			}
		})
	}
}
