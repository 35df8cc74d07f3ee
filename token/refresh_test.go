package token

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var (
	testSessionID = [16]byte{0: 0x5e, 15: 0x55}
	testNonce     = [16]byte{0: 0x90, 15: 0x0c}
)

// urlSafeAlphabet is the base64url alphabet, the only characters a refresh
// token body may contain.
const urlSafeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestRefreshRoundTrip(t *testing.T) {
	keyring := newTestKeyring(t)

	for _, gen := range []uint64{0, 1, 1 << 33, math.MaxUint64} {
		minted := keyring.MintRefresh(testSessionID, gen, testNonce)

		parsed, err := ParseRefresh(minted)
		if err != nil {
			t.Fatalf("ParseRefresh(MintRefresh(gen %d)): %v", gen, err)
		}
		if parsed.SessionID != testSessionID {
			t.Errorf("gen %d: SessionID: got %x, want %x", gen, parsed.SessionID, testSessionID)
		}
		if parsed.Generation != gen {
			t.Errorf("Generation: got %d, want %d", parsed.Generation, gen)
		}
		if err := keyring.VerifyRefresh(parsed, testNonce); err != nil {
			t.Errorf("gen %d: VerifyRefresh: got %v, want nil", gen, err)
		}
	}
}

func TestRefreshMACMatchesHKDF(t *testing.T) {
	keyring := newTestKeyring(t)
	key, err := hkdf.Key(sha256.New, testSecret(1), nil, "rotor refresh-token mac key", sha256.Size)
	if err != nil {
		t.Fatalf("hkdf.Key: %v", err)
	}

	tag := func(domain byte, nonce []byte) []byte {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte{domain})
		mac.Write(testSessionID[:])
		mac.Write(binary.BigEndian.AppendUint64(nil, 5))
		mac.Write(nonce)
		return mac.Sum(nil)[:16]
	}
	want := append(tag('o', nil), tag('s', testNonce[:])...)

	parsed, err := ParseRefresh(keyring.MintRefresh(testSessionID, 5, testNonce))
	if err != nil {
		t.Fatalf("ParseRefresh: %v", err)
	}
	if !hmac.Equal(parsed.MAC[:], want) {
		t.Errorf("MAC: got %x, want origin tag || session tag = %x", parsed.MAC, want)
	}
}

func TestRefreshOriginWithoutNonce(t *testing.T) {
	keyring := newTestKeyring(t)
	parsed, err := ParseRefresh(keyring.MintRefresh(testSessionID, 5, testNonce))
	if err != nil {
		t.Fatalf("ParseRefresh: %v", err)
	}
	if err := keyring.VerifyRefreshOrigin(parsed); err != nil {
		t.Errorf("origin of a minted token: got %v, want nil", err)
	}

	forged := parsed
	forged.MAC[3] ^= 1
	if err := keyring.VerifyRefreshOrigin(forged); !errors.Is(err, ErrBadMAC) {
		t.Errorf("origin with a changed origin tag: got %v, want ErrBadMAC", err)
	}
	otherGeneration := parsed
	otherGeneration.Generation++
	if err := keyring.VerifyRefreshOrigin(otherGeneration); !errors.Is(err, ErrBadMAC) {
		t.Errorf("origin with another generation: got %v, want ErrBadMAC", err)
	}
	// The origin tag alone must not pass the full check.
	sessionTagChanged := parsed
	sessionTagChanged.MAC[20] ^= 1
	if err := keyring.VerifyRefresh(sessionTagChanged, testNonce); !errors.Is(err, ErrBadMAC) {
		t.Errorf("full check with a changed session tag: got %v, want ErrBadMAC", err)
	}
}

func TestRefreshDeterministic(t *testing.T) {
	keyring := newTestKeyring(t)
	// A second keyring from the same secret stands for another node, such as
	// a new leader that re-creates a token.
	otherNode := newTestKeyring(t)

	first := keyring.MintRefresh(testSessionID, 9, testNonce)
	if again := keyring.MintRefresh(testSessionID, 9, testNonce); again != first {
		t.Errorf("same keyring: got %q, want %q", again, first)
	}
	if fromOther := otherNode.MintRefresh(testSessionID, 9, testNonce); fromOther != first {
		t.Errorf("other keyring with same secret: got %q, want %q", fromOther, first)
	}
}

func TestRefreshDiffersByInput(t *testing.T) {
	keyring := newTestKeyring(t)
	otherSecret, err := NewKeyring(testSecret(2))
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	base := keyring.MintRefresh(testSessionID, 1, testNonce)

	otherSession := testSessionID
	otherSession[3] ^= 1
	otherNonce := testNonce
	otherNonce[7] ^= 1

	tests := []struct {
		name   string
		minted string
	}{
		{name: "generation", minted: keyring.MintRefresh(testSessionID, 2, testNonce)},
		{name: "session", minted: keyring.MintRefresh(otherSession, 1, testNonce)},
		{name: "nonce", minted: keyring.MintRefresh(testSessionID, 1, otherNonce)},
		{name: "secret", minted: otherSecret.MintRefresh(testSessionID, 1, testNonce)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.minted == base {
				t.Errorf("changing the %s gave the same token %q", tt.name, base)
			}
		})
	}
}

func TestVerifyRefreshRejectsMismatch(t *testing.T) {
	keyring := newTestKeyring(t)
	otherSecret, err := NewKeyring(testSecret(2))
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	parsed, err := ParseRefresh(keyring.MintRefresh(testSessionID, 4, testNonce))
	if err != nil {
		t.Fatalf("ParseRefresh: %v", err)
	}

	otherNonce := testNonce
	otherNonce[0] ^= 0x80
	nextGeneration := parsed
	nextGeneration.Generation++
	otherSession := parsed
	otherSession.SessionID[0] ^= 1

	tests := []struct {
		name    string
		keyring *Keyring
		token   RefreshToken
		nonce   [16]byte
	}{
		{name: "wrong nonce", keyring: keyring, token: parsed, nonce: otherNonce},
		{name: "wrong secret", keyring: otherSecret, token: parsed, nonce: testNonce},
		{name: "generation changed", keyring: keyring, token: nextGeneration, nonce: testNonce},
		{name: "session changed", keyring: keyring, token: otherSession, nonce: testNonce},
		{name: "zero MAC", keyring: keyring, token: RefreshToken{SessionID: parsed.SessionID, Generation: parsed.Generation}, nonce: testNonce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.keyring.VerifyRefresh(tt.token, tt.nonce); !errors.Is(err, ErrBadMAC) {
				t.Errorf("VerifyRefresh: got %v, want %v", err, ErrBadMAC)
			}
		})
	}
}

func TestRefreshLengthAndAlphabet(t *testing.T) {
	keyring := newTestKeyring(t)
	minted := keyring.MintRefresh(testSessionID, math.MaxUint64, testNonce)

	if got, want := len(minted), 80; got != want {
		t.Errorf("length: got %d, want %d", got, want)
	}
	if len(minted) > RefreshTokenMaxLen {
		t.Errorf("length: got %d, want at most RefreshTokenMaxLen %d", len(minted), RefreshTokenMaxLen)
	}
	body, ok := strings.CutPrefix(minted, "rtr1_")
	if !ok {
		t.Fatalf("token %q: want prefix %q", minted, "rtr1_")
	}
	if i := strings.IndexFunc(body, func(r rune) bool { return !strings.ContainsRune(urlSafeAlphabet, r) }); i >= 0 {
		t.Errorf("body %q: character %q at %d is not base64url", body, body[i], i)
	}
}

// TestRefreshSingleCharacterMutations checks that no token that differs from
// a valid one in one byte verifies, for every position and many replacements.
func TestRefreshSingleCharacterMutations(t *testing.T) {
	keyring := newTestKeyring(t)
	minted := keyring.MintRefresh(testSessionID, 12, testNonce)
	replacements := urlSafeAlphabet + "=+/.~ \t\r\n\x00\x7f\x80\xff"

	for position := range len(minted) {
		for _, replacement := range []byte(replacements) {
			if minted[position] == replacement {
				continue
			}
			mutated := []byte(minted)
			mutated[position] = replacement

			parsed, err := ParseRefresh(string(mutated))
			if err != nil {
				continue
			}
			if err := keyring.VerifyRefresh(parsed, testNonce); err == nil {
				t.Errorf("position %d replaced by %q: got a verified token, want ParseRefresh or VerifyRefresh to fail", position, replacement)
			}
		}
	}
}

func TestParseRefreshMalformed(t *testing.T) {
	keyring := newTestKeyring(t)
	minted := keyring.MintRefresh(testSessionID, 1, testNonce)
	body := strings.TrimPrefix(minted, "rtr1_")

	tests := []struct {
		name  string
		input string
	}{
		{name: "empty", input: ""},
		{name: "prefix only", input: "rtr1_"},
		{name: "no prefix", input: body},
		{name: "wrong version", input: "rtr2_" + body},
		{name: "uppercase prefix", input: "RTR1_" + body},
		{name: "standard base64 plus", input: "rtr1_+" + body[1:]},
		{name: "standard base64 slash", input: "rtr1_" + body[:10] + "/" + body[11:]},
		{name: "padding", input: minted + "="},
		{name: "one character short", input: minted[:len(minted)-1]},
		{name: "one character long", input: minted + "A"},
		{name: "body decodes to wrong length", input: "rtr1_" + base64.RawURLEncoding.EncodeToString(make([]byte, refreshBodyLen+3))},
		{name: "newline inside", input: minted[:40] + "\n" + minted[41:]},
		{name: "bad base64", input: "rtr1_" + strings.Repeat("!", len(body))},
		{name: "non-UTF-8", input: "rtr1_" + strings.Repeat("\xff", len(body))},
		{name: "at the length cap", input: "rtr1_" + strings.Repeat("A", RefreshTokenMaxLen-5)},
		{name: "100000 dots", input: strings.Repeat(".", 100_000)},
		{name: "10 MiB", input: "rtr1_" + strings.Repeat("A", 10<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			parsed, err := ParseRefresh(tt.input)
			elapsed := time.Since(start)

			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseRefresh: got %+v, error %v, want %v", parsed, err, ErrMalformed)
			}
			// The length cap is checked first, so even the 10 MiB input must
			// be rejected without reading it. The bound is loose for slow,
			// loaded or race-instrumented runs.
			if elapsed > 10*time.Millisecond {
				t.Errorf("ParseRefresh took %v, want under 10ms", elapsed)
			}
		})
	}
}
