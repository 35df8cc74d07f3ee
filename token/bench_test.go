package token

import (
	"testing"
	"time"
)

func BenchmarkMintRefresh(b *testing.B) {
	keyring := mustKeyring(b, testSecret(1))
	b.ReportAllocs()
	var gen uint64
	for b.Loop() {
		gen++
		keyring.MintRefresh(testSessionID, gen, testNonce)
	}
}

func BenchmarkParseVerifyRefresh(b *testing.B) {
	keyring := mustKeyring(b, testSecret(1))
	minted := keyring.MintRefresh(testSessionID, 1, testNonce)
	b.ReportAllocs()
	for b.Loop() {
		parsed, err := ParseRefresh(minted)
		if err != nil {
			b.Fatal(err)
		}
		if err := keyring.VerifyRefresh(parsed, testNonce); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignAccess(b *testing.B) {
	signer := newTestSigner(mustKeyring(b, testSecret(1)))
	roles := []string{"reader"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := signer.Sign(testEpoch, testStart, "user-1", "session-1", Grants{Roles: roles}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCold verifies a different token in each iteration, so every
// Verify misses the cache and pays for parsing, the signature check and the
// cache insert.
func BenchmarkVerifyCold(b *testing.B) {
	keyring := mustKeyring(b, testSecret(1))
	signer := newTestSigner(keyring)
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)

	// Signing is slower than verifying, so the tokens are made before the
	// timer starts. b.Loop cannot be used because it does not expose b.N.
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = signTestToken(b, signer, testEpoch, testStart)
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := verifier.Verify(tokens[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()

	// Each token has a random jti, so every Verify must have inserted a new
	// entry. Up to half the default size, no shard is close to full, so
	// nothing can have been evicted.
	if b.N <= DefaultCacheSize/2 {
		if got := verifier.cache.len(); got != b.N {
			b.Fatalf("cache holds %d entries after %d distinct tokens, want %d", got, b.N, b.N)
		}
	}
}

func BenchmarkVerifyRepeated(b *testing.B) {
	keyring := mustKeyring(b, testSecret(1))
	verifier := newTestVerifier(keyring, newTestClock(testStart), newEpochSet(testEpoch), 0)
	signed := signTestToken(b, newTestSigner(keyring), testEpoch, testStart)
	if _, err := verifier.Verify(signed); err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	for b.Loop() {
		if _, err := verifier.Verify(signed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRepeatedParallel verifies one token from all goroutines,
// the worst case for lock contention because every call hits one shard.
func BenchmarkVerifyRepeatedParallel(b *testing.B) {
	keyring := mustKeyring(b, testSecret(1))
	verifier := NewVerifier(VerifierConfig{
		Keyring:     keyring,
		Issuer:      testIssuer,
		Audience:    testAudience,
		Leeway:      testLeeway,
		Now:         time.Now,
		AcceptEpoch: func(epoch uint64) bool { return epoch == testEpoch },
	})
	signed := signTestToken(b, newTestSigner(keyring), testEpoch, time.Now())
	if _, err := verifier.Verify(signed); err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := verifier.Verify(signed); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
