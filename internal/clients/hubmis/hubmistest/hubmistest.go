// Package hubmistest is a stateful, in-memory simulator of the WCBS HUBmis API as our copy
// of its documentation (apis/hubmis-api.txt) describes it: OAuth2 client credentials, the
// Realm header, page[number]/page[size] paging, the two documented rate limits, and the
// resources a rostering poller reads (academic years, students, staff, subject sets and
// their members, staff timetable calendars, the school's regional settings). It is served
// on a real listener on 127.0.0.1.
//
// # Paths
//
// The document names no URL paths. The simulator serves the paths the design assumes,
// all declared once, as the Path* constants; correct them there when the real paths are
// known.
//
// # Authentication
//
// POST [PathToken] takes grant_type=client_credentials, client_id and client_secret in
// the body, form-encoded as the document's example or as JSON as its schema shows (HTTP
// Basic alone is not accepted: the document puts the credentials in the body). It answers
// {"token_type":"Bearer","expires_in":900,"access_token":"..."}; bad credentials are 401
// {"error":"invalid_client"}, another grant 400 {"error":"unsupported_grant_type"}.
// Tokens expire after [Options.TokenTTL] by [Options.Now] (not scaled by
// [Options.TimeScale]), or all at once with [Server.ExpireTokens]; an unknown or expired
// token is 401.
//
// Every API request needs "Authorization: Bearer <token>" and the "Realm" header of the
// school: a missing Realm is 400, another school's 403. An "academic-year-id" header,
// where sent, must name a known academic year (400 otherwise); no endpoint served here
// varies by it, since subject sets take their year from the path.
//
// # Answers
//
// Objects use the field names of the document's samples (a student as "Students: Get
// Student", staff as "Staff: Get One Staff", a subject set as "Subject Sets: Get one",
// regional settings as "School regional default settings"). Where the document collapses
// an object ("academic_year": {...}) or shows none (academic years, calendar entries), the
// simulator's choice is described on the function that builds it, and in the README of the
// client.
//
// Lists are bare JSON arrays, as every list sample of the document shows. With
// [Options.Envelope] they are JSON:API documents instead:
//
//	{"data":[...],
//	 "meta":{"current_page":1,"per_page":20,"total":45,"last_page":3},
//	 "links":{"first":"...","last":"...","next":"..."}}
//
// where "next" (and "prev") are absent when there is no such page. A client must stop
// paging on a short page (bare arrays) or a missing next link (envelopes).
//
// Paging follows the document: only the lists it documents with page[number] and
// page[size] are paged (students, staff, subject sets). page[number] is 1-based,
// page[size] defaults to [Options.PageSize] and is lowered to [Options.MaxPageSize]; a
// page after the last is empty. The other lists (academic years, a set's students and
// staff, the calendar) answer everything and ignore page parameters, as a server that
// does not page them would: a client that pages them anyway sees the same records again.
//
// # Rate limits
//
// The document: "rate-limited to 12 requests per minute per IP address and 500 requests
// per client, with a rate of one new request every 5 seconds". Both are token buckets
// refilled one request per [RefillInterval]: one per source IP (the host of
// r.RemoteAddr) of [Options.IPBucket] (12), one per client id of [Options.ClientBucket]
// (500). Every API request, refused ones included, first takes from its IP's bucket;
// once its token names a client, from that client's bucket. A request that finds a bucket
// empty is answered 429 and takes nothing. Token requests are not limited (the document
// limits "the API"; [Options.LimitTokenRequests] changes that).
//
// API answers carry X-RateLimit-Limit and X-RateLimit-Remaining of the client's bucket
// (the document's example shows 500), or of the IP's bucket when the request named no
// valid client or the IP's bucket refused it. A 429 also carries X-RateLimit-Retry-After,
// the Unix time (whole seconds, rounded up) at which the refusing bucket has a request
// again, and the body {"error":"too_many_requests","message":"Too Many Requests"}.
//
// [Options.TimeScale] speeds the buckets up: with 60, a simulated minute passes per real
// second, so a bucket refills one request every 5/60 s. X-RateLimit-Retry-After then
// still counts the wait in simulated seconds from the real now (now + 5 s for a bucket
// that has just run dry), so it is never too early for a client that does not know the
// scale, and a client that does divides the wait by the same scale.
//
// # Scenarios
//
// [Server.Populate] builds a school in one call, deterministically from [Options.Seed]:
// staff, students, subject sets with members and teachers, and a weekly timetable for each
// set. [Server.JoinSet], [Server.SetStaff], [Server.MoveLesson], [Server.StudentLeaves],
// [Server.NewAcademicYear] and the other scenario functions change it as a school's
// edits would; the accessors ([Server.Students], [Server.Sets], [Server.Lessons], ...)
// return what the API now answers, for building expectations.
//
// Fault injection (500, 503, latency) draws from a seeded generator after the rate limits
// and the checks of token and realm, so a faulted request has spent its budget. The
// simulator never logs names, emails, tokens, secrets or query strings: one Debug record
// per request with method, route pattern and status.
package hubmistest

import (
	"cmp"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	// The school's time zone is loaded with time.LoadLocation; the embedded database keeps
	// that working on machines without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/rollcall/rollcall/internal/simhttp"
)

// Paths the simulator serves. The document gives none; these are the design's
// assumptions, kept here in one place. Segments in braces are ids.
const (
	PathToken              = "/api/v1/token"
	PathAcademicYears      = "/api/v1/academic-years"
	PathStudents           = "/api/v1/students"
	PathStudent            = "/api/v1/students/{id}"
	PathStaff              = "/api/v1/staff"
	PathStaffMember        = "/api/v1/staff/{id}"
	PathSubjectSets        = "/api/v1/academic-years/{academicYearId}/subject-sets"
	PathSubjectSet         = "/api/v1/academic-years/{academicYearId}/subject-sets/{id}"
	PathSubjectSetStudents = "/api/v1/academic-years/{academicYearId}/subject-sets/{id}/students"
	PathSubjectSetStaff    = "/api/v1/academic-years/{academicYearId}/subject-sets/{id}/staff"
	PathStaffCalendar      = "/api/v1/staff/{id}/timetable/calendar"
	PathRegionalSettings   = "/api/v1/school/regional-settings"
)

// Header names of the API.
const (
	HeaderRealm              = "Realm"
	HeaderAcademicYearID     = "academic-year-id"
	HeaderRateLimitLimit     = "X-RateLimit-Limit"
	HeaderRateLimitRemaining = "X-RateLimit-Remaining"
	HeaderRateLimitRetry     = "X-RateLimit-Retry-After"
)

// Defaults of [Options] and [Faults].
const (
	ClientIDDefault     = "client123"
	ClientSecretDefault = "secret123"
	// RealmDefault is the realm of the document's examples.
	RealmDefault = "S999"
	// TokenTTLDefault is the document's "Access tokens expire after 15 minutes" (and the
	// expires_in of its token sample).
	TokenTTLDefault = 15 * time.Minute
	// IPBucketDefault is the document's "12 requests per minute per IP address".
	IPBucketDefault = 12
	// ClientBucketDefault is the document's "500 requests per client".
	ClientBucketDefault = 500
	// PageSizeDefault is the page size when a request gives no page[size]. The document
	// does not say; 20 is what JSON:API servers commonly use.
	PageSizeDefault = 20
	// MaxPageSizeDefault is the largest page size; a larger page[size] is lowered to it.
	MaxPageSizeDefault = 100
	// TimezoneDefault is the school's time zone, as in the document's sample.
	TimezoneDefault = "Europe/London"
	// LessonHorizonDefault is the window of [Server.Lessons]: 14 days, the design's
	// default lesson window.
	LessonHorizonDefault = 14 * 24 * time.Hour
	// RetryAfterDefault is the Retry-After of injected 503 answers when
	// [Faults.RetryAfter] is zero.
	RetryAfterDefault = simhttp.RetryAfterDefault
)

// RefillInterval is how often each rate-limit bucket gains one request, in simulated
// time: the document's "one new request every 5 seconds".
const RefillInterval = 5 * time.Second

// maxBodyBytes bounds a request body; the token request is one short form.
const maxBodyBytes = 1 << 16

// Options configure a [Server].
type Options struct {
	// Seed seeds fault injection, tokens and the data of [Server.Populate]. Defaults to 1
	// when zero.
	Seed int64
	// ClientID and ClientSecret are the only credentials the token endpoint accepts.
	// Default to [ClientIDDefault] and [ClientSecretDefault].
	ClientID, ClientSecret string
	// Realm is the school's realm, which every API request must send in the Realm
	// header. Defaults to [RealmDefault].
	Realm string
	// TokenTTL is how long an access token is accepted, and its expires_in. Defaults to
	// [TokenTTLDefault].
	TokenTTL time.Duration
	// Now is the simulator's clock: token expiry, the current academic year, the window
	// of [Server.Lessons] and (scaled by TimeScale) the rate-limit buckets follow it.
	// Defaults to time.Now.
	Now func() time.Time
	// TimeScale is how many simulated seconds pass per second of Now for the rate-limit
	// buckets: 60 refills a bucket one request per 5/60 s. Defaults to 1.
	TimeScale float64
	// IPBucket and ClientBucket are the sizes of the per-IP and per-client buckets.
	// Default to [IPBucketDefault] and [ClientBucketDefault]; a negative size turns that
	// limit off.
	IPBucket, ClientBucket int
	// LimitTokenRequests makes token requests take from the buckets too (the IP's, and
	// the client's once the credentials are good). Defaults to false: the document
	// limits API requests.
	LimitTokenRequests bool
	// PageSize is the page size of a paged list without page[size]. Defaults to
	// [PageSizeDefault].
	PageSize int
	// MaxPageSize is the largest page size. Defaults to [MaxPageSizeDefault].
	MaxPageSize int
	// Envelope answers lists as JSON:API documents ({"data","meta","links"}) instead of
	// the document's bare arrays. Defaults to false.
	Envelope bool
	// Timezone is the school's IANA time zone: lessons are laid out on its wall clock and
	// the regional settings report it. Defaults to [TimezoneDefault]. New panics on an
	// unknown zone.
	Timezone string
	// LessonHorizon is the window of [Server.Lessons], from the start of today in the
	// school's time zone. Defaults to [LessonHorizonDefault]. The calendar endpoint
	// answers any dates of a set's academic year, whatever the horizon.
	LessonHorizon time.Duration
	// NonLessonEntries adds to every staff calendar a weekly staff briefing (Monday
	// 08:30-08:50, "type":"event", no subject set), which a client must not take for a
	// lesson. Defaults to false.
	NonLessonEntries bool
	// Logger receives one Debug record per request (method, route pattern, status).
	// Defaults to discarding.
	Logger *slog.Logger
}

// Faults configure fault injection. The zero value injects nothing.
type Faults struct {
	// Rate500 and Rate503 are the probabilities, per request that passed the rate limits
	// and the checks of token and realm (good token requests included), of answering
	// that status instead.
	Rate500, Rate503 float64
	// Latency is added before answering every request. A request whose context ends while
	// it waits has no effect and gets no answer.
	Latency time.Duration
	// RetryAfter is the Retry-After header of injected 503 answers, rounded up to whole
	// seconds and at least 1. Defaults to [RetryAfterDefault].
	RetryAfter time.Duration
}

// Stats count the requests a [Server] has answered.
type Stats struct {
	// Requests counts every request, refused and faulted ones included.
	Requests int
	// ByEndpoint counts requests by "METHOD pattern", e.g. "POST /api/v1/token" or
	// "GET /api/v1/staff/{id}/timetable/calendar" (the Path* constants). A path the
	// simulator does not serve is counted as it is.
	ByEndpoint map[string]int
	// ByStatus counts answers by HTTP status.
	ByStatus map[int]int
	// TooMany counts 429 answers (both buckets).
	TooMany int
	// TokensIssued counts access tokens handed out.
	TokensIssued int
	// Faults counts injected 500 and 503 answers.
	Faults int
}

// Server is the simulator. It is safe for concurrent use.
type Server struct {
	log          *slog.Logger
	now          func() time.Time
	clientID     string
	clientSecret string
	realm        string
	ttl          time.Duration
	scale        float64
	epoch        time.Time // Now at New: simulated bucket time is scaled from here
	ipCap        int
	clientCap    int
	limitTokens  bool
	pageSize     int
	maxPageSize  int
	envelope     bool
	loc          *time.Location
	horizon      time.Duration
	briefings    bool

	mux *http.ServeMux
	srv *simhttp.Server

	mu            sync.Mutex
	tokens        map[string]tokenInfo
	tokenSeq      int
	ipBuckets     map[string]*bucket
	clientBuckets map[string]*bucket
	// Separate streams, so the fault sequence depends only on the number of requests
	// that reach the fault draw, and Populate's data only on the calls of Populate.
	faults   *simhttp.Injector
	tokenRNG *rand.Rand
	popRNG   *rand.Rand

	data         store
	counts       simhttp.Counter
	throttled    int // 429 answers, of both buckets
	tokensIssued int
}

type tokenInfo struct {
	clientID string
	expires  time.Time
}

// New starts a simulator listening on 127.0.0.1 on a free port, with a school that has a
// past and a current academic year and nobody in it yet. It panics if it cannot listen or
// [Options.Timezone] is unknown, as net/http/httptest panics.
func New(opts Options) *Server {
	seed := cmp.Or(opts.Seed, 1)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	loc, err := time.LoadLocation(cmp.Or(opts.Timezone, TimezoneDefault))
	if err != nil {
		panic(fmt.Sprintf("hubmistest: time zone: %v", err))
	}
	scale := opts.TimeScale
	if scale <= 0 {
		scale = 1
	}
	s := &Server{
		now:           now,
		clientID:      cmp.Or(opts.ClientID, ClientIDDefault),
		clientSecret:  cmp.Or(opts.ClientSecret, ClientSecretDefault),
		realm:         cmp.Or(opts.Realm, RealmDefault),
		ttl:           cmp.Or(opts.TokenTTL, TokenTTLDefault),
		scale:         scale,
		epoch:         now(),
		ipCap:         cmp.Or(opts.IPBucket, IPBucketDefault),
		clientCap:     cmp.Or(opts.ClientBucket, ClientBucketDefault),
		limitTokens:   opts.LimitTokenRequests,
		pageSize:      cmp.Or(opts.PageSize, PageSizeDefault),
		maxPageSize:   cmp.Or(opts.MaxPageSize, MaxPageSizeDefault),
		envelope:      opts.Envelope,
		loc:           loc,
		horizon:       cmp.Or(opts.LessonHorizon, LessonHorizonDefault),
		briefings:     opts.NonLessonEntries,
		tokens:        map[string]tokenInfo{},
		ipBuckets:     map[string]*bucket{},
		clientBuckets: map[string]*bucket{},
		faults:        simhttp.NewInjector(seed),
		tokenRNG:      rand.New(rand.NewPCG(uint64(seed), 0x746f6b656e)),
		popRNG:        rand.New(rand.NewPCG(uint64(seed), 0x706f70)),
		data:          newStore(),
	}
	s.pageSize = min(s.pageSize, s.maxPageSize)
	s.data.initYears(now().In(loc))
	s.routes()

	s.srv = simhttp.Start(simhttp.Config{
		Name:        "hubmistest",
		Handler:     s,
		Unavailable: errReply(http.StatusServiceUnavailable, "unavailable", "Service Unavailable"),
		Logger:      opts.Logger,
	})
	return s
}

// URL returns the base URL, e.g. http://127.0.0.1:41234; the Path* constants are
// relative to it.
func (s *Server) URL() string { return s.srv.URL() }

// Close stops the listener, ends open connections and waits for running handlers. It is
// safe to call more than once.
func (s *Server) Close() { s.srv.Close() }

// SetFaults replaces the fault configuration.
func (s *Server) SetFaults(f Faults) {
	s.faults.Set(simhttp.Faults{Rate500: f.Rate500, Rate503: f.Rate503, Latency: f.Latency, RetryAfter: f.RetryAfter})
}

// ExpireTokens makes every token issued so far answer 401, as when they outlive their 15
// minutes. Tokens issued afterwards work.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	clear(s.tokens)
	s.mu.Unlock()
}

// ResetRateLimits fills every bucket again, as a long pause would.
func (s *Server) ResetRateLimits() {
	s.mu.Lock()
	clear(s.ipBuckets)
	clear(s.clientBuckets)
	s.mu.Unlock()
}

// Realm returns the school's realm, the value the Realm header must carry.
func (s *Server) Realm() string { return s.realm }

// ClientID returns the client id the token endpoint accepts.
func (s *Server) ClientID() string { return s.clientID }

// ClientSecret returns the client secret the token endpoint accepts.
func (s *Server) ClientSecret() string { return s.clientSecret }

// Timezone returns the school's IANA time zone, as the regional settings report it.
func (s *Server) Timezone() string { return s.loc.String() }

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts.Counts()
	return Stats{
		Requests: c.Requests, ByEndpoint: c.ByEndpoint, ByStatus: c.ByStatus,
		TooMany: s.throttled, TokensIssued: s.tokensIssued, Faults: c.Faults,
	}
}

// errReply is the simulator's error body. The document shows none; "error" is a short
// code and "message" a sentence, so a client reading either finds something.
func errReply(status int, code, msg string) simhttp.Reply {
	return simhttp.JSON(status, map[string]string{"error": code, "message": msg})
}

func notFound() simhttp.Reply { return errReply(http.StatusNotFound, "not_found", "Not Found") }

func badRequest(msg string) simhttp.Reply { return errReply(http.StatusBadRequest, "bad_request", msg) }

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.srv.Delay(w, r, s.faults.Latency(), maxBodyBytes) {
		s.counts.Abandon(r.Method + " " + s.pattern(r))
		panic(http.ErrAbortHandler)
	}
	s.mux.ServeHTTP(w, r)
}

// pattern returns the route pattern of r, or its path when no route matches.
func (s *Server) pattern(r *http.Request) string {
	if _, p := s.mux.Handler(r); p != "" && p != "/" && p != "/api/v1/" {
		return p
	}
	return r.URL.Path
}

// apiFunc answers one API request; s.mu is held.
type apiFunc func(r *http.Request) simhttp.Reply

// routes registers the endpoints. Patterns carry no method, so a wrong method reaches
// the API pipeline (auth, limits) and is answered 405 there, as a real server behind a
// throttling middleware would.
func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc(PathToken, s.handleToken)
	api := map[string]apiFunc{
		PathAcademicYears:      s.listAcademicYears,
		PathStudents:           s.listStudents,
		PathStudent:            s.getStudent,
		PathStaff:              s.listStaff,
		PathStaffMember:        s.getStaffMember,
		PathSubjectSets:        s.listSubjectSets,
		PathSubjectSet:         s.getSubjectSet,
		PathSubjectSetStudents: s.listSubjectSetStudents,
		PathSubjectSetStaff:    s.listSubjectSetStaff,
		PathStaffCalendar:      s.staffCalendar,
		PathRegionalSettings:   s.regionalSettings,
	}
	for p, h := range api {
		s.mux.Handle(p, s.apiHandler(p, h))
	}
	// Unknown paths under the API still meet its auth and limits, then 404.
	s.mux.Handle("/api/v1/", s.apiHandler("", func(*http.Request) simhttp.Reply { return notFound() }))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rep := notFound()
		s.mu.Lock()
		s.count(r.Method+" "+r.URL.Path, rep.Status, false)
		s.mu.Unlock()
		s.finish(w, r, r.URL.Path, rep, false)
	})
}

// apiHandler runs the API pipeline around h: the IP's bucket, the token, the client's
// bucket, the method, the realm, the academic-year-id header, fault injection, then h.
// All of it happens under one lock, so a request, its bucket and its fault draw are
// atomic with respect to other requests and to scenario calls.
func (s *Server) apiHandler(pattern string, h apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := cmp.Or(pattern, r.URL.Path)
		endpoint := r.Method + " " + p
		s.mu.Lock()
		rep, fault := s.apiLocked(r, h)
		s.count(endpoint, rep.Status, fault)
		s.mu.Unlock()
		s.finish(w, r, p, rep, fault)
	})
}

func (s *Server) apiLocked(r *http.Request, h apiFunc) (simhttp.Reply, bool) {
	now := s.now()
	sim := s.simTime(now)

	ipb := s.ipBucketLocked(r)
	if ipb != nil && !ipb.take(sim) {
		return s.tooMany(ipb, now, sim), false
	}
	rl := ipb // the bucket whose state the answer reports

	info, rep, ok := s.authoriseLocked(r, now)
	if !ok {
		rl.stamp(&rep, sim)
		return rep, false
	}
	if cb := s.clientBucketLocked(info.clientID); cb != nil {
		if !cb.take(sim) {
			return s.tooMany(cb, now, sim), false
		}
		rl = cb
	}
	rep, fault := s.checkedLocked(r, h)
	rl.stamp(&rep, sim)
	return rep, fault
}

// checkedLocked checks method, realm and academic year, draws a fault, and runs h.
func (s *Server) checkedLocked(r *http.Request, h apiFunc) (simhttp.Reply, bool) {
	if r.Method != http.MethodGet {
		rep := errReply(http.StatusMethodNotAllowed, "method_not_allowed", "Method Not Allowed")
		rep.SetHeader("Allow", http.MethodGet)
		return rep, false
	}
	realm := r.Header.Get(HeaderRealm)
	switch {
	case realm == "":
		return errReply(http.StatusBadRequest, "realm_required", "The Realm header is required"), false
	case !equalSecret(realm, s.realm):
		return errReply(http.StatusForbidden, "forbidden", "Access to this realm is not allowed"), false
	}
	if v := r.Header.Get(HeaderAcademicYearID); v != "" {
		if _, ok := s.data.years[atoi(v)]; !ok {
			return badRequest("Unknown academic-year-id"), false
		}
	}
	if f, ok := s.faults.Draw(); ok {
		return faultReply(f), true
	}
	return h(r), false
}

// authoriseLocked checks the bearer token.
func (s *Server) authoriseLocked(r *http.Request, now time.Time) (tokenInfo, simhttp.Reply, bool) {
	token := simhttp.BearerToken(r)
	if token == "" {
		rep := errReply(http.StatusUnauthorized, "unauthenticated", "Unauthenticated")
		rep.SetHeader("WWW-Authenticate", `Bearer realm="hubmis"`)
		return tokenInfo{}, rep, false
	}
	info, ok := s.tokens[token]
	if ok && !now.Before(info.expires) {
		delete(s.tokens, token)
		ok = false
	}
	if !ok {
		rep := errReply(http.StatusUnauthorized, "invalid_token", "Unauthenticated")
		rep.SetHeader("WWW-Authenticate", `Bearer realm="hubmis", error="invalid_token"`)
		return tokenInfo{}, rep, false
	}
	return info, simhttp.Reply{}, true
}

// handleToken answers the token endpoint.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	s.mu.Lock()
	rep, fault := s.tokenLocked(r, body, readErr)
	s.count(r.Method+" "+PathToken, rep.Status, fault)
	s.mu.Unlock()
	rep.SetHeader("Cache-Control", "no-store")
	s.finish(w, r, PathToken, rep, fault)
}

func (s *Server) tokenLocked(r *http.Request, body []byte, readErr error) (simhttp.Reply, bool) {
	now := s.now()
	sim := s.simTime(now)
	var rl *bucket
	if s.limitTokens {
		if rl = s.ipBucketLocked(r); rl != nil && !rl.take(sim) {
			return s.tooMany(rl, now, sim), false
		}
	}
	if r.Method != http.MethodPost {
		rep := errReply(http.StatusMethodNotAllowed, "method_not_allowed", "Method Not Allowed")
		rep.SetHeader("Allow", http.MethodPost)
		return rep, false
	}
	if readErr != nil {
		return errReply(http.StatusBadRequest, "invalid_request", "The request body could not be read"), false
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		if err := json.Unmarshal(body, &req); err != nil {
			return errReply(http.StatusBadRequest, "invalid_request", "The request body is not valid JSON"), false
		}
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return errReply(http.StatusBadRequest, "invalid_request", "The request body is not a valid form"), false
		}
		req.GrantType, req.ClientID, req.ClientSecret = form.Get("grant_type"), form.Get("client_id"), form.Get("client_secret")
	}
	switch req.GrantType {
	case "client_credentials":
	case "":
		return errReply(http.StatusBadRequest, "invalid_request", "grant_type is required"), false
	default:
		return errReply(http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported"), false
	}
	if !equalSecret(req.ClientID, s.clientID) || !equalSecret(req.ClientSecret, s.clientSecret) {
		return errReply(http.StatusUnauthorized, "invalid_client", "Client authentication failed"), false
	}
	if s.limitTokens {
		if cb := s.clientBucketLocked(s.clientID); cb != nil {
			if !cb.take(sim) {
				return s.tooMany(cb, now, sim), false
			}
			rl = cb
		}
	}
	var rep simhttp.Reply
	f, fault := s.faults.Draw()
	if fault {
		rep = faultReply(f)
	} else {
		var raw [12]byte
		for i := range raw {
			raw[i] = byte(s.tokenRNG.Uint32())
		}
		s.tokenSeq++
		// Shaped like the document's "123.abc.xyz".
		token := strconv.Itoa(s.tokenSeq) + "." + hex.EncodeToString(raw[:6]) + "." + hex.EncodeToString(raw[6:])
		s.tokens[token] = tokenInfo{clientID: s.clientID, expires: now.Add(s.ttl)}
		s.tokensIssued++
		rep = simhttp.JSON(http.StatusOK, map[string]any{
			"token_type":   "Bearer",
			"expires_in":   int(s.ttl / time.Second),
			"access_token": token,
		})
	}
	rl.stamp(&rep, sim)
	return rep, fault
}

func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// faultReply is the answer of an injected fault: a 503 or a 500, as [Faults] has no 429.
func faultReply(f simhttp.Fault) simhttp.Reply {
	if f.Status == http.StatusServiceUnavailable {
		return f.Reply(map[string]string{"error": "unavailable", "message": "Service Unavailable"})
	}
	return f.Reply(map[string]string{"error": "server_error", "message": "Server Error"})
}

// count records one answered request; s.mu must be held.
func (s *Server) count(endpoint string, status int, fault bool) {
	s.counts.Count(endpoint, status, fault)
	if status == http.StatusTooManyRequests {
		s.throttled++
	}
}

// finish writes the answer and logs the request with its route pattern: query strings
// name people (filters).
func (s *Server) finish(w http.ResponseWriter, r *http.Request, pattern string, rep simhttp.Reply, fault bool) {
	s.srv.Answer(w, r, slog.String("route", pattern), rep, fault)
}

// atoi parses a decimal id; anything else is 0, which no object has.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
