package api

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateUsername(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    string
		wantErr bool
	}{
		{"lower", "alice", "alice", false},
		{"upper folded", "Alice", "alice", false},
		{"outer spaces trimmed", "  Bob\t\n", "bob", false},
		{"punctuation", "a.b-c_d@example.com", "a.b-c_d@example.com", false},
		{"max length", strings.Repeat("a", maxUsernameLen), strings.Repeat("a", maxUsernameLen), false},
		{"max length multibyte", strings.Repeat("é", maxUsernameLen), strings.Repeat("é", maxUsernameLen), false},
		{"max length after trim", " " + strings.Repeat("a", maxUsernameLen) + " ", strings.Repeat("a", maxUsernameLen), false},
		{"empty", "", "", true},
		{"only spaces", "   ", "", true},
		{"too long", strings.Repeat("a", maxUsernameLen+1), "", true},
		{"too long multibyte", strings.Repeat("é", maxUsernameLen+1), "", true},
		{"inner space", "alice smith", "", true},
		{"inner tab", "alice\tsmith", "", true},
		{"inner no-break space", "alice\u00a0smith", "", true},
		{"nul", "alice\x00", "", true},
		{"escape", "al\x1bice", "", true},
		{"delete", "alice\x7f", "", true},
		{"zero width space", "al\u200bice", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := validateUsername(tt.raw)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("validateUsername(%q): got error %v, want error %v", tt.raw, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("validateUsername(%q): got %q, want %q", tt.raw, got, tt.want)
			}
			if err == nil {
				return
			}
			if code := asAPIError(t, err).Code; code != CodeInvalidRequest {
				t.Errorf("code: got %q, want %q", code, CodeInvalidRequest)
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		name     string
		password string
		wantErr  bool
	}{
		{"min length", strings.Repeat("p", minPasswordLen), false},
		{"max length", strings.Repeat("p", maxPasswordLen), false},
		{"min length multibyte", strings.Repeat("é", minPasswordLen), false},
		{"max length multibyte", strings.Repeat("é", maxPasswordLen), false},
		{"empty", "", true},
		{"below min", strings.Repeat("p", minPasswordLen-1), true},
		{"below min multibyte", strings.Repeat("é", minPasswordLen-1), true},
		{"above max", strings.Repeat("p", maxPasswordLen+1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validatePassword("new_password", tt.password)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("validatePassword: got error %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			e := asAPIError(t, err)
			if e.Code != CodeInvalidRequest {
				t.Errorf("code: got %q, want %q", e.Code, CodeInvalidRequest)
			}
			if !strings.HasPrefix(e.Detail, "new_password ") {
				t.Errorf("detail: got %q, want it to name new_password", e.Detail)
			}
		})
	}
}

func TestValidateRoles(t *testing.T) {
	manyRoles := func(n int) []string {
		roles := make([]string, n)
		for i := range roles {
			roles[i] = fmt.Sprintf("role%d", i)
		}
		return roles
	}
	tests := []struct {
		name    string
		roles   []string
		wantErr bool
	}{
		{"nil", nil, false},
		{"two roles", []string{"admin", "user"}, false},
		{"every allowed character", []string{"abcxyz.0189_:-"}, false},
		{"max role length", []string{strings.Repeat("r", maxRoleLen)}, false},
		{"max role count", manyRoles(maxRoles), false},
		{"empty role", []string{""}, true},
		{"role too long", []string{strings.Repeat("r", maxRoleLen+1)}, true},
		{"too many roles", manyRoles(maxRoles + 1), true},
		{"upper case", []string{"Admin"}, true},
		{"space", []string{"site admin"}, true},
		{"slash", []string{"org/admin"}, true},
		{"non-ASCII letter", []string{"prüfer"}, true},
		{"duplicate", []string{"user", "admin", "user"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateRoles(tt.roles)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("validateRoles: got error %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if code := asAPIError(t, err).Code; code != CodeInvalidRequest {
				t.Errorf("code: got %q, want %q", code, CodeInvalidRequest)
			}
		})
	}
}

func TestTruncateUTF8Cases(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"shorter than limit", "abc", 5, "abc"},
		{"equal to limit", "abc", 3, "abc"},
		{"ascii cut", "abcdef", 4, "abcd"},
		{"zero", "abc", 0, ""},
		{"inside two-byte rune", "aé", 2, "a"},
		{"after two-byte rune", "aéb", 3, "aé"},
		{"inside four-byte rune", "a😀", 4, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := truncateUTF8(tt.s, tt.n); got != tt.want {
				t.Errorf("truncateUTF8(%q, %d): got %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}

// TestTruncateUTF8Prefix checks every cut point of a few multi-byte strings.
// The result must be valid UTF-8, a prefix of the input and within the limit,
// and may drop only the bytes of the one character that straddles the limit.
func TestTruncateUTF8Prefix(t *testing.T) {
	inputs := []string{
		"héllo wörld",
		"日本語のテキスト",
		"emoji 😀😃😄 end",
		"aé日😀",
		"Ελληνικά",
	}
	for _, s := range inputs {
		for n := 0; n <= len(s)+1; n++ {
			got := truncateUTF8(s, n)

			if !utf8.ValidString(got) {
				t.Errorf("truncateUTF8(%q, %d): got invalid UTF-8 %q", s, n, got)
			}
			if !strings.HasPrefix(s, got) {
				t.Errorf("truncateUTF8(%q, %d): got %q, want a prefix of the input", s, n, got)
			}
			if want := min(n, len(s)); len(got) > want {
				t.Errorf("truncateUTF8(%q, %d): got %d bytes, want at most %d", s, n, len(got), want)
			}
			if want := min(n, len(s)) - (utf8.UTFMax - 1); len(got) < want {
				t.Errorf("truncateUTF8(%q, %d): got %d bytes, want at least %d", s, n, len(got), want)
			}
		}
	}
}
