package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
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

// EmailRedacted is what replaces an email address in an error's text or a
// log line.
const EmailRedacted = "[email]"

// RedactEmails replaces every word of s that holds an "@", or its
// percent-encoding "%40" (also encoded twice, "%2540"), by [EmailRedacted],
// so that the result holds neither. Upstream messages may echo what was sent
// ("user x@y.z not found", "?email=x%40y.z"), and emails must never reach an
// error text or a log line. A word is anything shaped like an address and
// then some: whatever letters its parts have (zoë@schüle.de, o_b@my_school,
// amy@localhost); redacting a harmless word with an "@" is the cheaper
// mistake. It ends at a space, at one of "'<>(),;:[] (an apostrophe between
// letters, as in o'brien@, does not end it) and at the separators =, ? and &
// of a query string, so "?email=x%40y.z&page=2" keeps its keys.
func RedactEmails(s string) string {
	if !strings.ContainsAny(s, "@%") {
		return s
	}
	var b strings.Builder
	done := 0 // s[:done] has been written to b
	for i := 0; i < len(s); {
		// The marks are ASCII and no byte of a multi-byte rune is, so a
		// byte-wise search cannot match inside a rune.
		n := emailMark(s[i:])
		if n == 0 {
			i++
			continue
		}
		start, end := wordStart(s, i), wordEnd(s, i+n)
		b.WriteString(s[done:max(start, done)])
		b.WriteString(EmailRedacted)
		done, i = end, end
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// emailMark returns the length of the "@", "%40" or "%2540" (%25 repeated
// any number of times) s starts with, or 0.
func emailMark(s string) int {
	switch {
	case s == "":
		return 0
	case s[0] == '@':
		return 1
	case s[0] != '%':
		return 0
	}
	i := 1
	for strings.HasPrefix(s[i:], "25") {
		i += 2
	}
	if strings.HasPrefix(s[i:], "40") {
		return i + 2
	}
	return 0
}

// wordStart returns where the word holding s[i] starts.
func wordStart(s string, i int) int {
	for i > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:i])
		if !inEmailWord(r) {
			before, _ := utf8.DecodeLastRuneInString(s[:i-n])
			if r != '\'' || !isLetterOrDigit(before) {
				break
			}
		}
		i -= n
	}
	return i
}

// wordEnd returns where the word holding s[i-1] ends.
func wordEnd(s string, i int) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !inEmailWord(r) {
			after, _ := utf8.DecodeRuneInString(s[i+n:])
			if r != '\'' || !isLetterOrDigit(after) {
				break
			}
		}
		i += n
	}
	return i
}

func inEmailWord(r rune) bool {
	return !unicode.IsSpace(r) && !strings.ContainsRune(`"'<>(),;:[]=?&`, r)
}

func isLetterOrDigit(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// RedactSecrets replaces every one of secrets in body by "[redacted]", in
// its raw bytes and, for a JSON body, in the decoded strings (keys too): an
// upstream that escapes a secret (`\/` for "/", `\u0026` for "&", as Go's
// encoder does) hides it from the raw search, and decoding restores it. The
// JSON is re-encoded only when a decoded string held a secret. A client runs
// an error answer's body through it before reading a message, so that
// neither the decoding nor the cut to [MessageMaxLen] meets the secret or a
// piece of it.
func RedactSecrets(body []byte, secrets []string) []byte {
	if !slices.ContainsFunc(secrets, func(s string) bool { return s != "" }) {
		return body
	}
	for _, secret := range secrets {
		if secret != "" {
			body = bytes.ReplaceAll(body, []byte(secret), []byte("[redacted]"))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers go back as they came
	var v any
	if dec.Decode(&v) != nil {
		return body
	}
	v, changed := redactJSON(v, secrets)
	if !changed {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		// Cannot happen for what Decode produced; an empty body is still
		// safe.
		return nil
	}
	return out
}

// redactJSON replaces every one of secrets in the strings of v, a value
// decoded into any, keys included; changed reports whether one was found.
func redactJSON(v any, secrets []string) (_ any, changed bool) {
	switch v := v.(type) {
	case string:
		r := redactText(v, secrets)
		return r, r != v
	case []any:
		for i := range v {
			var c bool
			v[i], c = redactJSON(v[i], secrets)
			changed = changed || c
		}
		return v, changed
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			rk := redactText(k, secrets)
			re, c := redactJSON(e, secrets)
			out[rk] = re
			changed = changed || c || rk != k
		}
		return out, changed
	}
	return v, false
}

// redactText replaces every one of secrets in s.
func redactText(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
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
