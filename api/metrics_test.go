package api

import (
	"errors"
	"testing"
)

func TestRefreshOutcome(t *testing.T) {
	tests := []struct {
		name     string
		replayed bool
		err      error
		want     string
	}{
		{"rotated", false, nil, "rotated"},
		{"replayed", true, nil, "replayed"},
		{"reused", false, errorf(CodeRefreshReused, "already used"), "reused"},
		{"revoked", false, errorf(CodeSessionRevoked, "revoked"), "revoked"},
		{"expired", false, errorf(CodeSessionExpired, "expired"), "expired"},
		{"invalid", false, errorf(CodeRefreshInvalid, "not valid"), "invalid"},
		{"session not found", false, errorf(CodeNotFound, "session not found"), "invalid"},
		{"unavailable code", false, unavailable(errors.New("no leader")), "unavailable"},
		{"plain error", false, errors.New("commit failed"), "unavailable"},
		{"error wins over replayed", true, errorf(CodeSessionRevoked, "revoked"), "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refreshOutcome(tt.replayed, tt.err); got != tt.want {
				t.Errorf("refreshOutcome(%v, %v): got %q, want %q", tt.replayed, tt.err, got, tt.want)
			}
		})
	}
}
