package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://rotor.test"
	testAudience = "rotor-api"
	testTTL      = 15 * time.Minute
	testLeeway   = 30 * time.Second
	testEpoch    = 7
)

// testStart is a whole second, so that JWT's 1-second precision does not
// shift iat and exp away from the values the tests compute.
var testStart = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

func testSecret(fill byte) []byte {
	secret := make([]byte, MinSecretLen)
	for i := range secret {
		secret[i] = fill + byte(i)
	}
	return secret
}

func newTestKeyring(t testing.TB) *Keyring {
	t.Helper()
	keyring, err := NewKeyring(testSecret(1))
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return keyring
}

// testClock is a settable clock that is safe for concurrent use.
type testClock struct{ nanos atomic.Int64 }

func newTestClock(start time.Time) *testClock {
	c := &testClock{}
	c.set(start)
	return c
}

func (c *testClock) now() time.Time      { return time.Unix(0, c.nanos.Load()).UTC() }
func (c *testClock) set(t time.Time)     { c.nanos.Store(t.UnixNano()) }
func (c *testClock) add(d time.Duration) { c.nanos.Add(int64(d)) }

// epochSet is an AcceptEpoch function whose accepted epochs can change while
// a Verifier uses it.
type epochSet struct {
	accepted atomic.Pointer[map[uint64]bool]
}

func newEpochSet(epochs ...uint64) *epochSet {
	s := &epochSet{}
	s.setEpochs(epochs...)
	return s
}

func (s *epochSet) setEpochs(epochs ...uint64) {
	accepted := make(map[uint64]bool, len(epochs))
	for _, epoch := range epochs {
		accepted[epoch] = true
	}
	s.accepted.Store(&accepted)
}

func (s *epochSet) accept(epoch uint64) bool { return (*s.accepted.Load())[epoch] }

func newTestSigner(keyring *Keyring) *Signer {
	return &Signer{Keyring: keyring, Issuer: testIssuer, Audience: testAudience, TTL: testTTL}
}

func newTestVerifier(keyring *Keyring, clock *testClock, epochs *epochSet, cacheSize int) *Verifier {
	return NewVerifier(VerifierConfig{
		Keyring:     keyring,
		Issuer:      testIssuer,
		Audience:    testAudience,
		Leeway:      testLeeway,
		Now:         clock.now,
		AcceptEpoch: epochs.accept,
		CacheSize:   cacheSize,
	})
}

func signTestToken(t testing.TB, signer *Signer, epoch uint64, now time.Time) string {
	t.Helper()
	signed, _, err := signer.Sign(epoch, now, "user-1", "session-1", Grants{Roles: []string{"reader"}})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return signed
}

// validClaims returns the claims that Sign would produce at testStart, as a
// map so that tests can remove or change single claims.
func validClaims() map[string]any {
	return map[string]any{
		"iss":   testIssuer,
		"sub":   "user-1",
		"aud":   []string{testAudience},
		"exp":   testStart.Add(testTTL).Unix(),
		"iat":   testStart.Unix(),
		"jti":   "AAAAAAAAAAAAAAAAAAAAAA",
		"sid":   "session-1",
		"roles": []string{"reader"},
	}
}

// signCustom signs arbitrary claims and header fields with an Ed25519 key,
// for tokens that Sign never produces.
func signCustom(t testing.TB, key ed25519.PrivateKey, header map[string]any, claims map[string]any) string {
	t.Helper()
	unsigned := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(claims))
	for name, value := range header {
		if value == nil {
			delete(unsigned.Header, name)
			continue
		}
		unsigned.Header[name] = value
	}
	signed, err := unsigned.SignedString(key)
	if err != nil {
		t.Fatalf("SignedString: %v", err)
	}
	return signed
}

// encodeSegment returns the base64url JSON encoding of v, one JWT segment.
func encodeSegment(t testing.TB, v any) string {
	t.Helper()
	encoded, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(encoded)
}

// decodeHeader returns the JOSE header of a compact JWT.
func decodeHeader(t testing.TB, token string) map[string]any {
	t.Helper()
	segment, _, _ := strings.Cut(token, ".")
	encoded, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		t.Fatalf("decode header segment: %v", err)
	}
	var header map[string]any
	if err := json.Unmarshal(encoded, &header); err != nil {
		t.Fatalf("unmarshal header: %v", err)
	}
	return header
}
