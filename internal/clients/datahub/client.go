// Package datahub is a typed client of DataHub (apis/datahub-api.txt), a
// Clever-style rostering API: its teachers, students and sections, and its
// event feed, either all the credentials may see or one district's
// ([Config.District]).
//
// Auth is OAuth 2 client credentials with HTTP Basic; the access token is
// reused until shortly before it expires, renewed once when the API refuses
// it (401), and sent only in the Authorization header. Lists are read page by
// page following the opaque NEXT links; every GET is retried a few times on
// transient faults, honouring Retry-After.
//
// The package classifies every failure once: an answer of DataHub becomes an
// [*APIError] that matches the sentinels ([ErrNotFound], [ErrUnauthorized],
// [ErrCursorRejected]) with errors.Is, a payload that does not decode matches
// [ErrMalformed], and [IsRetryable] tells the poller what to do with the rest.
//
// Personal data: error texts hold a method and a path, never a query string,
// a token, a credential or a value of a payload; emails in DataHub's own
// messages are redacted. The package does not log.
package datahub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/oauth2"

	"github.com/rollcall/rollcall/internal/httpx"
)

const (
	// TokenPathDefault is the token endpoint's path relative to
	// <base>/datahub/. The docs name both oauth/token and oauth/auth.
	TokenPathDefault = "oauth/token"
	// PageLimitDefault is the number of records asked for per page.
	PageLimitDefault = 100
	// PageLimitMax is the largest PageLimit accepted.
	PageLimitMax = 1000
	// TimeoutDefault is the Timeout of the default http.Client: the whole
	// exchange, body included.
	TimeoutDefault = 30 * time.Second
	// RetryMaxAttemptsDefault is how many times a GET is tried in all.
	RetryMaxAttemptsDefault = 4
	// RetryMaxElapsedDefault bounds the time spent retrying one GET.
	RetryMaxElapsedDefault = time.Minute
	// UserAgentDefault is the User-Agent sent with every request.
	UserAgentDefault = "rollcall-datahub-client/1"

	// successBodyLimit bounds a 2xx body: a page of PageLimitMax sections
	// with their student ids is far below it; far beyond, something is wrong
	// and the poller must not run out of memory finding out.
	successBodyLimit = 64 << 20
	// retryInitialInterval and retryMaxInterval shape the exponential backoff
	// (with jitter) between attempts.
	retryInitialInterval = 500 * time.Millisecond
	retryMaxInterval     = 15 * time.Second
)

// API paths, in one place.
const (
	servicesPath = "/datahub/services" // NEXT uris ("/v1/events?...") are relative to it
	apiPath      = servicesPath + "/v1"
	authBasePath = "/datahub/"
)

// Config configures a [Client] for one tenant's DataHub.
type Config struct {
	// BaseURL is DataHub's address, e.g. "https://datahub.example.org"; the
	// API is under <BaseURL>/datahub/services/v1. Required.
	BaseURL string
	// ClientID is the OAuth client id. Required.
	ClientID string
	// ClientSecret is the OAuth client secret. Required.
	ClientSecret string
	// TokenPath is the token endpoint, relative to <BaseURL>/datahub/, or an
	// absolute http(s) URL. Defaults to [TokenPathDefault].
	TokenPath string
	// PageLimit is the number of records asked for per page, 1 to
	// [PageLimitMax]. Defaults to [PageLimitDefault].
	PageLimit int
	// HTTPClient sends every request, the token's included. Defaults to an
	// http.Client with a Timeout of [TimeoutDefault] and the transport of
	// [httpx.NewTransport]; a caller that brings its own client and traces it
	// should build its transport with httpx.NewTransport too, or its spans
	// will carry search tokens.
	HTTPClient *http.Client
	// Now is the clock for token expiry, backoff and Retry-After dates.
	// Defaults to time.Now.
	Now func() time.Time
	// RetryMaxAttempts is how many times a GET is tried in all before its
	// transient failure is returned; 1 disables retries. Defaults to
	// [RetryMaxAttemptsDefault].
	RetryMaxAttempts int
	// RetryMaxElapsed bounds the time spent on one GET's retries, measured by
	// Now; a Retry-After that would pass it ends the retries at once and is
	// returned in the error's [APIError.RetryAfter] for the caller to honour.
	// Defaults to [RetryMaxElapsedDefault].
	RetryMaxElapsed time.Duration
	// District, when set, is the id of the one district the client reads:
	// teachers, students, sections and the event feed come from
	// /v1/districts/{District}/..., never from the lists of everything the
	// credentials may see, and a NEXT uri that leads out of that district is
	// refused. A district DataHub does not know (or does not show these
	// credentials) gives errors matching [ErrDistrictNotFound]. Empty reads
	// everything the credentials may see.
	District string
}

// Client calls one tenant's DataHub. It is safe for concurrent use.
type Client struct {
	api      *url.URL // <base>/datahub/services/v1
	services *url.URL // <base>/datahub/services, against which NEXT uris resolve
	// lists is where the roster lists and the feed are: api, or
	// api/districts/{District} for a client of one district.
	lists       *url.URL
	district    string // Config.District
	http        *http.Client
	tokens      *httpx.TokenCache
	limit       int
	now         func() time.Time
	maxAttempts int
	maxElapsed  time.Duration
	sleepFunc   func(ctx context.Context, d time.Duration) error // replaced in tests
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
		errs = append(errs, errors.New("datahub: ClientID: required"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("datahub: ClientSecret: required"))
	}
	limit := cmp.Or(cfg.PageLimit, PageLimitDefault)
	if limit < 1 || limit > PageLimitMax {
		errs = append(errs, fmt.Errorf("datahub: PageLimit: must be between 1 and %d", PageLimitMax))
	}
	if cfg.RetryMaxAttempts < 0 {
		errs = append(errs, errors.New("datahub: RetryMaxAttempts: must not be negative"))
	}
	if cfg.RetryMaxElapsed < 0 {
		errs = append(errs, errors.New("datahub: RetryMaxElapsed: must not be negative"))
	}
	if err := checkDistrict(cfg.District); err != nil {
		errs = append(errs, err)
	}
	var tokenURL *url.URL
	if base != nil {
		if tokenURL, err = resolveTokenURL(base, cmp.Or(strings.TrimSpace(cfg.TokenPath), TokenPathDefault)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: TimeoutDefault, Transport: httpx.NewTransport(nil)}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	services := *base
	services.Path = base.Path + servicesPath
	api := *base
	api.Path = base.Path + apiPath
	lists := api
	if cfg.District != "" {
		lists = subPath(&api, "districts", cfg.District)
	}
	return &Client{
		api:         &api,
		services:    &services,
		lists:       &lists,
		district:    cfg.District,
		http:        hc,
		tokens:      newTokenCache(tokenURL, cfg.ClientID, cfg.ClientSecret, hc, now),
		limit:       limit,
		now:         now,
		maxAttempts: cmp.Or(cfg.RetryMaxAttempts, RetryMaxAttemptsDefault),
		maxElapsed:  cmp.Or(cfg.RetryMaxElapsed, RetryMaxElapsedDefault),
		sleepFunc:   sleep,
	}, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("datahub: BaseURL: required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("datahub: BaseURL: not a URL")
	}
	if err := httpx.CheckBaseURL(u); err != nil {
		return nil, fmt.Errorf("datahub: BaseURL: %w", err)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// checkDistrict refuses a District that cannot name one district's
// endpoints: escaping keeps any other id inside its path segment, but a dot
// segment would be resolved by a server or proxy to the lists of every
// district, the very thing District is there to prevent.
func checkDistrict(id string) error {
	switch {
	case id == "":
		return nil
	case strings.TrimSpace(id) != id:
		return errors.New("datahub: District: must not begin or end with a space")
	case id == "." || id == "..":
		return errors.New("datahub: District: must not be a dot segment")
	case strings.ContainsFunc(id, unicode.IsControl):
		return errors.New("datahub: District: must not hold control characters")
	}
	return nil
}

// subPath returns u with segments appended to its path, each escaped as one
// path segment.
func subPath(u *url.URL, segments ...string) url.URL {
	r := *u
	raw := u.EscapedPath()
	for _, s := range segments {
		r.Path += "/" + s
		raw += "/" + url.PathEscape(s)
	}
	r.RawPath = raw
	return r
}

func resolveTokenURL(base *url.URL, path string) (*url.URL, error) {
	u, err := url.Parse(path)
	if err != nil {
		return nil, errors.New("datahub: TokenPath: not a path or URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("datahub: TokenPath: must not have a query, fragment or credentials")
	}
	if u.IsAbs() {
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("datahub: TokenPath: an absolute URL must be http(s) with a host")
		}
		return u, nil
	}
	if u.Host != "" {
		return nil, errors.New("datahub: TokenPath: must be a path or an absolute URL")
	}
	t := *base
	t.Path = base.Path + authBasePath + strings.TrimLeft(u.Path, "/")
	return &t, nil
}

// Teachers returns every teacher the client may see (of its district, when
// [Config.District] is set), following NEXT links
// until a page has no records or no NEXT link. A record that does not decode
// fails the call with an error matching [ErrMalformed].
func (c *Client) Teachers(ctx context.Context) ([]Teacher, error) {
	return listAll(ctx, c, "teachers", DecodeTeacher)
}

// Students returns every student the client may see; see [Client.Teachers].
func (c *Client) Students(ctx context.Context) ([]Student, error) {
	return listAll(ctx, c, "students", DecodeStudent)
}

// Sections returns every section the client may see; see [Client.Teachers].
func (c *Client) Sections(ctx context.Context) ([]Section, error) {
	return listAll(ctx, c, "sections", DecodeSection)
}

// EventsPage returns one page of the event feed (the district's feed,
// /v1/districts/{id}/events, when [Config.District] is set), oldest first.
// With next "" it reads the feed's first page; otherwise next is a NEXT uri of
// an earlier page (e.g. "/v1/events?search_token=..."), resolved against
// <BaseURL>/datahub/services and otherwise used as it is.
//
// An event that does not decode is not an error: it is returned in
// [Page.Malformed] with its position, raw bytes and id (when readable), for
// the poller to dead-letter. The page's Next is reported as it is, also when
// the page is empty.
//
// When DataHub refuses next (a 4xx other than 401, 404, 408 and 429), or next
// cannot be used at all (it does not parse, names another host, which would
// be given the token, or leads out of the client's district), the error
// matches [ErrCursorRejected]. The last case is how a tenant whose district
// was set after it stored a cursor of the unscoped feed gets a full resync
// instead of reading every district's events on.
func (c *Client) EventsPage(ctx context.Context, next string) (Page[Event], error) {
	t := target{u: c.listURL("events", nil)}
	if next != "" {
		u, err := c.resolveNext(next)
		if err != nil {
			return Page[Event]{}, fmt.Errorf("datahub: events cursor: %w: %w", err, ErrCursorRejected)
		}
		t = target{u: u, cursor: true}
	}
	return getPage(ctx, c, t, decodeEvent)
}

// Head is the head of the event feed: its newest event and the NEXT uri
// after it.
type Head struct {
	// ID is the newest event's id; "" when the feed is empty.
	ID string
	// Created is the newest event's time; zero when the feed is empty or the
	// event did not say (or did not decode).
	Created time.Time
	// Next is the NEXT uri after the newest event, opaque; "" when DataHub
	// gave none.
	Next string
}

// FeedHead returns the head of the event feed, for a first sync: the id of
// the newest event and the NEXT uri after it. See [Client.Head], which also
// returns the newest event's time.
func (c *Client) FeedHead(ctx context.Context) (lastEventID, next string, err error) {
	h, err := c.Head(ctx)
	return h.ID, h.Next, err
}

// Head returns the head of the event feed, for a first sync. The documented
// recipe: remember the head, read the whole roster, then apply the events
// from Head.Next on, skipping any up to and including Head.ID.
//
// It reads page 1 to learn paging.total, then page=total, then follows NEXT
// links while they give events (the feed may have grown meanwhile); Next is
// the NEXT uri of the last page that held events. An empty feed gives an
// empty ID and the first page's NEXT uri, if any. Next is "" when DataHub gave
// no NEXT link after the newest event: the caller then reads the feed from its
// start and skips up to ID.
func (c *Client) Head(ctx context.Context) (Head, error) {
	page, err := getPage(ctx, c, target{u: c.listURL("events", url.Values{"page": {"1"}})}, decodeEvent)
	if err != nil {
		return Head{}, err
	}
	if page.Total > 1 {
		last := url.Values{"page": {strconv.Itoa(page.Total)}}
		if page, err = getPage(ctx, c, target{u: c.listURL("events", last)}, decodeEvent); err != nil {
			return Head{}, err
		}
	}
	head := headOf(page, Head{})
	seen := map[string]bool{}
	for page.Len() > 0 && page.Next != "" {
		if seen[page.Next] {
			return Head{}, malformed("paging of GET "+c.lists.Path+"/events", "a NEXT link repeats an earlier page")
		}
		seen[page.Next] = true
		if page, err = c.EventsPage(ctx, page.Next); err != nil {
			return Head{}, err
		}
		if page.Len() == 0 {
			break
		}
		head = headOf(page, head)
	}
	return head, nil
}

// headOf returns the head a page of events gives: its last record, and its
// NEXT uri. A page without records keeps prev's event.
func headOf(p Page[Event], prev Head) Head {
	h := Head{ID: prev.ID, Created: prev.Created, Next: p.Next}
	if p.Len() == 0 {
		return h
	}
	h.ID, h.Created = "", time.Time{}
	if n := len(p.Malformed); n > 0 && p.Malformed[n-1].Index == p.Len()-1 {
		// The newest record did not decode: its id, when readable, still
		// marks the head; its time is unknown.
		h.ID = p.Malformed[n-1].ID
	} else if n := len(p.Items); n > 0 {
		h.ID, h.Created = p.Items[n-1].ID, p.Items[n-1].Created
	}
	if h.ID == "" {
		h.ID = lastID(p)
	}
	return h
}

func decodeEvent(raw json.RawMessage) (Event, error) { return DecodeEvent(raw) }

// listAll reads every page of a resource.
func listAll[T any](ctx context.Context, c *Client, resource string, decode func(json.RawMessage) (T, error)) ([]T, error) {
	t := target{u: c.listURL(resource, nil)}
	seen := map[string]bool{}
	var all []T
	for {
		p, err := getPage(ctx, c, t, decode)
		if err != nil {
			return nil, err
		}
		if len(p.Malformed) > 0 {
			return nil, fmt.Errorf("datahub: GET %s: %d of %d records malformed, the first at index %d: %w",
				t.u.Path, len(p.Malformed), p.Len(), p.Malformed[0].Index, p.Malformed[0].Err)
		}
		all = append(all, p.Items...)
		if len(p.Items) == 0 || p.Next == "" {
			return all, nil
		}
		if seen[p.Next] {
			return nil, malformed("paging of GET "+c.lists.Path+"/"+resource, "a NEXT link repeats an earlier page")
		}
		seen[p.Next] = true
		u, err := c.resolveNext(p.Next)
		if err != nil {
			return nil, fmt.Errorf("datahub: GET %s: following NEXT: %w", t.u.Path, err)
		}
		t = target{u: u, cursor: true}
	}
}

// getPage GETs one page and decodes it.
func getPage[T any](ctx context.Context, c *Client, t target, decode func(json.RawMessage) (T, error)) (Page[T], error) {
	body, err := c.get(ctx, t)
	if err != nil {
		return Page[T]{}, err
	}
	return decodePage(body, "answer to GET "+t.u.Path, decode)
}

// listURL is <base>/datahub/services/v1/<resource>?limit=<PageLimit>&<extra>,
// or .../v1/districts/<District>/<resource>?... for a client of one district.
func (c *Client) listURL(resource string, extra url.Values) *url.URL {
	u := subPath(c.lists, resource)
	q := url.Values{"limit": {strconv.Itoa(c.limit)}}
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return &u
}

// resolveNext turns a NEXT uri into the URL to GET. The uri is opaque: its
// query is kept byte for byte. A relative uri ("/v1/events?search_token=...")
// is resolved against <base>/datahub/services, unless its path already starts
// with that; an absolute one must name DataHub's own scheme and host, since
// the token goes with the request. A client of one district also requires
// the path to stay under /v1/districts/{District}/, without dot segments, and
// a client of every district refuses a path under /v1/districts/. The error
// matches ErrMalformed and quotes nothing of the uri.
func (c *Client) resolveNext(next string) (*url.URL, error) {
	u, err := c.resolveNextURL(next)
	if err != nil {
		return nil, err
	}
	if c.district != "" && !c.inDistrict(u.Path) {
		return nil, malformed("NEXT uri", "leads out of district %s", c.district)
	}
	if c.district == "" && strings.HasPrefix(u.Path, c.api.Path+"/districts/") {
		// A cursor of one district's feed, stored before the tenant's
		// district_id was removed: following it would go on reading that
		// district alone. Refused, the feed's cursor is replaced by a full
		// read of everything the credentials see.
		return nil, malformed("NEXT uri", "leads into one district's endpoints, and the client reads every district")
	}
	return u, nil
}

// inDistrict reports whether path (unescaped) is under the district's
// endpoints. Dot segments are refused rather than resolved: a server
// resolving them could lead out of the district.
func (c *Client) inDistrict(path string) bool {
	rest, ok := strings.CutPrefix(path, c.lists.Path+"/")
	if !ok || rest == "" {
		return false
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func (c *Client) resolveNextURL(next string) (*url.URL, error) {
	next = strings.TrimSpace(next)
	u, err := url.Parse(next)
	if err != nil {
		return nil, malformed("NEXT uri", "does not parse")
	}
	if u.User != nil {
		return nil, malformed("NEXT uri", "holds credentials")
	}
	if u.Scheme != "" || u.Host != "" {
		if !strings.EqualFold(u.Scheme, c.services.Scheme) || !strings.EqualFold(u.Host, c.services.Host) {
			return nil, malformed("NEXT uri", "names another host than DataHub's")
		}
		r := *u
		r.Fragment, r.RawFragment = "", ""
		return &r, nil
	}
	if u.Path == "" {
		return nil, malformed("NEXT uri", "has no path")
	}
	r := *c.services
	if strings.HasPrefix(u.Path, c.services.Path+"/") {
		r.Path, r.RawPath = u.Path, u.RawPath
	} else {
		r.Path = c.services.Path + "/" + strings.TrimLeft(u.Path, "/")
		if u.RawPath != "" {
			r.RawPath = c.services.EscapedPath() + "/" + strings.TrimLeft(u.RawPath, "/")
		}
	}
	r.RawQuery, r.ForceQuery = u.RawQuery, u.ForceQuery
	return &r, nil
}

// target is one GET: its URL, and whether the URL is a NEXT uri (its
// refusal then means the cursor is invalid).
type target struct {
	u      *url.URL
	cursor bool
}

// get sends t and returns its 2xx body, retrying transient failures; it is
// the one place of the client that retries. Attempts are spaced by an
// exponential backoff with jitter, or by the Retry-After DataHub asked for
// when that is longer; they end after RetryMaxAttempts, after RetryMaxElapsed,
// when the context ends, or on an error that is not retryable. The last
// error is returned.
func (c *Client) get(ctx context.Context, t target) ([]byte, error) {
	b := backoff.NewExponentialBackOff(func(b *backoff.ExponentialBackOff) {
		b.InitialInterval = retryInitialInterval
		b.MaxInterval = retryMaxInterval
		b.MaxElapsedTime = c.maxElapsed
		b.Clock = clockFunc(c.now)
	})
	for attempt := 1; ; attempt++ {
		body, err := c.once(ctx, t)
		if err == nil {
			return body, nil
		}
		if attempt >= c.maxAttempts || !IsRetryable(err) || ctx.Err() != nil {
			return nil, err
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return nil, err
		}
		if ra := retryAfter(err); ra > wait {
			if b.GetElapsedTime()+ra > c.maxElapsed {
				// Waiting here would pass the budget; the caller sees
				// RetryAfter in the error and honours it at its next poll.
				return nil, err
			}
			wait = ra
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

// once sends t with the cached token, and once more with a fresh one when
// the API refuses it (see [httpx.SendWithToken]). A 401 to that second try
// means the credentials do not work (ErrUnauthorized).
func (c *Client) once(ctx context.Context, t target) ([]byte, error) {
	a, err := httpx.SendWithToken(ctx, c.tokens, func(ctx context.Context, tok *oauth2.Token) (httpx.Answer, error) {
		return c.send(ctx, t, tok)
	})
	if err != nil {
		return nil, err
	}
	if !a.OK() {
		ae := newAPIError(http.MethodGet, t.u.Path, a, c.now())
		ae.cursor = t.cursor
		ae.District = c.district
		return nil, ae
	}
	return a.Body, nil
}

// send makes one GET with tok.
func (c *Client) send(ctx context.Context, t target, tok *oauth2.Token) (httpx.Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.u.String(), nil)
	if err != nil {
		return httpx.Answer{}, httpx.NewTransportError("datahub", http.MethodGet, t.u.Path, t.u, err)
	}
	// The token goes in the header only, never in the URL (the docs also
	// allow access_token as a query parameter), so no log or span sees it.
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgentDefault)

	a, err := httpx.Send(c.http, req, successBodyLimit)
	if tooLarge, ok := errors.AsType[*httpx.BodyTooLargeError](err); ok {
		return httpx.Answer{}, malformed("answer to GET "+t.u.Path, "%v", tooLarge)
	}
	if err != nil {
		return httpx.Answer{}, httpx.NewTransportError("datahub", http.MethodGet, t.u.Path, t.u, err)
	}
	return a, nil
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
