// Package class is a typed client of the Class API (apis/class-api.txt): users,
// classes (including deferred ones), enrollments and schedules of one tenant.
//
// The package classifies every failure once: an answer of Class becomes an
// [*APIError] that matches the sentinels ([ErrNotFound], [ErrExists],
// [ErrValidation], [ErrUnauthorized], [ErrForbidden]) with errors.Is, and
// [IsRetryable], [IsAuth] and [RetryAfter] tell the worker what to do with it.
//
// Personal data: error texts hold a method and a path, never a query string
// (a user looked up by email puts the email there) and never a request value;
// emails in Class's own messages are redacted. The package does not log.
package class

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/httpx"
)

const (
	// TimeoutDefault is the Timeout of the default http.Client: the whole
	// exchange, body included.
	TimeoutDefault = 30 * time.Second
	// UserAgentDefault is the User-Agent sent unless [WithUserAgent] says otherwise.
	UserAgentDefault = "rollcall-class-client/1"
	// successBodyLimit bounds a 2xx body. The largest answers are listings of
	// every class or user of a tenant; far beyond this something is wrong, and
	// the worker must not run out of memory finding out.
	successBodyLimit = 32 << 20
)

// API paths, in one place.
const (
	pathUsers       = "/api/v1/users"
	pathClasses     = "/api/v1/classes"
	pathEnrollments = "/api/v1/class/enrollments"
	pathSchedules   = "/api/v1/schedules"
)

// Client calls the Class API of one tenant with one API key. It is safe for
// concurrent use.
type Client struct {
	base      *url.URL
	apiKey    string
	http      *http.Client
	userAgent string
	now       func() time.Time // for Retry-After dates; replaced in tests
}

// Option configures a [Client].
type Option func(*Client)

// WithHTTPClient makes the client send its requests through h. Defaults to an
// http.Client with a Timeout of [TimeoutDefault] and the transport of
// [httpx.NewTransport]; a caller that brings its own client and traces it should
// build its transport with [httpx.NewTransport] too, or its spans will carry query
// strings. A nil h keeps the default.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.http = h
		}
	}
}

// WithUserAgent sets the User-Agent header. Defaults to [UserAgentDefault].
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua != "" {
			c.userAgent = ua
		}
	}
}

// New returns a client for one tenant's Class. baseURL is the organisation's
// base URL, such as "https://mydemo.class.com" (the /api/v1/... paths are
// appended, after any path baseURL has); apiKey is the key's secret, sent as a
// bearer token.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	if strings.TrimSpace(baseURL) == "" {
		return nil, errors.New("class: base URL is required")
	}
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("class: invalid base URL: %w", err)
	}
	if err := httpx.CheckBaseURL(u); err != nil {
		return nil, fmt.Errorf("class: invalid base URL: %w", err)
	}
	if apiKey == "" {
		return nil, errors.New("class: API key is required")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		base:      u,
		apiKey:    apiKey,
		userAgent: UserAgentDefault,
		now:       time.Now,
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: TimeoutDefault, Transport: httpx.NewTransport(pooledTransport())}
	}
	return c, nil
}

// request is one call of the API.
type request struct {
	method string
	path   string     // one of the path constants
	query  url.Values // may hold personal data: never in an error or a span
	body   any        // marshalled as JSON when non-nil
}

// response is a 2xx answer, its body read in full.
type response struct {
	status int
	body   []byte
}

// do sends r and returns its 2xx answer. Any other status is an *APIError;
// a failure to get an answer is an [*httpx.TransportError].
func (c *Client) do(ctx context.Context, r request) (response, error) {
	u := *c.base
	u.Path = c.base.Path + r.path
	u.RawQuery = r.query.Encode()

	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			// Only a programming error gets here; the text of json's error
			// names a type, never a value.
			return response{}, fmt.Errorf("class: %s %s: encoding request: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return response{}, fmt.Errorf("class: %s %s: building request: %w", r.method, r.path, httpx.UnwrapURLError(err))
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	a, err := httpx.Send(c.http, req, successBodyLimit)
	if tooLarge, ok := errors.AsType[*httpx.BodyTooLargeError](err); ok {
		return response{}, &decodeError{method: r.method, path: r.path, status: a.Status, err: tooLarge}
	}
	if err != nil {
		te := httpx.NewTransportError("class", r.method, r.path, &u, err)
		// The key travels in a header, which a proxy's or dialer's error
		// could quote.
		te.Redact = append(te.Redact, c.apiKey)
		return response{}, te
	}
	if !a.OK() {
		return response{}, newAPIError(r.method, r.path, a, c.now(), c.apiKey)
	}
	return response{status: a.Status, body: a.Body}, nil
}

// decode unmarshals a 2xx body into v; a body that does not decode is a
// non-retryable *decodeError.
func decode(r request, resp response, v any) error {
	if err := json.Unmarshal(resp.body, v); err != nil {
		return &decodeError{method: r.method, path: r.path, status: resp.status, err: err}
	}
	return nil
}

// decodeOneOrMany decodes a body that should be an array of T but may also be
// a single T object (some endpoints answer either way), an array wrapped as
// {"data": [...]} (the paginated shape), or null.
func decodeOneOrMany[T any](r request, resp response) ([]T, error) {
	trimmed := bytes.TrimSpace(resp.body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var probe map[string]json.RawMessage
		if err := decode(r, resp, &probe); err != nil {
			return nil, err
		}
		if data, ok := probe["data"]; ok {
			var many []T
			if err := decode(r, response{status: resp.status, body: data}, &many); err != nil {
				return nil, err
			}
			return many, nil
		}
		var one T
		if err := decode(r, resp, &one); err != nil {
			return nil, err
		}
		return []T{one}, nil
	}
	var many []T
	if err := decode(r, resp, &many); err != nil {
		return nil, err
	}
	return many, nil
}

// errEmptyAnswer is the cause of a decodeError for a 2xx answer that held no
// object where one was needed.
var errEmptyAnswer = errors.New("empty answer")

// errNoScheduleID is the cause of a decodeError for an Add a Class Date answer
// without a schedule_id.
var errNoScheduleID = errors.New("answer has no schedule_id")

// notFound is the error of a lookup that Class answered with an empty list.
func notFound(r request) error {
	return fmt.Errorf("class: %s %s: no match: %w", r.method, r.path, ErrNotFound)
}

// MaxIdleConnsPerHostDefault keeps a connection per in-flight request of a
// worker (its default concurrency is 32) open between calls: the standard
// library keeps only 2, so the rest would be redialled for every call.
const MaxIdleConnsPerHostDefault = 64

func pooledTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHostDefault
	return t
}
