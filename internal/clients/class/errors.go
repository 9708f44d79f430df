package class

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/httpx"
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

// APIError is an answer of Class with a status of 400 or above.
//
// Its text holds the method, the path (never the query string, which may hold an
// email) and Class's own message; email addresses in Class's messages are
// replaced by "[email]", and the client's API key by "[redacted]", when the
// answer is parsed, so the text is safe to log.
type APIError struct {
	// Method is the HTTP method of the request.
	Method string
	// Path is the request's path without the query string, e.g. /api/v1/users.
	Path string
	// Status is the HTTP status code.
	Status int
	// Message is the answer's "error" field (or "message", which gateways use),
	// with email addresses and the API key redacted. Empty when the body had
	// neither.
	Message string
	// Fields holds the per-field messages of a validation failure (the answer's
	// "data"), with email addresses and the API key redacted.
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
	// The text leaves Retry-After out; callers read it with [RetryAfter].
	b.WriteString(httpx.AnswerText("class", e.Method, e.Path, e.Status, e.Message, 0))
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
	return httpx.IsTransient(err)
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

// newAPIError builds the error for an answer with status >= 400 from its
// (already size-limited) body. apiKey, the key the request was sent with,
// becomes "[redacted]" in the messages: a gateway refusing a key may quote
// it ("Invalid API key sk-…"), and the error's text reaches logs, audit
// records and dead letters. It is redacted in the body, before the messages
// are decoded and cut to length, so no piece of it survives either.
func newAPIError(method, path string, a httpx.Answer, now time.Time, apiKey string) *APIError {
	e := &APIError{Method: method, Path: path, Status: a.Status}
	e.Message, e.Fields = parseErrorBody(httpx.RedactSecrets(a.Body, []string{apiKey}))
	if a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable {
		e.RetryAfter, e.hasRetryAfter = httpx.ParseRetryAfter(a.Header.Get("Retry-After"), now, maxRetryAfter)
	}
	return e
}

// parseErrorBody extracts Class's "error" (or a gateway's "message") and the
// validation "data" of an error answer, with email addresses redacted. A body
// that is not a JSON object yields nothing: its text might echo the request,
// so it never reaches an error message.
func parseErrorBody(body []byte) (string, map[string][]string) {
	var wire map[string]json.RawMessage
	if json.Unmarshal(body, &wire) != nil {
		return "", nil
	}
	return httpx.ErrorMessage(body, "error", "message"), parseFields(wire["data"])
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
			list[i] = httpx.RedactEmails(list[i])
		}
		fields[k] = list
	}
	if len(fields) == 0 {
		return nil
	}
	return fields
}

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
