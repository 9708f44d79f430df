package classtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	h := setup(t)

	h.doKey("", "GET", "/api/v1/classes", nil).wantJSON(t, http.StatusUnauthorized, `{"error":"Unauthorized"}`)
	h.doKey("unknown", "GET", "/api/v1/classes", nil).wantJSON(t, http.StatusUnauthorized, `{"error":"Unauthorized"}`)

	h.srv.AddKey("reader", ScopeClassRead)
	h.doKey("reader", "GET", "/api/v1/classes", nil).want(t, http.StatusOK)
	h.doKey("reader", "POST", "/api/v1/classes", docClass()).
		wantJSON(t, http.StatusForbidden, `{"error":"Api key scope class:write required"}`)
	h.doKey("reader", "GET", "/api/v1/users", nil).
		wantJSON(t, http.StatusForbidden, `{"error":"Api key scope user:read required"}`)
	if st := h.srv.State(); len(st.Classes) != 0 {
		t.Errorf("a forbidden POST stored %+v", st.Classes)
	}

	h.srv.RevokeKey("reader")
	h.doKey("reader", "GET", "/api/v1/classes", nil).wantJSON(t, http.StatusUnauthorized, `{"error":"Unauthorized"}`)

	h.do("GET", "/api/v1/templates", nil).want(t, http.StatusNotFound)
	h.do("PUT", "/api/v1/classes", nil).want(t, http.StatusMethodNotAllowed)
}

func TestEveryCallFaultsWithRate503(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.SetFaults(Faults{Rate503: 1, RetryAfter: 1500 * time.Millisecond})
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/classes", nil},
		{"POST", "/api/v1/classes", docClass()},
		{"PUT", "/api/v1/users", map[string]any{"identified_by": "email", "email": "a@b.co", "user_name": "A"}},
		{"GET", "/api/v1/schedules?class_id=x", nil},
	} {
		r := h.do(c.method, c.path, c.body)
		r.wantJSON(t, http.StatusServiceUnavailable, `{"error":"Service Unavailable"}`)
		if got := r.header.Get("Retry-After"); got != "2" {
			t.Errorf("%s %s: Retry-After = %q, want 2 (1.5s rounded up)", c.method, c.path, got)
		}
	}
	// Auth comes first: a bad key is still 401.
	h.doKey("bad", "GET", "/api/v1/classes", nil).want(t, http.StatusUnauthorized)
	if st := h.srv.State(); len(st.Classes) != 0 || len(st.Users) != 0 {
		t.Errorf("faulted writes stored %+v", st)
	}
	if s := h.srv.Stats(); s.Faults != 4 || s.ByStatus[503] != 4 || s.ByStatus[401] != 1 || s.Requests != 5 {
		t.Errorf("stats = %+v", s)
	}

	h.srv.SetFaults(Faults{Rate429: 1})
	r := h.do("GET", "/api/v1/classes", nil)
	r.wantJSON(t, http.StatusTooManyRequests, `{"error":"Too Many Requests"}`)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want the default 1", got)
	}
	h.srv.SetFaults(Faults{Rate500: 1})
	h.do("GET", "/api/v1/classes", nil).wantJSON(t, http.StatusInternalServerError, `{"error":"Internal Server Error"}`)
	h.srv.SetFaults(Faults{})
	h.do("GET", "/api/v1/classes", nil).want(t, http.StatusOK)
}

// statuses sends n GETs to a fresh server with seed and the faults and lists the answers.
func statuses(t *testing.T, seed int64, n int) []int {
	s := New(Options{Seed: seed})
	t.Cleanup(s.Close)
	s.AddKey(testKey)
	s.SetFaults(Faults{Rate500: 0.2, Rate503: 0.1, Rate429: 0.2})
	h := &harness{t: t, srv: s, key: testKey}
	out := make([]int, n)
	for i := range out {
		out[i] = h.do("GET", "/api/v1/classes", nil).status
	}
	return out
}

func TestFaultsAreDeterministicForOneSeed(t *testing.T) {
	t.Parallel()
	a, b, other := statuses(t, 42, 60), statuses(t, 42, 60), statuses(t, 43, 60)
	if !slices.Equal(a, b) {
		t.Errorf("seed 42 gave\n%v\nand\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Errorf("seeds 42 and 43 gave the same faults %v", a)
	}
	counts := map[int]int{}
	for _, s := range a {
		counts[s]++
	}
	if counts[200] == 0 || counts[500] == 0 || counts[429] == 0 || counts[503] == 0 {
		t.Errorf("60 requests at 50%% faults gave %v, want every status", counts)
	}
}

func TestGeneratedIDsAreDeterministicForOneSeed(t *testing.T) {
	t.Parallel()
	ids := func() string {
		h := setup(t)
		h.createDocClass()
		h.do("POST", "/api/v1/class/enrollments", docEnrollment("demo-1")).want(t, http.StatusOK)
		return fmt.Sprint(h.srv.State())
	}
	if a, b := ids(), ids(); a != b {
		t.Errorf("one seed gave different states:\n%s\n%s", a, b)
	}
}

func TestAfterEffectAppliesWriteThenAnswers500(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.SetFaults(Faults{AfterEffectRate: 1})

	h.do("POST", "/api/v1/classes", docClass()).wantJSON(t, http.StatusInternalServerError, `{"error":"Internal Server Error"}`)
	if _, ok := h.srv.FindClass("demo-1"); !ok {
		t.Fatal("the write answered 500 was not applied")
	}
	// A retry sees the effect of the first attempt.
	h.do("POST", "/api/v1/classes", docClass()).want(t, http.StatusBadRequest)
	// Reads are not affected.
	h.do("GET", "/api/v1/classes?ext_class_id=demo-1", nil).want(t, http.StatusOK)
	if s := h.srv.Stats(); s.Faults != 1 {
		t.Errorf("faults = %d, want 1 (refusals and reads are not after-effects)", s.Faults)
	}
}

func TestLatencyAndCancelledRequests(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.SetFaults(Faults{Latency: 100 * time.Millisecond})

	start := time.Now()
	h.do("GET", "/api/v1/classes", nil).want(t, http.StatusOK)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answer after %v, want at least the latency", d)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", h.srv.URL()+"/api/v1/classes", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	if resp, err := httpClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("request with a short deadline: %v, want deadline exceeded", err)
	}
}

func TestResetKeepsKeysAndStats(t *testing.T) {
	t.Parallel()
	h := setup(t)
	first := h.createDocClass()
	h.srv.SeedUser(User{Email: "a@b.co", UserName: "A"})
	h.do("POST", "/api/v1/class/enrollments", docEnrollment("demo-1")).want(t, http.StatusOK)
	h.do("POST", "/api/v1/class/enrollments", docEnrollment("demo-1")).want(t, http.StatusOK)

	h.srv.Reset()
	if st := h.srv.State(); len(st.Classes) != 0 || len(st.Users) != 0 || h.srv.Duplicates() != nil {
		t.Fatalf("after Reset: %+v, duplicates %v", st, h.srv.Duplicates())
	}
	second := h.createDocClass() // the key still works, and the ext id is free again
	if second == first {
		t.Errorf("class_id %s reused after Reset", second)
	}
	if s := h.srv.Stats(); s.ByEndpoint["POST /api/v1/classes"] != 2 || s.ByEndpoint["POST /api/v1/class/enrollments"] != 2 {
		t.Errorf("stats after Reset = %+v", s)
	}
}

func TestConcurrentRequests(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.SetFaults(Faults{Rate500: 0.1, AfterEffectRate: 0.1})
	const n = 40
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			b := docClass()
			b["ext_class_id"] = fmt.Sprintf("c-%d", i%10) // four POSTs per ext id
			statuses[i] = h.do("POST", "/api/v1/classes", b).status
		})
	}
	wg.Wait()
	st := h.srv.State()
	if len(st.Classes) > 10 {
		t.Errorf("%d classes for 10 ext ids", len(st.Classes))
	}
	created := 0
	for _, s := range statuses {
		if s == http.StatusCreated {
			created++
		}
	}
	if created > len(st.Classes) {
		t.Errorf("%d POSTs answered 201 but %d classes exist", created, len(st.Classes))
	}
	if h.srv.Stats().Requests != n {
		t.Errorf("requests = %d, want %d", h.srv.Stats().Requests, n)
	}
	if d := h.srv.Duplicates(); d != nil {
		t.Errorf("duplicates = %v", d)
	}
}

func TestLogsHoldNoPersonalData(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	s := New(Options{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	s.AddKey("secret-key")
	h := &harness{t: t, srv: s, key: "secret-key"}
	h.do("POST", "/api/v1/classes", docClass()).want(t, http.StatusCreated)
	h.do("GET", "/api/v1/users?email=anne.malley@demo.com", nil).want(t, http.StatusNotFound)
	s.Close()

	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	if !strings.Contains(out, "path=/api/v1/classes") || !strings.Contains(out, "status=201") {
		t.Errorf("log lacks method, path or status:\n%s", out)
	}
	for _, secret := range []string{"anne", "Anne", "Malley", "secret-key", "demo.com"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
