package datahub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// errors.Is(err, datahub.ErrCursorRejected) through any wrapping and never look
// at a status code themselves.
var (
	// ErrNotFound: the object or endpoint does not exist (404).
	ErrNotFound = errors.New("datahub: not found")
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

// errorBodyLimit bounds how much of an error answer is read: the body is only
// needed for its message, and a misbehaving proxy must not make the poller
// buffer megabytes of HTML.
const errorBodyLimit = 64 << 10

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

	// cursor is set when the request followed a NEXT uri (a search_token).
	cursor bool
	// credentials is set when the token endpoint refused the client's
	// credentials, whatever status it used for that (RFC 6749 says 400
	// invalid_client; many servers say 401).
	credentials bool
}

// Error returns e.g. "datahub: GET /datahub/services/v1/events: 400 invalid search token".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("datahub: ")
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
// a 4xx other than 401, 404, 408 and 429 to a request that followed a NEXT uri
// → [ErrCursorRejected].
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound && !e.credentials
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

// parseRetryAfter reads a Retry-After value as delta-seconds or as an
// HTTP-date relative to now; a date in the past gives 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case secs <= 0:
			return 0
		case secs > int64(maxRetryAfter/time.Second):
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(t.Sub(now), 0), maxRetryAfter)
}

// newAPIError builds the error for an answer with status >= 400 from its
// (already size-limited) body.
func newAPIError(method, path string, status int, header http.Header, body []byte, now time.Time) *APIError {
	e := &APIError{Method: method, Path: path, Status: status, Message: parseErrorBody(body)}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), now)
	}
	return e
}

// parseErrorBody extracts a message from an error answer: OAuth's
// "error_description" and "error", or a gateway's "message". A body that is not
// JSON yields nothing: its text might echo the request, so it never reaches an
// error message.
func parseErrorBody(body []byte) string {
	var wire map[string]json.RawMessage
	if json.Unmarshal(body, &wire) != nil {
		return ""
	}
	for _, k := range []string{"error_description", "message", "error"} {
		if s := jsonText(wire[k]); s != "" {
			return s
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
	return fmt.Sprintf("datahub: %s %s: %s", e.method, e.path, redactEmails(msg))
}

func (e *transportError) Unwrap() error { return e.err }

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
