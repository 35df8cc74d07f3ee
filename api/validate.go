package api

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// Input limits. They bound memory per record and keep argon2id's input sane.
const (
	maxUsernameLen   = 64  // characters, after normalization
	minPasswordLen   = 8   // characters
	maxPasswordLen   = 256 // characters
	maxDeviceLen     = 128 // characters, device_id and device_name each
	maxUserAgentLen  = 256 // bytes kept of the User-Agent header
	maxRoles         = 32
	maxPermissions   = 64  // per role
	maxMappedRoles   = 256 // roles in the role-to-permission map
	maxRoleLen       = 64
	maxRefreshLength = 128
)

// normalizeUsername returns the form usernames are stored and looked up
// in: the PRECIS UsernameCaseMapped profile of RFC 8265, which maps
// full-width characters to their usual form, lower-cases, normalizes to NFC
// and rejects characters that are unsafe in identifiers, after trimming
// surrounding spaces. So "Alice", "ALICE" and "Ａｌｉｃｅ" are one account.
func normalizeUsername(s string) (string, error) {
	return precis.UsernameCaseMapped.String(strings.TrimSpace(s))
}

func validateUsername(raw string) (string, error) {
	name, err := normalizeUsername(raw)
	if err != nil {
		if strings.TrimSpace(raw) == "" {
			return "", errorf(CodeInvalidRequest, "username is required")
		}
		return "", errorf(CodeInvalidRequest, "username contains characters that are not allowed in a username (spaces, symbols or control characters)")
	}
	n := utf8.RuneCountInString(name)
	if n == 0 {
		return "", errorf(CodeInvalidRequest, "username is required")
	}
	if n > maxUsernameLen {
		return "", errorf(CodeInvalidRequest, "username must be at most %d characters", maxUsernameLen)
	}
	for _, c := range name {
		if !unicode.IsPrint(c) || unicode.IsSpace(c) {
			return "", errorf(CodeInvalidRequest, "username must not contain spaces or control characters")
		}
	}
	return name, nil
}

func validatePassword(field, p string) error {
	n := utf8.RuneCountInString(p)
	switch {
	case n < minPasswordLen:
		return errorf(CodeInvalidRequest, "%s must be at least %d characters", field, minPasswordLen)
	case n > maxPasswordLen:
		return errorf(CodeInvalidRequest, "%s must be at most %d characters", field, maxPasswordLen)
	}
	return nil
}

func validateDevice(id, name string) error {
	if utf8.RuneCountInString(id) > maxDeviceLen || utf8.RuneCountInString(name) > maxDeviceLen {
		return errorf(CodeInvalidRequest, "device_id and device_name must be at most %d characters", maxDeviceLen)
	}
	if hasControl(id) || hasControl(name) {
		return errorf(CodeInvalidRequest, "device_id and device_name must not contain control characters")
	}
	return nil
}

func validateLogin(req *loginRequest) error {
	if req.Username == "" || req.Password == "" {
		return errorf(CodeInvalidRequest, "username and password are required")
	}
	if utf8.RuneCountInString(req.Password) > maxPasswordLen || utf8.RuneCountInString(req.Username) > 4*maxUsernameLen {
		return errorf(CodeInvalidCredentials, "username or password is wrong")
	}
	switch req.TokenDelivery {
	case "", deliveryBody, deliveryCookie:
	default:
		return errorf(CodeInvalidRequest, "token_delivery must be %q or %q", deliveryBody, deliveryCookie)
	}
	return validateDevice(req.DeviceID, req.DeviceName)
}

// validateRoles checks role names: short, lower-case ASCII letters, digits
// and the separators . _ : -, without duplicates.
func validateRoles(roles []string) error {
	return validateNames("role", roles, maxRoles)
}

// validatePermissions checks permission names by the rules of role names.
func validatePermissions(perms []string) error {
	return validateNames("permission", perms, maxPermissions)
}

func validateNames(kind string, names []string, limit int) error {
	if len(names) > limit {
		return errorf(CodeInvalidRequest, "at most %d %ss are allowed", limit, kind)
	}
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if name == "" || len(name) > maxRoleLen {
			return errorf(CodeInvalidRequest, "%s names must be 1 to %d characters", kind, maxRoleLen)
		}
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._:-", c)) {
				return errorf(CodeInvalidRequest, "%s %q may contain only a-z, 0-9 and . _ : -", kind, name)
			}
		}
		if seen[name] {
			return errorf(CodeInvalidRequest, "%s %q is listed twice", kind, name)
		}
		seen[name] = true
	}
	return nil
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
