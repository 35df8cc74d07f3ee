package api

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/rotorhq/rotor/fsm"
	"github.com/rotorhq/rotor/token"
)

// newValidationServer returns a Server with just what access-token
// validation needs: an FSM with one signing epoch and the keyring.
func newValidationServer(b *testing.B) (*Server, *token.Signer) {
	b.Helper()
	state := fsm.New(nil)
	if res := state.ApplyCommand(&fsm.RotateSigningKey{At: time.Now(), FromEpoch: 0}); res.Err != nil {
		b.Fatal(res.Err)
	}
	keys, err := token.NewKeyring([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{
		Issuer: "http://rotor.test", Audience: "rotor", AccessTTL: 5 * time.Minute, Leeway: 10 * time.Second,
		Passwords: PasswordParams{MemoryKiB: 64, Passes: 1, Lanes: 1},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, Deps{State: state, Keys: keys})
	return s, s.signer
}

func signAccess(b *testing.B, signer *token.Signer) string {
	b.Helper()
	tok, _, err := signer.Sign(1, time.Now(), fsm.NewID().String(), fsm.NewID().String(), token.Grants{Roles: []string{"user"}})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// BenchmarkValidateAccessRepeated measures what every protected request pays
// for a token seen before: the verified-token cache, then the deny set.
func BenchmarkValidateAccessRepeated(b *testing.B) {
	s, signer := newValidationServer(b)
	tok := signAccess(b, signer)
	if _, err := s.validateAccess(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.validateAccess(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateAccessCold measures a token never seen before: parsing,
// the Ed25519 signature check, claims and the deny set.
func BenchmarkValidateAccessCold(b *testing.B) {
	s, signer := newValidationServer(b)
	const pool = 4096
	toks := make([]string, pool)
	for i := range toks {
		toks[i] = signAccess(b, signer)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if i == pool {
			// Every token is cached now; sign fresh ones off the clock.
			b.StopTimer()
			for j := range toks {
				toks[j] = signAccess(b, signer)
			}
			i = 0
			b.StartTimer()
		}
		if _, err := s.validateAccess(toks[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPasswordHash measures one argon2id hash with the default
// parameters, the cost of every login, known user or not.
func BenchmarkPasswordHash(b *testing.B) {
	p := newPasswords(DefaultPasswordParams(), 1)
	for b.Loop() {
		p.hashNow("correct horse battery staple")
	}
}
