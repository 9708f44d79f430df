package hubmis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/httpx"
)

// Sentinel errors. Every error this package returns for an HTTP answer is an
// [*APIError], and [APIError.Is] maps it onto these, so callers write
// errors.Is(err, hubmis.ErrUnauthorized) through any wrapping and never look at
// a status code themselves.
var (
	// ErrNotFound: the object or endpoint does not exist (404), or the
	// answer holds no such object (no current academic year).
	ErrNotFound = errors.New("hubmis: not found")
	// ErrUnauthorized: the tenant's client credentials do not work. The token
	// endpoint refused them, or an API call was refused (401) with a token
	// fetched just before it. Permanent for the tenant until its credentials
	// are fixed.
	ErrUnauthorized = errors.New("hubmis: unauthorized (client credentials rejected)")
	// ErrForbidden: HUBmis refused a call the credentials are not allowed to
	// make (403): the client lacks one of the endpoint's scopes. Permanent
	// for the tenant until the school grants the scope.
	ErrForbidden = errors.New("hubmis: forbidden (a scope is missing)")
	// ErrRateLimited: HUBmis answered 429 and the client could not wait for
	// its X-RateLimit-Retry-After (retries spent, or the context's deadline
	// comes first), or a client-side limiter would make the request wait past
	// the context's deadline. Retryable: [RetryAfter] says when.
	ErrRateLimited = errors.New("hubmis: rate limited")
	// ErrMalformed: a payload of HUBmis could not be decoded (a record, a
	// page, a token answer), or its paging does not end. Asking again gets
	// the same answer.
	ErrMalformed = errors.New("hubmis: malformed payload")
)

// APIError is an answer of HUBmis (its API or its token endpoint) with a
// status of 400 or above.
//
// Its text holds the method, the path (never the query string, whose filters
// may name a person) and HUBmis's own message with email addresses redacted;
// never a token, a credential or the realm.
type APIError struct {
	// Method is the HTTP method of the request.
	Method string
	// Path is the request's path without the query string, e.g.
	// /api/v1/students.
	Path string
	// Status is the HTTP status code.
	Status int
	// Message is the answer's "message", "error_description", "error" or
	// first JSON:API error "detail"/"title" (whichever comes first), with
	// email addresses redacted and its length bounded. Empty when the body
	// had none of them.
	Message string
	// RetryAfter is how long after the answer HUBmis asked the client to
	// wait, from X-RateLimit-Retry-After (a Unix time) or else Retry-After,
	// on 429 and 503 only; zero when absent or already past. A 429's wait is
	// on the rate limits' clock, so it is divided by [Config.TimeScale].
	RetryAfter time.Duration

	// credentials is set when the token endpoint refused the client's
	// credentials, whatever status it used for that (RFC 6749 says 400
	// invalid_client; many servers say 401).
	credentials bool
}

// Error returns e.g. "hubmis: GET /api/v1/students: 429 Too Many Requests (retry after 5s)".
func (e *APIError) Error() string {
	return httpx.AnswerText("hubmis", e.Method, e.Path, e.Status, e.Message, e.RetryAfter)
}

// Is maps the answer onto the package's sentinels: 404 → [ErrNotFound]; 401,
// and a refusal of the credentials by the token endpoint → [ErrUnauthorized];
// 403 from the API → [ErrForbidden]; 429 → [ErrRateLimited].
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound && !e.credentials
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.credentials
	case ErrForbidden:
		return e.Status == http.StatusForbidden && !e.credentials
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	}
	return false
}

// IsRetryable reports whether err is worth trying again later: 408, 429 and
// 5xx answers (but 501), a client-side rate limit that could not be waited
// for ([ErrRateLimited]), timeouts (a net.Error whose Timeout is true, or
// [context.DeadlineExceeded], which is also what the http.Client's own
// Timeout produces), and broken connections (refused, reset, aborted, EOF,
// any error of a dial). It is false for nil, for every other answer (401,
// 403, 404 among them), for [ErrMalformed] and for [context.Canceled]: a
// caller that cancelled its own context is shutting down, not facing a fault.
//
// The client already waits for a 429's X-RateLimit-Retry-After and retries
// transient faults a few times (see [Config.RetryMaxAttempts]); a retryable
// error that reaches the caller means the fault outlasted that, and the
// caller tries again later, no sooner than [RetryAfter].
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
		switch {
		case ae.Status == http.StatusRequestTimeout, ae.Status == http.StatusTooManyRequests:
			return true
		case ae.Status >= 500 && ae.Status <= 599:
			return ae.Status != http.StatusNotImplemented
		}
		return false
	}
	if _, ok := errors.AsType[*limitWaitError](err); ok {
		return true
	}
	return httpx.IsTransient(err)
}

// RetryAfter returns how long the caller should wait before trying err's
// request again: an [*APIError]'s RetryAfter, or the wait a client-side
// limiter asked for; 0 when err says nothing about it.
func RetryAfter(err error) time.Duration {
	if ae, ok := errors.AsType[*APIError](err); ok {
		return ae.RetryAfter
	}
	if le, ok := errors.AsType[*limitWaitError](err); ok {
		return le.wait
	}
	return 0
}

// limitWaitError is a request that a client-side limiter would hold past the
// context's deadline. It matches ErrRateLimited and is retryable.
type limitWaitError struct {
	method, path string
	wait         time.Duration
}

func (e *limitWaitError) Error() string {
	return fmt.Sprintf("hubmis: %s %s: client-side rate limit: the next request may go in %s, after the context's deadline",
		e.method, e.path, e.wait.Round(time.Millisecond))
}

func (e *limitWaitError) Is(target error) bool { return target == ErrRateLimited }

// maxRetryAfter bounds a parsed retry date so that absurd values cannot
// overflow a time.Duration or stall a tenant for days.
const maxRetryAfter = time.Hour

// parseRetryAfter reads the wait a 429 or 503 asks for: X-RateLimit-Retry-After
// (a Unix time in seconds, HUBmis's header), or else Retry-After
// (delta-seconds or an HTTP-date). A time in the past gives 0. scale is
// Config.TimeScale for a 429 and 1 otherwise: a time-scaled server's rate
// limits run scale times faster, and it counts the wait in its own seconds
// from the real now, so the real wait is that divided by scale.
func parseRetryAfter(h http.Header, now time.Time, scale float64) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get(headerRetryAfterUnix)); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && f < 1e12 {
			sec := math.Floor(f)
			d = time.Unix(int64(sec), int64((f-sec)*1e9)).Sub(now)
		}
	} else {
		d, _ = httpx.ParseRetryAfter(h.Get("Retry-After"), now, maxRetryAfter)
	}
	if d <= 0 {
		return 0
	}
	d = min(d, maxRetryAfter)
	if scale > 0 && scale != 1 {
		d = time.Duration(float64(d) / scale)
	}
	return d
}

// newAPIError builds the error for an answer with status >= 400 from its
// (already size-limited) body.
func newAPIError(method, path string, a httpx.Answer, now time.Time, scale float64) *APIError {
	e := &APIError{Method: method, Path: path, Status: a.Status, Message: parseErrorBody(a.Body)}
	switch a.Status {
	case http.StatusTooManyRequests:
		e.RetryAfter = parseRetryAfter(a.Header, now, scale)
	case http.StatusServiceUnavailable:
		e.RetryAfter = parseRetryAfter(a.Header, now, 1)
	}
	return e
}

// parseErrorBody extracts a message from an error answer: a gateway's or
// Laravel's "message", OAuth's "error_description" and "error", or the first
// JSON:API error's "detail" or "title". A body that is not JSON yields
// nothing: its text might echo the request, so it never reaches an error
// message.
func parseErrorBody(body []byte) string {
	if s := httpx.ErrorMessage(body, "message", "error_description", "error"); s != "" {
		return s
	}
	var wire map[string]json.RawMessage
	var list []map[string]json.RawMessage
	if json.Unmarshal(body, &wire) != nil || json.Unmarshal(wire["errors"], &list) != nil || len(list) == 0 {
		return ""
	}
	for _, k := range []string{"detail", "title"} {
		if s := httpx.MessageText(list[0][k]); s != "" {
			return s
		}
	}
	return ""
}

// malformedError is a payload that could not be decoded. Its text says what
// was wrong in words of this package only: never a value, a key or a
// fragment of the payload, which may be a pupil's name.
type malformedError struct {
	where string // e.g. "student", "answer to GET /api/v1/students"
	what  string
}

func (e *malformedError) Error() string {
	return "hubmis: malformed " + e.where + ": " + e.what
}

func (e *malformedError) Is(target error) bool { return target == ErrMalformed }

func malformed(where, format string, args ...any) error {
	return &malformedError{where: where, what: fmt.Sprintf(format, args...)}
}
