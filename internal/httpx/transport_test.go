package httpx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// spanRecorder is a minimal TracerProvider that keeps the name and attributes
// of every span, so the test can look for query strings in them without the
// OpenTelemetry SDK.
type spanRecorder struct {
	embedded.TracerProvider
	mu    sync.Mutex
	spans []*recordedSpan
}

type recordedSpan struct {
	noop.Span
	rec *spanRecorder

	name   string
	attrs  []attribute.KeyValue
	status string
}

type recordingTracer struct {
	embedded.Tracer
	rec *spanRecorder
}

func (r *spanRecorder) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return recordingTracer{rec: r}
}

func (t recordingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	s := &recordedSpan{rec: t.rec, name: name, attrs: cfg.Attributes()}
	t.rec.mu.Lock()
	t.rec.spans = append(t.rec.spans, s)
	t.rec.mu.Unlock()
	return trace.ContextWithSpan(ctx, s), s
}

func (s *recordedSpan) IsRecording() bool { return true }

func (s *recordedSpan) SetName(name string) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.name = name
}

func (s *recordedSpan) SetAttributes(kv ...attribute.KeyValue) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.attrs = append(s.attrs, kv...)
}

func (s *recordedSpan) SetStatus(_ codes.Code, desc string) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.status = desc
}

// dump renders every span as text.
func (r *spanRecorder) dump() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.spans {
		var b strings.Builder
		b.WriteString(s.name)
		for _, kv := range s.attrs {
			b.WriteString(" " + string(kv.Key) + "=" + kv.Value.Emit())
		}
		b.WriteString(" status=" + s.status)
		out = append(out, b.String())
	}
	return out
}

func TestTransportScrubsQueryFromSpans(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		gotQuery string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotQuery = r.URL.RawQuery
		mu.Unlock()
		_, _ = io.WriteString(w, `[]`)
	}))
	defer srv.Close()

	rec := &spanRecorder{}
	hc := &http.Client{Transport: NewTransport(nil, otelhttp.WithTracerProvider(rec))}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/v1/users?email=pupil%40example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	hc.CloseIdleConnections()

	mu.Lock()
	if gotQuery != "email=pupil%40example.com" {
		t.Errorf("server saw query %q: the query must still reach the server", gotQuery)
	}
	mu.Unlock()

	spans := rec.dump()
	if len(spans) != 1 {
		t.Fatalf("spans = %q", spans)
	}
	if !strings.HasPrefix(spans[0], "GET /api/v1/users ") {
		t.Errorf("span name: %q", spans[0])
	}
	if !strings.Contains(spans[0], "url.full="+srv.URL+"/api/v1/users") {
		t.Errorf("span has no scrubbed url.full: %q", spans[0])
	}
	for _, s := range []string{"pupil", "example.com", "email", "?"} {
		if strings.Contains(spans[0], s) {
			t.Errorf("span %q holds %q", spans[0], s)
		}
	}
}

func TestTransportLeavesRequestAlone(t *testing.T) {
	t.Parallel()
	for _, target := range []string{
		"http://api.test/api/v1/users?email=a%40b.c",
		"http://api.test/api/v1/users?",
		"http://api.test/api/v1/users",
	} {
		var seen *http.Request
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			seen = r
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("[]")), Request: r}, nil
		})
		rt := NewTransport(base, otelhttp.WithTracerProvider(noop.NewTracerProvider()))
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		before := req.URL.String()
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.URL.String() != before {
			t.Errorf("caller's request changed: %q, was %q", req.URL.String(), before)
		}
		if seen.URL.RawQuery != req.URL.RawQuery {
			t.Errorf("%s: base saw query %q", target, seen.URL.RawQuery)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCallLogRecordsCallsWithoutQuery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("email") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	hc := &http.Client{Transport: NewTransport(nil)}
	ctx, log := WithCallLog(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/users?email=pupil%40school.example", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A call without the log in its context is not recorded anywhere.
	resp, err = hc.Get(srv.URL + "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	calls := log.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %+v, want 1", calls)
	}
	c := calls[0]
	if c.Method != "GET" || c.Path != "/api/v1/users" || c.Status != http.StatusNotFound || c.Took <= 0 {
		t.Errorf("call = %+v", c)
	}
	if strings.Contains(fmt.Sprintf("%+v", c), "pupil") {
		t.Errorf("call keeps the query: %+v", c)
	}
}
