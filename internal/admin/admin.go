// Package admin is the administrative HTTP server of each rollcall binary:
// /healthz says the process is alive, /readyz runs readiness checks (NATS
// connected, streams present, …) and /metrics serves the Prometheus
// exposition. It listens on its own address (config key admin.listen), away
// from anything public.
package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of [Config].
const (
	ListenDefault          = "127.0.0.1:9090"
	CheckTimeoutDefault    = 2 * time.Second
	ShutdownTimeoutDefault = 5 * time.Second
)

// Config configures a [Server].
type Config struct {
	// Listen is the host:port to listen on; port 0 picks a free one.
	// Defaults to [ListenDefault].
	Listen string
	// Logger receives readiness changes and serving errors. Defaults to a
	// logger that discards.
	Logger *slog.Logger
	// Metrics serves /metrics, normally telemetry's MetricsHandler. Without
	// it /metrics answers 404.
	Metrics http.Handler
	// Checks are run, concurrently, by every /readyz request; the process is
	// ready when all pass. None means always ready.
	Checks []Check
	// CheckTimeout bounds each /readyz run, shorter than a probe's own
	// timeout so the answer names the check that hung rather than the probe
	// failing blind. Defaults to [CheckTimeoutDefault].
	CheckTimeout time.Duration
	// ShutdownTimeout bounds the wait for requests in flight once the
	// server's context ends. Defaults to [ShutdownTimeoutDefault].
	ShutdownTimeout time.Duration
}

// Check is one readiness check: Func returns nil when the dependency is
// usable. It must respect ctx; one that does not is reported as timed out
// all the same, and left to finish in the background.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Func is a check named name running f.
func Func(name string, f func(ctx context.Context) error) Check {
	return Check{Name: name, Func: f}
}

// Server is the admin HTTP server. Build it with [New], then [Server.Start].
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler

	mu      sync.Mutex
	addr    string
	started bool
	done    chan struct{}
	err     error
	// failing holds the checks that failed at the last /readyz, so only a
	// change of state is logged, not every probe.
	failing map[string]bool
}

// New returns a server for cfg, with defaults filled in. It does not listen
// yet.
func New(cfg Config) *Server {
	cfg.Listen = cmp.Or(cfg.Listen, ListenDefault)
	cfg.CheckTimeout = cmp.Or(cfg.CheckTimeout, CheckTimeoutDefault)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, ShutdownTimeoutDefault)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, log: log, done: make(chan struct{}), failing: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	s.handler = mux
	return s
}

// Handler is the server's routes, for mounting elsewhere or testing without
// a listener.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on the configured address and serves in the background
// until ctx ends, then shuts down gracefully; [Server.Wait] waits for that.
// It returns the address actually listened on (useful with port 0).
func (s *Server) Start(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return "", errors.New("admin: server already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("admin: listening on %s: %w", s.cfg.Listen, err)
	}
	s.started = true
	s.addr = ln.Addr().String()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		// A probe must not hold the process: the readiness answer comes
		// within CheckTimeout, and nothing here streams.
		WriteTimeout: s.cfg.CheckTimeout + 10*time.Second,
		BaseContext:  func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	go func() {
		var errs []error
		select {
		case err := <-serveErr:
			// Serve failed by itself; nothing left to shut down.
			errs = append(errs, fmt.Errorf("admin: serving on %s: %w", s.addr, err))
		case <-ctx.Done():
			// The shutdown gets its own deadline: ctx is already over, and
			// requests in flight deserve their answers.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
			if err := srv.Shutdown(sctx); err != nil {
				errs = append(errs, fmt.Errorf("admin: shutting down %s: %w", s.addr, err))
				_ = srv.Close()
			}
			cancel()
			if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, fmt.Errorf("admin: serving on %s: %w", s.addr, err))
			}
		}
		s.mu.Lock()
		s.err = errors.Join(errs...)
		s.mu.Unlock()
		close(s.done)
	}()
	s.log.Info("admin: listening", slog.String("addr", s.addr))
	return s.addr, nil
}

// Addr is the address listened on, "" before [Server.Start].
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Wait blocks until the server has stopped after its context ended (or
// serving failed), and returns what went wrong, if anything. It returns at
// once, with nil, if the server was never started.
func (s *Server) Wait() error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok\n")
}

// Readiness is the JSON body of /readyz.
type Readiness struct {
	Status string        `json:"status"` // "ok" or "unavailable"
	Checks []CheckResult `json:"checks"`
}

// CheckResult is one check's outcome in [Readiness].
type CheckResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ready := s.runChecks(r.Context())
	status := http.StatusOK
	if ready.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ready)
}

// runChecks runs every check concurrently under one deadline, so /readyz
// answers within CheckTimeout however many checks hang.
func (s *Server) runChecks(ctx context.Context) Readiness {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	results := make([]CheckResult, len(s.cfg.Checks))
	var wg sync.WaitGroup
	for i, c := range s.cfg.Checks {
		wg.Go(func() { results[i] = runCheck(ctx, c) })
	}
	wg.Wait()
	ready := Readiness{Status: "ok", Checks: results}
	for _, res := range results {
		if !res.OK {
			ready.Status = "unavailable"
		}
	}
	s.logChanges(results)
	return ready
}

func runCheck(ctx context.Context, c Check) CheckResult {
	if c.Func == nil {
		return CheckResult{Name: c.Name, Error: "no check function"}
	}
	// Buffered, so a check that outlives the deadline can still send and
	// end instead of leaking forever.
	errc := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				errc <- fmt.Errorf("check panicked: %v", p)
			}
		}()
		errc <- c.Func(ctx)
	}()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = fmt.Errorf("no answer: %w", context.Cause(ctx))
	}
	if err != nil {
		return CheckResult{Name: c.Name, Error: err.Error()}
	}
	return CheckResult{Name: c.Name, OK: true}
}

func (s *Server) logChanges(results []CheckResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range results {
		was := s.failing[r.Name]
		switch {
		case !r.OK && !was:
			s.failing[r.Name] = true
			s.log.Warn("admin: readiness check failing", slog.String("check", r.Name), slog.String("error", r.Error))
		case r.OK && was:
			delete(s.failing, r.Name)
			s.log.Info("admin: readiness check passing again", slog.String("check", r.Name))
		}
	}
}
