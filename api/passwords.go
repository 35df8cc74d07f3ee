package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are argon2id cost parameters. The defaults follow the OWASP
// Password Storage Cheat Sheet's argon2id setting of 19 MiB, two passes and
// one lane.
type PasswordParams struct {
	MemoryKiB uint32
	Passes    uint32
	Lanes     uint8
}

// DefaultPasswordParams returns the production cost.
func DefaultPasswordParams() PasswordParams {
	return PasswordParams{MemoryKiB: 19 * 1024, Passes: 2, Lanes: 1}
}

const (
	saltLen = 16
	hashLen = 32

	// Bounds on parameters read back from stored hashes.
	maxHashPasses    = 16
	maxHashMemoryKiB = 1 << 20 // 1 GiB
)

// passwords hashes and checks passwords. A semaphore bounds how many hashes
// run at once, so a burst of logins costs bounded memory (MemoryKiB each)
// and queues instead.
type passwords struct {
	params PasswordParams
	sem    chan struct{}
	dummy  string // hash of a random password, checked for unknown users
}

func newPasswords(params PasswordParams, concurrency int) *passwords {
	p := &passwords{params: params, sem: make(chan struct{}, max(concurrency, 1))}
	var random [24]byte
	_, _ = rand.Read(random[:])
	p.dummy = p.hashNow(base64.RawStdEncoding.EncodeToString(random[:]))
	return p
}

func (p *passwords) acquire(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *passwords) release() { <-p.sem }

// hash returns the PHC-style encoding of an argon2id hash of password.
func (p *passwords) hash(ctx context.Context, password string) (string, error) {
	if err := p.acquire(ctx); err != nil {
		return "", err
	}
	defer p.release()
	return p.hashNow(password), nil
}

func (p *passwords) hashNow(password string) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	sum := argon2.IDKey([]byte(password), salt, p.params.Passes, p.params.MemoryKiB, p.params.Lanes, hashLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.params.MemoryKiB, p.params.Passes, p.params.Lanes,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

// verify reports whether password matches encoded. An empty encoded hash (an
// account without a password, or an unknown user) is checked against the
// dummy hash so that the caller spends the same time either way, and never
// matches.
func (p *passwords) verify(ctx context.Context, encoded, password string) (bool, error) {
	if err := p.acquire(ctx); err != nil {
		return false, err
	}
	defer p.release()
	if encoded == "" {
		_, _ = checkHash(p.dummy, password)
		return false, nil
	}
	return checkHash(encoded, password)
}

var errBadHash = errors.New("malformed argon2id hash")

// checkHash recomputes the hash with the parameters stored in encoded, so
// hashes made under older parameters keep working.
func checkHash(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var memory, passes uint32
	var lanes uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &passes, &lanes); err != nil {
		return false, errBadHash
	}
	// argon2 panics on zero passes or lanes, and memory is allocated as
	// given, so stored parameters are range-checked first.
	if passes < 1 || passes > maxHashPasses || lanes < 1 || memory < 8*uint32(lanes) || memory > maxHashMemoryKiB {
		return false, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, passes, memory, lanes, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
