package token

import "encoding/base64"

// JWK is one Ed25519 public key in JSON Web Key form (RFC 8037), for example
// {"kty":"OKP","crv":"Ed25519","x":"...","kid":"e1-...","alg":"EdDSA","use":"sig"}.
type JWK struct {
	KeyType   string `json:"kty"` // always "OKP"
	Curve     string `json:"crv"` // always "Ed25519"
	X         string `json:"x"`   // public key, base64url without padding
	KeyID     string `json:"kid"`
	Algorithm string `json:"alg"` // always "EdDSA"
	Use       string `json:"use"` // always "sig"
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the public keys of the epochs, in the order given. With no
// epochs, Keys is empty but not nil, so it encodes as {"keys":[]}.
func (k *Keyring) JWKS(epochs []uint64) JWKS {
	set := JWKS{Keys: make([]JWK, 0, len(epochs))}
	for _, epoch := range epochs {
		keys := k.keys(epoch)
		set.Keys = append(set.Keys, JWK{
			KeyType:   "OKP",
			Curve:     "Ed25519",
			X:         base64.RawURLEncoding.EncodeToString(keys.public),
			KeyID:     keys.keyID,
			Algorithm: "EdDSA",
			Use:       "sig",
		})
	}
	return set
}
