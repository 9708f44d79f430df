package telemetry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// otelEnv are the variables that could make Setup export or sample
// differently; every test starts from none of them.
var otelEnv = []string{
	"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_SAMPLER",
	"OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED",
}

func clearOTELEnv(t *testing.T) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, "")
	}
}

// setup runs Setup and shuts it down when the test ends.
func setup(t *testing.T, cfg Config) *Telemetry {
	t.Helper()
	tel, err := Setup(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return tel
}

func TestSetupRecordsSpansWithTestExporter(t *testing.T) {
	clearOTELEnv(t)
	exp := tracetest.NewInMemoryExporter()
	tel := setup(t, Config{ServiceName: "worker", SpanExporter: exp})

	_, span := tel.Tracer("test").Start(t.Context(), "apply change")
	span.SetAttributes(attribute.String("tenant", "springfield"))
	span.End()
	if err := tel.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "apply change" {
		t.Fatalf("exported spans = %v, want one \"apply change\"", spans)
	}
	res := spans[0].Resource
	if v, ok := res.Set().Value("service.name"); !ok || v.AsString() != "worker" {
		t.Errorf("service.name = %v, want worker", v)
	}
	if v, ok := res.Set().Value("service.version"); !ok || v.AsString() == "" {
		t.Errorf("service.version missing from %v", res)
	}
	if !tel.Exporting() {
		t.Error("Exporting() = false with a test exporter")
	}
}

func TestServiceNameFromEnvWins(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_SERVICE_NAME", "poller-eu")
	exp := tracetest.NewInMemoryExporter()
	tel := setup(t, Config{ServiceName: "poller", SpanProcessor: sdktrace.NewSimpleSpanProcessor(exp)})
	_, span := tel.Tracer("test").Start(t.Context(), "poll")
	span.End()
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	if v, _ := spans[0].Resource.Set().Value("service.name"); v.AsString() != "poller-eu" {
		t.Errorf("service.name = %q, want poller-eu", v.AsString())
	}
}

func TestSetupWithoutEnvExportsNothing(t *testing.T) {
	clearOTELEnv(t)
	tel := setup(t, Config{ServiceName: "poller"})
	if tel.Exporting() {
		t.Fatal("Exporting() = true with no OTEL_* variable set")
	}
	// Trace ids exist all the same, for logs and audit records.
	_, span := tel.Tracer("test").Start(t.Context(), "poll")
	defer span.End()
	if sc := span.SpanContext(); !sc.IsValid() || !sc.IsSampled() || !span.IsRecording() {
		t.Errorf("span context %v valid=%v sampled=%v recording=%v, want all true", sc, sc.IsValid(), sc.IsSampled(), span.IsRecording())
	}
}

func TestSetupExportsToOTLPEndpointFromEnv(t *testing.T) {
	clearOTELEnv(t)
	var posts atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)

	tel, err := Setup(t.Context(), Config{ServiceName: "worker"})
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Exporting() {
		t.Error("Exporting() = false with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	_, span := tel.Tracer("test").Start(t.Context(), "apply")
	span.End()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if posts.Load() == 0 {
		t.Error("no span reached the OTLP endpoint")
	}
}

func TestSetupExporterNone(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	tel := setup(t, Config{})
	if tel.Exporting() {
		t.Error("Exporting() = true with OTEL_TRACES_EXPORTER=none")
	}
}

func TestSetupRejectsUnknownExporter(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "carrier-pigeon")
	tel, err := Setup(t.Context(), Config{})
	if err == nil {
		_ = tel.Shutdown(t.Context())
		t.Fatal("Setup accepted OTEL_TRACES_EXPORTER=carrier-pigeon")
	}
	if !strings.Contains(err.Error(), "OTEL_TRACES_EXPORTER") {
		t.Errorf("error %q does not name the variable", err)
	}
}

func TestInvalidSamplerFallsBackAndWarns(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_TRACES_SAMPLER", "sometimes")
	var logs bytes.Buffer
	exp := tracetest.NewInMemoryExporter()
	tel := setup(t, Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), SpanProcessor: sdktrace.NewSimpleSpanProcessor(exp)})
	_, span := tel.Tracer("test").Start(t.Context(), "poll")
	span.End()
	if n := len(exp.GetSpans()); n != 1 {
		t.Errorf("%d spans exported, want 1 (default sampler)", n)
	}
	if !strings.Contains(logs.String(), "OTEL_TRACES_SAMPLER") {
		t.Errorf("no warning naming OTEL_TRACES_SAMPLER in %q", logs.String())
	}
}

// The SDK reads the sampler variables itself; this proves it does, since
// Setup passes no sampler.
func TestSamplerFromEnv(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	exp := tracetest.NewInMemoryExporter()
	tel := setup(t, Config{SpanProcessor: sdktrace.NewSimpleSpanProcessor(exp)})
	_, span := tel.Tracer("test").Start(t.Context(), "poll")
	if !span.SpanContext().IsValid() {
		t.Error("an unsampled span has no valid trace id; logs would lose it")
	}
	span.End()
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans exported with always_off, want 0", n)
	}
}

func TestCheckSamplerEnv(t *testing.T) {
	for _, c := range []struct {
		sampler, arg string
		ok           bool
	}{
		{"", "", true},
		{"always_on", "", true},
		{"ParentBased_TraceIDRatio", "0.25", true},
		{"traceidratio", "", true},
		{"traceidratio", "1.5", false},
		{"traceidratio", "half", false},
		{"sometimes", "", false},
	} {
		t.Setenv("OTEL_TRACES_SAMPLER", c.sampler)
		t.Setenv("OTEL_TRACES_SAMPLER_ARG", c.arg)
		if err := checkSamplerEnv(); (err == nil) != c.ok {
			t.Errorf("sampler %q arg %q: err = %v, want ok=%v", c.sampler, c.arg, err, c.ok)
		}
	}
}
