package httpx

import (
	"errors"
	"net/url"
)

// CheckBaseURL reports what makes u unfit as the base URL of an upstream
// API: a scheme other than http or https, no host, credentials (they would
// end up in logs and spans), a query or a fragment (paths are appended to
// it). The error says what, in words without a part of u; the client
// prefixes the setting's name.
func CheckBaseURL(u *url.URL) error {
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("scheme must be http or https")
	case u.Host == "":
		return errors.New("no host")
	case u.User != nil:
		return errors.New("must not hold credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return errors.New("must not have a query or fragment")
	}
	return nil
}
