package webhook_test

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/rollcall/rollcall/internal/webhook"
)

// TestMain fails the package if a test leaves goroutines behind, such as a
// request whose body was never closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestSignMatchesHMACVector(t *testing.T) {
	t.Parallel()
	// RFC 4231, test case 2.
	key, data := []byte("Jefe"), []byte("what do ya want for nothing?")
	const rfc = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got := webhook.Sign(key, data); got != "sha256="+rfc {
		t.Errorf("Sign = %s, want sha256=%s", got, rfc)
	}
	secret, body := []byte("s3cret"), []byte(`{"event":"student.updated","id":"42"}`)
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	if got, want := webhook.Sign(secret, body), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

type bundle struct {
	srv      *httptest.Server
	secret   []byte
	triggers atomic.Int32 // of tenant alpha
	logs     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// setup serves tenant alpha (with a secret), beta (without one) and gamma
// (whose trigger is a coalescer, returned).
func setup(t *testing.T) (*bundle, *webhook.Coalescer) {
	t.Helper()
	b := &bundle{secret: []byte("alpha-webhook-secret"), logs: &syncBuffer{}}
	gamma := webhook.NewCoalescer()
	logger := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := webhook.NewHandler([]webhook.Tenant{
		{ID: "alpha", Secret: b.secret, Trigger: func() { b.triggers.Add(1) }},
		{ID: "beta", Trigger: func() { t.Error("beta triggered") }},
		{ID: "gamma", Secret: []byte("gamma-secret"), Trigger: gamma.Trigger},
	}, logger)
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	return b, gamma
}

type request struct {
	method, tenant string
	body           io.Reader
	signature      string // header value; none when empty
}

func (b *bundle) do(t *testing.T, r request) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), cmp.Or(r.method, http.MethodPost), b.srv.URL+"/webhooks/datahub/"+r.tenant, r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.signature != "" {
		req.Header.Set(webhook.SignatureHeader, r.signature)
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// chunked hides a reader's length, so the request has no Content-Length
// and the size limit must be enforced while reading.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestStatuses(t *testing.T) {
	t.Parallel()
	b, _ := setup(t)
	valid := []byte(`{"event":"student.updated","student_id":"s-1001"}`)
	sign := func(body []byte) string { return webhook.Sign(b.secret, body) }
	// One byte over the limit, and exactly at it, both valid JSON objects.
	big := func(n int) []byte {
		return []byte(`{"pad":"` + strings.Repeat("x", n-len(`{"pad":""}`)) + `"}`)
	}
	over, atLimit := big(webhook.BodyMax+1), big(webhook.BodyMax)

	tests := []struct {
		name    string
		req     request
		want    int
		trigger bool
	}{
		{"valid", request{tenant: "alpha", body: bytes.NewReader(valid), signature: sign(valid)}, http.StatusAccepted, true},
		{"body of exactly 1 MiB", request{tenant: "alpha", body: bytes.NewReader(atLimit), signature: sign(atLimit)}, http.StatusAccepted, true},
		{"unknown tenant", request{tenant: "zeta", body: bytes.NewReader(valid), signature: sign(valid)}, http.StatusNotFound, false},
		{"tenant without secret", request{tenant: "beta", body: bytes.NewReader(valid), signature: webhook.Sign(nil, valid)}, http.StatusNotFound, false},
		{"no tenant", request{tenant: "", body: bytes.NewReader(valid), signature: sign(valid)}, http.StatusNotFound, false},
		{"GET", request{method: http.MethodGet, tenant: "alpha"}, http.StatusMethodNotAllowed, false},
		{"PUT", request{method: http.MethodPut, tenant: "alpha", body: bytes.NewReader(valid), signature: sign(valid)}, http.StatusMethodNotAllowed, false},
		{"body over 1 MiB", request{tenant: "alpha", body: bytes.NewReader(over), signature: sign(over)}, http.StatusRequestEntityTooLarge, false},
		{"body over 1 MiB, no length", request{tenant: "alpha", body: chunked{bytes.NewReader(over)}, signature: sign(over)}, http.StatusRequestEntityTooLarge, false},
		{"no signature", request{tenant: "alpha", body: bytes.NewReader(valid)}, http.StatusUnauthorized, false},
		{"signature without prefix", request{tenant: "alpha", body: bytes.NewReader(valid), signature: strings.TrimPrefix(sign(valid), "sha256=")}, http.StatusUnauthorized, false},
		{"sha1 signature", request{tenant: "alpha", body: bytes.NewReader(valid), signature: "sha1=" + strings.TrimPrefix(sign(valid), "sha256=")}, http.StatusUnauthorized, false},
		{"signature not hex", request{tenant: "alpha", body: bytes.NewReader(valid), signature: "sha256=zz"}, http.StatusUnauthorized, false},
		{"signature truncated", request{tenant: "alpha", body: bytes.NewReader(valid), signature: sign(valid)[:40]}, http.StatusUnauthorized, false},
		{"signature with another secret", request{tenant: "alpha", body: bytes.NewReader(valid), signature: webhook.Sign([]byte("gamma-secret"), valid)}, http.StatusUnauthorized, false},
		{"signature over another body", request{tenant: "alpha", body: bytes.NewReader(valid), signature: sign([]byte(`{"event":"student.deleted"}`))}, http.StatusUnauthorized, false},
		{"not JSON", request{tenant: "alpha", body: strings.NewReader("hello"), signature: sign([]byte("hello"))}, http.StatusBadRequest, false},
		{"JSON array", request{tenant: "alpha", body: strings.NewReader("[1]"), signature: sign([]byte("[1]"))}, http.StatusBadRequest, false},
		{"JSON null", request{tenant: "alpha", body: strings.NewReader("null"), signature: sign([]byte("null"))}, http.StatusBadRequest, false},
		{"JSON string", request{tenant: "alpha", body: strings.NewReader(`"x"`), signature: sign([]byte(`"x"`))}, http.StatusBadRequest, false},
		{"object and trailing data", request{tenant: "alpha", body: strings.NewReader(`{}{}`), signature: sign([]byte(`{}{}`))}, http.StatusBadRequest, false},
		{"empty body", request{tenant: "alpha", body: http.NoBody, signature: sign(nil)}, http.StatusBadRequest, false},
	}
	// Sequential: the trigger count is shared.
	for _, tt := range tests {
		before := b.triggers.Load()
		resp := b.do(t, tt.req)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
		if got := b.triggers.Load() - before; got != map[bool]int32{true: 1}[tt.trigger] {
			t.Errorf("%s: %d triggers, want trigger=%v", tt.name, got, tt.trigger)
		}
		if tt.want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
			t.Errorf("%s: Allow = %q, want POST", tt.name, resp.Header.Get("Allow"))
		}
	}

	logs := b.logs.String()
	for _, secret := range []string{string(b.secret), "gamma-secret", hex.EncodeToString(b.secret)} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret is in the log:\n%s", logs)
		}
	}
	if strings.Contains(logs, "s-1001") || strings.Contains(logs, "student.updated") {
		t.Errorf("a body is in the log:\n%s", logs)
	}
	if !strings.Contains(logs, "tenant=alpha") || !strings.Contains(logs, "status=202") || !strings.Contains(logs, "status=401") {
		t.Errorf("log lacks tenant and outcome:\n%s", logs)
	}
}

func TestBurstYieldsOnePendingPoll(t *testing.T) {
	t.Parallel()
	b, gamma := setup(t)
	secret := []byte("gamma-secret")
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for i := range 100 {
		wg.Go(func() {
			body := fmt.Appendf(nil, `{"event":"student.updated","seq":%d}`, i)
			resp := b.do(t, request{tenant: "gamma", body: bytes.NewReader(body), signature: webhook.Sign(secret, body)})
			if resp.StatusCode == http.StatusAccepted {
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	if accepted.Load() != 100 {
		t.Fatalf("%d of 100 notifications accepted", accepted.Load())
	}
	if n := len(gamma.C()); n != 1 {
		t.Fatalf("%d polls pending, want 1", n)
	}
	<-gamma.C()
	select {
	case <-gamma.C():
		t.Fatal("a second poll pending after a burst")
	default:
	}
}

func TestCoalescer(t *testing.T) {
	t.Parallel()
	c := webhook.NewCoalescer()
	select {
	case <-c.C():
		t.Fatal("a new coalescer has a poll pending")
	default:
	}
	for range 3 {
		for range 10 {
			c.Trigger()
		}
		select {
		case <-c.C():
		default:
			t.Fatal("no poll pending after triggers")
		}
		select {
		case <-c.C():
			t.Fatal("triggers between two receives yielded two receives")
		default:
		}
	}
}
