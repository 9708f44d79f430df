package class

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sentinel errors. Every error this package returns for an HTTP answer is an
// [*APIError], and [APIError.Is] maps it onto these, so callers write
// errors.Is(err, class.ErrNotFound) through any wrapping and never look at a
// status code themselves.
var (
	// ErrNotFound: the object does not exist (404, or a lookup that matched nothing).
	ErrNotFound = errors.New("class: not found")
	// ErrExists: a class with the same ext_class_id already exists.
	ErrExists = errors.New("class: already exists")
	// ErrValidation: Class (or this client, before sending) refused the request's content.
	ErrValidation = errors.New("class: validation failed")
	// ErrUnauthorized: the API key is malformed, expired or revoked (401).
	ErrUnauthorized = errors.New("class: unauthorized (API key rejected)")
	// ErrForbidden: the API key lacks the scope the endpoint needs (403).
	ErrForbidden = errors.New("class: forbidden (API key lacks a scope)")
)

// existsPrefix starts the message of the 400 that Create a Class answers for a
// repeated ext_class_id ("Class exists for external class ID provided: …").
const existsPrefix = "class exists for external class id"

// validationMessage is the "error" of Class's 400 for a refused body.
const validationMessage = "request failed validation"

// errorBodyLimit bounds how much of an error answer is read: the body is only
// needed for its "error" and "data" fields, and a misbehaving proxy must not
// make the worker buffer megabytes of HTML.
const errorBodyLimit = 64 << 10

// APIError is an answer of Class with a status of 400 or above.
//
// Its text holds the method, the path (never the query string, which may hold an
// email) and Class's own message; email addresses in Class's messages are
// replaced by "[email]" when the answer is parsed, so the text is safe to log.
type APIError struct {
	// Method is the HTTP method of the request.
	Method string
	// Path is the request's path without the query string, e.g. /api/v1/users.
	Path string
	// Status is the HTTP status code.
	Status int
	// Message is the answer's "error" field (or "message", which gateways use),
	// with email addresses redacted. Empty when the body had neither.
	Message string
	// Fields holds the per-field messages of a validation failure (the answer's
	// "data"), with email addresses redacted.
	Fields map[string][]string
	// RetryAfter is the delay the Retry-After header asked for, on 429 and 503
	// only; zero when absent. See [RetryAfter].
	RetryAfter time.Duration

	hasRetryAfter bool
}

// Error returns e.g.
// "class: POST /api/v1/classes: 400 Request failed validation (email: The email format is invalid.)".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("class: ")
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
	if len(e.Fields) > 0 {
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(" (")
		for i, k := range keys {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(strings.Join(e.Fields[k], " "))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Is maps the answer onto the package's sentinels: 404 → [ErrNotFound]; 400
// (or 409) "Class exists for external class ID…" → [ErrExists]; 400 with field
// messages or "Request failed validation", and 422 → [ErrValidation];
// 401 → [ErrUnauthorized]; 403 → [ErrForbidden].
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrExists:
		return e.isExists()
	case ErrValidation:
		if e.Status == http.StatusUnprocessableEntity {
			return true
		}
		return e.Status == http.StatusBadRequest && !e.isExists() &&
			(len(e.Fields) > 0 || strings.HasPrefix(strings.ToLower(e.Message), validationMessage))
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	}
	return false
}

func (e *APIError) isExists() bool {
	switch e.Status {
	case http.StatusBadRequest, http.StatusConflict:
		return strings.HasPrefix(strings.ToLower(strings.TrimSpace(e.Message)), existsPrefix)
	}
	return false
}

// IsRetryable reports whether err is worth trying again later: 429, 500, 502,
// 503 and 504 answers, timeouts (a net.Error whose Timeout is true, or
// [context.DeadlineExceeded], which is also what the http.Client's own Timeout
// produces), and broken connections (refused, reset, aborted, EOF, any error of
// a dial). It is false for nil, for every other answer and for
// [context.Canceled]: a caller that cancelled its own context is shutting down,
// not facing a fault. A caller whose own deadline passed gets true; check
// ctx.Err() first if that must be told apart.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if ae, ok := errors.AsType[*APIError](err); ok {
		switch ae.Status {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	if _, ok := errors.AsType[*decodeError](err); ok {
		// Class accepted the call but its answer made no sense: asking again
		// gets the same answer.
		return false
	}
	if errors.Is(err, context.Canceled) {
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

// IsAuth reports whether err means the tenant's API key does not work: a 401
// (key rejected) or a 403 (key lacks a scope). The worker pauses the tenant
// rather than failing its messages.
func IsAuth(err error) bool {
	return errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden)
}

// RetryAfter returns the delay Class asked for in the Retry-After header of a
// 429 or 503 answer, given as delta-seconds or as an HTTP-date (a date in the
// past gives 0). ok is false when err is no such answer or had no usable header.
func RetryAfter(err error) (time.Duration, bool) {
	ae, ok := errors.AsType[*APIError](err)
	if !ok || !ae.hasRetryAfter {
		return 0, false
	}
	return ae.RetryAfter, true
}

// maxRetryAfter bounds a parsed Retry-After so that absurd values cannot
// overflow a time.Duration; the worker applies its own, much smaller, cap.
const maxRetryAfter = 7 * 24 * time.Hour

// parseRetryAfter reads a Retry-After value as delta-seconds or as an HTTP-date
// relative to now.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		return 0, true
	case d > maxRetryAfter:
		return maxRetryAfter, true
	}
	return d, true
}

// newAPIError builds the error for an answer with status >= 400 from its
// (already size-limited) body.
func newAPIError(method, path string, resp *http.Response, body []byte, now time.Time) *APIError {
	e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
	e.Message, e.Fields = parseErrorBody(body)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter, e.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return e
}

// parseErrorBody extracts Class's "error" (or a gateway's "message") and the
// validation "data" of an error answer. A body that is not JSON yields nothing:
// its text might echo the request, so it never reaches an error message.
func parseErrorBody(body []byte) (string, map[string][]string) {
	var wire struct {
		Error   json.RawMessage `json:"error"`
		Message json.RawMessage `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &wire) != nil {
		return "", nil
	}
	msg := jsonText(wire.Error)
	if msg == "" {
		msg = jsonText(wire.Message)
	}
	return redactEmails(msg), parseFields(wire.Data)
}

// jsonText returns a JSON string's value, or "" for anything else. An "error"
// that is an object (some gateways nest one) is not worth guessing at.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	const maxLen = 500
	s = strings.TrimSpace(s)
	if len(s) > maxLen {
		s = strings.ToValidUTF8(s[:maxLen], "") + "…"
	}
	return s
}

// parseFields reads validation messages given as {"field": ["msg", …]} or
// {"field": "msg"}; any other shape is ignored.
func parseFields(raw json.RawMessage) map[string][]string {
	var obj map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &obj) != nil || len(obj) == 0 {
		return nil
	}
	fields := make(map[string][]string, len(obj))
	for k, v := range obj {
		var list []string
		if json.Unmarshal(v, &list) != nil {
			var one string
			if json.Unmarshal(v, &one) != nil {
				continue
			}
			list = []string{one}
		}
		for i := range list {
			list[i] = redactEmails(list[i])
		}
		fields[k] = list
	}
	if len(fields) == 0 {
		return nil
	}
	return fields
}

// emailPattern matches every word that holds an "@": anything shaped like an
// email address, and then some. Class's messages may echo what was sent
// ("user x@y.z not found"), and emails must never reach an error text or a log
// line; redacting a harmless word with an "@" is the cheaper mistake.
var emailPattern = regexp.MustCompile(`[^\s"'<>(),;:\[\]]*@[^\s"'<>(),;:\[\]]*`)

func redactEmails(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return emailPattern.ReplaceAllString(s, "[email]")
}

// transportError is a request that got no usable answer: the connection
// failed, timed out or broke while the body was read. It names the method and
// path only; the *url.Error of net/http, whose text holds the full URL with its
// query, is unwrapped away.
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
	return fmt.Sprintf("class: %s %s: %s", e.method, e.path, redactEmails(msg))
}

func (e *transportError) Unwrap() error { return e.err }

// decodeError is a 2xx answer whose body could not be decoded. It is not
// retryable: Class has already acted, and asking again gives the same body.
type decodeError struct {
	method, path string
	status       int
	err          error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("class: %s %s: %d answer with an undecodable body: %v", e.method, e.path, e.status, e.err)
}

func (e *decodeError) Unwrap() error { return e.err }

// invalidRequest is an error for a request this client refuses to send (no
// identifier, two identifiers). It matches [ErrValidation], so the worker
// treats it as the permanent failure of one message.
func invalidRequest(op, format string, args ...any) error {
	return fmt.Errorf("class: %s: invalid request: %s: %w", op, fmt.Sprintf(format, args...), ErrValidation)
}
