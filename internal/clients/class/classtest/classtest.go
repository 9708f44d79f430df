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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	// Time zones are validated with time.LoadLocation; the embedded database keeps that
	// working on machines without /usr/share/zoneinfo.
	_ "time/tzdata"
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
const RetryAfterDefault = time.Second

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
	log     *slog.Logger
	srv     *http.Server
	url     string
	served  chan struct{} // closed when Serve has returned
	closing chan struct{} // closed by Close, ends latency waits

	mu       sync.Mutex
	idle     *sync.Cond // signalled on s.mu when inflight drops
	inflight int
	closed   bool

	keys      map[string]map[string]bool
	faults    Faults
	deferMode bool
	// Faults and ids draw from separate streams, so the fault sequence depends only on
	// the number of authorised requests, not on which of them created something.
	faultRNG *rand.Rand
	idRNG    *rand.Rand

	data  store
	stats Stats
}

// New starts a simulator listening on 127.0.0.1 on a free port. It panics if it cannot
// listen, as net/http/httptest does.
func New(opts Options) *Server {
	seed := opts.Seed
	if seed == 0 {
		seed = 1
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("classtest: listen: %v", err))
	}
	s := &Server{
		log:      logger,
		url:      "http://" + ln.Addr().String(),
		served:   make(chan struct{}),
		closing:  make(chan struct{}),
		keys:     make(map[string]map[string]bool),
		faultRNG: rand.New(rand.NewPCG(uint64(seed), 0x6661756c74)),
		idRNG:    rand.New(rand.NewPCG(uint64(seed), 0x6964)),
		data:     newStore(),
		stats:    Stats{ByEndpoint: map[string]int{}, ByStatus: map[int]int{}},
	}
	s.idle = sync.NewCond(&s.mu)
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln) // always ErrServerClosed after Close
	}()
	return s
}

// URL returns the base URL, e.g. http://127.0.0.1:41234; API paths start with /api/v1/.
func (s *Server) URL() string { return s.url }

// Close stops the listener, ends open connections and waits for running handlers. It is
// safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()

	_ = s.srv.Close()
	<-s.served

	s.mu.Lock()
	for s.inflight > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
}

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
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

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
	out := Stats{
		Requests:   s.stats.Requests,
		Faults:     s.stats.Faults,
		ByEndpoint: make(map[string]int, len(s.stats.ByEndpoint)),
		ByStatus:   make(map[int]int, len(s.stats.ByStatus)),
	}
	for k, v := range s.stats.ByEndpoint {
		out.ByEndpoint[k] = v
	}
	for k, v := range s.stats.ByStatus {
		out.ByStatus[k] = v
	}
	return out
}

// reply is a handler's answer before it is written.
type reply struct {
	status     int
	body       any
	retryAfter int // seconds; 0 means no header
}

type handlerFunc func(s *Server, r *http.Request, body []byte) reply

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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeReply(w, errReply(http.StatusServiceUnavailable, "Service Unavailable"))
		return
	}
	s.inflight++
	latency := s.faults.Latency
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.idle.Broadcast()
		s.mu.Unlock()
	}()

	endpoint := r.Method + " " + r.URL.Path
	if latency > 0 && !s.wait(r.Context(), latency) {
		// The caller gave up (or the server is closing) before the answer: nothing
		// happens, as with a request that never arrived, and the connection is dropped
		// rather than answered with net/http's implicit 200.
		s.mu.Lock()
		s.stats.Requests++
		s.stats.ByEndpoint[endpoint]++
		s.mu.Unlock()
		panic(http.ErrAbortHandler)
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var rep reply
	var fault bool
	if err != nil {
		rep = errReply(http.StatusBadRequest, "Request body could not be read")
		s.mu.Lock()
		s.count(endpoint, rep.status, false)
		s.mu.Unlock()
	} else {
		rep, fault = s.handle(r, endpoint, body)
	}
	writeReply(w, rep)
	// Only method, path and status: the query may hold an email and the body personal data.
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "classtest request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rep.status),
		slog.Bool("fault", fault))
}

// wait sleeps for d and reports whether it slept the whole time.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// handle authorises, injects faults and runs the endpoint, all under one lock, so a
// request and its fault draw are atomic with respect to other requests.
func (s *Server) handle(r *http.Request, endpoint string, body []byte) (reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()

	scopes, ok := s.keys[bearer(r)]
	if !ok {
		rep := errReply(http.StatusUnauthorized, "Unauthorized")
		s.count(endpoint, rep.status, false)
		return rep, false
	}
	rt, ok := routes[endpoint]
	if !ok {
		rep := errReply(http.StatusNotFound, "Not Found")
		if knownPaths[r.URL.Path] {
			rep = errReply(http.StatusMethodNotAllowed, "Method Not Allowed")
		}
		s.count(endpoint, rep.status, false)
		return rep, false
	}
	if !scopes[rt.scope] {
		rep := errReply(http.StatusForbidden, "Api key scope "+rt.scope+" required")
		s.count(endpoint, rep.status, false)
		return rep, false
	}

	// Both numbers are drawn on every authorised request, so the sequence does not
	// depend on which requests were writes or succeeded.
	f := s.faults
	u, after := s.faultRNG.Float64(), s.faultRNG.Float64()
	retryAfter := retryAfterSeconds(f.RetryAfter)
	switch {
	case u < f.Rate429:
		rep := errReply(http.StatusTooManyRequests, "Too Many Requests")
		rep.retryAfter = retryAfter
		s.count(endpoint, rep.status, true)
		return rep, true
	case u < f.Rate429+f.Rate503:
		rep := errReply(http.StatusServiceUnavailable, "Service Unavailable")
		rep.retryAfter = retryAfter
		s.count(endpoint, rep.status, true)
		return rep, true
	case u < f.Rate429+f.Rate503+f.Rate500:
		rep := errReply(http.StatusInternalServerError, "Internal Server Error")
		s.count(endpoint, rep.status, true)
		return rep, true
	}

	rep := rt.h(s, r, body)
	if r.Method != http.MethodGet && rep.status < 300 && after < f.AfterEffectRate {
		rep = errReply(http.StatusInternalServerError, "Internal Server Error")
		s.count(endpoint, rep.status, true)
		return rep, true
	}
	s.count(endpoint, rep.status, false)
	return rep, false
}

// count records one answered request; s.mu must be held.
func (s *Server) count(endpoint string, status int, fault bool) {
	s.stats.Requests++
	s.stats.ByEndpoint[endpoint]++
	s.stats.ByStatus[status]++
	if fault {
		s.stats.Faults++
	}
}

func bearer(r *http.Request) string {
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return "" // never a registered key: AddKey("") would be a test bug, not a login
	}
	return secret
}

func retryAfterSeconds(d time.Duration) int {
	if d <= 0 {
		d = RetryAfterDefault
	}
	return max(1, int(math.Ceil(d.Seconds())))
}

func writeReply(w http.ResponseWriter, rep reply) {
	b, err := json.Marshal(rep.body)
	if err != nil {
		// Every body is built from plain values; failing here is a simulator bug.
		panic(fmt.Sprintf("classtest: encode reply: %v", err))
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if rep.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(rep.retryAfter))
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(append(b, '\n'))
}

// errorBody is the API's error shape.
type errorBody struct {
	Error string              `json:"error"`
	Data  map[string][]string `json:"data,omitempty"`
}

func errReply(status int, msg string) reply {
	return reply{status: status, body: errorBody{Error: msg}}
}

func answer(status int, body any) reply { return reply{status: status, body: body} }

func successReply() reply {
	return answer(http.StatusOK, map[string]string{"message": "Success"})
}

// decodeBody decodes a JSON object body into v. An empty body is an empty object. A
// value of the wrong type is a validation error naming the field.
func decodeBody(body []byte, v any) *reply {
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
