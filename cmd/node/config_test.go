package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"http-addr", cfg.HTTPAddr, "127.0.0.1:8080"},
		{"data-dir", cfg.DataDir, "./rotor-data"},
		{"access-ttl", cfg.AccessTTL, 5 * time.Minute},
		{"refresh-idle-ttl", cfg.RefreshIdleTTL, 336 * time.Hour},
		{"session-max-ttl", cfg.SessionMaxTTL, 2160 * time.Hour},
		{"reuse-grace", cfg.ReuseGrace, 10 * time.Second},
		{"signup", cfg.Signup, true},
		{"issuer", cfg.Issuer, "http://127.0.0.1:8080"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConfigEnvironment(t *testing.T) {
	env := map[string]string{
		"ROTOR_REUSE_GRACE":    "3s",
		"ROTOR_SIGNUP":         "false",
		"ROTOR_HTTP_ADDR":      "127.0.0.1:9999",
		"ROTOR_ADMIN_PASSWORD": "not a flag value",
	}
	cfg, err := parseConfig([]string{"--http-addr", "127.0.0.1:7777"}, envOf(env), io.Discard)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if cfg.ReuseGrace != 3*time.Second {
		t.Errorf("reuse grace: got %s, want 3s", cfg.ReuseGrace)
	}
	if cfg.Signup {
		t.Error("signup: got true, want false from ROTOR_SIGNUP")
	}
	if cfg.HTTPAddr != "127.0.0.1:7777" {
		t.Errorf("http addr: got %s, want the flag's 127.0.0.1:7777 over the environment", cfg.HTTPAddr)
	}
	if cfg.adminPassword != "not a flag value" {
		t.Errorf("admin password: got %q, want it from ROTOR_ADMIN_PASSWORD", cfg.adminPassword)
	}
}

func TestConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"access ttl too short", []string{"--access-ttl", "0s"}, nil, "--access-ttl"},
		{"idle not above access", []string{"--access-ttl", "10m", "--refresh-idle-ttl", "5m"}, nil, "--refresh-idle-ttl"},
		{"max below idle", []string{"--session-max-ttl", "1h", "--refresh-idle-ttl", "2h"}, nil, "--session-max-ttl"},
		{"negative grace", []string{"--reuse-grace", "-1s"}, nil, "--reuse-grace"},
		{"grace not below access", []string{"--reuse-grace", "5m"}, nil, "--reuse-grace"},
		{"leeway too long", []string{"--leeway", "10m"}, nil, "--leeway"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "--log-format"},
		{"admin without password", []string{"--admin-username", "root"}, nil, "ROTOR_ADMIN_PASSWORD"},
		{"bad duration in env", nil, map[string]string{"ROTOR_ACCESS_TTL": "five minutes"}, "ROTOR_ACCESS_TTL"},
		{"positional argument", []string{"serve"}, nil, "unexpected argument"},
		{"unknown flag", []string{"--no-such-flag"}, nil, "no-such-flag"},
		{"bad login limit", []string{"--login-limit-user", "ten"}, nil, "--login-limit-user"},
		{"tls cert without key", []string{"--tls-cert-file", "cert.pem"}, nil, "--tls-key-file"},
		{"tls ca without cert", []string{"--tls-ca-file", "ca.pem"}, nil, "--tls-ca-file"},
		{"partial raft tls", []string{"--raft-tls-cert-file", "c.pem", "--raft-tls-key-file", "k.pem"}, nil, "--raft-tls-ca-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, envOf(tt.env), io.Discard)
			if err == nil {
				t.Fatal("got no error, want one")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error: got %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestGossipKeyFile(t *testing.T) {
	dir := t.TempDir()
	derived := bytes.Repeat([]byte{7}, 32)
	raw := bytes.Repeat([]byte{1}, 32)
	files := map[string][]byte{
		"raw":    raw,
		"base64": []byte(base64.StdEncoding.EncodeToString(raw) + "\n"),
		"short":  []byte("too short"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"raw", "base64"} {
		cfg := &config{GossipKeyFile: filepath.Join(dir, name)}
		if key, err := cfg.gossipKey(derived); err != nil || !bytes.Equal(key, raw) {
			t.Errorf("%s key file: got %x, %v, want %x", name, key, err, raw)
		}
	}
	if _, err := (&config{GossipKeyFile: filepath.Join(dir, "short")}).gossipKey(derived); err == nil {
		t.Error("a key file of the wrong size: got no error")
	}
	if key, err := (&config{}).gossipKey(derived); err != nil || !bytes.Equal(key, derived) {
		t.Errorf("no key file: got %x, %v, want the derived key", key, err)
	}
}
