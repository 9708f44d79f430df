// Package datahubtest is a stateful, in-memory simulator of the documented DataHub API
// (OAuth2 client credentials, the roster resources under datahub/services/v1 and the
// event feed), served on a real listener on 127.0.0.1.
//
// # What it serves
//
//   - POST /datahub/oauth/token and POST /datahub/oauth/auth (the document names both):
//     HTTP Basic client_id:client_secret and the form body grant_type=client_credentials
//     give {"access_token","token_type":"bearer","expires_in"}; bad credentials are 401
//     {"error":"invalid_client"}, another grant 400 {"error":"unsupported_grant_type"}.
//     Tokens expire after [Options.TokenTTL] by [Options.Now], or all at once with
//     [Server.ExpireTokens].
//   - GET /datahub/services/v1/... with "Authorization: Bearer <token>" or, as the
//     document also allows, the access_token query parameter; without a valid token 401.
//     Lists of districts, schools, teachers, students, sections, contacts, district_admins,
//     school_admins and events, single entities by id, and the related lists and entities
//     of the document (/sections/{id}/students, /teachers/{id}/school, ...). Contacts and
//     admins are always empty; /districts/{id}/status and /teachers/{id}/grade_levels are
//     not served.
//
// # Lists and paging
//
// A list answers the document's shape:
//
//	{"data":[{"data":{...},"uri":"/v1/teachers/<id>"}, ...],
//	 "paging":{"current":1,"total":2,"count":148},
//	 "links":[{"rel":"NEXT","uri":"/v1/teachers?search_token=2.2.148.FORWARD.<id>"},
//	          {"rel":"SELF","uri":"/v1/teachers"}]}
//
// paging.count counts records, paging.total pages (at least 1, so an empty list has one
// empty page), paging.current is the page answered. limit (default 100, at most 1000)
// and page (1-based) are honoured. Records are in id order, which is creation order.
//
// The NEXT uri is relative to the services root, as in the document: a client resolves it
// as <base>/datahub/services + uri (for example http://127.0.0.1:1234/datahub/services/v1/
// events?search_token=...) and must treat it as opaque. The simulator's search_token is
// 2.<page>.<count>.FORWARD.<last id>, and it continues after that last id, not at an
// offset, so records appended between two pages are neither skipped nor repeated; a
// non-default limit is carried in the NEXT uri. search_token also accepts a whole NEXT
// uri, as the document's wording allows.
//
// Resource lists carry a NEXT link only while more records follow. The event feed (and
// the per-entity and per-district feeds such as /sections/{id}/events and
// /districts/{id}/events, whose NEXT links lead back to themselves) always carries one, so a poller can
// keep following it: after the last event answered, or, on an empty page, the token it
// was given (or a token anchored at the current head when it was given none). Events
// older than [Options.FeedHorizon] are dropped from the feed; a search_token whose last
// id was dropped, or that the simulator never issued, is answered 400
// {"error":"invalid search_token"}, which tells a poller to resynchronise.
//
// # Districts
//
// New makes one district, the default of every object added without one, so the lists
// under /districts/{id}/ hold what the top-level lists hold. [Server.AddDistrict] adds
// another: the top-level lists and /v1/events then hold both districts' records, and
// each district's lists and feed only its own. An event belongs to the district its
// object names, or to the first district when it names none.
//
// # Scenarios
//
// [Server.AddTeacher], [Server.Enroll], [Server.DeleteSection] and the other scenario
// functions change the roster and append the matching Clever-style event, so a test
// drives the feed the way a district's edits would. [Server.Populate] builds a school in
// one call; [Server.AddEvent] appends any event, including types and objects a client
// must skip or reject.
//
// Fault injection (429, 500, 503, latency) draws from a seeded generator, so one seed
// gives one sequence of faults for one order of requests. The simulator never logs
// names, emails, tokens or secrets, nor query strings, which may hold a token.
package datahubtest

import (
	"cmp"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rollcall/rollcall/internal/simhttp"
)

// Defaults of [Options] and [Faults].
const (
	ClientIDDefault     = "client-id"
	ClientSecretDefault = "client-secret"
	// TokenTTLDefault is the expires_in of the document's example.
	TokenTTLDefault = 7199 * time.Second
	// FeedHorizonDefault is how long the feed keeps an event: about 30 days, as DataHub's.
	FeedHorizonDefault = 30 * 24 * time.Hour
	// RetryAfterDefault is the Retry-After of injected 429 and 503 answers when
	// [Faults.RetryAfter] is zero.
	RetryAfterDefault = simhttp.RetryAfterDefault
	// LimitDefault is the page size when a list request gives no limit.
	LimitDefault = 100
	// LimitMax is the largest page size; a larger limit is lowered to it.
	LimitMax = 1000
)

// Paths the simulator serves.
const (
	// TokenPath and AuthPath both issue tokens: the document names both.
	TokenPath = "/datahub/oauth/token"
	AuthPath  = "/datahub/oauth/auth"
	// ServicesRoot is what relative uris in links ("/v1/...") are resolved against.
	ServicesRoot = "/datahub/services"
	apiPrefix    = ServicesRoot + "/v1/"
)

// maxBodyBytes bounds a request body; the token request is one short form.
const maxBodyBytes = 1 << 16

// Options configure a [Server].
type Options struct {
	// Seed seeds fault injection, tokens, the ids' fixed middle bytes and the data of
	// [Server.Populate]. Defaults to 1 when zero.
	Seed int64
	// ClientID and ClientSecret are the only credentials the token endpoint accepts.
	// Default to [ClientIDDefault] and [ClientSecretDefault].
	ClientID, ClientSecret string
	// TokenTTL is how long an access token is accepted, and its expires_in. Defaults to
	// [TokenTTLDefault].
	TokenTTL time.Duration
	// Now is the simulator's clock: token expiry, event and object times, ids and the
	// feed horizon follow it. Defaults to time.Now.
	Now func() time.Time
	// FeedHorizon is how long the feed keeps an event: events created longer ago than
	// this (by Now) are dropped. Defaults to [FeedHorizonDefault].
	FeedHorizon time.Duration
	// Schools is the number of schools in the district; [Server.Populate] spreads its
	// objects over them. Defaults to 1 when zero or negative.
	Schools int
	// Logger receives one Debug record per request (method, path, status). Defaults to
	// discarding.
	Logger *slog.Logger
}

// Faults configure fault injection. The zero value injects nothing.
type Faults struct {
	// Rate500, Rate503 and Rate429 are the probabilities, per authorised request (token
	// requests with good credentials included), of answering that status instead.
	Rate500, Rate503, Rate429 float64
	// Latency is added before answering every request. A request whose context ends while
	// it waits has no effect and gets no answer.
	Latency time.Duration
	// RetryAfter is the Retry-After header of injected 429 and 503 answers, rounded up to
	// whole seconds and at least 1. Defaults to [RetryAfterDefault].
	RetryAfter time.Duration
}

// Stats count the requests a [Server] has answered.
type Stats struct {
	// Requests counts every request, refused and faulted ones included.
	Requests int
	// ByEndpoint counts requests by "METHOD pattern", with ids replaced by {id}, e.g.
	// "GET /datahub/services/v1/sections/{id}/students" or "POST /datahub/oauth/token".
	// A path the simulator does not serve is counted as it is.
	ByEndpoint map[string]int
	// ByStatus counts answers by HTTP status.
	ByStatus map[int]int
	// TokensIssued counts access tokens handed out.
	TokensIssued int
	// Faults counts injected faults.
	Faults int
}

// Server is the simulator. It is safe for concurrent use.
type Server struct {
	now          func() time.Time
	clientID     string
	clientSecret string
	ttl          time.Duration
	horizon      time.Duration

	srv *simhttp.Server

	mu     sync.Mutex
	tokens map[string]time.Time // access token → expiry
	// Separate streams, so the fault sequence depends only on the number of authorised
	// requests, and Populate's data only on the calls of Populate.
	faults   *simhttp.Injector
	tokenRNG *rand.Rand
	popRNG   *rand.Rand
	ids      idGen

	data         store
	counts       simhttp.Counter
	tokensIssued int
}

// New starts a simulator listening on 127.0.0.1 on a free port, with one district and
// [Options.Schools] schools (created without events, so the feed starts empty). It panics if it cannot
// listen, as net/http/httptest does.
func New(opts Options) *Server {
	seed := cmp.Or(opts.Seed, 1)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		now:          now,
		clientID:     cmp.Or(opts.ClientID, ClientIDDefault),
		clientSecret: cmp.Or(opts.ClientSecret, ClientSecretDefault),
		ttl:          cmp.Or(opts.TokenTTL, TokenTTLDefault),
		horizon:      cmp.Or(opts.FeedHorizon, FeedHorizonDefault),
		tokens:       map[string]time.Time{},
		faults:       simhttp.NewInjector(seed),
		tokenRNG:     rand.New(rand.NewPCG(uint64(seed), 0x746f6b656e)),
		popRNG:       rand.New(rand.NewPCG(uint64(seed), 0x706f70)),
		data:         newStore(),
	}
	s.ids.machine = rand.New(rand.NewPCG(uint64(seed), 0x6964)).Uint64()

	t := normTime(now())
	first := district{ID: s.ids.next(t), Name: "Springfield Unified School District"}
	s.data.districts = []district{first}
	n := max(opts.Schools, 1)
	for i := 1; i <= n; i++ {
		// A district of one school keeps the name it always had.
		name := "School " + strconv.Itoa(i)
		if n == 1 {
			name = "Springfield Elementary"
		}
		s.data.schools = append(s.data.schools, school{
			ID: s.ids.next(t), Name: name, District: first.ID,
			SISID: strconv.Itoa(i), SchoolNumber: strconv.Itoa(100 + i),
			LowGrade: "Kindergarten", HighGrade: "12",
			Created: fmtTime(t), LastModified: fmtTime(t),
		})
	}

	s.srv = simhttp.Start(simhttp.Config{
		Name:        "datahubtest",
		Handler:     s,
		Unavailable: errReply(http.StatusServiceUnavailable, "service unavailable"),
		Logger:      opts.Logger,
	})
	return s
}

// URL returns the base URL, e.g. http://127.0.0.1:41234. The API is under
// URL()+"/datahub/services/v1/", tokens at URL()+[TokenPath] and URL()+[AuthPath].
func (s *Server) URL() string { return s.srv.URL() }

// Close stops the listener, ends open connections and waits for running handlers. It is
// safe to call more than once.
func (s *Server) Close() { s.srv.Close() }

// SetFaults replaces the fault configuration.
func (s *Server) SetFaults(f Faults) {
	s.faults.Set(simhttp.Faults{
		Rate500: f.Rate500, Rate503: f.Rate503, Rate429: f.Rate429,
		Latency: f.Latency, RetryAfter: f.RetryAfter,
	})
}

// ExpireTokens makes every token issued so far answer 401, as when the upstream rotates
// its keys. Tokens issued afterwards work.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	clear(s.tokens)
	s.mu.Unlock()
}

// DistrictID returns the id of the simulator's first district, made by New: the default
// district of objects added without one.
func (s *Server) DistrictID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data.districts[0].ID
}

// AddDistrict adds another district with one school, both without events, as when the
// credentials of a tenant come to see a second district. It returns their ids. The new
// district's objects are made by [Server.PopulateDistrict], or by the scenario
// functions given its id as District; its events are in /v1/events and in its own
// /v1/districts/{id}/events, never in another district's.
func (s *Server) AddDistrict(name string) (districtID, schoolID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := normTime(s.now())
	d := district{ID: s.ids.next(t), Name: name}
	s.data.districts = append(s.data.districts, d)
	n := len(s.data.districts)
	sc := school{
		ID: s.ids.next(t), Name: name + " School", District: d.ID,
		SISID: "D" + strconv.Itoa(n), SchoolNumber: strconv.Itoa(900 + n),
		LowGrade: "Kindergarten", HighGrade: "12",
		Created: fmtTime(t), LastModified: fmtTime(t),
	}
	s.data.schools = append(s.data.schools, sc)
	return d.ID, sc.ID
}

// SchoolID returns the id of the simulator's first school, the default school of objects
// added without one.
func (s *Server) SchoolID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data.schools[0].ID
}

// SchoolIDs returns the ids of the simulator's schools in creation order, which is id
// order; the first is [Server.SchoolID], and the first [Options.Schools] are the first
// district's.
func (s *Server) SchoolIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.data.schools))
	for i, sc := range s.data.schools {
		ids[i] = sc.ID
	}
	return ids
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts.Counts()
	return Stats{
		Requests: c.Requests, ByEndpoint: c.ByEndpoint, ByStatus: c.ByStatus,
		TokensIssued: s.tokensIssued, Faults: c.Faults,
	}
}

func errReply(status int, msg string) simhttp.Reply {
	return simhttp.JSON(status, map[string]string{"error": msg})
}

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, id := route(r.URL.Path)
	endpoint := r.Method + " " + r.URL.Path
	if rt != nil {
		endpoint = r.Method + " " + rt.pattern
	}
	if !s.srv.Delay(w, r, s.faults.Latency(), maxBodyBytes) {
		s.counts.Abandon(endpoint)
		panic(http.ErrAbortHandler)
	}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))

	s.mu.Lock()
	var rep simhttp.Reply
	var fault bool
	switch {
	case r.URL.Path == TokenPath || r.URL.Path == AuthPath:
		rep, fault = s.tokenLocked(r, body, readErr)
	case strings.HasPrefix(r.URL.Path, apiPrefix):
		rep, fault = s.apiLocked(r, rt, id)
	default:
		rep = errReply(http.StatusNotFound, "not found")
	}
	s.counts.Count(endpoint, rep.Status, fault)
	s.mu.Unlock()
	// The path only: the query may hold an access token.
	s.srv.Answer(w, r, slog.String("path", r.URL.Path), rep, fault)
}

// tokenLocked answers the token endpoints; s.mu must be held.
func (s *Server) tokenLocked(r *http.Request, body []byte, readErr error) (simhttp.Reply, bool) {
	if r.Method != http.MethodPost {
		rep := errReply(http.StatusMethodNotAllowed, "method not allowed")
		rep.SetHeader("Allow", http.MethodPost)
		return rep, false
	}
	id, secret, ok := r.BasicAuth()
	if !ok || !equalSecret(id, s.clientID) || !equalSecret(secret, s.clientSecret) {
		rep := errReply(http.StatusUnauthorized, "invalid_client")
		rep.SetHeader("WWW-Authenticate", `Basic realm="datahub"`)
		return rep, false
	}
	form, err := url.ParseQuery(string(body))
	if readErr != nil || err != nil {
		return errReply(http.StatusBadRequest, "invalid_request"), false
	}
	grant := form.Get("grant_type")
	if grant == "" {
		grant = r.URL.Query().Get("grant_type")
	}
	switch grant {
	case "client_credentials":
	case "":
		return errReply(http.StatusBadRequest, "invalid_request"), false
	default:
		return errReply(http.StatusBadRequest, "unsupported_grant_type"), false
	}
	if f, ok := s.faults.Draw(); ok {
		return faultReply(f), true
	}

	var raw [16]byte
	for i := range raw {
		raw[i] = byte(s.tokenRNG.Uint32())
	}
	token := hex.EncodeToString(raw[:])
	s.tokens[token] = s.now().Add(s.ttl)
	s.tokensIssued++
	rep := simhttp.JSON(http.StatusOK, map[string]any{
		"access_token": token,
		"token_type":   "bearer",
		"expires_in":   int(s.ttl / time.Second),
	})
	rep.SetHeader("Cache-Control", "no-store")
	return rep, false
}

func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// apiLocked authorises, injects faults and runs an endpoint of the services API. s.mu
// is held throughout, so a request and its fault draw are atomic with respect to other
// requests and to scenario calls.
func (s *Server) apiLocked(r *http.Request, rt *apiRoute, id string) (simhttp.Reply, bool) {
	if rep, ok := s.authorise(r); !ok {
		return rep, false
	}
	if rt == nil {
		return errReply(http.StatusNotFound, "not found"), false
	}
	if r.Method != http.MethodGet {
		rep := errReply(http.StatusMethodNotAllowed, "method not allowed")
		rep.SetHeader("Allow", http.MethodGet)
		return rep, false
	}
	if f, ok := s.faults.Draw(); ok {
		return faultReply(f), true
	}
	s.pruneLocked()
	return rt.h(s, request{
		id:    id,
		path:  strings.TrimPrefix(r.URL.Path, ServicesRoot),
		query: r.URL.Query(),
	}), false
}

// authorise checks the bearer token (header first, then the access_token parameter);
// s.mu must be held.
func (s *Server) authorise(r *http.Request) (simhttp.Reply, bool) {
	token := simhttp.BearerToken(r)
	if token == "" {
		token = r.URL.Query().Get("access_token")
	}
	if token == "" {
		rep := errReply(http.StatusUnauthorized, "unauthorized")
		rep.SetHeader("WWW-Authenticate", `Bearer realm="datahub"`)
		return rep, false
	}
	exp, ok := s.tokens[token]
	if ok && !s.now().Before(exp) {
		delete(s.tokens, token)
		ok = false
	}
	if !ok {
		rep := errReply(http.StatusUnauthorized, "invalid_token")
		rep.SetHeader("WWW-Authenticate", `Bearer realm="datahub", error="invalid_token"`)
		return rep, false
	}
	return simhttp.Reply{}, true
}

// faultReply is the answer of an injected fault.
func faultReply(f simhttp.Fault) simhttp.Reply {
	return f.Reply(map[string]string{"error": strings.ToLower(http.StatusText(f.Status))})
}
