package hubmistest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/fakeclock"
)

var httpClient = &http.Client{Timeout: 5 * time.Second}

// fakeClock is the injected clock tests move by hand.
type fakeClock = fakeclock.Clock

// newClock starts on Monday 2 March 2026, 08:00 UTC (08:00 in London, before the clocks
// change on 29 March).
func newClock() *fakeClock { return fakeclock.New(time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)) }

// harness is one simulator on a fake clock with a token, closed when the test ends.
type harness struct {
	t     *testing.T
	srv   *Server
	clock *fakeClock
	token string
}

// setup starts a simulator without rate limits (tests of them set their own).
func setup(t *testing.T) *harness {
	t.Helper()
	return setupWith(t, Options{Seed: 7, IPBucket: -1, ClientBucket: -1})
}

// setupWith starts a simulator with opts; Now defaults to a fresh fake clock. It fetches
// a token unless the token request would spend a limited budget.
func setupWith(t *testing.T, opts Options) *harness {
	t.Helper()
	clock := newClock()
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	s := New(opts)
	t.Cleanup(s.Close)
	h := &harness{t: t, srv: s, clock: clock}
	h.token = h.fetchToken()
	return h
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) want(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// list decodes a bare array of objects.
func (r response) list(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	r.decode(t, &out)
	return out
}

func (r response) errCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error, Message string
	}
	r.decode(t, &e)
	if e.Message == "" {
		t.Errorf("error body %s has no message", r.body)
	}
	return e.Error
}

func (h *harness) send(req *http.Request) response {
	h.t.Helper()
	res, err := httpClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		h.t.Errorf("Content-Type = %q", ct)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

// tokenRequest posts body to the token endpoint with the content type.
func (h *harness) tokenRequest(contentType, body string) response {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), "POST", h.srv.URL()+PathToken, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return h.send(req)
}

func (h *harness) fetchToken() string {
	h.t.Helper()
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {h.srv.ClientID()},
		"client_secret": {h.srv.ClientSecret()},
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	h.tokenRequest("application/x-www-form-urlencoded", form.Encode()).want(h.t, http.StatusOK).decode(h.t, &tok)
	if tok.AccessToken == "" {
		h.t.Fatal("no access_token")
	}
	return tok.AccessToken
}

// get sends GET path?query with the harness token and the school's realm.
func (h *harness) get(path string, query ...string) response {
	h.t.Helper()
	return h.getWith(h.token, h.srv.Realm(), path, query...)
}

// getWith sends GET with a token and a realm; an empty one is left out.
func (h *harness) getWith(token, realm, path string, query ...string) response {
	h.t.Helper()
	u := h.srv.URL() + path
	if len(query) > 0 {
		u += "?" + strings.Join(query, "&")
	}
	req, err := http.NewRequestWithContext(h.t.Context(), "GET", u, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if realm != "" {
		req.Header.Set(HeaderRealm, realm)
	}
	return h.send(req)
}

// path fills a Path* pattern's ids in order.
func path(pattern string, ids ...string) string {
	for _, id := range ids {
		i := strings.Index(pattern, "{")
		j := strings.Index(pattern, "}")
		pattern = pattern[:i] + id + pattern[j+1:]
	}
	return pattern
}

// ids returns the "id" of each object, as decimal strings.
func ids(t *testing.T, objs []map[string]any) []string {
	t.Helper()
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		f, ok := o["id"].(float64)
		if !ok {
			t.Fatalf("object without a numeric id: %v", o)
		}
		out = append(out, strconv.Itoa(int(f)))
	}
	return out
}

func headerInt(t *testing.T, r response, name string) int {
	t.Helper()
	v := r.header.Get(name)
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s = %q: %v", name, v, err)
	}
	return n
}
