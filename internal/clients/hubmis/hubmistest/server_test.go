package hubmistest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTokenFlow(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{ClientID: "abc123XYZ", ClientSecret: "Secret123", IPBucket: -1, ClientBucket: -1})

	// The document's form-encoded example and its JSON schema both work.
	var tok map[string]any
	h.tokenRequest("application/x-www-form-urlencoded",
		"grant_type=client_credentials&client_id=abc123XYZ&client_secret=Secret123").want(t, http.StatusOK).decode(t, &tok)
	if len(tok) != 3 || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(900) || tok["access_token"] == "" {
		t.Errorf("form token = %v", tok)
	}
	h.tokenRequest("application/json; charset=utf-8",
		`{"grant_type":"client_credentials","client_id":"abc123XYZ","client_secret":"Secret123"}`).
		want(t, http.StatusOK).decode(t, &tok)
	jsonToken := tok["access_token"].(string)
	h.get(PathRegionalSettings).want(t, http.StatusOK)
	h.getWith(jsonToken, h.srv.Realm(), PathRegionalSettings).want(t, http.StatusOK)

	for _, tc := range []struct {
		name, ct, body string
		status         int
		code           string
	}{
		{"wrong secret", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=abc123XYZ&client_secret=nope", 401, "invalid_client"},
		{"wrong id", "application/json", `{"grant_type":"client_credentials","client_id":"x","client_secret":"Secret123"}`, 401, "invalid_client"},
		{"no credentials", "application/x-www-form-urlencoded", "grant_type=client_credentials", 401, "invalid_client"},
		{"other grant", "application/x-www-form-urlencoded", "grant_type=password&client_id=abc123XYZ&client_secret=Secret123", 400, "unsupported_grant_type"},
		{"no grant", "application/x-www-form-urlencoded", "client_id=abc123XYZ&client_secret=Secret123", 400, "invalid_request"},
		{"bad JSON", "application/json", `{"grant_type":`, 400, "invalid_request"},
	} {
		r := h.tokenRequest(tc.ct, tc.body).want(t, tc.status)
		if got := r.errCode(t); got != tc.code {
			t.Errorf("%s: error = %q, want %q", tc.name, got, tc.code)
		}
	}

	// HTTP Basic alone is not what the document describes.
	req, _ := http.NewRequestWithContext(t.Context(), "POST", h.srv.URL()+PathToken, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("abc123XYZ", "Secret123")
	h.send(req).want(t, http.StatusUnauthorized)

	req, _ = http.NewRequestWithContext(t.Context(), "GET", h.srv.URL()+PathToken, nil)
	if r := h.send(req).want(t, http.StatusMethodNotAllowed); r.header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}

	st := h.srv.Stats()
	if st.TokensIssued != 3 || st.ByEndpoint["POST "+PathToken] != 10 || st.ByEndpoint["GET "+PathToken] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{TokenTTL: 90 * time.Second, IPBucket: -1, ClientBucket: -1})
	var tok map[string]any
	h.tokenRequest("application/x-www-form-urlencoded",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {ClientIDDefault}, "client_secret": {ClientSecretDefault}}.Encode()).
		want(t, http.StatusOK).decode(t, &tok)
	if tok["expires_in"] != float64(90) {
		t.Errorf("expires_in = %v", tok["expires_in"])
	}

	h.clock.Advance(89 * time.Second)
	h.get(PathAcademicYears).want(t, http.StatusOK)
	h.clock.Advance(time.Second)
	r := h.get(PathAcademicYears).want(t, http.StatusUnauthorized)
	if r.errCode(t) != "invalid_token" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("expired: %s %v", r.body, r.header)
	}

	h.token = h.fetchToken()
	h.get(PathAcademicYears).want(t, http.StatusOK)
	h.srv.ExpireTokens()
	h.get(PathAcademicYears).want(t, http.StatusUnauthorized)

	h.getWith("", h.srv.Realm(), PathAcademicYears).want(t, http.StatusUnauthorized)
	h.getWith("1.abc.xyz", h.srv.Realm(), PathAcademicYears).want(t, http.StatusUnauthorized)
}

func TestDefaultTokenTTLIs15Minutes(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.clock.Advance(15*time.Minute - time.Second)
	h.get(PathStudents).want(t, http.StatusOK)
	h.clock.Advance(time.Second)
	h.get(PathStudents).want(t, http.StatusUnauthorized)
}

func TestRealmHeader(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{Realm: "S123", IPBucket: -1, ClientBucket: -1})
	if h.srv.Realm() != "S123" {
		t.Fatalf("Realm() = %q", h.srv.Realm())
	}
	if got := h.getWith(h.token, "", PathStudents).want(t, http.StatusBadRequest).errCode(t); got != "realm_required" {
		t.Errorf("missing realm: %q", got)
	}
	h.getWith(h.token, "S999", PathStudents).want(t, http.StatusForbidden)
	h.getWith(h.token, "S123", PathStudents).want(t, http.StatusOK)
	// The token is checked before the realm.
	h.getWith("", "", PathStudents).want(t, http.StatusUnauthorized)

	// The header name is case-insensitive, as the document writes it "realm".
	req, _ := http.NewRequestWithContext(t.Context(), "GET", h.srv.URL()+PathStudents, nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header["realm"] = []string{"S123"}
	h.send(req).want(t, http.StatusOK)
}

func TestAcademicYearHeader(t *testing.T) {
	t.Parallel()
	h := setup(t)
	req := func(v string) response {
		r, _ := http.NewRequestWithContext(t.Context(), "GET", h.srv.URL()+PathStudents, nil)
		r.Header.Set("Authorization", "Bearer "+h.token)
		r.Header.Set(HeaderRealm, h.srv.Realm())
		r.Header.Set(HeaderAcademicYearID, v)
		return h.send(r)
	}
	req(h.srv.CurrentAcademicYear().ID).want(t, http.StatusOK)
	req(h.srv.AcademicYears()[0].ID).want(t, http.StatusOK)
	req("999").want(t, http.StatusBadRequest)
	req("abc").want(t, http.StatusBadRequest)
}

func TestUnknownPathsAndMethods(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.get("/api/v1/nothing").want(t, http.StatusNotFound)
	h.getWith("", "", "/api/v1/nothing").want(t, http.StatusUnauthorized)
	h.get("/elsewhere").want(t, http.StatusNotFound)

	req, _ := http.NewRequestWithContext(t.Context(), "POST", h.srv.URL()+PathStudents, nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set(HeaderRealm, h.srv.Realm())
	if r := h.send(req).want(t, http.StatusMethodNotAllowed); r.header.Get("Allow") != "GET" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}
	st := h.srv.Stats()
	if st.ByEndpoint["GET /api/v1/nothing"] != 2 || st.ByEndpoint["POST "+PathStudents] != 1 || st.ByStatus[404] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	h := setup(t)

	h.srv.SetFaults(Faults{Rate500: 1})
	h.get(PathStudents).want(t, http.StatusInternalServerError)
	h.srv.SetFaults(Faults{Rate503: 1, RetryAfter: 1500 * time.Millisecond})
	if r := h.get(PathStudents).want(t, http.StatusServiceUnavailable); r.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	// Faults come after the checks: a request without realm is still 400.
	h.getWith(h.token, "", PathStudents).want(t, http.StatusBadRequest)
	h.srv.SetFaults(Faults{})
	h.get(PathStudents).want(t, http.StatusOK)
	if st := h.srv.Stats(); st.Faults != 2 || st.ByStatus[500] != 1 || st.ByStatus[503] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFaultsAreSeeded(t *testing.T) {
	t.Parallel()
	run := func(seed int64) []int {
		h := setupWith(t, Options{Seed: seed, IPBucket: -1, ClientBucket: -1})
		h.srv.SetFaults(Faults{Rate500: 0.3, Rate503: 0.2})
		var got []int
		for range 30 {
			got = append(got, h.get(PathAcademicYears).status)
		}
		return got
	}
	a, b, c := run(3), run(3), run(4)
	if !equalInts(a, b) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if equalInts(a, c) {
		t.Errorf("different seeds, same faults: %v", a)
	}
	n := 0
	for _, s := range a {
		if s != http.StatusOK {
			n++
		}
	}
	if n < 5 || n > 25 {
		t.Errorf("%d faults of 30 at a rate of 0.5", n)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLatency(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.SetFaults(Faults{Latency: 150 * time.Millisecond})
	start := time.Now()
	h.get(PathAcademicYears).want(t, http.StatusOK)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered after %v", d)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL()+PathAcademicYears, nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set(HeaderRealm, h.srv.Realm())
	res, err := httpClient.Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatal("a request that gave up got an answer")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}

func TestCloseIsIdempotentAndRefuses(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	u := s.URL()
	s.Close()
	s.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", u+PathStudents, nil)
	if res, err := httpClient.Do(req); err == nil {
		res.Body.Close()
		t.Error("a closed server answered")
	}
}

// TestLogsHoldNoPersonalData runs a populated school's requests through a logger and
// looks for names, emails, tokens, secrets and queries in the records.
func TestLogsHoldNoPersonalData(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := setupWith(t, Options{Logger: logger, IPBucket: -1, ClientBucket: -1})
	h.srv.Populate(10, 3, 2, 2)
	st := h.srv.Students()[0]
	h.get(PathStudents, "search="+url.QueryEscape(st.Email))
	h.get(path(PathStudent, st.ID))
	h.get(path(PathStaffCalendar, h.srv.Staff()[0].ID), "filter[dateFrom]=2026-03-02", "filter[dateTo]=2026-03-06")
	h.getWith("1.bad.token", "", PathStaff)

	out := buf.String()
	if !strings.Contains(out, "route="+PathStaffCalendar) || !strings.Contains(out, "status=200") {
		t.Fatalf("log lacks the route or status:\n%s", out)
	}
	secrets := []string{h.token, h.srv.ClientSecret(), "1.bad.token", "search", "dateFrom", st.Email, st.FirstName, st.LastName}
	for _, m := range h.srv.Staff() {
		secrets = append(secrets, m.Email, m.LastName)
	}
	for _, sec := range secrets {
		if strings.Contains(out, sec) {
			t.Errorf("log holds %q:\n%s", sec, out)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
