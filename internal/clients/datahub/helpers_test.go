package datahub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/fakeclock"
)

const (
	testID     = "client-id"
	testSecret = "s3cret+/=value"
)

// fakeDataHub is a small hand-written DataHub for tests where the exact shape
// of an answer matters. The token endpoint checks HTTP Basic and the form;
// every API request goes to api with the bearer token it carried.
type fakeDataHub struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	tokens      int                                    // tokens issued
	tokenAnswer func(n int) (int, string, http.Header) // status, body, header of the n-th token request (1-based); nil: a good token
	requests    []string                               // "GET /path?query token" of every API request
	api         func(w http.ResponseWriter, r *http.Request, token string)
}

func newFake(t *testing.T, api func(w http.ResponseWriter, r *http.Request, token string)) *fakeDataHub {
	t.Helper()
	f := &fakeDataHub{t: t, api: api}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDataHub) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/datahub/oauth/token" {
		f.token(w, r)
		return
	}
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || r.URL.Query().Has("access_token") {
		f.t.Errorf("API request without a bearer header, or with the token in the URL: %q %q", auth, r.URL.RawQuery)
	}
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI()+" "+token)
	api := f.api
	f.mu.Unlock()
	api(w, r, token)
}

func (f *fakeDataHub) token(w http.ResponseWriter, r *http.Request) {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(testID+":"+escapedSecret()))
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != want {
		f.t.Errorf("token request %s with Authorization %q", r.Method, r.Header.Get("Authorization"))
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" || r.URL.RawQuery != "" {
		f.t.Errorf("token request form %v, query %q", r.PostForm, r.URL.RawQuery)
	}
	if r.PostForm.Has("client_secret") || r.PostForm.Has("client_id") {
		f.t.Errorf("credentials in the token request body")
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
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer","expires_in":7199}`, n)
}

// escapedSecret is the secret as oauth2 puts it in HTTP Basic: form-encoded,
// as RFC 6749 §2.3.1 says.
func escapedSecret() string {
	return strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(testSecret)
}

func (f *fakeDataHub) tokenCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens
}

func (f *fakeDataHub) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// testClock is the injected clock tests move by hand.
type testClock = fakeclock.Clock

func newTestClock() *testClock { return fakeclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) }

// testBundle is a client of a fake, with a fake clock whose sleeps are
// recorded instead of waited.
type testBundle struct {
	fake   *fakeDataHub
	client *Client
	clock  *testClock
	ctx    context.Context

	mu     sync.Mutex
	sleeps []time.Duration
}

func setup(t *testing.T, api func(w http.ResponseWriter, r *http.Request, token string), mods ...func(*Config)) *testBundle {
	t.Helper()
	b := &testBundle{fake: newFake(t, api), clock: newTestClock(), ctx: t.Context()}
	cfg := Config{BaseURL: b.fake.srv.URL, ClientID: testID, ClientSecret: testSecret, Now: b.clock.Now}
	for _, m := range mods {
		m(&cfg)
	}
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
	b.client = c
	return b
}

func (b *testBundle) waits() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Duration(nil), b.sleeps...)
}

// listBody renders a list answer: records wrapped as {"data", "uri"}, paging
// and links.
func listBody(records []string, current, total, count int, links ...string) string {
	items := make([]string, len(records))
	for i, r := range records {
		items[i] = `{"data":` + r + `,"uri":"/v1/x/` + fmt.Sprint(i) + `"}`
	}
	return fmt.Sprintf(`{"data":[%s],"paging":{"current":%d,"total":%d,"count":%d},"links":[%s]}`,
		strings.Join(items, ","), current, total, count, strings.Join(links, ","))
}

func link(rel, uri string) string {
	b, _ := json.Marshal(map[string]string{"rel": rel, "uri": uri})
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// cleverEvent is a real teachers.deleted event from Clever's public fixtures.
const cleverEvent = `{"type":"teachers.deleted","created":"2015-07-27T19:38:24.919Z","id":"55b688b1cd921d4a081c4ec3","data":{"object":{"id":"50c20477987eda0d3d02d30e","district":"4fd43cc56d11340000000005","school":"530e595026403103360ff9ff","sis_id":"39","email":"manuel.purdy@example.com","name":{"first":"Manuel","middle":"S","last":"Purdy"},"created":"2012-12-07T15:00:07.732Z","last_modified":"2014-02-26T21:15:01.296Z"}}}`
