package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxAccessTokenLen is the maximum length in bytes of an access token that
// Verify parses. Tokens from Sign are a few hundred bytes unless the caller
// passes very many roles.
const MaxAccessTokenLen = 4096

// accessTokenType is the JWT typ header of access tokens, from RFC 9068. It
// keeps other JWTs signed by the same key, such as ID tokens, from passing as
// access tokens.
const accessTokenType = "at+jwt"

// accessTokenMediaType is the full media-type form of accessTokenType, which
// RFC 9068 also allows in the typ header.
const accessTokenMediaType = "application/at+jwt"

// jtiLen is the number of random bytes in the jti claim.
const jtiLen = 16

// AccessClaims are the claims of an access token.
type AccessClaims struct {
	jwt.RegisteredClaims // iss, sub (user ID), aud, exp, iat, jti

	SessionID   string   `json:"sid"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions,omitempty"`
}

// Grants are the user's roles and the permissions those roles carry, as an
// access token states them.
type Grants struct {
	Roles       []string
	Permissions []string
}

// Signer mints access tokens. It is safe for concurrent use as long as its
// fields are not changed after the first call to Sign.
type Signer struct {
	Keyring  *Keyring
	Issuer   string        // iss
	Audience string        // aud
	TTL      time.Duration // exp - iat, at least one second
}

// Sign mints a JWT signed with EdDSA under the key of the epoch and returns
// it with its expiry. The header is {"alg":"EdDSA","kid":KeyID(epoch),"typ":"at+jwt"}.
// Sign sets iss, aud, iat = now, exp = now + TTL and a jti of 16 random bytes
// in base64url. JWT times have 1-second precision, so iat and exp are
// truncated to the second and the returned expiry equals exp.
func (s *Signer) Sign(epoch uint64, now time.Time, subject, sessionID string, grants Grants) (string, time.Time, error) {
	return s.SignUntil(epoch, now, time.Time{}, subject, sessionID, grants)
}

// SignUntil is Sign with exp capped at notAfter, rounded up to the next
// whole second, when notAfter is set and earlier than now + TTL. A token
// then outlives its session by less than a second, rather than being born
// expired by the truncation of JWT times.
func (s *Signer) SignUntil(epoch uint64, now, notAfter time.Time, subject, sessionID string, grants Grants) (string, time.Time, error) {
	switch {
	case s.Keyring == nil:
		return "", time.Time{}, errors.New("token: sign access token: Signer.Keyring is nil")
	case s.Issuer == "":
		return "", time.Time{}, errors.New("token: sign access token: Signer.Issuer is empty")
	case s.Audience == "":
		return "", time.Time{}, errors.New("token: sign access token: Signer.Audience is empty")
	case s.TTL < time.Second:
		return "", time.Time{}, fmt.Errorf("token: sign access token: Signer.TTL is %v, want at least 1s", s.TTL)
	case subject == "":
		return "", time.Time{}, errors.New("token: sign access token: subject is empty")
	case sessionID == "":
		return "", time.Time{}, errors.New("token: sign access token: session ID is empty")
	}

	var jti [jtiLen]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("token: sign access token: read random jti: %w", err)
	}

	exp := now.Add(s.TTL)
	if !notAfter.IsZero() && notAfter.Before(exp) {
		exp = notAfter
		if whole := exp.Truncate(time.Second); !whole.Equal(exp) {
			exp = whole.Add(time.Second)
		}
	}
	expiresAt := jwt.NewNumericDate(exp)
	claims := AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.Issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{s.Audience},
			ExpiresAt: expiresAt,
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		SessionID:   sessionID,
		Roles:       grants.Roles,
		Permissions: grants.Permissions,
	}

	keys := s.Keyring.keys(epoch)
	unsigned := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	unsigned.Header["kid"] = keys.keyID
	unsigned.Header["typ"] = accessTokenType

	signed, err := unsigned.SignedString(keys.private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: sign access token: %w", err)
	}
	return signed, expiresAt.Time, nil
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Keyring derives the public keys. It must not be nil.
	Keyring *Keyring

	// Issuer and Audience must equal the token's iss and be one of its aud
	// values. An empty value matches only tokens without that claim, which
	// Sign never mints.
	Issuer   string
	Audience string

	// Leeway is the clock skew allowed on exp, iat and (if present) nbf.
	Leeway time.Duration

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// AcceptEpoch reports whether tokens signed under the key of an epoch are
	// accepted, normally because the epoch's key is published in the JWKS.
	// Nil accepts no epoch. It is called on every Verify, including cache
	// hits, so it must be fast and safe for concurrent use.
	AcceptEpoch func(epoch uint64) bool

	// CacheSize is the maximum number of verified tokens kept in the cache.
	// Zero means DefaultCacheSize, and a negative value disables the cache.
	// The bound is on entries, not bytes. An entry for a 380-byte token with
	// one role took about 820 bytes of heap (Go 1.26, amd64), and an entry
	// grows with the token's length, up to MaxAccessTokenLen.
	CacheSize int
}

// DefaultCacheSize is the cache size of a Verifier whose CacheSize is zero.
const DefaultCacheSize = 65536

// Verifier checks access tokens. It is safe for concurrent use. Create it
// with NewVerifier.
type Verifier struct {
	keyring     *Keyring
	issuer      string
	audience    string
	leeway      time.Duration
	now         func() time.Time
	acceptEpoch func(epoch uint64) bool
	parser      *jwt.Parser

	// cache is nil when caching is disabled.
	cache *verifiedCache
}

// NewVerifier returns a Verifier for the configuration. It panics if
// cfg.Keyring is nil, because such a verifier could never accept a token.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.Keyring == nil {
		panic("token: NewVerifier: VerifierConfig.Keyring is nil")
	}

	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	acceptEpoch := cfg.AcceptEpoch
	if acceptEpoch == nil {
		acceptEpoch = func(uint64) bool { return false }
	}

	v := &Verifier{
		keyring:     cfg.Keyring,
		issuer:      cfg.Issuer,
		audience:    cfg.Audience,
		leeway:      cfg.Leeway,
		now:         now,
		acceptEpoch: acceptEpoch,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			// Without strict decoding, the unused low bits of a segment's last
			// base64url character are ignored, so each signed token would have
			// several string forms that all verify.
			jwt.WithStrictDecoding(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithTimeFunc(now),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
		),
	}

	switch {
	case cfg.CacheSize == 0:
		v.cache = newVerifiedCache(DefaultCacheSize)
	case cfg.CacheSize > 0:
		v.cache = newVerifiedCache(cfg.CacheSize)
	}
	return v
}

// Errors of checks that run before parsing or on cache hits. They are
// preallocated because those paths must stay cheap.
var (
	errAccessTooLong = fmt.Errorf("%w: access token is longer than %d bytes", ErrMalformed, MaxAccessTokenLen)
	errAccessDots    = fmt.Errorf("%w: access token does not have exactly three dot-separated segments", ErrMalformed)
	errCachedExpired = fmt.Errorf("%w: access token is past exp plus leeway", ErrExpired)
	errAccessChars   = fmt.Errorf("%w: access token has a character outside base64url and the dots", ErrMalformed)
)

// base64URLToken reports whether s holds only the characters of unpadded
// base64url and dots. Go's base64 decoders skip carriage returns and line
// feeds, so without this check a token with one inserted would verify as
// a second spelling of the same token.
func base64URLToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// Verify checks an access token and returns its claims. The returned claims
// may be shared with the cache and other callers, so they must not be modified.
//
// Before parsing, Verify rejects tokens longer than MaxAccessTokenLen or
// without exactly two dots. It accepts only alg EdDSA and typ "at+jwt" (or
// "application/at+jwt"), and only a kid that KeyID returns for an epoch that
// AcceptEpoch accepts. It checks exp and iat (and nbf if present) with the
// configured leeway, iss and aud, and that sub, sid and jti are not empty.
//
// Verify caches the claims of each token it accepts. A cache hit still checks
// exp against Now and calls AcceptEpoch, so retiring an epoch takes effect at
// once, but it skips parsing and the signature check. When a cache shard is
// full, expired entries are evicted first, then random ones.
//
// Errors wrap ErrMalformed, ErrInvalidSignature, ErrUnknownKey, ErrExpired or
// ErrInvalidClaims.
func (v *Verifier) Verify(tokenString string) (*AccessClaims, error) {
	if len(tokenString) > MaxAccessTokenLen {
		return nil, errAccessTooLong
	}
	if strings.Count(tokenString, ".") != 2 {
		return nil, errAccessDots
	}

	if v.cache != nil {
		if entry, ok := v.cache.get(tokenString); ok {
			return v.checkCached(entry)
		}
	}
	return v.verifyUncached(tokenString)
}

// checkCached repeats the checks whose outcome can change after a token
// verified: expiry and whether its epoch is still accepted.
func (v *Verifier) checkCached(entry verifiedToken) (*AccessClaims, error) {
	if !v.now().Before(entry.expiresAt) {
		return nil, errCachedExpired
	}
	if !v.acceptEpoch(entry.epoch) {
		return nil, fmt.Errorf("%w: epoch %d is not accepted", ErrUnknownKey, entry.epoch)
	}
	return entry.claims, nil
}

func (v *Verifier) verifyUncached(tokenString string) (*AccessClaims, error) {
	// Checked here rather than in Verify: a cached token passed it already.
	if !base64URLToken(tokenString) {
		return nil, errAccessChars
	}
	claims := new(AccessClaims)
	var epoch uint64
	var keyErr error

	// jwt calls the key function after it has decoded the header and claims
	// and checked alg, and before it checks the signature and the claims.
	_, err := v.parser.ParseWithClaims(tokenString, claims, func(t *jwt.Token) (any, error) {
		epoch, keyErr = v.lookUpKey(t.Header)
		if keyErr != nil {
			return nil, keyErr
		}
		return v.keyring.keys(epoch).public, nil
	})
	if keyErr != nil {
		return nil, keyErr
	}
	if err != nil {
		return nil, classifyParseError(err)
	}

	if err := v.checkClaims(claims); err != nil {
		return nil, err
	}

	if v.cache != nil {
		entry := verifiedToken{
			claims:    claims,
			expiresAt: claims.ExpiresAt.Add(v.leeway),
			epoch:     epoch,
		}
		// Clone the key so the cache does not pin a larger buffer that the
		// caller's string may be a slice of, such as a whole request header.
		v.cache.put(strings.Clone(tokenString), entry, v.now())
	}
	return claims, nil
}

// lookUpKey checks the typ and kid headers and returns the epoch of the key
// that must have signed the token.
func (v *Verifier) lookUpKey(header map[string]any) (uint64, error) {
	typ, _ := header["typ"].(string)
	if typ != accessTokenType && typ != accessTokenMediaType {
		return 0, fmt.Errorf("%w: typ header is not %q", ErrInvalidClaims, accessTokenType)
	}

	keyID, ok := header["kid"].(string)
	if !ok {
		return 0, fmt.Errorf("%w: kid header is missing or not a string", ErrUnknownKey)
	}
	epoch, err := EpochFromKeyID(keyID)
	if err != nil {
		return 0, err
	}

	// Check AcceptEpoch before deriving the key, so that a token cannot make
	// the keyring derive and cache keys of arbitrary epochs.
	if !v.acceptEpoch(epoch) {
		return 0, fmt.Errorf("%w: epoch %d is not accepted", ErrUnknownKey, epoch)
	}
	if keyID != v.keyring.KeyID(epoch) {
		return 0, fmt.Errorf("%w: kid does not match the key of epoch %d", ErrUnknownKey, epoch)
	}
	return epoch, nil
}

// checkClaims checks the claims that the jwt parser does not.
func (v *Verifier) checkClaims(claims *AccessClaims) error {
	switch {
	case claims.Issuer != v.issuer:
		return fmt.Errorf("%w: iss is %q, want %q", ErrInvalidClaims, claims.Issuer, v.issuer)
	case !slices.Contains(claims.Audience, v.audience):
		return fmt.Errorf("%w: aud does not contain %q", ErrInvalidClaims, v.audience)
	case claims.Subject == "":
		return fmt.Errorf("%w: sub is missing", ErrInvalidClaims)
	case claims.SessionID == "":
		return fmt.Errorf("%w: sid is missing", ErrInvalidClaims)
	case claims.ID == "":
		return fmt.Errorf("%w: jti is missing", ErrInvalidClaims)
	case claims.IssuedAt == nil:
		return fmt.Errorf("%w: iat is missing", ErrInvalidClaims)
	}
	return nil
}

// classifyParseError wraps an error of jwt.Parser.ParseWithClaims in the
// sentinel of this package that matches it.
func classifyParseError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// Includes an alg outside WithValidMethods, such as "none" or HS256.
		return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// An alg that jwt does not know, or no alg at all.
		return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: %w", ErrExpired, err)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return fmt.Errorf("%w: %w", ErrInvalidClaims, err)
	default:
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
}
