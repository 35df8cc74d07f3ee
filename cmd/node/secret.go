package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/rotorhq/rotor/token"
)

// secretFileName is the file in the data dir that holds a generated secret.
const secretFileName = "cluster-secret"

// loadSecret returns the cluster secret from --cluster-secret-file, from
// ROTOR_CLUSTER_SECRET, or from the data dir, generating one there on the
// first start. The secret itself is never logged.
func loadSecret(cfg *config, logger *slog.Logger) ([]byte, error) {
	switch {
	case cfg.ClusterSecretFile != "":
		return readSecretFile(cfg.ClusterSecretFile)
	case cfg.clusterSecret != "":
		return checkSecret([]byte(cfg.clusterSecret), "ROTOR_CLUSTER_SECRET")
	}

	path := filepath.Join(cfg.DataDir, secretFileName)
	secret, err := readSecretFile(path)
	if err == nil {
		logger.Info("using the cluster secret from the data dir", "path", path)
		return secret, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}

	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("generate cluster secret: %w", err)
	}
	encoded := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(encoded+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write generated cluster secret: %w", err)
	}
	logger.Warn("generated a new cluster secret; every node of a cluster needs the same one, and losing it invalidates every token",
		"path", path)
	return []byte(encoded), nil
}

func readSecretFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	return checkSecret([]byte(strings.TrimSpace(string(data))), path)
}

func checkSecret(secret []byte, source string) ([]byte, error) {
	if len(secret) < token.MinSecretLen {
		return nil, fmt.Errorf("cluster secret from %s has %d bytes, want at least %d", source, len(secret), token.MinSecretLen)
	}
	return secret, nil
}

// loadServiceKey returns the service key from --service-key-file or
// ROTOR_SERVICE_KEY; empty disables trusted-backend sessions.
func loadServiceKey(cfg *config) (string, error) {
	key, source := cfg.serviceKey, "ROTOR_SERVICE_KEY"
	if cfg.ServiceKeyFile != "" {
		data, err := os.ReadFile(cfg.ServiceKeyFile)
		if err != nil {
			return "", fmt.Errorf("read service key file: %w", err)
		}
		key, source = strings.TrimSpace(string(data)), cfg.ServiceKeyFile
	}
	if key != "" && len(key) < minServiceKeyLen {
		return "", fmt.Errorf("service key from %s has %d bytes, want at least %d", source, len(key), minServiceKeyLen)
	}
	return key, nil
}

// minServiceKeyLen keeps service keys out of reach of guessing.
const minServiceKeyLen = 16
