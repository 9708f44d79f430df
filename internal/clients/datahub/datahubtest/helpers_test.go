package datahubtest

import (
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/fakeclock"
)

var httpClient = &http.Client{Timeout: 5 * time.Second}

// fakeClock is the injected clock tests move by hand.
type fakeClock = fakeclock.Clock

func newClock() *fakeClock { return fakeclock.New(time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)) }

// harness is one simulator on a fake clock with a token, closed when the test ends.
type harness struct {
	t     *testing.T
	srv   *Server
	clock *fakeClock
	token string
}

func setup(t *testing.T) *harness {
	t.Helper()
	return setupWith(t, Options{Seed: 7})
}

// setupWith starts a simulator with opts; Now defaults to a fresh fake clock.
func setupWith(t *testing.T, opts Options) *harness {
	t.Helper()
	clock := newClock()
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	s := New(opts)
	t.Cleanup(s.Close)
	h := &harness{t: t, srv: s, clock: clock}
	h.token = h.fetchToken(TokenPath, cmp.Or(opts.ClientID, ClientIDDefault), cmp.Or(opts.ClientSecret, ClientSecretDefault))
	return h
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// tokenRequest posts the document's token request to path with Basic id:secret (none
// when id is empty) and body.
func (h *harness) tokenRequest(path, id, secret, body string) response {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), "POST", h.srv.URL()+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	return h.send(req)
}

func (h *harness) fetchToken(path, id, secret string) string {
	h.t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	h.tokenRequest(path, id, secret, "grant_type=client_credentials").want(h.t, http.StatusOK).decode(h.t, &tok)
	if tok.AccessToken == "" {
		h.t.Fatal("no access_token")
	}
	return tok.AccessToken
}

// get sends GET to uri, relative to the services root ("/v1/teachers"), as a client
// resolves the document's links, with the harness token.
func (h *harness) get(uri string) response {
	h.t.Helper()
	return h.getToken(h.token, uri)
}

func (h *harness) getToken(token, uri string) response {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), "GET", h.srv.URL()+ServicesRoot+uri, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.send(req)
}

func (h *harness) send(req *http.Request) response {
	h.t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails the test unless the answer has the status.
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

// wantJSON fails the test unless the answer's body equals the JSON document want.
func (r response) wantJSON(t *testing.T, status int, want string) {
	t.Helper()
	r.want(t, status)
	var got, exp any
	r.decode(t, &got)
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("body = %s, want %s", r.body, want)
	}
}

// page is a decoded list answer.
type page struct {
	Data []struct {
		Data json.RawMessage `json:"data"`
		URI  string          `json:"uri"`
	} `json:"data"`
	Paging struct {
		Current int `json:"current"`
		Total   int `json:"total"`
		Count   int `json:"count"`
	} `json:"paging"`
	Links []struct {
		Rel string `json:"rel"`
		URI string `json:"uri"`
	} `json:"links"`
}

// link returns the uri of the link rel, compared case-insensitively as a client must.
func (p page) link(rel string) (string, bool) {
	for _, l := range p.Links {
		if strings.EqualFold(l.Rel, rel) {
			return l.URI, true
		}
	}
	return "", false
}

func (h *harness) list(uri string) page {
	h.t.Helper()
	var p page
	h.get(uri).want(h.t, http.StatusOK).decode(h.t, &p)
	return p
}

// ids decodes the id of every record of a page.
func (p page) ids(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, d := range p.Data {
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(d.Data, &v); err != nil {
			t.Fatalf("decode %s: %v", d.Data, err)
		}
		out = append(out, v.ID)
	}
	return out
}

// followAll reads uri and every page its NEXT links lead to, and returns all records'
// ids and the pages. It stops at a page without NEXT, so it suits resource lists only.
func (h *harness) followAll(uri string) ([]string, []page) {
	h.t.Helper()
	var ids []string
	var pages []page
	for range 100 {
		p := h.list(uri)
		pages = append(pages, p)
		ids = append(ids, p.ids(h.t)...)
		next, ok := p.link("next")
		if !ok {
			return ids, pages
		}
		uri = next
	}
	h.t.Fatal("more than 100 pages")
	return nil, nil
}

// searchTokenOf returns the search_token of a NEXT uri.
func searchTokenOf(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("parse %q: %v", uri, err)
	}
	return u.Query().Get("search_token")
}

// eventOf decodes one event of a feed page.
type decodedEvent struct {
	ID      string `json:"id"`
	Created string `json:"created"`
	Type    string `json:"type"`
	Data    struct {
		Object   map[string]any `json:"object"`
		Previous map[string]any `json:"previous_attributes"`
	} `json:"data"`
}

// event fetches one event by id through GET /v1/events/{id}.
func (h *harness) event(id string) (decodedEvent, map[string]any) {
	h.t.Helper()
	var single struct {
		Data  json.RawMessage `json:"data"`
		Links []struct{ Rel, URI string }
	}
	h.get("/v1/events/"+id).want(h.t, http.StatusOK).decode(h.t, &single)
	var ev decodedEvent
	var raw map[string]any
	if err := json.Unmarshal(single.Data, &ev); err != nil {
		h.t.Fatal(err)
	}
	if err := json.Unmarshal(single.Data, &raw); err != nil {
		h.t.Fatal(err)
	}
	return ev, raw
}

// wantKeys fails the test unless a JSON object has exactly these keys.
func wantKeys(t *testing.T, obj map[string]any, keys ...string) {
	t.Helper()
	if len(obj) != len(keys) {
		t.Errorf("object has %d keys, want %d (%v): %v", len(obj), len(keys), keys, obj)
	}
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("key %q missing from %v", k, obj)
		}
	}
}

// strs turns a decoded JSON array into strings.
func strs(t *testing.T, v any) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%v (%T) is not an array", v, v)
	}
	out := []string{}
	for _, x := range arr {
		s, ok := x.(string)
		if !ok {
			t.Fatalf("%v is not a string", x)
		}
		out = append(out, s)
	}
	return out
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// advance moves the clock and, as a client would after a 401, fetches a new token when
// the old one has expired meanwhile.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	if d >= TokenTTLDefault {
		h.token = h.fetchToken(TokenPath, ClientIDDefault, ClientSecretDefault)
	}
}

// jsonRoundTrip encodes v and decodes it into out.
func jsonRoundTrip(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
