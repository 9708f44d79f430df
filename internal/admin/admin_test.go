package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/natsembed"
	"github.com/rollcall/rollcall/internal/telemetry"
)

// eventually polls cond until it holds or the deadline passes, then fails
// with the last reason cond gave.
func eventually(t *testing.T, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, why)
		}
		<-tick.C
	}
}

// start starts s on a free port, stops it when the test ends and returns
// its base URL.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := s.Start(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("Wait: %v", err)
		}
	})
	if s.Addr() != addr {
		t.Errorf("Addr() = %q, Start returned %q", s.Addr(), addr)
	}
	return "http://" + addr
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func readiness(t *testing.T, body string) Readiness {
	t.Helper()
	var r Readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz body is not JSON: %v\n%s", err, body)
	}
	return r
}

// broker is an embedded nats-server that a test can stop and start again on
// the same port and store, as an outage would.
type broker struct {
	t    *testing.T
	dir  string
	port int
	srv  *server.Server
}

func startBroker(t *testing.T) *broker {
	b := &broker{t: t, dir: t.TempDir()}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *broker) start() {
	b.t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: b.dir, Port: b.port})
	if err != nil {
		b.t.Fatal(err)
	}
	b.srv, b.port = srv, natsembed.Port(srv)
}

func (b *broker) stop() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.srv = nil
	}
}

func (b *broker) connect() (*nats.Conn, jetstream.JetStream) {
	b.t.Helper()
	nc, err := nats.Connect(b.srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.t.Fatal(err)
	}
	return nc, js
}

func TestReadyzFollowsNATS(t *testing.T) {
	b := startBroker(t)
	nc, js := b.connect()
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "CHANGES", Subjects: []string{"changes.>"}}); err != nil {
		t.Fatal(err)
	}
	url := start(t, New(Config{
		Listen:       "127.0.0.1:0",
		Checks:       []Check{NATSConnected(nc), StreamsPresent(js, "CHANGES")},
		CheckTimeout: 500 * time.Millisecond,
	}))

	code, body := get(t, url+"/readyz")
	if code != http.StatusOK {
		t.Fatalf("/readyz with NATS up = %d %s", code, body)
	}
	if r := readiness(t, body); r.Status != "ok" || len(r.Checks) != 2 || !r.Checks[0].OK || !r.Checks[1].OK {
		t.Errorf("/readyz body = %+v", r)
	}

	b.stop()
	eventually(t, 10*time.Second, func() (bool, string) {
		code, body := get(t, url+"/readyz")
		return code == http.StatusServiceUnavailable, "/readyz = " + body
	})
	_, body = get(t, url+"/readyz")
	r := readiness(t, body)
	if r.Status != "unavailable" {
		t.Errorf("status = %q, want unavailable", r.Status)
	}
	for _, c := range r.Checks {
		if c.OK || c.Error == "" {
			t.Errorf("check %q with NATS down: ok=%v error=%q", c.Name, c.OK, c.Error)
		}
	}
	if code, body := get(t, url+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz with NATS down = %d %q, want 200 ok", code, body)
	}

	b.start()
	eventually(t, 15*time.Second, func() (bool, string) {
		code, body := get(t, url+"/readyz")
		return code == http.StatusOK, "/readyz = " + body
	})
}

func TestReadyzNamesMissingStream(t *testing.T) {
	b := startBroker(t)
	nc, js := b.connect()
	url := start(t, New(Config{
		Listen: "127.0.0.1:0",
		Checks: []Check{NATSConnected(nc), StreamsPresent(js, "CHANGES", "DLQ")},
	}))
	code, body := get(t, url+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without streams = %d %s", code, body)
	}
	r := readiness(t, body)
	if !r.Checks[0].OK || r.Checks[0].Name != "nats" {
		t.Errorf("nats check = %+v, want ok", r.Checks[0])
	}
	if c := r.Checks[1]; c.OK || c.Name != "streams" || !strings.Contains(c.Error, "stream CHANGES") || !strings.Contains(c.Error, "stream DLQ") {
		t.Errorf("streams check = %+v, want both streams named", c)
	}
}

func TestReadyzTimesOutHungChecks(t *testing.T) {
	release := make(chan struct{})
	defer close(release) // lets the check that ignores ctx end, for goleak
	url := start(t, New(Config{
		Listen:       "127.0.0.1:0",
		CheckTimeout: 100 * time.Millisecond,
		Checks: []Check{
			Func("fine", func(context.Context) error { return nil }),
			Func("respects-ctx", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }),
			Func("ignores-ctx", func(context.Context) error { <-release; return nil }),
			Func("broken", func(context.Context) error { return errors.New("disk full") }),
			Func("panics", func(context.Context) error { panic("boom") }),
			{Name: "nil"},
		},
	}))
	began := time.Now()
	code, body := get(t, url+"/readyz")
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("/readyz took %s with a 100ms check timeout", took)
	}
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	got := map[string]CheckResult{}
	for _, c := range readiness(t, body).Checks {
		got[c.Name] = c
	}
	if !got["fine"].OK {
		t.Errorf("fine = %+v", got["fine"])
	}
	for name, want := range map[string]string{
		"respects-ctx": "deadline exceeded", "ignores-ctx": "no answer", "broken": "disk full",
		"panics": "panicked: boom", "nil": "no check function",
	} {
		if c := got[name]; c.OK || !strings.Contains(c.Error, want) {
			t.Errorf("%s = %+v, want an error with %q", name, c, want)
		}
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "admin-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	url := start(t, New(Config{Listen: "127.0.0.1:0", Metrics: tel.MetricsHandler()}))
	if code, body := get(t, url+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, url+"/readyz"); code != http.StatusOK || readiness(t, body).Status != "ok" {
		t.Errorf("/readyz with no checks = %d %s", code, body)
	}
	code, body := get(t, url+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, `service_name="admin-test"`) {
		t.Errorf("/metrics = %d\n%s", code, body)
	}
	resp, err := http.Post(url+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", resp.StatusCode)
	}
}

func TestMetricsWithoutHandler(t *testing.T) {
	url := start(t, New(Config{Listen: "127.0.0.1:0"}))
	if code, _ := get(t, url+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without a handler = %d, want 404", code)
	}
}

func TestStopsWhenContextEnds(t *testing.T) {
	s := New(Config{Listen: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx); err == nil {
		t.Error("a second Start succeeded")
	}
	if code, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	cancel()
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("still serving after the context ended")
	}
}

func TestStartFailsOnBusyAddress(t *testing.T) {
	first := New(Config{Listen: "127.0.0.1:0"})
	url := start(t, first)
	second := New(Config{Listen: strings.TrimPrefix(url, "http://")})
	if _, err := second.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "admin: listening on") {
		t.Errorf("Start on a busy address: err = %v", err)
	}
	if err := second.Wait(); err != nil {
		t.Errorf("Wait of a server never started = %v", err)
	}
}
