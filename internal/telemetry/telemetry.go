// Package telemetry is the observability of the rollcall binaries: an
// OpenTelemetry tracer provider that always exists (so logs and audit records
// carry trace ids even when nothing exports spans), an OTLP span exporter
// only when the standard OTEL_* environment asks for one, a meter provider
// read by a Prometheus exporter on a registry of its own, the instruments of
// the system ([Metrics]), and a log/slog logger that keeps secrets and email
// addresses out of log lines ([NewLogger]).
//
// Nothing here sets OpenTelemetry's globals except [Telemetry.SetGlobal],
// which a binary calls once; libraries and tests take the providers they are
// given.
package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName is the name of the tracer and meter of rollcall's own
// code, the otel_scope_name label of its metrics.
const InstrumentationName = "github.com/rollcall/rollcall"

// ServiceNameDefault is the service name when neither OTEL_SERVICE_NAME nor
// [Config.ServiceName] gives one.
const ServiceNameDefault = "rollcall"

// The standard environment variables that decide whether spans are exported.
const (
	envTracesExporter      = "OTEL_TRACES_EXPORTER"
	envOTLPEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envOTLPTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envTracesSampler       = "OTEL_TRACES_SAMPLER"
	envTracesSamplerArg    = "OTEL_TRACES_SAMPLER_ARG"
	envServiceName         = "OTEL_SERVICE_NAME"
	exporterNone           = "none"
	serviceVersionFallback = "devel"
)

// Config configures [Setup].
type Config struct {
	// ServiceName is the service.name resource attribute, normally the
	// binary's name. OTEL_SERVICE_NAME, when set, wins, as the OpenTelemetry
	// specification requires. Defaults to [ServiceNameDefault].
	ServiceName string
	// ServiceVersion is the service.version resource attribute. Defaults to
	// the module version from the build information, else the VCS revision,
	// else "devel".
	ServiceVersion string
	// Logger receives what goes wrong in telemetry itself (a rejected sampler
	// setting, a failed export). Defaults to a logger that discards.
	Logger *slog.Logger

	// SpanExporter, when set, receives every sampled span instead of any
	// exporter the environment asks for; spans are batched as in production.
	// A test hook.
	SpanExporter sdktrace.SpanExporter
	// SpanProcessor, when set, is added to the tracer provider instead of any
	// exporter the environment asks for (and besides SpanExporter). A test
	// hook: a synchronous processor makes spans visible as they end.
	SpanProcessor sdktrace.SpanProcessor
}

// Telemetry holds the tracer and meter providers of a process. Call
// [Telemetry.Shutdown] before exiting so buffered spans are exported.
type Telemetry struct {
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	registry *prometheus.Registry
	handler  http.Handler
	log      *slog.Logger
	// exporting says whether spans leave the process; for the startup log
	// line, so an operator can tell "no traces" from "traces lost".
	exporting bool
}

// Setup builds the tracer provider, the span exporter the environment asks
// for (if any), and the meter provider with its Prometheus registry. With no
// OTEL_* variable set nothing is exported and no error is returned. The
// sampler follows OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, which the
// SDK reads itself; an unsupported value is logged and the SDK's default
// (parentbased_always_on) applies. An unknown OTEL_TRACES_EXPORTER or OTLP
// protocol is an error naming the variable: a binary asked to export traces
// should not start silently without them.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	res, err := newResource(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if err := checkSamplerEnv(); err != nil {
		// The SDK falls back to its default sampler on a bad value and
		// reports it to the global error handler, which a test or a binary
		// without SetGlobal never sees; say it where the operator looks.
		log.Warn("telemetry: ignoring the sampler setting, sampling every trace whose parent is sampled",
			slog.String("setting", envTracesSampler), slog.Any("error", err))
	}

	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exporting := false
	switch {
	case cfg.SpanExporter != nil || cfg.SpanProcessor != nil:
		if cfg.SpanExporter != nil {
			opts = append(opts, sdktrace.WithBatcher(cfg.SpanExporter))
		}
		if cfg.SpanProcessor != nil {
			opts = append(opts, sdktrace.WithSpanProcessor(cfg.SpanProcessor))
		}
		exporting = true
	default:
		exp, err := spanExporterFromEnv(ctx)
		if err != nil {
			return nil, err
		}
		if exp != nil {
			opts = append(opts, sdktrace.WithBatcher(exp))
			exporting = true
		}
	}
	// The sampler is deliberately not given here: without WithSampler the SDK
	// applies OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG.
	tp := sdktrace.NewTracerProvider(opts...)

	registry := prometheus.NewRegistry()
	if err := registry.Register(collectors.NewGoCollector()); err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry: registering the Go collector: %w", err), tp.Shutdown(ctx))
	}
	if err := registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry: registering the process collector: %w", err), tp.Shutdown(ctx))
	}
	promExporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry: prometheus exporter: %w", err), tp.Shutdown(ctx))
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(promExporter))

	t := &Telemetry{
		tp:       tp,
		mp:       mp,
		registry: registry,
		log:      log,
		handler: promhttp.HandlerFor(registry, promhttp.HandlerOpts{
			// One failing collector should not blank the whole scrape.
			ErrorHandling: promhttp.ContinueOnError,
			ErrorLog:      promErrorLog{log},
		}),
		exporting: exporting,
	}
	log.Debug("telemetry: ready", slog.Bool("exporting_spans", exporting))
	return t, nil
}

// spanExporterFromEnv returns the exporter the standard environment asks for,
// or nil when it asks for none. autoexport alone would build an OTLP exporter
// to localhost when nothing is set, which fails on every export; so an
// exporter is built only when OTEL_TRACES_EXPORTER names one or an OTLP
// endpoint is set.
func spanExporterFromEnv(ctx context.Context) (sdktrace.SpanExporter, error) {
	name := strings.TrimSpace(os.Getenv(envTracesExporter))
	if name == "" && os.Getenv(envOTLPEndpoint) == "" && os.Getenv(envOTLPTracesEndpoint) == "" {
		return nil, nil
	}
	if name == exporterNone {
		return nil, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s=%q (with OTEL_EXPORTER_OTLP_PROTOCOL=%q): %w",
			envTracesExporter, name, os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), err)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return nil, nil
	}
	return exp, nil
}

// checkSamplerEnv repeats the SDK's validation of the sampler variables,
// which it does not export, so a bad value can be logged.
func checkSamplerEnv() error {
	name := strings.ToLower(strings.TrimSpace(os.Getenv(envTracesSampler)))
	arg := strings.TrimSpace(os.Getenv(envTracesSamplerArg))
	switch name {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return nil
	case "traceidratio", "parentbased_traceidratio":
		if arg == "" {
			return nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil {
			return fmt.Errorf("%s=%q: %w", envTracesSamplerArg, arg, err)
		}
		if r < 0 || r > 1 {
			return fmt.Errorf("%s=%q: ratio must be within [0, 1]", envTracesSamplerArg, arg)
		}
		return nil
	default:
		return fmt.Errorf("%s=%q: unsupported sampler", envTracesSampler, name)
	}
}

func newResource(ctx context.Context, cfg Config, log *slog.Logger) (*resource.Resource, error) {
	name := cmp.Or(cfg.ServiceName, ServiceNameDefault)
	version := cmp.Or(cfg.ServiceVersion, buildVersion())
	// WithFromEnv comes last so OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override what the binary says, as the specification requires.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", name),
			attribute.String("service.version", version),
		),
		resource.WithFromEnv(),
	)
	if err != nil {
		// A partial resource (a malformed OTEL_RESOURCE_ATTRIBUTES) is still
		// usable; reject only what cannot be built at all.
		if res == nil {
			return nil, fmt.Errorf("telemetry: resource: %w", err)
		}
		log.WarnContext(ctx, "telemetry: resource partly built", slog.Any("error", err))
	}
	return res, nil
}

// buildVersion is the module version of the binary, else its VCS revision,
// else "devel" (go test, -buildvcs=false).
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return serviceVersionFallback
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return serviceVersionFallback
	}
	return rev[:min(len(rev), 12)] + dirty
}

// Tracer returns a tracer of the process's tracer provider.
func (t *Telemetry) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return t.tp.Tracer(name, opts...)
}

// Meter returns a meter of the process's meter provider. Rollcall's own
// instruments come from Meter([InstrumentationName]) via [NewMetrics].
func (t *Telemetry) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return t.mp.Meter(name, opts...)
}

// TracerProvider is the SDK tracer provider, for instrumentation libraries
// (otelhttp) that take one.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// MeterProvider is the SDK meter provider, for instrumentation libraries
// that take one.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.mp }

// MetricsHandler serves the Prometheus exposition of the process's metrics
// (see [Metrics] for the names), Go runtime and process metrics included.
func (t *Telemetry) MetricsHandler() http.Handler { return t.handler }

// Registry is the Prometheus registry behind [Telemetry.MetricsHandler], for
// a collector that only exists in Prometheus form.
func (t *Telemetry) Registry() *prometheus.Registry { return t.registry }

// Exporting reports whether spans leave the process.
func (t *Telemetry) Exporting() bool { return t.exporting }

// SetGlobal makes these providers OpenTelemetry's globals, sets the global
// propagator to W3C trace context and baggage, and sends OpenTelemetry's
// internal errors to the logger. For binaries; tests and libraries should
// pass the providers explicitly.
func (t *Telemetry) SetGlobal() {
	otel.SetTracerProvider(t.tp)
	otel.SetMeterProvider(t.mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		t.log.Warn("opentelemetry", slog.Any("error", err))
	}))
}

// ForceFlush exports the spans buffered so far.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	if err := t.tp.ForceFlush(ctx); err != nil {
		return fmt.Errorf("telemetry: flushing spans: %w", err)
	}
	return nil
}

// Shutdown flushes and stops both providers; ctx bounds the wait for the
// span exporter. Further spans and measurements are dropped.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if err := t.tp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: shutting down the tracer provider: %w", err))
	}
	if err := t.mp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: shutting down the meter provider: %w", err))
	}
	return errors.Join(errs...)
}

// promErrorLog sends promhttp's errors (a collector failing mid-scrape) to
// the logger.
type promErrorLog struct{ log *slog.Logger }

func (l promErrorLog) Println(v ...any) {
	l.log.Warn("telemetry: metrics scrape", slog.String("error", fmt.Sprint(v...)))
}
