// Package hubmis is a typed client of WCBS HUBmis (apis/hubmis-api.txt), a
// school MIS: its academic years, students, staff, subject sets with their
// students and staff, staff timetable calendars (the lessons) and the
// school's regional settings. HUBmis has no event feed; the poller snapshots
// these and diffs them.
//
// Auth is OAuth 2 client credentials posted form-encoded; the access token is
// reused until 80 % of the life its expires_in gives, renewed once when the
// API refuses it (401), and sent only in the Authorization header, with the
// school's Realm header beside it. Lists are read page by page
// (page[number], page[size]) whether HUBmis answers with a bare array or a
// JSON:API document. HUBmis's two rate limits are mirrored by client-side
// token buckets (see [IPLimiter]) corrected from its X-RateLimit headers, a
// 429 is waited out until X-RateLimit-Retry-After, and transient faults are
// retried a few times.
//
// Our copy of the docs names no URL paths: the paths used are assumed, and
// kept in one const block in this file so they are easy to correct.
//
// The package classifies every failure once: an answer of HUBmis becomes an
// [*APIError] that matches the sentinels ([ErrNotFound], [ErrUnauthorized],
// [ErrForbidden], [ErrRateLimited]) with errors.Is, a payload that does not
// decode matches [ErrMalformed], and [IsRetryable] tells the poller what to
// do with the rest.
//
// Personal data: error texts hold a method and a path, never a query string,
// a token, a credential or a value of a payload; emails in HUBmis's own
// messages are redacted. The package does not log.
package hubmis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/oauth2"

	"github.com/rollcall/rollcall/internal/httpx"
)

// HUBmis's API paths, all in one place. Our copy of the docs
// (apis/hubmis-api.txt) names the endpoints and their parameters but no URL
// paths, so these are ASSUMED, named after the resources as DESIGN.md says;
// correct them here when the real paths are known. {academicYearId} and
// {id} are replaced by path-escaped ids.
const (
	// pathToken: "Token: Get access token" (form-encoded client_credentials).
	pathToken = "/api/v1/token"
	// pathAcademicYears: "Academic Years: Get list".
	pathAcademicYears = "/api/v1/academic-years"
	// pathStudents: "Students: Get List" (paged; filter[enrolmentStatus]).
	pathStudents = "/api/v1/students"
	// pathStaff: "Staff: Get List" (paged).
	pathStaff = "/api/v1/staff"
	// pathSubjectSets: "Get list of Subject Sets in an Academic Year" (paged).
	pathSubjectSets = "/api/v1/academic-years/{academicYearId}/subject-sets"
	// pathSetStudents: "Subject Sets: Get list of Students for a Subject Set".
	pathSetStudents = "/api/v1/academic-years/{academicYearId}/subject-sets/{id}/students"
	// pathSetStaff: the staff of a subject set. The docs have no such
	// endpoint (a set's staff appear in the set itself and through "Staff:
	// Get List" with filter[subjectSet]); it is assumed by symmetry with
	// pathSetStudents, as the simulator does.
	pathSetStaff = "/api/v1/academic-years/{academicYearId}/subject-sets/{id}/staff"
	// pathStaffCalendar: "Staff: Fetch Timetable Calendar"
	// (filter[dateFrom], filter[dateTo]).
	pathStaffCalendar = "/api/v1/staff/{id}/timetable/calendar"
	// pathRegionalSettings: "School regional default settings".
	pathRegionalSettings = "/api/v1/school/regional-settings"

	// apiPrefix is the prefix every path above shares; a BaseURL that
	// already ends with it has it removed.
	apiPrefix = "/api/v1"
)

// Headers HUBmis reads besides Authorization.
const (
	headerRealm        = "Realm"
	headerAcademicYear = "academic-year-id"
)

const (
	// PageSizeDefault is page[size], the records asked for per page. The
	// largest HUBmis accepts is not documented.
	PageSizeDefault = 100
	// PageSizeMax is the largest PageSize accepted.
	PageSizeMax = 1000
	// TimeoutDefault is the Timeout of the default http.Client: one exchange,
	// body included. Waits for the rate limits are outside it.
	TimeoutDefault = 30 * time.Second
	// RetryMaxAttemptsDefault is how many times a request is tried in all
	// (429s included).
	RetryMaxAttemptsDefault = 4
	// RetryMaxElapsedDefault bounds the time spent retrying one request.
	RetryMaxElapsedDefault = 2 * time.Minute
	// UserAgentDefault is the User-Agent sent with every request.
	UserAgentDefault = "rollcall-hubmis-client/1"

	// successBodyLimit bounds a 2xx body: a page of PageSizeMax students is
	// far below it; far beyond, something is wrong and the poller must not
	// run out of memory finding out.
	successBodyLimit = 64 << 20
	// retryInitialInterval and retryMaxInterval shape the exponential backoff
	// (with jitter) between attempts after a transient fault.
	retryInitialInterval = 500 * time.Millisecond
	retryMaxInterval     = 15 * time.Second
)

// Config configures a [Client] for one tenant's HUBmis (one school, one
// realm).
type Config struct {
	// BaseURL is HUBmis's address, e.g. "https://api.hubmis.com"; the API is
	// under <BaseURL>/api/v1. Required.
	BaseURL string
	// ClientID is the OAuth client id. Required.
	ClientID string
	// ClientSecret is the OAuth client secret. Required.
	ClientSecret string
	// Realm is the school's realm id (e.g. "S999"), sent in the Realm header
	// of every API call. Required.
	Realm string
	// AcademicYearID, when set, is sent in the academic-year-id header of
	// every API call, overriding the school's active year, and is the year
	// [Client.CurrentAcademicYear] returns.
	AcademicYearID string
	// PageSize is page[size], 1 to [PageSizeMax]. HUBmis documents no
	// maximum: a server that pages by a smaller size than asked and says
	// nothing of it in links or meta ends a list early. Defaults to
	// [PageSizeDefault].
	PageSize int
	// HTTPClient sends every request, the token's included. Defaults to an
	// http.Client with a Timeout of [TimeoutDefault] and the transport of
	// [httpx.NewTransport]; a caller that brings its own client and traces it
	// should build its transport with httpx.NewTransport too, or its spans
	// will carry query strings.
	HTTPClient *http.Client
	// Now is the clock for token expiry, the rate limits, backoff and retry
	// dates. Defaults to time.Now. A client with its own clock needs its own
	// IPLimiter on the same clock.
	Now func() time.Time
	// TimeScale is how many times faster than real time the server's rate
	// limits run: 1 for HUBmis, more for a fast-forwarded simulator. The
	// limiters refill TimeScale times faster, and the waits of a 429
	// (X-RateLimit-Retry-After, counted in the server's seconds from the real
	// now, and the docs' 5 s minimum) are divided by it. Token lifetimes,
	// Retry-After of other answers and the backoff are real time. Defaults
	// to 1.
	TimeScale float64
	// IPLimiter is the per-IP bucket this client shares with every other
	// client of the process; its TimeScale must equal TimeScale. Defaults to
	// [SharedIPLimiter](TimeScale); required when Now is set.
	IPLimiter *IPLimiter
	// NoRateLimit turns both client-side limiters off (the X-RateLimit
	// headers are then ignored, a 429 is still waited out). For tests of
	// HUBmis's own limits only.
	NoRateLimit bool
	// RetryMaxAttempts is how many times a request is tried in all before its
	// transient failure (a 429 included) is returned; 1 disables retries.
	// Defaults to [RetryMaxAttemptsDefault].
	RetryMaxAttempts int
	// RetryMaxElapsed bounds the time spent on one request's retries,
	// measured by Now; a wait that would pass it ends the retries at once and
	// is returned in the error's [APIError.RetryAfter] for the caller to
	// honour. Defaults to [RetryMaxElapsedDefault].
	RetryMaxElapsed time.Duration
}

// Client calls one tenant's HUBmis. It is safe for concurrent use.
type Client struct {
	base         *url.URL
	realm        string
	academicYear string
	http         *http.Client
	tokens       *httpx.TokenCache
	pageSize     int
	now          func() time.Time
	scale        float64
	limited      bool
	bucket       *bucket    // per client
	ip           *IPLimiter // per process (egress address)
	maxAttempts  int
	maxElapsed   time.Duration
	requests     atomic.Int64
	sleepFunc    func(ctx context.Context, d time.Duration) error // replaced in tests
}

// New validates cfg, fills in its defaults and returns a client. It does no
// I/O: the first call fetches the token.
func New(cfg Config) (*Client, error) {
	var errs []error
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		errs = append(errs, errors.New("hubmis: ClientID: required"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("hubmis: ClientSecret: required"))
	}
	switch {
	case cfg.Realm == "":
		errs = append(errs, errors.New("hubmis: Realm: required"))
	case !headerSafe(cfg.Realm):
		errs = append(errs, errors.New("hubmis: Realm: must be printable ASCII without spaces"))
	}
	if cfg.AcademicYearID != "" && !headerSafe(cfg.AcademicYearID) {
		errs = append(errs, errors.New("hubmis: AcademicYearID: must be printable ASCII without spaces"))
	}
	pageSize := cmp.Or(cfg.PageSize, PageSizeDefault)
	if pageSize < 1 || pageSize > PageSizeMax {
		errs = append(errs, fmt.Errorf("hubmis: PageSize: must be between 1 and %d", PageSizeMax))
	}
	scale, scaleErr := timeScale(cfg.TimeScale)
	if scaleErr != nil {
		errs = append(errs, fmt.Errorf("hubmis: %w", scaleErr))
	}
	ip := cfg.IPLimiter
	switch {
	case cfg.NoRateLimit:
	case ip == nil && cfg.Now != nil:
		errs = append(errs, errors.New("hubmis: IPLimiter: required when Now is set (the shared one runs on the wall clock)"))
	case ip != nil && scaleErr == nil && ip.scale != scale:
		errs = append(errs, errors.New("hubmis: IPLimiter: its TimeScale differs from TimeScale"))
	}
	if cfg.RetryMaxAttempts < 0 {
		errs = append(errs, errors.New("hubmis: RetryMaxAttempts: must not be negative"))
	}
	if cfg.RetryMaxElapsed < 0 {
		errs = append(errs, errors.New("hubmis: RetryMaxElapsed: must not be negative"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	if ip == nil && !cfg.NoRateLimit {
		ip = SharedIPLimiter(scale)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: TimeoutDefault, Transport: httpx.NewTransport(nil)}
	}
	c := &Client{
		base:         base,
		realm:        cfg.Realm,
		academicYear: cfg.AcademicYearID,
		pageSize:     pageSize,
		now:          now,
		scale:        scale,
		limited:      !cfg.NoRateLimit,
		bucket:       newBucket(ClientBucketDefault, scaled(RefillIntervalDefault, scale), now),
		ip:           ip,
		maxAttempts:  cmp.Or(cfg.RetryMaxAttempts, RetryMaxAttemptsDefault),
		maxElapsed:   cmp.Or(cfg.RetryMaxElapsed, RetryMaxElapsedDefault),
		sleepFunc:    sleep,
	}
	// A copy of the caller's client whose transport counts every request and
	// reads the rate-limit headers of every answer, the token's included.
	metered := *hc
	metered.Transport = meter{next: cmp.Or[http.RoundTripper](hc.Transport, http.DefaultTransport), c: c}
	c.http = &metered
	tokenURL := *base
	tokenURL.Path = base.Path + pathToken
	c.tokens = newTokenCache(c, &tokenURL, cfg.ClientID, cfg.ClientSecret)
	return c, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("hubmis: BaseURL: required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("hubmis: BaseURL: not a URL")
	}
	if err := httpx.CheckBaseURL(u); err != nil {
		return nil, fmt.Errorf("hubmis: BaseURL: %w", err)
	}
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), apiPrefix)
	u.RawPath = ""
	return u, nil
}

// headerSafe reports whether s can go in a header as it is and is a plausible
// id: printable ASCII, no spaces.
func headerSafe(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return s != ""
}

// Budget returns what the per-client bucket holds now (fractions count;
// below zero when requests are queued for it) and its capacity, as last
// corrected from HUBmis's X-RateLimit headers. The per-IP bucket, shared by
// every client of the process, reports through [IPLimiter.Budget]. With
// [Config.NoRateLimit] the bucket is not drawn on and stays full.
func (c *Client) Budget() (available float64, capacity int) {
	return c.bucket.budget()
}

// Requests returns how many HTTP requests the client has sent to HUBmis:
// every API call, retry and token request, since each counts against the
// rate limits.
func (c *Client) Requests() int64 {
	return c.requests.Load()
}

// IPLimiter returns the per-IP bucket the client draws on; nil with
// [Config.NoRateLimit].
func (c *Client) IPLimiter() *IPLimiter {
	if !c.limited {
		return nil
	}
	return c.ip
}

// apiURL is <base><path>?<query>; path comes from the const block, with its
// placeholders already replaced.
func (c *Client) apiURL(path string, query url.Values) *url.URL {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = query.Encode()
	return &u
}

// expand replaces the placeholders of a path template, in order, by ids.
// Every id must be a plausible HUBmis id (letters, digits, "-", "_", "."),
// which also keeps the path free of escapes.
func expand(tmpl string, ids ...string) (string, error) {
	out := tmpl
	for _, id := range ids {
		if !validID(id) {
			return "", fmt.Errorf("hubmis: %s: an id is empty or holds characters other than letters, digits, '-', '_' and '.'", tmpl)
		}
		i := strings.IndexByte(out, '{')
		j := strings.IndexByte(out, '}')
		if i < 0 || j < i {
			return "", fmt.Errorf("hubmis: %s: too many ids", tmpl)
		}
		out = out[:i] + id + out[j+1:]
	}
	return out, nil
}

func validID(id string) bool {
	if id == "" || id == "." || id == ".." {
		return false
	}
	for i := range len(id) {
		switch b := id[i]; {
		case b >= '0' && b <= '9', b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b == '-', b == '_', b == '.':
		default:
			return false
		}
	}
	return true
}

// get GETs path?query and returns its 2xx body, retrying transient failures;
// it is the one place of the client that retries. A 429 is waited out until
// its X-RateLimit-Retry-After, and no less than the 5 s the docs prescribe;
// other faults are spaced by an exponential backoff with jitter, or by a
// Retry-After when that is longer. Attempts end after RetryMaxAttempts,
// after RetryMaxElapsed, when the next wait would pass the context's
// deadline, when the context ends, or on an error that is not retryable. The
// last error is returned.
func (c *Client) get(ctx context.Context, path string, query url.Values) ([]byte, error) {
	u := c.apiURL(path, query)
	b := backoff.NewExponentialBackOff(func(b *backoff.ExponentialBackOff) {
		b.InitialInterval = retryInitialInterval
		b.MaxInterval = retryMaxInterval
		b.MaxElapsedTime = c.maxElapsed
		b.Clock = clockFunc(c.now)
	})
	for attempt := 1; ; attempt++ {
		body, err := c.once(ctx, u)
		if err == nil {
			return body, nil
		}
		if attempt >= c.maxAttempts || !IsRetryable(err) || ctx.Err() != nil {
			return nil, err
		}
		if _, local := errors.AsType[*limitWaitError](err); local {
			// The limiter already knows the wait passes the deadline.
			return nil, err
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return nil, err
		}
		ra := RetryAfter(err)
		if ae, ok := errors.AsType[*APIError](err); ok && ae.Status == http.StatusTooManyRequests {
			// "you will need to wait at least 5 seconds to make a new
			// request"; the backoff's own interval does not apply.
			wait = max(ra, scaled(RefillIntervalDefault, c.scale))
		} else if ra > wait {
			wait = ra
		}
		if b.GetElapsedTime()+wait > c.maxElapsed {
			// Waiting here would pass the budget; the caller sees the wait
			// in RetryAfter and honours it at its next poll.
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// The caller's deadline (wall clock) passes before the next
			// attempt; waiting for it would only hide the answer.
			return nil, err
		}
		if serr := c.sleepFunc(ctx, wait); serr != nil {
			return nil, fmt.Errorf("%w (retry abandoned: %w)", err, serr)
		}
	}
}

// once sends one GET of u with the cached token, and once more with a fresh
// one when the API refuses it (see [httpx.SendWithToken]): HUBmis says a 401
// means the token expired, whatever its expires_in said. A 401 to that second
// try means the credentials do not work (ErrUnauthorized).
func (c *Client) once(ctx context.Context, u *url.URL) ([]byte, error) {
	a, err := httpx.SendWithToken(ctx, c.tokens, func(ctx context.Context, tok *oauth2.Token) (httpx.Answer, error) {
		return c.send(ctx, u, tok)
	})
	if err != nil {
		return nil, err
	}
	if !a.OK() {
		return nil, newAPIError(http.MethodGet, u.Path, a, c.now(), c.scale)
	}
	return a.Body, nil
}

// send waits for the rate limits and makes one GET with tok.
func (c *Client) send(ctx context.Context, u *url.URL, tok *oauth2.Token) (httpx.Answer, error) {
	done, err := c.acquire(ctx, http.MethodGet, u.Path)
	if err != nil {
		return httpx.Answer{}, err
	}
	defer done()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return httpx.Answer{}, httpx.NewTransportError("hubmis", http.MethodGet, u.Path, u, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set(headerRealm, c.realm)
	if c.academicYear != "" {
		req.Header.Set(headerAcademicYear, c.academicYear)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgentDefault)

	a, err := httpx.Send(c.http, req, successBodyLimit)
	if tooLarge, ok := errors.AsType[*httpx.BodyTooLargeError](err); ok {
		return httpx.Answer{}, malformed("answer to GET "+u.Path, "%v", tooLarge)
	}
	if err != nil {
		return httpx.Answer{}, httpx.NewTransportError("hubmis", http.MethodGet, u.Path, u, err)
	}
	return a, nil
}

// acquire takes a token from the per-client bucket, then from the per-IP
// one, waiting for each as long as needed; done must be called once the
// request's answer was read (or it failed). The client bucket comes first so
// that a tenant short of its own budget does not hold a token of the shared
// bucket while it waits. When a wait would pass the context's deadline the
// error matches ErrRateLimited and says how long.
func (c *Client) acquire(ctx context.Context, method, path string) (done func(), err error) {
	if !c.limited {
		return func() {}, nil
	}
	own := c.bucket.take()
	if err := c.waitFor(ctx, own.at, method, path); err != nil {
		own.cancel()
		return nil, err
	}
	shared := c.ip.b.take()
	if err := c.waitFor(ctx, shared.at, method, path); err != nil {
		shared.cancel()
		own.cancel()
		return nil, err
	}
	return func() { own.done(); shared.done() }, nil
}

// waitFor sleeps until at, by the client's clock.
func (c *Client) waitFor(ctx context.Context, at time.Time, method, path string) error {
	d := at.Sub(c.now())
	if d <= 0 {
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return &limitWaitError{method: method, path: path, wait: d}
	}
	if err := c.sleepFunc(ctx, d); err != nil {
		return fmt.Errorf("hubmis: %s %s: waiting for the rate limit: %w", method, path, err)
	}
	return nil
}

// observe corrects a bucket from the X-RateLimit headers of an answer. The
// headers describe one bucket: the per-IP one when their limit is its
// capacity (and not the client's), else the per-client one.
func (c *Client) observe(h http.Header) {
	if !c.limited {
		return
	}
	limit, remaining, ok := rateHeaders(h)
	if !ok {
		return
	}
	_, ipCap := c.ip.b.budget()
	_, ownCap := c.bucket.budget()
	if limit > 0 && limit == ipCap && limit != ownCap {
		c.ip.b.correct(0, remaining)
		return
	}
	c.bucket.correct(limit, remaining)
}

// meter is the transport of the client's http.Client: it counts every
// request and corrects the buckets from every answer, the token endpoint's
// included (oauth2 sends that one itself).
type meter struct {
	next http.RoundTripper
	c    *Client
}

func (m meter) RoundTrip(r *http.Request) (*http.Response, error) {
	m.c.requests.Add(1)
	resp, err := m.next.RoundTrip(r)
	if err == nil {
		m.c.observe(resp.Header)
	}
	return resp, err
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport underneath.
func (m meter) CloseIdleConnections() {
	if ci, ok := m.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// clockFunc adapts Config.Now to backoff.Clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }
