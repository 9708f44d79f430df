// Package app wires the binaries: the poller and the worker as
// cmd/poller and cmd/worker run them, and as cmd/demo runs both in one
// process. Each connects to NATS, ensures the streams, sets up traces,
// metrics and the admin port (/healthz, /readyz, /metrics), and runs until
// its context ends.
package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/rollcall/rollcall/internal/admin"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/httpx"
	"github.com/rollcall/rollcall/internal/natsconn"
	"github.com/rollcall/rollcall/internal/telemetry"
)

// Default admin addresses of the binaries, when admin.listen is empty. They
// differ so that a poller and a worker can share a host.
const (
	WorkerAdminDefault = "127.0.0.1:9090"
	PollerAdminDefault = "127.0.0.1:9091"
)

// publishAckTimeout ends the wait for an async publish's acknowledgement (the
// worker's audit records, the pollers' batches): one lost with a connection
// would otherwise stay pending in nats.go for ever. Far above a healthy
// server's answer, even with sync_interval: always.
const publishAckTimeout = 30 * time.Second

// Options are what a caller adds to the configuration.
type Options struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Telemetry, if set, is used as it is (tests, the demo). Otherwise it
	// is set up from the standard OTEL_* environment, made global, and
	// shut down at the end.
	Telemetry *telemetry.Telemetry
	// Holder names this process in leases and key claims; defaults to host
	// and pid.
	Holder string
	// AdminReady, if set, receives the admin server's address once it
	// listens. There is no admin server when admin.listen is empty.
	AdminReady func(addr string)

	// WebhookListen turns on the poller's DataHub webhook endpoint.
	WebhookListen string
	// WebhookReady, if set, receives the webhook's address once it listens.
	WebhookReady func(addr string)
	// OnDataHubSource, if set, receives each DataHub source as it starts.
	OnDataHubSource func(tenant string, s *datahubsource.Source)

	// OnOutcome, if set, receives every delivery's outcome in the worker,
	// after the metrics have recorded it (the demo's summary).
	OnOutcome func(handlers.Outcome)
	// HUBmisTimeScale is how many times faster than real time the HUBmis
	// servers' rate limits run: 1 (the default) for HUBmis itself, more for
	// a fast-forwarded simulator (the demo). The clients' limiters and each
	// cycle's request budget follow it.
	HUBmisTimeScale float64
}

func (o *Options) holder() string {
	if o.Holder != "" {
		return o.Holder
	}
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(os.Getpid())
}

// base is what both binaries set up first.
type base struct {
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	res     *events.Resources
	tel     *telemetry.Telemetry
	metrics *telemetry.Metrics
	close   func()
}

func start(ctx context.Context, cfg *config.Config, opts *Options, service string) (*base, error) {
	b := &base{log: cmp.Or(opts.Logger, slog.Default())}
	closers := []func(){}
	b.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*base, error) { b.close(); return nil, err }

	b.tel = opts.Telemetry
	if b.tel == nil {
		tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: service, Logger: b.log})
		if err != nil {
			return fail(err)
		}
		tel.SetGlobal()
		b.tel = tel
		closers = append(closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tel.Shutdown(sctx); err != nil {
				b.log.Warn("telemetry shutdown", slog.Any("error", err))
			}
		})
	}
	m, err := telemetry.NewMetrics(b.tel.Meter(telemetry.InstrumentationName))
	if err != nil {
		return fail(err)
	}
	b.metrics = m

	nc, err := natsconn.ConnectRetrying(ctx, cfg.NATS, service, b.log)
	if err != nil {
		return fail(err)
	}
	b.nc = nc
	closers = append(closers, nc.Close)
	if b.js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishAckTimeout)); err != nil {
		return fail(err)
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if b.res, err = events.EnsureResources(setupCtx, b.js, events.StreamSettings{
		MaxAge: cfg.NATS.StreamMaxAge, DuplicateWindow: cfg.NATS.DuplicateWindow, Replicas: cfg.NATS.StreamReplicas,
	}); err != nil {
		return fail(err)
	}
	return b, nil
}

// serveAdmin starts the admin port, if configured, with the checks every
// binary has (NATS connected, streams present) and its own.
func (b *base) serveAdmin(ctx context.Context, cfg *config.Config, opts *Options, checks ...admin.Check) error {
	if cfg.Admin.Listen == "" {
		return nil
	}
	all := append([]admin.Check{
		admin.NATSConnected(b.nc),
		admin.StreamsPresent(b.js, events.StreamName, events.DLQStreamName, events.AuditStreamName),
	}, checks...)
	srv := admin.New(admin.Config{Listen: cfg.Admin.Listen, Logger: b.log, Metrics: b.tel.MetricsHandler(), Checks: all})
	addr, err := srv.Start(ctx)
	if err != nil {
		return fmt.Errorf("admin.listen: %w", err)
	}
	b.log.Info("admin listening: /healthz, /readyz, /metrics", slog.String("addr", addr))
	if opts.AdminReady != nil {
		opts.AdminReady(addr)
	}
	return nil
}

// httpClient is an upstream client's HTTP client: traced (no query strings
// in spans), pooled, with a timeout.
func httpClient(tp trace.TracerProvider, timeout time.Duration, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	rt := httpx.NewTransport(t, otelhttp.WithTracerProvider(tp))
	if wrap != nil {
		rt = wrap(rt)
	}
	return &http.Client{Timeout: timeout, Transport: rt}
}

// classMetrics records each Class call's latency by endpoint and status.
type classMetrics struct {
	next    http.RoundTripper
	tenant  string
	metrics *telemetry.Metrics
}

func (c classMetrics) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := c.next.RoundTrip(r)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	c.metrics.ClassRequest(r.Context(), c.tenant, r.Method, r.URL.Path, status, time.Since(start))
	return resp, err
}
