package datahubtest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTokenFlowOnBothPaths(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{ClientID: "abc123", ClientSecret: "s3cret", TokenTTL: 90 * time.Second})

	for _, path := range []string{TokenPath, AuthPath} {
		var tok map[string]any
		r := h.tokenRequest(path, "abc123", "s3cret", "grant_type=client_credentials").want(t, http.StatusOK)
		r.decode(t, &tok)
		wantKeys(t, tok, "access_token", "token_type", "expires_in")
		if tok["token_type"] != "bearer" || tok["expires_in"] != float64(90) {
			t.Errorf("%s: token = %v", path, tok)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control = %q", path, r.header.Get("Cache-Control"))
		}
		h.getToken(tok["access_token"].(string), "/v1/districts").want(t, http.StatusOK)

		h.tokenRequest(path, "abc123", "wrong", "grant_type=client_credentials").
			wantJSON(t, http.StatusUnauthorized, `{"error":"invalid_client"}`)
		h.tokenRequest(path, "other", "s3cret", "grant_type=client_credentials").
			wantJSON(t, http.StatusUnauthorized, `{"error":"invalid_client"}`)
		// The document requires Basic: credentials in the body are not enough.
		h.tokenRequest(path, "", "", "grant_type=client_credentials&client_id=abc123&client_secret=s3cret").
			wantJSON(t, http.StatusUnauthorized, `{"error":"invalid_client"}`)
		h.tokenRequest(path, "abc123", "s3cret", "grant_type=password").
			wantJSON(t, http.StatusBadRequest, `{"error":"unsupported_grant_type"}`)
		h.tokenRequest(path, "abc123", "s3cret", "").
			wantJSON(t, http.StatusBadRequest, `{"error":"invalid_request"}`)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", h.srv.URL()+TokenPath, nil)
	h.send(req).want(t, http.StatusMethodNotAllowed)

	st := h.srv.Stats()
	if st.TokensIssued != 3 { // setup's and one per path
		t.Errorf("TokensIssued = %d, want 3", st.TokensIssued)
	}
	if st.ByEndpoint["POST "+AuthPath] != 6 || st.ByEndpoint["POST "+TokenPath] != 7 {
		t.Errorf("ByEndpoint = %v", st.ByEndpoint)
	}
}

func TestBearerTokens(t *testing.T) {
	t.Parallel()
	h := setup(t)

	h.getToken("", "/v1/teachers").wantJSON(t, http.StatusUnauthorized, `{"error":"unauthorized"}`)
	h.getToken("nope", "/v1/teachers").wantJSON(t, http.StatusUnauthorized, `{"error":"invalid_token"}`)
	h.get("/v1/teachers").want(t, http.StatusOK)
	// The document's access_token parameter works too, and is not echoed in links.
	p := h.getToken("", "/v1/teachers?access_token="+h.token+"&limit=5")
	p.want(t, http.StatusOK)
	if bytes.Contains(p.body, []byte(h.token)) {
		t.Errorf("answer echoes the token: %s", p.body)
	}
	// Unknown paths under the API are refused after authentication.
	h.getToken("", "/v1/nothing").want(t, http.StatusUnauthorized)
	h.get("/v1/nothing").want(t, http.StatusNotFound)
	h.get("/v1/teachers/x/y/z").want(t, http.StatusNotFound)

	h.srv.ExpireTokens()
	h.get("/v1/teachers").wantJSON(t, http.StatusUnauthorized, `{"error":"invalid_token"}`)
	h.token = h.fetchToken(AuthPath, ClientIDDefault, ClientSecretDefault)
	h.get("/v1/teachers").want(t, http.StatusOK)
}

func TestTokensExpireAfterTTL(t *testing.T) {
	t.Parallel()
	h := setup(t) // the default TTL, 7199 s
	h.clock.Advance(TokenTTLDefault - time.Second)
	h.get("/v1/events").want(t, http.StatusOK)
	h.clock.Advance(time.Second)
	h.get("/v1/events").wantJSON(t, http.StatusUnauthorized, `{"error":"invalid_token"}`)
	h.token = h.fetchToken(TokenPath, ClientIDDefault, ClientSecretDefault)
	h.get("/v1/events").want(t, http.StatusOK)
}

func TestFaults(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.SetFaults(Faults{Rate503: 1, RetryAfter: 1500 * time.Millisecond})
	for _, uri := range []string{"/v1/events", "/v1/teachers", "/v1/districts/" + h.srv.DistrictID()} {
		r := h.get(uri)
		r.wantJSON(t, http.StatusServiceUnavailable, `{"error":"service unavailable"}`)
		if got := r.header.Get("Retry-After"); got != "2" {
			t.Errorf("%s: Retry-After = %q, want 2 (1.5 s rounded up)", uri, got)
		}
	}
	// Authentication comes first, and the token endpoint is an upstream like the rest.
	h.getToken("bad", "/v1/events").want(t, http.StatusUnauthorized)
	h.tokenRequest(TokenPath, ClientIDDefault, ClientSecretDefault, "grant_type=client_credentials").
		want(t, http.StatusServiceUnavailable)

	h.srv.SetFaults(Faults{Rate429: 1})
	r := h.get("/v1/events").want(t, http.StatusTooManyRequests)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want the default 1", got)
	}
	h.srv.SetFaults(Faults{Rate500: 1})
	h.get("/v1/events").wantJSON(t, http.StatusInternalServerError, `{"error":"internal server error"}`)
	h.srv.SetFaults(Faults{})
	h.get("/v1/events").want(t, http.StatusOK)

	st := h.srv.Stats()
	if st.Faults != 6 || st.ByStatus[503] != 4 || st.ByStatus[429] != 1 || st.ByStatus[500] != 1 {
		t.Errorf("stats = %+v", st)
	}
	if st.ByEndpoint["GET /datahub/services/v1/districts/{id}"] != 1 {
		t.Errorf("ByEndpoint = %v, want ids replaced by {id}", st.ByEndpoint)
	}
}

// statuses sends n GETs to a fresh server with seed and mixed faults.
func statuses(t *testing.T, seed int64, n int) []int {
	h := setupWith(t, Options{Seed: seed})
	h.srv.SetFaults(Faults{Rate500: 0.2, Rate503: 0.1, Rate429: 0.2})
	out := make([]int, n)
	for i := range out {
		out[i] = h.get("/v1/events").status
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

func TestLatencyAndCancelledRequests(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.SetFaults(Faults{Latency: 100 * time.Millisecond})

	start := time.Now()
	h.get("/v1/events").want(t, http.StatusOK)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answer after %v, want at least the latency", d)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", h.srv.URL()+TokenPath, strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(ClientIDDefault, ClientSecretDefault)
	if resp, err := httpClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("request with a short deadline: %v, want deadline exceeded", err)
	}
	// The abandoned token request had no effect.
	time.Sleep(150 * time.Millisecond)
	if n := h.srv.Stats().TokensIssued; n != 1 {
		t.Errorf("TokensIssued = %d, want 1 (the abandoned request issued none)", n)
	}
}

func TestLogsHoldNoSecretsOrPersonalData(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := setupWith(t, Options{ClientSecret: "very-secret", Logger: logger})
	tch, _ := h.srv.AddTeacher(Teacher{Name: Name{First: "Manuel", Last: "Purdy"}, Email: "manuel.purdy@example.com"})
	h.get("/v1/teachers/"+tch.ID).want(t, http.StatusOK)
	h.getToken("", "/v1/events?access_token="+h.token).want(t, http.StatusOK)
	h.srv.Close()

	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	if !strings.Contains(out, "path=/datahub/services/v1/teachers/"+tch.ID) || !strings.Contains(out, "status=200") {
		t.Errorf("log lacks method, path or status:\n%s", out)
	}
	for _, secret := range []string{"very-secret", h.token, "Manuel", "Purdy", "example.com"} {
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

func TestConcurrentReadersAndScenarios(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(5, 40, 8, 10)
	h.srv.SetFaults(Faults{Rate500: 0.1})
	sections := h.srv.Sections()
	students := h.srv.Students()

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				switch j % 3 {
				case 0:
					h.get("/v1/events?limit=7")
				case 1:
					h.get("/v1/sections/" + sections[i].ID + "/students")
				default:
					h.get("/v1/teachers")
				}
			}
		})
		wg.Go(func() {
			for j := range 10 {
				h.srv.Enroll(sections[i].ID, students[(i*10+j)%len(students)].ID)
				h.srv.Unenroll(sections[i].ID, students[(i*10+j+5)%len(students)].ID)
			}
		})
	}
	wg.Wait()
	if n := h.srv.Stats().Requests; n != 1+80 {
		t.Errorf("requests = %d, want 81", n)
	}
	ids := make([]string, 0)
	for _, e := range h.srv.Events() {
		ids = append(ids, e.ID)
	}
	if !slices.IsSorted(ids) {
		t.Error("event ids are not in creation order")
	}
}
