package telemetry

import (
	"net/url"
	"strings"
)

// EndpointTemplate turns a request path into a template fit for a metric
// label or span name: the query string and fragment are dropped (a user
// looked up by email puts the address there), and every segment that looks
// like an identifier becomes {id}, so the label's values stay few and hold
// no personal data. A full URL is reduced to its path. Segments kept as they
// are: words ("api", "classes", "enrollments"), version tags ("v1"), and
// templates already ("{id}"). Turned into {id}: numbers, UUIDs, anything
// with an "@" or a percent escape, and anything of 8 characters or more that
// holds a digit (ULIDs, hex and base64 ids, "pupil-12345").
//
//	/api/v1/classes/42/enrollments?email=a@b.org -> /api/v1/classes/{id}/enrollments
func EndpointTemplate(path string) string {
	if i := strings.Index(path, "://"); i >= 0 {
		if u, err := url.Parse(path); err == nil {
			path = u.EscapedPath()
		} else {
			// An unparsable URL may still hold an address; keep only what
			// follows the host, minus the query, rather than echo it.
			rest := path[i+3:]
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				path = rest[j:]
			} else {
				path = "/"
			}
		}
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if isIDSegment(s) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

func isIDSegment(s string) bool {
	if s == "" || (strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}")) {
		return false
	}
	if strings.ContainsAny(s, "@%:=") || isUUID(s) {
		return true
	}
	digits, letters := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			letters++
		case r == '-' || r == '_' || r == '.' || r == '~':
		default:
			// Anything outside a URL's unreserved set in a decoded path
			// is data, not a route.
			return true
		}
	}
	switch {
	case digits == 0:
		return false
	case letters == 0:
		return true // a number, or digits with separators
	case isVersion(s):
		return false
	default:
		return len(s) >= 8
	}
}

// isVersion reports an API version tag: v1, v2beta, V10.
func isVersion(s string) bool {
	if len(s) < 2 || (s[0] != 'v' && s[0] != 'V') || s[1] < '0' || s[1] > '9' {
		return false
	}
	return len(s) <= 8
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}
