package hubmis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
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

// errorBodyLimit bounds how much of an error answer is read: the body is only
// needed for its message, and a misbehaving proxy must not make the poller
// buffer megabytes of HTML.
const errorBodyLimit = 64 << 10

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
	var b strings.Builder
	b.WriteString("hubmis: ")
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(e.Path)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.Status))
	b.WriteByte(' ')
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString(http.StatusText(e.Status))
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.String())
		b.WriteByte(')')
	}
	return b.String()
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
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		// Dial, read and write failures on the connection; what is left (TLS
		// verification, bad URLs) is not an OpError.
		return true
	}
	return false
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
	} else if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = time.Duration(min(max(secs, 0), int64(maxRetryAfter/time.Second))) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
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
func newAPIError(method, path string, status int, header http.Header, body []byte, now time.Time, scale float64) *APIError {
	e := &APIError{Method: method, Path: path, Status: status, Message: parseErrorBody(body)}
	switch status {
	case http.StatusTooManyRequests:
		e.RetryAfter = parseRetryAfter(header, now, scale)
	case http.StatusServiceUnavailable:
		e.RetryAfter = parseRetryAfter(header, now, 1)
	}
	return e
}

// parseErrorBody extracts a message from an error answer: a gateway's or
// Laravel's "message", OAuth's "error_description" and "error", or the first
// JSON:API error's "detail" or "title". A body that is not JSON yields
// nothing: its text might echo the request, so it never reaches an error
// message.
func parseErrorBody(body []byte) string {
	var wire map[string]json.RawMessage
	if json.Unmarshal(body, &wire) != nil {
		return ""
	}
	for _, k := range []string{"message", "error_description", "error"} {
		if s := jsonText(wire[k]); s != "" {
			return s
		}
	}
	var list []map[string]json.RawMessage
	if json.Unmarshal(wire["errors"], &list) == nil && len(list) > 0 {
		for _, k := range []string{"detail", "title"} {
			if s := jsonText(list[0][k]); s != "" {
				return s
			}
		}
	}
	return ""
}

// jsonText returns a JSON string's value, trimmed, bounded and with emails
// redacted, or "" for anything else.
func jsonText(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	const maxLen = 300
	s = strings.TrimSpace(s)
	if len(s) > maxLen {
		s = strings.ToValidUTF8(s[:maxLen], "") + "…"
	}
	return redactEmails(s)
}

// emailPattern matches every word that holds an "@": anything shaped like an
// email address, and then some. Emails must never reach an error text or a
// log line; redacting a harmless word with an "@" is the cheaper mistake.
var emailPattern = regexp.MustCompile(`[^\s"'<>(),;:\[\]]*@[^\s"'<>(),;:\[\]]*`)

func redactEmails(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return emailPattern.ReplaceAllString(s, "[email]")
}

// transportError is a request that got no usable answer: the connection
// failed, timed out or broke while the body was read. It names the method and
// path only; the *url.Error of net/http, whose text holds the full URL with
// its query, is unwrapped away, and any text of the URL left in the cause is
// redacted.
type transportError struct {
	method, path string
	err          error
	redact       []string // strings of the request that must not appear in the text
}

func (e *transportError) Error() string {
	msg := e.err.Error()
	for _, s := range e.redact {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return fmt.Sprintf("hubmis: %s %s: %s", e.method, e.path, redactEmails(msg))
}

func (e *transportError) Unwrap() error { return e.err }

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

// jsonProblem describes a json.Unmarshal error without quoting the payload:
// the standard library's syntax errors quote the offending character, and its
// type errors name the field.
func jsonProblem(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("unexpected JSON %s at offset %d", jsonKind(te.Value), te.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated JSON"
	}
	return "invalid JSON"
}

// jsonKind keeps only the kind of value a json.UnmarshalTypeError names
// ("string", "number", ...); for a number it names the value itself.
func jsonKind(v string) string {
	switch v {
	case "string", "bool", "array", "object", "null":
		return v
	}
	return "number"
}
