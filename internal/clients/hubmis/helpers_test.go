package hubmis

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rollcall/rollcall/internal/fakeclock"
)

// TestMain fails the package if a test leaves goroutines behind: a response
// body left open or a request that never ends would show up here.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testID     = "client-id"
	testSecret = "s3cret+/=value"
	testRealm  = "S999"
)

// fakeHUBmis is a small hand-written HUBmis for tests where the exact shape
// of an answer matters. The token endpoint checks the form-encoded
// credentials; every API request goes to api with the bearer token it
// carried.
type fakeHUBmis struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	tokens      int                                    // tokens issued
	tokenAnswer func(n int) (int, string, http.Header) // status, body, header of the n-th token request (1-based); nil: a good token
	requests    []*http.Request                        // every API request (clones)
	api         func(w http.ResponseWriter, r *http.Request, token string)
}

func newFake(t *testing.T, api func(w http.ResponseWriter, r *http.Request, token string)) *fakeHUBmis {
	t.Helper()
	f := &fakeHUBmis{t: t, api: api}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHUBmis) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == pathToken {
		f.token(w, r)
		return
	}
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || r.URL.Query().Has("access_token") {
		f.t.Errorf("API request without a bearer header, or with the token in the URL: %q %q", auth, r.URL.RawQuery)
	}
	f.mu.Lock()
	f.requests = append(f.requests, r.Clone(context.Background()))
	api := f.api
	f.mu.Unlock()
	api(w, r, token)
}

func (f *fakeHUBmis) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "" {
		f.t.Errorf("token request %s with Authorization %q", r.Method, r.Header.Get("Authorization"))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		f.t.Errorf("token request Content-Type %q", ct)
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" ||
		r.PostForm.Get("client_id") != testID || r.PostForm.Get("client_secret") != testSecret || r.URL.RawQuery != "" {
		f.t.Errorf("token request form %v, query %q", r.PostForm, r.URL.RawQuery)
	}
	if r.Header.Get(headerRealm) != "" {
		f.t.Errorf("token request carries a Realm")
	}
	f.mu.Lock()
	f.tokens++
	n := f.tokens
	answer := f.tokenAnswer
	f.mu.Unlock()
	if answer != nil {
		status, body, h := answer(n)
		for k, v := range h {
			w.Header()[k] = v
		}
		writeJSON(w, status, body)
		return
	}
	writeJSON(w, http.StatusOK, fmt.Sprintf(`{"token_type":"Bearer","expires_in":900,"access_token":"tok-%d"}`, n))
}

func (f *fakeHUBmis) tokenCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens
}

func (f *fakeHUBmis) seen() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...)
}

// testClock is the injected clock tests move by hand.
type testClock = fakeclock.Clock

func newTestClock() *testClock { return fakeclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) }

// testBundle is a client of a fake, with a fake clock whose sleeps are
// recorded and advance the clock instead of waiting.
type testBundle struct {
	fake   *fakeHUBmis
	client *Client
	clock  *testClock
	ip     *IPLimiter
	ctx    context.Context

	mu     sync.Mutex
	sleeps []time.Duration
}

// setup builds a client of a new fake with a fake clock and its own
// IPLimiter on that clock; mods may change the config (and the clock is
// b.clock whatever they do to Now).
func setup(t *testing.T, api func(w http.ResponseWriter, r *http.Request, token string), mods ...func(*Config)) *testBundle {
	t.Helper()
	b := &testBundle{fake: newFake(t, api), clock: newTestClock(), ctx: t.Context()}
	cfg := Config{BaseURL: b.fake.srv.URL, ClientID: testID, ClientSecret: testSecret, Realm: testRealm, Now: b.clock.Now}
	for _, m := range mods {
		m(&cfg)
	}
	if cfg.IPLimiter == nil && !cfg.NoRateLimit {
		ip, err := NewIPLimiter(IPLimiterConfig{Now: b.clock.Now, TimeScale: cfg.TimeScale})
		if err != nil {
			t.Fatal(err)
		}
		cfg.IPLimiter = ip
	}
	b.ip = cfg.IPLimiter
	b.client = b.newClient(t, cfg)
	return b
}

// newClient builds one more client on b's clock, whose sleeps b records.
func (b *testBundle) newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.sleepFunc = func(ctx context.Context, d time.Duration) error {
		b.mu.Lock()
		b.sleeps = append(b.sleeps, d)
		b.mu.Unlock()
		b.clock.Advance(d)
		return ctx.Err()
	}
	t.Cleanup(c.http.CloseIdleConnections)
	return c
}

func (b *testBundle) waits() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Duration(nil), b.sleeps...)
}

func (b *testBundle) totalWait() time.Duration {
	var sum time.Duration
	for _, d := range b.waits() {
		sum += d
	}
	return sum
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// records renders n student records with ids from first on.
func records(first, n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf(`{"id":%d,"first_name":"Pupil%d","last_name":"Surname","primary_email":"p%d@school.example"}`, first+i, first+i, first+i)
	}
	return out
}

func bareArray(recs []string) string {
	return "[" + strings.Join(recs, ",") + "]"
}

// envelope renders a JSON:API document; next "" leaves the next link out,
// "null" writes it as null.
func envelope(recs []string, meta, next string) string {
	links := `{"self":"https://hubmis.example/api/v1/students"}`
	switch next {
	case "":
	case "null":
		links = `{"self":"x","next":null}`
	default:
		links = `{"self":"x","next":"` + next + `"}`
	}
	if meta == "" {
		meta = "{}"
	}
	return `{"data":[` + strings.Join(recs, ",") + `],"meta":` + meta + `,"links":` + links + `}`
}

// pageNumber is the page[number] of r, 1 when absent.
func pageNumber(r *http.Request) int {
	n := 1
	if v := r.URL.Query().Get("page[number]"); v != "" {
		_, _ = fmt.Sscan(v, &n)
	}
	return n
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func studentID(s Student) string { return s.ID }
