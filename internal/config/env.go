package config

import (
	"errors"
	"strings"
)

// expandEnv replaces the environment references in s:
//
//	${NAME}            the value of NAME; an error if NAME is not set
//	${NAME:-default}   the value of NAME, or default if NAME is unset or empty
//	$${                a literal "${"
//
// A "$" not followed by "{" is kept as it is. Values are not expanded again, and the
// default is literal text up to the first "}". used reports whether any variable or
// default was substituted. Errors name variables, never values: an unset variable's
// name, or the syntax expected.
func expandEnv(s string, lookupEnv func(string) (string, bool)) (out string, used bool, err error) {
	var b strings.Builder
	var missing []string
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += len("$${")
			continue
		case !strings.HasPrefix(s[i:], "${"):
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", false, errors.New(`unterminated "${": write ${NAME} or ${NAME:-default}, or $${ for a literal "${"`)
		}
		ref := s[i+2 : i+2+end]
		i += 2 + end + 1
		name, def, hasDefault := strings.Cut(ref, ":-")
		if !isEnvName(name) {
			// The reference is not quoted back: it may hold a literal secret as
			// its default.
			return "", false, errors.New("malformed environment reference: write ${NAME} or ${NAME:-default}, NAME made of letters, digits and _")
		}
		used = true
		val, ok := lookupEnv(name)
		switch {
		case hasDefault && val == "":
			val = def
		case !ok:
			missing = append(missing, name)
			continue
		}
		b.WriteString(val)
	}
	switch len(missing) {
	case 0:
		return b.String(), used, nil
	case 1:
		return "", false, errors.New("environment variable " + missing[0] + " is not set")
	default:
		return "", false, errors.New("environment variables " + strings.Join(missing, ", ") + " are not set")
	}
}

// isEnvName reports whether s is a portable environment variable name:
// [A-Za-z_][A-Za-z0-9_]*.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
