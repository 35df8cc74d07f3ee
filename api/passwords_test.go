package api

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"
)

// testPasswordParams is a cheap argon2id cost of 64 KiB, one pass and one
// lane.
var testPasswordParams = PasswordParams{MemoryKiB: 64, Passes: 1, Lanes: 1}

func mustHash(t *testing.T, p *passwords, password string) string {
	t.Helper()
	encoded, err := p.hash(context.Background(), password)
	if err != nil {
		t.Fatalf("hash: %v", err)
	}
	return encoded
}

// verifyNoPanic runs verify and turns a panic into an error, so one
// malformed hash cannot stop the rest of the package's tests.
func verifyNoPanic(p *passwords, encoded, password string) (ok bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			ok, err = false, fmt.Errorf("verify panicked: %v", v)
		}
	}()
	return p.verify(context.Background(), encoded, password)
}

func TestPasswordHashVerify(t *testing.T) {
	p := newPasswords(testPasswordParams, 2)
	encoded := mustHash(t, p, "correct horse")

	ok, err := p.verify(context.Background(), encoded, "correct horse")
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !ok {
		t.Errorf("verify of the right password: got false, want true")
	}
}

func TestPasswordVerifyWrong(t *testing.T) {
	p := newPasswords(testPasswordParams, 2)
	encoded := mustHash(t, p, "correct horse")

	tests := []struct {
		name     string
		password string
	}{
		{"different", "battery staple"},
		{"case changed", "Correct horse"},
		{"prefix", "correct hors"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := p.verify(context.Background(), encoded, tt.password)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if ok {
				t.Errorf("verify of %q: got true, want false", tt.password)
			}
		})
	}
}

func TestPasswordHashFormat(t *testing.T) {
	p := newPasswords(testPasswordParams, 2)
	encoded := mustHash(t, p, "correct horse")

	// 16 salt bytes and 32 hash bytes in unpadded standard base64.
	format := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !format.MatchString(encoded) {
		t.Errorf("encoded hash: got %q, want it to match %s", encoded, format)
	}
}

func TestPasswordHashSalted(t *testing.T) {
	p := newPasswords(testPasswordParams, 2)
	first := mustHash(t, p, "correct horse")
	second := mustHash(t, p, "correct horse")

	if first == second {
		t.Errorf("two hashes of one password: got equal %q, want different salts", first)
	}
}

func TestPasswordVerifyOtherParams(t *testing.T) {
	old := newPasswords(PasswordParams{MemoryKiB: 128, Passes: 2, Lanes: 2}, 1)
	encoded := mustHash(t, old, "correct horse")
	current := newPasswords(testPasswordParams, 2)

	ok, err := current.verify(context.Background(), encoded, "correct horse")
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !ok {
		t.Errorf("verify of a hash made with m=128,t=2,p=2: got false, want true")
	}
}

func TestPasswordVerifyEmptyHash(t *testing.T) {
	p := newPasswords(testPasswordParams, 2)

	ok, err := p.verify(context.Background(), "", "correct horse")
	if err != nil {
		t.Errorf("verify: got error %v, want nil", err)
	}
	if ok {
		t.Errorf("verify against an empty hash: got true, want false")
	}
}

func TestPasswordVerifyMalformed(t *testing.T) {
	const (
		salt = "c2FsdHNhbHRzYWx0c2FsdA" // 16 bytes
		sum  = "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	)
	tests := []struct {
		name    string
		encoded string
	}{
		{"plain text", "correct horse"},
		{"too few fields", "$argon2id$v=19$m=64,t=1,p=1$" + salt},
		{"too many fields", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + sum + "$x"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + sum},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + sum},
		{"missing version", "$argon2id$$m=64,t=1,p=1$" + salt + "$" + sum},
		{"bad parameters", "$argon2id$v=19$m=x,t=1,p=1$" + salt + "$" + sum},
		{"lanes overflow", "$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + sum},
		{"bad salt", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + sum},
		{"padded hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + sum + "="},
		{"empty hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
		{"zero passes", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + sum},
		{"zero lanes", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + sum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPasswords(testPasswordParams, 2)

			ok, err := verifyNoPanic(p, tt.encoded, "correct horse")
			if !errors.Is(err, errBadHash) {
				t.Errorf("verify error: got %v, want %v", err, errBadHash)
			}
			if ok {
				t.Errorf("verify: got true, want false")
			}
		})
	}
}

func TestPasswordVerifyReleasesSlot(t *testing.T) {
	// With one slot, a second call can only run if the first released it.
	p := newPasswords(testPasswordParams, 1)
	encoded := mustHash(t, p, "correct horse")

	for i := range 3 {
		if _, err := p.verify(context.Background(), encoded, "correct horse"); err != nil {
			t.Fatalf("verify call %d: %v", i+1, err)
		}
	}
}

func TestPasswordCanceledWhileQueued(t *testing.T) {
	p := newPasswords(testPasswordParams, 1)
	encoded := mustHash(t, p, "correct horse")

	// Hold the only slot, so the calls below must queue.
	if err := p.acquire(context.Background()); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	defer p.release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	ok, err := p.verify(ctx, encoded, "correct horse")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("verify error: got %v, want %v", err, context.Canceled)
	}
	if ok {
		t.Errorf("verify: got true, want false")
	}
	if _, err := p.hash(ctx, "correct horse"); !errors.Is(err, context.Canceled) {
		t.Errorf("hash error: got %v, want %v", err, context.Canceled)
	}
}
