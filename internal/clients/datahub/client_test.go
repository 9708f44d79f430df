package datahub

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	good := Config{BaseURL: "https://datahub.example.org", ClientID: "id", ClientSecret: "secret"}
	c, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.api.String() != "https://datahub.example.org/datahub/services/v1" || c.limit != PageLimitDefault ||
		c.tokens.TokenURL() != "https://datahub.example.org/datahub/oauth/token" {
		t.Errorf("defaults: api %s, limit %d, token %s", c.api, c.limit, c.tokens.TokenURL())
	}
	for tp, want := range map[string]string{
		"oauth/auth":                  "https://datahub.example.org/datahub/oauth/auth",
		"/oauth/auth":                 "https://datahub.example.org/datahub/oauth/auth",
		"https://sso.example.org/tok": "https://sso.example.org/tok",
	} {
		cfg := good
		cfg.TokenPath = tp
		c, err := New(cfg)
		if err != nil || c.tokens.TokenURL() != want {
			t.Errorf("TokenPath %q: %v, %v", tp, c, err)
		}
	}

	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.BaseURL = "" }, "BaseURL: required"},
		{func(c *Config) { c.BaseURL = "ftp://x" }, "BaseURL: scheme"},
		{func(c *Config) { c.BaseURL = "https://u:p@x" }, "BaseURL: must not hold credentials"},
		{func(c *Config) { c.BaseURL = "https://x?a=b" }, "BaseURL: must not have a query"},
		{func(c *Config) { c.ClientID = " " }, "ClientID: required"},
		{func(c *Config) { c.ClientSecret = "" }, "ClientSecret: required"},
		{func(c *Config) { c.PageLimit = 1001 }, "PageLimit"},
		{func(c *Config) { c.PageLimit = -1 }, "PageLimit"},
		{func(c *Config) { c.RetryMaxAttempts = -1 }, "RetryMaxAttempts"},
		{func(c *Config) { c.TokenPath = "oauth/token?x=1" }, "TokenPath"},
	} {
		cfg := good
		tc.mod(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") && !strings.Contains(tc.want, "Secret") {
			t.Errorf("error %q names the secret", err)
		}
	}
	// All problems at once.
	_, err = New(Config{PageLimit: 5000})
	for _, want := range []string{"BaseURL", "ClientID", "ClientSecret", "PageLimit"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("joined error %v lacks %s", err, want)
		}
	}
}

func TestListFollowsNextLinks(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		switch r.URL.Query().Get("search_token") {
		case "":
			if r.URL.Path != "/datahub/services/v1/teachers" || r.URL.Query().Get("limit") != "2" {
				t.Errorf("first page: %s", r.URL.RequestURI())
			}
			writeJSON(w, 200, listBody([]string{
				`{"id":"t1","sis_id":39,"name":{"first":"A","last":"B"},"created":"2012-12-07T15:00:07.732Z"}`,
				`{"id":"t2","teacher_number":null}`,
			}, 1, 3, 5, link("SELF", "/v1/teachers"), link("NEXT", "/v1/teachers?search_token=2.2.5.FORWARD.t2")))
		case "2.2.5.FORWARD.t2":
			// Lower-case rel, and a bare record without a wrapper.
			writeJSON(w, 200, `{"data":[{"id":"t3","unknown":[1]},{"data":{"id":"t4"},"uri":"/v1/teachers/t4"}],
				"paging":{"current":2,"total":3,"count":5},
				"links":[{"rel":"next","uri":"/v1/teachers?search_token=3.3.5.FORWARD.t4"}]}`)
		case "3.3.5.FORWARD.t4":
			writeJSON(w, 200, listBody([]string{`{"id":"t5"}`}, 3, 3, 5, link("NEXT", "/v1/teachers?search_token=4.3.5.FORWARD.t5")))
		case "4.3.5.FORWARD.t5":
			// An empty page that still links on: the list ends here.
			writeJSON(w, 200, listBody(nil, 4, 3, 5, link("NEXT", "/v1/teachers?search_token=5.3.5.FORWARD.t5")))
		default:
			t.Errorf("unexpected request %s", r.URL.RequestURI())
			writeJSON(w, 400, `{"error":"bad token"}`)
		}
	}, func(c *Config) { c.PageLimit = 2 })

	got, err := b.client.Teachers(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tc := range got {
		ids = append(ids, tc.ID)
	}
	if !slices.Equal(ids, []string{"t1", "t2", "t3", "t4", "t5"}) {
		t.Errorf("ids = %v", ids)
	}
	if got[0].SISID != "39" || got[0].Name.Last != "B" || got[0].Created.IsZero() || got[1].TeacherNumber != "" {
		t.Errorf("first teachers = %+v", got[:2])
	}
	if n := len(b.fake.seen()); n != 4 {
		t.Errorf("%d requests, want 4: %q", n, b.fake.seen())
	}
	if b.fake.tokenCount() != 1 {
		t.Errorf("%d tokens fetched, want 1", b.fake.tokenCount())
	}
}

func TestListStopsWithoutNext(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, 200, listBody([]string{`{"id":"s1","students":["p1"]}`}, 1, 1, 1, link("SELF", "/v1/sections")))
	})
	got, err := b.client.Sections(b.ctx)
	if err != nil || len(got) != 1 || got[0].ID != "s1" || !slices.Equal(got[0].Students, []string{"p1"}) {
		t.Fatalf("Sections = %+v, %v", got, err)
	}
}

func TestListRejectsMalformedRecordAndLoops(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if r.URL.Path == "/datahub/services/v1/students" {
			writeJSON(w, 200, listBody([]string{`{"id":"p1"}`, `{"name":{"first":"Nameless","last":"Pupil"}}`}, 1, 1, 2))
			return
		}
		// A NEXT link that points back at itself.
		writeJSON(w, 200, listBody([]string{`{"id":"t1"}`}, 1, 1, 1, link("NEXT", "/v1/teachers?search_token=same")))
	})
	_, err := b.client.Students(b.ctx)
	if !errors.Is(err, ErrMalformed) || IsRetryable(err) || strings.Contains(err.Error(), "Nameless") {
		t.Errorf("Students err = %v", err)
	}
	_, err = b.client.Teachers(b.ctx)
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("Teachers with a looping NEXT err = %v", err)
	}
}

func TestTokenReusedUntilExpiry(t *testing.T) {
	t.Parallel()
	var tokens []string
	b := setup(t, func(w http.ResponseWriter, r *http.Request, token string) {
		tokens = append(tokens, token)
		writeJSON(w, 200, `{"data":[]}`)
	})
	for range 3 {
		if _, err := b.client.Teachers(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	// expires_in 7199 with a minute's margin: still good just before.
	b.clock.Advance(7199*time.Second - time.Minute - time.Second)
	if _, err := b.client.Teachers(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2 * time.Second)
	if _, err := b.client.Teachers(b.ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tokens, []string{"tok-1", "tok-1", "tok-1", "tok-1", "tok-2"}) {
		t.Errorf("tokens used = %v", tokens)
	}
}

func TestUnauthorizedRefetchesTokenOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, token string) {
		if token == "tok-1" {
			writeJSON(w, 401, `{"error":"invalid_token"}`)
			return
		}
		writeJSON(w, 200, listBody([]string{`{"id":"s1"}`}, 1, 1, 1))
	})
	got, err := b.client.Students(b.ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("Students = %v, %v", got, err)
	}
	if b.fake.tokenCount() != 2 || len(b.fake.seen()) != 2 {
		t.Errorf("tokens %d, requests %q", b.fake.tokenCount(), b.fake.seen())
	}
	if len(b.waits()) != 0 {
		t.Errorf("a 401 must not back off: %v", b.waits())
	}
}

func TestUnauthorizedTwiceIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, token string) {
		writeJSON(w, 401, `{"error":"invalid_token"}`)
	})
	_, err := b.client.EventsPage(b.ctx, "")
	if !errors.Is(err, ErrUnauthorized) || IsRetryable(err) {
		t.Fatalf("err = %v, want ErrUnauthorized, not retryable", err)
	}
	ae, ok := errors.AsType[*APIError](err)
	if !ok || ae.Status != 401 || ae.Path != "/datahub/services/v1/events" || ae.Method != "GET" {
		t.Errorf("APIError = %+v", ae)
	}
	if b.fake.tokenCount() != 2 || len(b.fake.seen()) != 2 {
		t.Errorf("tokens %d, requests %q: want one refetch and one retry", b.fake.tokenCount(), b.fake.seen())
	}
	for _, s := range []string{"tok-", testSecret, "limit"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds %q", err, s)
		}
	}
}

func TestTokenEndpointRefusal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status    int
		body      string
		wantAuth  bool
		retryable bool
	}{
		{401, `{"error":"invalid_client"}`, true, false},
		{400, `{"error":"invalid_client","error_description":"Bad client s3cret+/=value"}`, true, false},
		{400, `{"error":"unsupported_grant_type"}`, true, false},
		{503, `<html>down</html>`, false, true},
		{200, `{"error":"invalid_client"}`, true, false},
		// The secret JSON-escaped: the raw answer does not hold it, its
		// decoded text does.
		{401, `{"error_description":"client secret s3cret+\/=value is not valid"}`, true, false},
		{401, `{"error":"s3cret+\/=value"}`, true, false},
	} {
		b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
			t.Errorf("API called without a token")
		}, func(c *Config) { c.RetryMaxAttempts = 1 })
		b.fake.tokenAnswer = func(int) (int, string, http.Header) { return tc.status, tc.body, nil }
		_, err := b.client.Teachers(b.ctx)
		if errors.Is(err, ErrUnauthorized) != tc.wantAuth || IsRetryable(err) != tc.retryable {
			t.Errorf("%d %s: err = %v (auth %v, retryable %v)", tc.status, tc.body, err, errors.Is(err, ErrUnauthorized), IsRetryable(err))
		}
		if err != nil && (strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "html")) {
			t.Errorf("error %q quotes the secret or the body", err)
		}
		if ae, ok := errors.AsType[*APIError](err); !ok || ae.Method != "POST" || ae.Path != "/datahub/oauth/token" {
			t.Errorf("APIError = %+v", ae)
		}
	}
}

func TestCursorRejected(t *testing.T) {
	t.Parallel()
	status := map[string]int{"gone": 400, "forbidden": 403, "missing": 404, "busy": 429, "expired": 410}
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if tok := r.URL.Query().Get("search_token"); tok != "" {
			writeJSON(w, status[tok], `{"error":"invalid search_token"}`)
			return
		}
		writeJSON(w, 400, `{"error":"bad request"}`)
	}, func(c *Config) { c.RetryMaxAttempts = 1 })

	for tok, want := range map[string]bool{"gone": true, "forbidden": true, "expired": true, "missing": false, "busy": false} {
		_, err := b.client.EventsPage(b.ctx, "/v1/events?search_token="+tok)
		if errors.Is(err, ErrCursorRejected) != want {
			t.Errorf("%d on a search_token: err = %v, cursor rejected %v", status[tok], err, !want)
		}
		if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), "search_token=") {
			t.Errorf("error %q holds the cursor", err)
		}
	}
	_, err := b.client.EventsPage(b.ctx, "/v1/events?search_token=missing")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("404 err = %v, want ErrNotFound", err)
	}
	// A 400 without a cursor is not a refused cursor.
	if _, err := b.client.EventsPage(b.ctx, ""); err == nil || errors.Is(err, ErrCursorRejected) || IsRetryable(err) {
		t.Errorf("400 to the first page: err = %v", err)
	}
	// A cursor that cannot be used at all.
	for _, bad := range []string{"https://evil.example/v1/events?search_token=x", "//evil.example/v1/events", "%zz", "?search_token=x"} {
		if _, err := b.client.EventsPage(b.ctx, bad); !errors.Is(err, ErrCursorRejected) {
			t.Errorf("cursor %q: err = %v, want ErrCursorRejected", bad, err)
		}
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "7")
			writeJSON(w, 429, `{"message":"slow down"}`)
		case 2:
			writeJSON(w, 502, ``)
		default:
			writeJSON(w, 200, listBody([]string{`{"id":"e1","type":"a.b"}`}, 1, 1, 1))
		}
	})
	p, err := b.client.EventsPage(b.ctx, "")
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("EventsPage = %+v, %v", p, err)
	}
	w := b.waits()
	if len(w) != 2 || w[0] != 7*time.Second || w[1] <= 0 || w[1] > 2*time.Second {
		t.Errorf("waits = %v, want [7s, a short backoff]", w)
	}
}

func TestRetriesGiveUp(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		calls.Add(1)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 503, `{"error":"maintenance for anne@example.com"}`)
	}, func(c *Config) { c.RetryMaxAttempts = 3 })
	_, err := b.client.Sections(b.ctx)
	if !IsRetryable(err) || calls.Load() != 3 {
		t.Fatalf("err = %v after %d calls", err, calls.Load())
	}
	ae, _ := errors.AsType[*APIError](err)
	if ae == nil || ae.Status != 503 || ae.RetryAfter != time.Second || strings.Contains(ae.Error(), "anne") {
		t.Errorf("APIError = %+v (%v)", ae, ae)
	}

	// A Retry-After beyond the retry budget ends the retries at once; the
	// caller gets it in the error.
	calls.Store(0)
	b2 := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		calls.Add(1)
		w.Header().Set("Retry-After", "3600")
		writeJSON(w, 429, `{}`)
	})
	_, err = b2.client.Sections(b2.ctx)
	if ae, _ := errors.AsType[*APIError](err); ae == nil || ae.RetryAfter != time.Hour || calls.Load() != 1 || len(b2.waits()) != 0 {
		t.Errorf("err = %v, calls %d, waits %v", err, calls.Load(), b2.waits())
	}

	// A fault that is not transient is not retried.
	calls.Store(0)
	b3 := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		calls.Add(1)
		writeJSON(w, 200, `<html>`)
	})
	if _, err := b3.client.Sections(b3.ctx); !errors.Is(err, ErrMalformed) || calls.Load() != 1 {
		t.Errorf("err = %v after %d calls", err, calls.Load())
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, 500, `{}`)
	})
	ctx, cancel := context.WithCancel(b.ctx)
	b.client.sleepFunc = func(ctx context.Context, d time.Duration) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	_, err := b.client.Teachers(ctx)
	if !errors.Is(err, context.Canceled) || IsRetryable(err) {
		t.Errorf("err = %v", err)
	}
	if ae, ok := errors.AsType[*APIError](err); !ok || ae.Status != 500 {
		t.Errorf("the last answer is lost: %v", err)
	}
}

func TestTransportErrorsAreRetryableAndScrubbed(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		// Hang up without an answer.
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Fatal("no hijacker")
		}
		conn, _, _ := hj.Hijack()
		conn.Close()
	}, func(c *Config) { c.RetryMaxAttempts = 2 })
	_, err := b.client.EventsPage(b.ctx, "/v1/events?search_token=2.2.148.FORWARD.pupil%40example.com")
	if !IsRetryable(err) || errors.Is(err, ErrCursorRejected) {
		t.Errorf("err = %v, retryable %v", err, IsRetryable(err))
	}
	for _, s := range []string{"search_token", "pupil", "127.0.0.1"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds %q", err, s)
		}
	}
	if len(b.waits()) != 1 {
		t.Errorf("waits = %v, want one retry", b.waits())
	}
}

func TestEventsPage(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if r.URL.Query().Get("search_token") != "" {
			// The cursor is sent byte for byte.
			if r.URL.RawQuery != "search_token=2.2.3.FORWARD.e2+x%2By" || r.URL.Path != "/datahub/services/v1/events" {
				t.Errorf("cursor request %s", r.URL.RequestURI())
			}
			writeJSON(w, 200, `{"data":[],"paging":{"current":2,"total":1,"count":3},"links":[{"rel":"NEXT","uri":"/v1/events?search_token=same"}]}`)
			return
		}
		writeJSON(w, 200, `{"data":[`+
			`{"data":`+cleverEvent+`,"uri":"/v1.1/events/55b688b1cd921d4a081c4ec3"},`+
			`{"data":{"id":"e2","type":"sections.updated","created":"garbage","data":{"object":{"id":"s"}}},"uri":"/v1/events/e2"},`+
			`{"id":"e3","type":"sections.created","created":"2025-01-01T00:00:00Z","data":{"object":{"id":"s"}}}`+
			`],"paging":{"current":1,"total":1,"count":3},"links":[{"rel":"NEXT","uri":"/v1/events?search_token=2.2.3.FORWARD.e2+x%2By"}]}`)
	})
	p, err := b.client.EventsPage(b.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 2 || p.Items[0].ID != "55b688b1cd921d4a081c4ec3" || p.Items[1].ID != "e3" {
		t.Errorf("items = %+v", p.Items)
	}
	if string(p.Items[0].Raw) != cleverEvent {
		t.Errorf("raw = %s", p.Items[0].Raw)
	}
	if len(p.Malformed) != 1 || p.Malformed[0].Index != 1 || p.Malformed[0].ID != "e2" ||
		!errors.Is(p.Malformed[0].Err, ErrMalformed) || !strings.Contains(string(p.Malformed[0].Raw), "garbage") {
		t.Errorf("malformed = %+v", p.Malformed)
	}
	if p.Next != "/v1/events?search_token=2.2.3.FORWARD.e2+x%2By" || p.Count != 3 {
		t.Errorf("next %q, count %d", p.Next, p.Count)
	}
	if u := b.fake.seen()[0]; !strings.HasPrefix(u, "GET /datahub/services/v1/events?limit=100 ") {
		t.Errorf("first page request %q", u)
	}

	p, err = b.client.EventsPage(b.ctx, p.Next)
	if err != nil || p.Len() != 0 || p.Next != "/v1/events?search_token=same" {
		t.Errorf("empty page = %+v, %v", p, err)
	}
}

func TestResolveNext(t *testing.T) {
	t.Parallel()
	c, err := New(Config{BaseURL: "https://dh.example.org/tenant/", ClientID: "i", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for next, want := range map[string]string{
		"/v1/events?search_token=2.2.148.FORWARD.abc":                    "https://dh.example.org/tenant/datahub/services/v1/events?search_token=2.2.148.FORWARD.abc",
		"v1/events?search_token=a%2Fb":                                   "https://dh.example.org/tenant/datahub/services/v1/events?search_token=a%2Fb",
		"/v1.1/events?starting_after=x":                                  "https://dh.example.org/tenant/datahub/services/v1.1/events?starting_after=x",
		"/tenant/datahub/services/v1/events?search_token=t":              "https://dh.example.org/tenant/datahub/services/v1/events?search_token=t",
		"https://DH.example.org/tenant/datahub/services/v1/events?s=1#f": "https://DH.example.org/tenant/datahub/services/v1/events?s=1",
	} {
		u, err := c.resolveNext(next)
		if err != nil || u.String() != want {
			t.Errorf("resolveNext(%q) = %v, %v; want %s", next, u, err, want)
		}
	}
	for _, bad := range []string{"http://dh.example.org/v1/events", "https://other.example/v1", "https://u:p@dh.example.org/v1", "", "?x=1"} {
		if u, err := c.resolveNext(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("resolveNext(%q) = %v, %v; want ErrMalformed", bad, u, err)
		}
	}
}

func TestFeedHead(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		q := r.URL.Query()
		ev := func(id string) string {
			return `{"id":"` + id + `","type":"sections.updated","created":"2025-03-0` + id[1:] + `T00:00:00Z","data":{"object":{"id":"s"}}}`
		}
		switch {
		case q.Get("search_token") == "after-e5":
			// The feed grew between the requests.
			writeJSON(w, 200, listBody([]string{ev("e6")}, 4, 4, 6, link("next", "/v1/events?search_token=after-e6")))
		case q.Get("search_token") == "after-e6":
			writeJSON(w, 200, listBody(nil, 5, 4, 6, link("NEXT", "/v1/events?search_token=after-e6-again")))
		case q.Get("page") == "1" && q.Get("limit") == "2":
			writeJSON(w, 200, listBody([]string{ev("e1"), ev("e2")}, 1, 3, 5, link("NEXT", "/v1/events?search_token=after-e2")))
		case q.Get("page") == "3" && q.Get("limit") == "2":
			writeJSON(w, 200, listBody([]string{ev("e5")}, 3, 3, 5, link("NEXT", "/v1/events?search_token=after-e5")))
		default:
			t.Errorf("unexpected request %s", r.URL.RequestURI())
			writeJSON(w, 500, `{}`)
		}
	}, func(c *Config) { c.PageLimit = 2 })
	id, next, err := b.client.FeedHead(b.ctx)
	if err != nil || id != "e6" || next != "/v1/events?search_token=after-e6" {
		t.Fatalf("FeedHead = %q, %q, %v", id, next, err)
	}
	h, err := b.client.Head(b.ctx)
	if err != nil || h.ID != "e6" || !h.Created.Equal(time.Date(2025, 3, 6, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Head = %+v, %v", h, err)
	}
}

func TestFeedHeadOfEmptyFeed(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if r.URL.Query().Get("page") != "1" {
			t.Errorf("unexpected request %s", r.URL.RequestURI())
		}
		writeJSON(w, 200, listBody(nil, 1, 1, 0, link("NEXT", "/v1/events?search_token=head")))
	})
	id, next, err := b.client.FeedHead(b.ctx)
	if err != nil || id != "" || next != "/v1/events?search_token=head" {
		t.Errorf("FeedHead = %q, %q, %v", id, next, err)
	}
}

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&APIError{Status: 429}, true},
		{&APIError{Status: 500}, true},
		{&APIError{Status: 503}, true},
		{&APIError{Status: 400}, false},
		{&APIError{Status: 404}, false},
		{&APIError{Status: 503, credentials: true}, false},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{errors.Join(&APIError{Status: 503}, context.Canceled), false},
		{ErrMalformed, false},
		{&url.Error{Op: "Get", URL: "x", Err: &timeoutErr{}}, true},
	} {
		if got := IsRetryable(tc.err); got != tc.want {
			t.Errorf("IsRetryable(%v) = %v", tc.err, got)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
