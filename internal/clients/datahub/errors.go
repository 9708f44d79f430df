package datahub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/httpx"
)

// Sentinel errors. Every error this package returns for an HTTP answer is an
// [*APIError], and [APIError.Is] maps it onto these, so callers write
// errors.Is(err, datahub.ErrCursorRejected) through any wrapping and never look
// at a status code themselves.
var (
	// ErrNotFound: the object or endpoint does not exist (404).
	ErrNotFound = errors.New("datahub: not found")
	// ErrDistrictNotFound: a client of one district ([Config.District]) was
	// answered 404: DataHub does not know the district, or does not show it
	// to these credentials. Permanent for the tenant until its district id or
	// its credentials are fixed; such an error also matches [ErrNotFound].
	ErrDistrictNotFound = errors.New("datahub: district not found")
	// ErrUnauthorized: the tenant's client credentials do not work. The token
	// endpoint refused them, or an API call was refused (401) with a token
	// fetched just before it. Permanent for the tenant until its credentials
	// are fixed.
	ErrUnauthorized = errors.New("datahub: unauthorized (client credentials rejected)")
	// ErrMalformed: a payload of DataHub could not be decoded (an event, a
	// record, a page), or a paging link could not be followed. Asking again
	// gets the same answer.
	ErrMalformed = errors.New("datahub: malformed payload")
	// ErrCursorRejected: DataHub refused a NEXT uri (a search_token) with a 4xx
	// other than 401, 404, 408 and 429, or the uri cannot be used at all. The
	// cursor is no longer valid (the feed keeps about 30 days); the poller
	// falls back to a full resync of the tenant.
	ErrCursorRejected = errors.New("datahub: cursor rejected")
)

// APIError is an answer of DataHub (its API or its token endpoint) with a
// status of 400 or above.
//
// Its text holds the method, the path (never the query string, which holds the
// search_token) and DataHub's own message with email addresses redacted; never
// a token or a credential.
type APIError struct {
	// Method is the HTTP method of the request.
	Method string
	// Path is the request's path without the query string, e.g.
	// /datahub/services/v1/events.
	Path string
	// Status is the HTTP status code.
	Status int
	// Message is the answer's "error_description", "message" or "error" field
	// (whichever comes first), with email addresses redacted and its length
	// bounded. Empty when the body had none of them.
	Message string
	// RetryAfter is the delay the Retry-After header asked for, on 429 and 503
	// only; zero when absent.
	RetryAfter time.Duration
	// District is the [Config.District] of the client that made the request,
	// "" for a client of every district. A district's id is no personal data:
	// the error names it, so an operator sees which setting to fix.
	District string

	// cursor is set when the request followed a NEXT uri (a search_token).
	cursor bool
	// credentials is set when the token endpoint refused the client's
	// credentials, whatever status it used for that (RFC 6749 says 400
	// invalid_client; many servers say 401).
	credentials bool
}

// Error returns e.g. "datahub: GET /datahub/services/v1/events: 400 invalid search token",
// or, for [ErrDistrictNotFound], "datahub: district 4fd4... not found or not
// visible to these credentials (GET /datahub/services/v1/districts/4fd4.../teachers: 404 not found)".
func (e *APIError) Error() string {
	answer := httpx.AnswerText("datahub", e.Method, e.Path, e.Status, e.Message, e.RetryAfter)
	if e.isDistrictNotFound() {
		return "datahub: district " + e.District + " not found or not visible to these credentials (" +
			strings.TrimPrefix(answer, "datahub: ") + ")"
	}
	return answer
}

// isDistrictNotFound: every list and feed request of a client of one district
// names the district, and they exist for every district DataHub shows, so
// their 404 means the district is not there for these credentials.
func (e *APIError) isDistrictNotFound() bool {
	return e.District != "" && e.Status == http.StatusNotFound && !e.credentials
}

// Is maps the answer onto the package's sentinels: 404 → [ErrNotFound], and
// also [ErrDistrictNotFound] for a client of one district; 401,
// and a refusal of the credentials by the token endpoint → [ErrUnauthorized];
// a 4xx other than 401, 404, 408 and 429 to a request that followed a NEXT uri
// → [ErrCursorRejected].
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound && !e.credentials
	case ErrDistrictNotFound:
		return e.isDistrictNotFound()
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.credentials
	case ErrCursorRejected:
		if !e.cursor || e.Status < 400 || e.Status > 499 {
			return false
		}
		switch e.Status {
		case http.StatusUnauthorized, http.StatusNotFound, http.StatusRequestTimeout, http.StatusTooManyRequests:
			return false
		}
		return true
	}
	return false
}

// IsRetryable reports whether err is worth trying again later: 408, 429, 500,
// 502, 503 and 504 answers, timeouts (a net.Error whose Timeout is true, or
// [context.DeadlineExceeded], which is also what the http.Client's own Timeout
// produces), and broken connections (refused, reset, aborted, EOF, any error
// of a dial). It is false for nil, for every other answer, for
// [ErrMalformed] and for [context.Canceled]: a caller that cancelled its own
// context is shutting down, not facing a fault.
//
// The client already retries these a few times (see [Config.RetryMaxAttempts]);
// a retryable error that reaches the caller means the fault outlasted that,
// and the caller tries again at its next poll.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrMalformed) {
		return false
	}
	if ae, ok := errors.AsType[*APIError](err); ok {
		if ae.credentials {
			return false
		}
		switch ae.Status {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	return httpx.IsTransient(err)
}

// retryAfter returns the Retry-After delay an error carries, or 0.
func retryAfter(err error) time.Duration {
	if ae, ok := errors.AsType[*APIError](err); ok {
		return ae.RetryAfter
	}
	return 0
}

// maxRetryAfter bounds a parsed Retry-After so that absurd values cannot
// overflow a time.Duration.
const maxRetryAfter = 24 * time.Hour

// newAPIError builds the error for an answer with status >= 400 from its
// (already size-limited) body.
func newAPIError(method, path string, a httpx.Answer, now time.Time) *APIError {
	// OAuth's "error_description" and "error", or a gateway's "message".
	e := &APIError{Method: method, Path: path, Status: a.Status,
		Message: httpx.ErrorMessage(a.Body, "error_description", "message", "error")}
	if a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable {
		e.RetryAfter, _ = httpx.ParseRetryAfter(a.Header.Get("Retry-After"), now, maxRetryAfter)
	}
	return e
}

// malformedError is a payload that could not be decoded. Its text says what
// was wrong in words of this package only: never a value, a key or a
// fragment of the payload, which may be a pupil's name.
type malformedError struct {
	where string // e.g. "event", "GET /datahub/services/v1/teachers"
	what  string
}

func (e *malformedError) Error() string {
	return "datahub: malformed " + e.where + ": " + e.what
}

func (e *malformedError) Is(target error) bool { return target == ErrMalformed }

func malformed(where, format string, args ...any) error {
	return &malformedError{where: where, what: fmt.Sprintf(format, args...)}
}
