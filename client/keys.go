package client

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// keySet caches the cluster's public signing keys by key id.
type keySet struct {
	url      string
	http     *http.Client
	cooldown time.Duration

	mu        sync.Mutex
	keys      map[string]ed25519.PublicKey
	lastFetch time.Time
}

type jwk struct {
	KeyType string `json:"kty"`
	Curve   string `json:"crv"`
	X       string `json:"x"`
	KeyID   string `json:"kid"`
}

// key returns the public key with the id. An unknown id makes the set fetch
// the key set again, unless it did so less than cooldown ago: a key
// rotation shows up at once, while tokens with made-up ids cannot make the
// validator hammer Rotor.
func (k *keySet) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	if !k.lastFetch.IsZero() && time.Since(k.lastFetch) < k.cooldown {
		return nil, fmt.Errorf("unknown signing key %q", kid)
	}
	if err := k.fetchLocked(ctx); err != nil {
		return nil, err
	}
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("unknown signing key %q", kid)
}

// fetch loads the key set; New calls it once at start.
func (k *keySet) fetch(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetchLocked(ctx)
}

func (k *keySet) fetchLocked(ctx context.Context) error {
	k.lastFetch = time.Now()
	var body struct {
		Keys []jwk `json:"keys"`
	}
	if err := getJSON(ctx, k.http, k.url, &body); err != nil {
		return fmt.Errorf("fetch signing keys: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(body.Keys))
	for _, key := range body.Keys {
		if key.KeyType != "OKP" || key.Curve != "Ed25519" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(key.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		keys[key.KeyID] = ed25519.PublicKey(x)
	}
	k.keys = keys
	return nil
}

// maxResponse bounds what the client reads of one response.
const maxResponse = 4 << 20

// getJSON decodes the JSON body of a 200 response to GET url.
func getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, maxResponse))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode response: %w", url, err)
	}
	return nil
}
