package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Requirement is a condition on a valid token's claims; a request whose
// token fails one gets 403.
type Requirement func(*Claims) error

// AnyRole requires at least one of the roles.
func AnyRole(roles ...string) Requirement {
	return func(c *Claims) error {
		for _, r := range roles {
			if c.HasRole(r) {
				return nil
			}
		}
		return fmt.Errorf("requires one of the roles %s", strings.Join(roles, ", "))
	}
}

// AllPermissions requires every one of the permissions.
func AllPermissions(permissions ...string) Requirement {
	return func(c *Claims) error {
		for _, p := range permissions {
			if !c.HasPermission(p) {
				return fmt.Errorf("requires the permission %s", p)
			}
		}
		return nil
	}
}

type claimsKey struct{}

// ClaimsFrom returns the claims Middleware stored in the request context.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Middleware admits a request only with a valid bearer access token that
// meets every requirement, and puts its claims in the request context.
// Other requests get a JSON problem document in Rotor's format: 401 for a
// missing, invalid, expired or revoked token, 403 for a missing role or
// permission, and 503 while the revocation set is out of date.
func (v *Validator) Middleware(reqs ...Requirement) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := bearerToken(r)
			if !ok {
				// RFC 6750: no error code when no credentials were sent.
				w.Header().Set("WWW-Authenticate", `Bearer realm="rotor"`)
				writeProblem(w, http.StatusUnauthorized, "unauthorized", "an access token is required")
				return
			}
			claims, err := v.Validate(r.Context(), token)
			switch {
			case errors.Is(err, ErrStale):
				w.Header().Set("Retry-After", "1")
				writeProblem(w, http.StatusServiceUnavailable, "unavailable", err.Error())
				return
			case err != nil:
				writeProblem(w, http.StatusUnauthorized, "unauthorized", err.Error())
				return
			}
			for _, req := range reqs {
				if err := req(claims); err != nil {
					writeProblem(w, http.StatusForbidden, "forbidden", err.Error())
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
		})
	}
}

func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// writeProblem writes an RFC 9457 problem document in Rotor's form. A 401
// without a challenge yet gets the invalid_token one.
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rotor", error="invalid_token"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "https://rotor.dev/errors/" + code, "title": http.StatusText(status),
		"status": status, "detail": detail, "code": code,
	})
}
