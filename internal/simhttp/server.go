// Package simhttp is the HTTP plumbing the API simulators share (classtest,
// datahubtest, hubmistest): a server on a real listener on 127.0.0.1 whose Close ends
// waiting requests, latency that honours a caller giving up, a seeded fault injector,
// counters by endpoint and status, and JSON answers with a request log that never holds
// a query or a body.
//
// What each simulator serves, how it authorises and how its errors read stays in the
// simulator. [Server], [Injector] and [Counter] are safe for concurrent use; a simulator
// still draws faults and counts answers under the lock that serves a request, so a
// request, its fault draw and its count are atomic with respect to the others, and one
// seed gives one sequence of faults for one order of requests.
package simhttp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config configures a [Server].
type Config struct {
	// Name names the simulator in panics and log messages, e.g. "classtest".
	Name string
	// Handler answers the requests.
	Handler http.Handler
	// Unavailable is the answer to a request that arrives once [Server.Close] has begun.
	Unavailable Reply
	// Logger receives the Debug record of each [Server.Answer]. Defaults to discarding.
	Logger *slog.Logger
}

// Server serves a simulator on a listener on 127.0.0.1. It is safe for concurrent use.
type Server struct {
	name        string
	log         *slog.Logger
	handler     http.Handler
	unavailable Reply

	srv     *http.Server
	url     string
	served  chan struct{} // closed when Serve has returned
	closing chan struct{} // closed by Close, ends the waits of Delay

	mu       sync.Mutex
	idle     *sync.Cond // signalled on mu when inflight drops
	inflight int
	closed   bool
}

// Start serves cfg.Handler on a free port of 127.0.0.1 and returns at once. It panics if
// it cannot listen, as net/http/httptest does.
func Start(cfg Config) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("%s: listen: %v", cfg.Name, err))
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		name:        cfg.Name,
		log:         logger,
		handler:     cfg.Handler,
		unavailable: cfg.Unavailable,
		url:         "http://" + ln.Addr().String(),
		served:      make(chan struct{}),
		closing:     make(chan struct{}),
	}
	s.idle = sync.NewCond(&s.mu)
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln) // always ErrServerClosed after Close
	}()
	return s
}

// URL returns the base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.url }

// Close stops the listener, ends open connections and requests waiting in
// [Server.Delay], and waits for running handlers. It is safe to call more than once.
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

// serve counts the request in flight, so Close can wait for it, and runs the handler.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.unavailable.Write(w)
		return
	}
	s.inflight++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.idle.Broadcast()
		s.mu.Unlock()
	}()
	s.handler.ServeHTTP(w, r)
}

// Delay holds r for d, as a slow upstream would, and reports whether the handler may go
// on. It reports false when the caller gave up or Close began meanwhile: the request must
// then have no effect, as one that never arrived, and the handler should end with
// panic(http.ErrAbortHandler), so the connection drops rather than carrying net/http's
// implicit 200.
//
// The body, at most limit bytes, is read first and put back in r.Body (a read error
// stays for the handler's own read), because net/http notices a caller hanging up only
// once the body has been consumed. With d ≤ 0 Delay does nothing.
func (s *Server) Delay(w http.ResponseWriter, r *http.Request, d time.Duration, limit int64) bool {
	if d <= 0 {
		return true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		r.Body = io.NopCloser(errReader{err})
	} else {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return s.wait(r.Context(), d)
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

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Answer writes rep and logs one Debug record of the request: its method, where (the
// path or the route pattern), the status and whether the answer is an injected fault.
// Queries and bodies are never logged: queries may hold a token or an email, bodies
// secrets and personal data.
func (s *Server) Answer(w http.ResponseWriter, r *http.Request, where slog.Attr, rep Reply, fault bool) {
	rep.Write(w)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, s.name+" request",
		slog.String("method", r.Method),
		where,
		slog.Int("status", rep.Status),
		slog.Bool("fault", fault))
}
