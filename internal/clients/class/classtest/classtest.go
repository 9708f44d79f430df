// Package classtest is a stateful, in-memory simulator of the documented Class API
// (users, classes, deferred classes, enrollments, launch links and schedules), served on
// a real listener on 127.0.0.1.
//
// It enforces what the API documents (bearer keys and their scopes, validation, the
// "class exists" refusal, not-found answers, the deferred shapes) and adds what tests of a
// provisioning worker need: fault injection (429, 500, 503, and writes that take effect
// but answer 500), latency, and a record of duplicate side effects such as an enrollment
// posted twice. Everything random is drawn from a seeded generator, so one seed gives one
// sequence of faults and ids for one order of requests.
//
// The simulator never logs request bodies, emails, names or keys.
package classtest

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	// Time zones are validated with time.LoadLocation; the embedded database keeps that
	// working on machines without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/rollcall/rollcall/internal/simhttp"
)

// Scopes of Class API keys, as listed in the API's endpoint table.
const (
	ScopeClassRead       = "class:read"
	ScopeClassWrite      = "class:write"
	ScopeEnrollmentRead  = "enrollment:read"
	ScopeEnrollmentWrite = "enrollment:write"
	ScopeScheduleRead    = "schedule:read"
	ScopeScheduleWrite   = "schedule:write"
	ScopeUserRead        = "user:read"
	ScopeUserWrite       = "user:write"
)

// AllScopes returns every scope the simulator checks.
func AllScopes() []string {
	return []string{
		ScopeClassRead, ScopeClassWrite,
		ScopeEnrollmentRead, ScopeEnrollmentWrite,
		ScopeScheduleRead, ScopeScheduleWrite,
		ScopeUserRead, ScopeUserWrite,
	}
}

// RetryAfterDefault is the Retry-After of injected 429 and 503 answers when
// [Faults.RetryAfter] is zero.
const RetryAfterDefault = simhttp.RetryAfterDefault

// maxBodyBytes bounds a request body; the API's bodies are small.
const maxBodyBytes = 1 << 20

// Options configure a [Server].
type Options struct {
	// Seed seeds fault injection and generated ids. Defaults to 1 when zero. One seed
	// gives the same faults and ids for the same order of requests.
	Seed int64
	// Logger receives one Debug record per request (method, path, status). Defaults to
	// discarding.
	Logger *slog.Logger
}

// Faults configure fault injection. The zero value injects nothing.
type Faults struct {
	// Rate500, Rate503 and Rate429 are the probabilities, per authorised request, of
	// answering that status without doing anything.
	Rate500, Rate503, Rate429 float64
	// AfterEffectRate is the probability that a successful write (POST, PUT, PATCH,
	// DELETE) is applied and then answered 500 anyway, so the caller sees a failure of
	// something that happened.
	AfterEffectRate float64
	// RetryAfter is the Retry-After header of injected 429 and 503 answers, rounded up to
	// whole seconds and at least 1. Defaults to [RetryAfterDefault].
	RetryAfter time.Duration
	// Latency is added before answering every request. A request whose context ends
	// while it waits has no effect.
	Latency time.Duration
}

// Stats count the requests a [Server] has answered.
type Stats struct {
	// Requests counts every request, including refused and faulted ones.
	Requests int
	// ByEndpoint counts requests by "METHOD /path", e.g. "POST /api/v1/classes".
	ByEndpoint map[string]int
	// Faults counts injected faults, after-effect 500s included.
	Faults int
	// ByStatus counts answers by HTTP status.
	ByStatus map[int]int
}

// Server is the simulator. It is safe for concurrent use.
type Server struct {
	srv *simhttp.Server

	mu        sync.Mutex
	keys      map[string]map[string]bool
	deferMode bool
	// Faults and ids draw from separate streams, so the fault sequence depends only on
	// the number of authorised requests, not on which of them created something.
	faults *simhttp.Injector
	idRNG  *rand.Rand

	data   store
	counts simhttp.Counter
}

// New starts a simulator listening on 127.0.0.1 on a free port. It panics if it cannot
// listen, as net/http/httptest does.
func New(opts Options) *Server {
	seed := cmp.Or(opts.Seed, 1)
	s := &Server{
		keys:   make(map[string]map[string]bool),
		faults: simhttp.NewInjector(seed),
		idRNG:  rand.New(rand.NewPCG(uint64(seed), 0x6964)),
		data:   newStore(),
	}
	s.srv = simhttp.Start(simhttp.Config{
		Name:        "classtest",
		Handler:     s,
		Unavailable: errReply(http.StatusServiceUnavailable, "Service Unavailable"),
		Logger:      opts.Logger,
	})
	return s
}

// URL returns the base URL, e.g. http://127.0.0.1:41234; API paths start with /api/v1/.
func (s *Server) URL() string { return s.srv.URL() }

// Close stops the listener, ends open connections and waits for running handlers. It is
// safe to call more than once.
func (s *Server) Close() { s.srv.Close() }

// AddKey registers a bearer key with the given scopes; with none it gets [AllScopes].
// Adding an existing key replaces its scopes.
func (s *Server) AddKey(secret string, scopes ...string) {
	if len(scopes) == 0 {
		scopes = AllScopes()
	}
	set := make(map[string]bool, len(scopes))
	for _, sc := range scopes {
		set[sc] = true
	}
	s.mu.Lock()
	s.keys[secret] = set
	s.mu.Unlock()
}

// RevokeKey removes a key; later requests with it are answered 401.
func (s *Server) RevokeKey(secret string) {
	s.mu.Lock()
	delete(s.keys, secret)
	s.mu.Unlock()
}

// SetFaults replaces the fault configuration.
func (s *Server) SetFaults(f Faults) { s.faults.Set(simhttp.Faults(f)) }

// SetDeferClasses switches deferred mode: while on, POST /api/v1/classes creates deferred
// classes and answers with the deferred 201 shape.
func (s *Server) SetDeferClasses(on bool) {
	s.mu.Lock()
	s.deferMode = on
	s.mu.Unlock()
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts.Counts()
	return Stats{Requests: c.Requests, ByEndpoint: c.ByEndpoint, Faults: c.Faults, ByStatus: c.ByStatus}
}

type handlerFunc func(s *Server, r *http.Request, body []byte) simhttp.Reply

type route struct {
	scope string
	h     handlerFunc
}

// routes maps "METHOD path" to the scope the endpoint table requires and its handler.
var routes = map[string]route{
	"GET /api/v1/classes":    {ScopeClassRead, (*Server).getClasses},
	"POST /api/v1/classes":   {ScopeClassWrite, (*Server).postClass},
	"PATCH /api/v1/classes":  {ScopeClassWrite, (*Server).patchClass},
	"DELETE /api/v1/classes": {ScopeClassWrite, (*Server).deleteClass},

	"GET /api/v1/class/enrollments":        {ScopeEnrollmentRead, (*Server).getEnrollments},
	"POST /api/v1/class/enrollments":       {ScopeEnrollmentWrite, (*Server).postEnrollment},
	"PUT /api/v1/class/enrollments":        {ScopeEnrollmentWrite, (*Server).putEnrollment},
	"DELETE /api/v1/class/enrollments":     {ScopeEnrollmentWrite, (*Server).deleteEnrollment},
	"GET /api/v1/class/enrollments/launch": {ScopeEnrollmentRead, (*Server).getLaunch},

	"GET /api/v1/schedules":    {ScopeScheduleRead, (*Server).getSchedules},
	"POST /api/v1/schedules":   {ScopeScheduleWrite, (*Server).postSchedule},
	"DELETE /api/v1/schedules": {ScopeScheduleWrite, (*Server).deleteSchedule},

	"GET /api/v1/users":    {ScopeUserRead, (*Server).getUsers},
	"PUT /api/v1/users":    {ScopeUserWrite, (*Server).putUser},
	"DELETE /api/v1/users": {ScopeUserWrite, (*Server).deleteUser},
}

// knownPaths answers 405 rather than 404 for a known path with another method.
var knownPaths = func() map[string]bool {
	m := map[string]bool{}
	for k := range routes {
		_, p, _ := strings.Cut(k, " ")
		m[p] = true
	}
	return m
}()

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint := r.Method + " " + r.URL.Path
	if !s.srv.Delay(w, r, s.faults.Latency(), maxBodyBytes) {
		s.counts.Abandon(endpoint)
		panic(http.ErrAbortHandler)
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var rep simhttp.Reply
	var fault bool
	if err != nil {
		rep = errReply(http.StatusBadRequest, "Request body could not be read")
		s.counts.Count(endpoint, rep.Status, false)
	} else {
		rep, fault = s.handle(r, endpoint, body)
	}
	// The path only: the query may hold an email.
	s.srv.Answer(w, r, slog.String("path", r.URL.Path), rep, fault)
}

// handle authorises, injects faults and runs the endpoint, all under one lock, so a
// request and its fault draw are atomic with respect to other requests.
func (s *Server) handle(r *http.Request, endpoint string, body []byte) (simhttp.Reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep, fault := s.handleLocked(r, body)
	s.counts.Count(endpoint, rep.Status, fault)
	return rep, fault
}

// handleLocked answers an authorised request or says why not; s.mu must be held.
func (s *Server) handleLocked(r *http.Request, body []byte) (simhttp.Reply, bool) {
	// A request without a bearer key looks up "", which only AddKey("") registers: a
	// test bug, not a login.
	scopes, ok := s.keys[simhttp.BearerToken(r)]
	if !ok {
		return errReply(http.StatusUnauthorized, "Unauthorized"), false
	}
	rt, ok := routes[r.Method+" "+r.URL.Path]
	if !ok {
		if knownPaths[r.URL.Path] {
			return errReply(http.StatusMethodNotAllowed, "Method Not Allowed"), false
		}
		return errReply(http.StatusNotFound, "Not Found"), false
	}
	if !scopes[rt.scope] {
		return errReply(http.StatusForbidden, "Api key scope "+rt.scope+" required"), false
	}

	// Both numbers are drawn on every authorised request, so the sequence does not
	// depend on which requests were writes or succeeded.
	fault, faulted := s.faults.Draw()
	after := s.faults.DrawAfterEffect()
	if faulted {
		return fault.Reply(errorBody{Error: http.StatusText(fault.Status)}), true
	}
	rep := rt.h(s, r, body)
	if r.Method != http.MethodGet && rep.Status < 300 && after {
		return errReply(http.StatusInternalServerError, "Internal Server Error"), true
	}
	return rep, false
}

// errorBody is the API's error shape.
type errorBody struct {
	Error string              `json:"error"`
	Data  map[string][]string `json:"data,omitempty"`
}

func errReply(status int, msg string) simhttp.Reply {
	return simhttp.JSON(status, errorBody{Error: msg})
}

func successReply() simhttp.Reply {
	return simhttp.JSON(http.StatusOK, map[string]string{"message": "Success"})
}

// decodeBody decodes a JSON object body into v. An empty body is an empty object. A
// value of the wrong type is a validation error naming the field.
func decodeBody(body []byte, v any) *simhttp.Reply {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		fe := fieldErrors{}
		fe.add(te.Field, "The "+attr(te.Field)+" must be "+typeName(te.Type.Kind().String())+".")
		rep := fe.reply()
		return &rep
	}
	rep := errReply(http.StatusBadRequest, "Malformed JSON body")
	return &rep
}

func typeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case kind == "slice":
		return "an array"
	case kind == "struct", kind == "map":
		return "an object"
	}
	return "of another type"
}
