package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrorBodyLimit bounds how much of an error answer [Send] reads: the body is
// only needed for its message, and a misbehaving proxy must not make a
// client buffer megabytes of HTML.
const ErrorBodyLimit = 64 << 10

// MessageMaxLen bounds, in bytes, a message taken from an upstream answer by
// [MessageText]; a longer one is cut and ends in "…".
const MessageMaxLen = 300

// ErrorMessage returns the [MessageText] of the first of keys whose value in
// the JSON object body is a non-empty string, e.g. ErrorMessage(body,
// "error_description", "message", "error"). A body that is not a JSON object
// yields "": its text might echo the request, so it never reaches an error
// message.
func ErrorMessage(body []byte, keys ...string) string {
	var wire map[string]json.RawMessage
	if json.Unmarshal(body, &wire) != nil {
		return ""
	}
	for _, k := range keys {
		if s := MessageText(wire[k]); s != "" {
			return s
		}
	}
	return ""
}

// MessageText returns a JSON string's value, trimmed, bounded to
// [MessageMaxLen] and with email addresses redacted ([RedactEmails]), or ""
// for anything else: an "error" that is an object (some gateways nest one) is
// not worth guessing at.
func MessageText(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	s = strings.TrimSpace(s)
	if len(s) > MessageMaxLen {
		s = strings.ToValidUTF8(s[:MessageMaxLen], "") + "…"
	}
	return RedactEmails(s)
}

// emailPattern matches every word that holds an "@": anything shaped like an
// email address, and then some. Upstream messages may echo what was sent
// ("user x@y.z not found"), and emails must never reach an error text or a
// log line; redacting a harmless word with an "@" is the cheaper mistake.
var emailPattern = regexp.MustCompile(`[^\s"'<>(),;:\[\]]*@[^\s"'<>(),;:\[\]]*`)

// RedactEmails replaces every word of s that holds an "@" by "[email]", so
// that the result holds no "@" at all.
func RedactEmails(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return emailPattern.ReplaceAllString(s, "[email]")
}

// AnswerText is the text of a client's error for an answer with a status of
// 400 or above: "<prefix>: <method> <path>: <status> <message>", with the
// status's standard text when message is empty, then " (retry after <d>)"
// when retryAfter is positive. For example
// "hubmis: GET /api/v1/students: 429 Too Many Requests (retry after 5s)".
// path must not hold the query string, nor message an email.
func AnswerText(prefix, method, path string, status int, message string, retryAfter time.Duration) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString(": ")
	b.WriteString(method)
	b.WriteByte(' ')
	b.WriteString(path)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(status))
	b.WriteByte(' ')
	if message != "" {
		b.WriteString(message)
	} else {
		b.WriteString(http.StatusText(status))
	}
	if retryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(retryAfter.String())
		b.WriteByte(')')
	}
	return b.String()
}

// ParseRetryAfter reads a Retry-After value as delta-seconds or as an
// HTTP-date relative to now. A date in the past gives 0; a delay beyond limit
// gives limit, so that absurd values cannot overflow a time.Duration. ok is
// false for an empty value, a negative number and anything else unreadable.
func ParseRetryAfter(v string, now time.Time, limit time.Duration) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(limit/time.Second) {
			return limit, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), limit), true
}

// TransportError is a request that got no usable answer: the connection
// failed, timed out or broke while the body was read. Its text names the
// method and path only ("class: GET /api/v1/users: connection refused");
// every string of Redact in the cause's text becomes "[redacted]", and email
// addresses "[email]". It unwraps to the cause, so [IsTransient] and
// errors.Is see through it.
type TransportError struct {
	// Prefix starts the text: the client's name, e.g. "class".
	Prefix string
	// Method is the HTTP method of the request.
	Method string
	// Path is the request's path without its query string.
	Path string
	// Err is the cause, without net/http's *url.Error (see [UnwrapURLError]).
	Err error
	// Redact holds strings of the request that must not appear in the text:
	// its URL, its query, a secret.
	Redact []string
}

// NewTransportError wraps err, the failure of a request to u, as a
// [*TransportError]: it drops the *url.Error of net/http, whose text is the
// full URL, and redacts u, its raw query and its unescaped query from what is
// left, since a query may hold an email or a cursor.
func NewTransportError(prefix, method, path string, u *url.URL, err error) *TransportError {
	redact := []string{u.String()}
	if u.RawQuery != "" {
		redact = append(redact, u.RawQuery)
		if q, qerr := url.QueryUnescape(u.RawQuery); qerr == nil {
			redact = append(redact, q)
		}
	}
	return &TransportError{Prefix: prefix, Method: method, Path: path, Err: UnwrapURLError(err), Redact: redact}
}

func (e *TransportError) Error() string {
	msg := e.Err.Error()
	for _, s := range e.Redact {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return fmt.Sprintf("%s: %s %s: %s", e.Prefix, e.Method, e.Path, RedactEmails(msg))
}

func (e *TransportError) Unwrap() error { return e.Err }

// UnwrapURLError drops net/http's *url.Error, whose text is the full URL with
// its query string, and returns what it wraps: the inner error keeps every
// property that matters (Timeout, errors.Is context.DeadlineExceeded, the
// syscall errno). Any other error is returned as it is.
func UnwrapURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok && ue.Err != nil {
		return ue.Err
	}
	return err
}

// IsTransient reports whether err is a failure of the network or of a
// deadline that a later attempt may not meet: timeouts (a net.Error whose
// Timeout is true, or [context.DeadlineExceeded], which is also what the
// http.Client's own Timeout produces) and broken connections (refused, reset,
// aborted, EOF, any error of a dial, read or write). It is false for nil and
// for [context.Canceled]: a caller that cancelled its own context is shutting
// down, not facing a fault. A client's IsRetryable decides on its own answers
// first and asks this for the rest.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
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
