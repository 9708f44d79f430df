package hubmistest

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// wantLimited checks a 429 and its three headers; retryAt is the expected
// X-RateLimit-Retry-After.
func wantLimited(t *testing.T, r response, limit int, retryAt time.Time) {
	t.Helper()
	r.want(t, http.StatusTooManyRequests)
	if got := r.errCode(t); got != "too_many_requests" {
		t.Errorf("error = %q", got)
	}
	if got := headerInt(t, r, HeaderRateLimitLimit); got != limit {
		t.Errorf("%s = %d, want %d", HeaderRateLimitLimit, got, limit)
	}
	if got := headerInt(t, r, HeaderRateLimitRemaining); got != 0 {
		t.Errorf("%s = %d, want 0", HeaderRateLimitRemaining, got)
	}
	if got := r.header.Get(HeaderRateLimitRetry); got != strconv.FormatInt(retryAt.Unix(), 10) {
		t.Errorf("%s = %s, want %d", HeaderRateLimitRetry, got, retryAt.Unix())
	}
}

func TestIPBucket(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{ClientBucket: -1})
	for i := range 12 {
		r := h.get(PathAcademicYears).want(t, http.StatusOK)
		if headerInt(t, r, HeaderRateLimitLimit) != 12 || headerInt(t, r, HeaderRateLimitRemaining) != 11-i {
			t.Fatalf("request %d: limit %s remaining %s", i+1, r.header.Get(HeaderRateLimitLimit), r.header.Get(HeaderRateLimitRemaining))
		}
		if r.header.Get(HeaderRateLimitRetry) != "" {
			t.Errorf("a 200 carries %s", HeaderRateLimitRetry)
		}
	}
	t0 := h.clock.Now()
	wantLimited(t, h.get(PathAcademicYears), 12, t0.Add(5*time.Second))
	// Refused requests take nothing, and every request counts, even one without a token.
	h.clock.Advance(4999 * time.Millisecond)
	wantLimited(t, h.getWith("", "", PathAcademicYears), 12, t0.Add(5*time.Second))

	h.clock.Advance(time.Millisecond)
	r := h.get(PathAcademicYears).want(t, http.StatusOK)
	if headerInt(t, r, HeaderRateLimitRemaining) != 0 {
		t.Errorf("remaining = %s", r.header.Get(HeaderRateLimitRemaining))
	}
	wantLimited(t, h.get(PathAcademicYears), 12, t0.Add(10*time.Second))

	// A minute refills the bucket, and it holds no more than 12.
	h.clock.Advance(10 * time.Minute)
	for range 12 {
		h.get(PathAcademicYears).want(t, http.StatusOK)
	}
	h.get(PathAcademicYears).want(t, http.StatusTooManyRequests)

	// Token requests are not limited.
	h.token = h.fetchToken()

	st := h.srv.Stats()
	if st.TooMany != 4 || st.ByStatus[429] != 4 || st.ByStatus[200] != 25+1+1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestIPBucketRefillsInSteps(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{ClientBucket: -1, IPBucket: 3})
	for range 3 {
		h.get(PathAcademicYears).want(t, http.StatusOK)
	}
	// Two requests come back after 10 s, not 2.5 after 12.5 s.
	h.clock.Advance(12500 * time.Millisecond)
	h.get(PathAcademicYears).want(t, http.StatusOK)
	h.get(PathAcademicYears).want(t, http.StatusOK)
	// The next one is due 15 s after the first requests: 2.5 s from now.
	wantLimited(t, h.get(PathAcademicYears), 3, newClock().Now().Add(15*time.Second))
}

func TestClientBucket(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{IPBucket: -1, ClientBucket: 3})
	for i := range 3 {
		r := h.get(PathStudents).want(t, http.StatusOK)
		if headerInt(t, r, HeaderRateLimitLimit) != 3 || headerInt(t, r, HeaderRateLimitRemaining) != 2-i {
			t.Fatalf("request %d: %v", i+1, r.header)
		}
	}
	wantLimited(t, h.get(PathStudents), 3, h.clock.Now().Add(5*time.Second))
	// The bucket is the client's, not the token's.
	h.token = h.fetchToken()
	wantLimited(t, h.get(PathStudents), 3, h.clock.Now().Add(5*time.Second))
	// A request the token does not authorise does not reach the client's bucket.
	h.getWith("", "", PathStudents).want(t, http.StatusUnauthorized)

	h.clock.Advance(5 * time.Second)
	h.get(PathStudents).want(t, http.StatusOK)
	h.get(PathStudents).want(t, http.StatusTooManyRequests)

	h.srv.ResetRateLimits()
	h.get(PathStudents).want(t, http.StatusOK)
}

func TestBothBucketsHeadersFollowTheDocument(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{})
	// The document's example: the client's limit of 500.
	r := h.get(PathStudents).want(t, http.StatusOK)
	if headerInt(t, r, HeaderRateLimitLimit) != 500 || headerInt(t, r, HeaderRateLimitRemaining) != 499 {
		t.Errorf("headers = %v", r.header)
	}
	for range 11 {
		h.get(PathStudents).want(t, http.StatusOK)
	}
	// The IP's 12 a minute runs out first and is the one reported.
	wantLimited(t, h.get(PathStudents), 12, h.clock.Now().Add(5*time.Second))
	// A request without a token reports the IP's bucket.
	h.clock.Advance(5 * time.Second)
	r = h.getWith("", "", PathStudents).want(t, http.StatusUnauthorized)
	if headerInt(t, r, HeaderRateLimitLimit) != 12 || headerInt(t, r, HeaderRateLimitRemaining) != 0 {
		t.Errorf("401 headers = %v", r.header)
	}
}

func TestClientBucketSmallerThanIPBucket(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{ClientBucket: 5})
	for range 5 {
		h.get(PathStudents).want(t, http.StatusOK)
	}
	wantLimited(t, h.get(PathStudents), 5, h.clock.Now().Add(5*time.Second))
}

func TestFaultsComeAfterRateLimits(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{ClientBucket: -1, IPBucket: 2})
	h.srv.SetFaults(Faults{Rate503: 1})
	r := h.get(PathStudents).want(t, http.StatusServiceUnavailable)
	if headerInt(t, r, HeaderRateLimitRemaining) != 1 {
		t.Errorf("a faulted request did not spend its budget: %v", r.header)
	}
	h.get(PathStudents).want(t, http.StatusServiceUnavailable)
	h.get(PathStudents).want(t, http.StatusTooManyRequests)
	if st := h.srv.Stats(); st.Faults != 2 || st.TooMany != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestLimitTokenRequests(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{IPBucket: 3, ClientBucket: 10, LimitTokenRequests: true})
	// setup's token request took one from each bucket.
	r := h.get(PathStudents).want(t, http.StatusOK)
	if headerInt(t, r, HeaderRateLimitRemaining) != 8 {
		t.Errorf("client remaining = %v", r.header)
	}
	h.fetchToken()
	r = h.tokenRequest("application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=x&client_secret=y")
	wantLimited(t, r, 3, h.clock.Now().Add(5*time.Second))
}

// TestTimeScale runs the IP bucket on the real clock, 20 times as fast: a request comes
// back every 250 ms.
func TestTimeScale(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{Now: time.Now, TimeScale: 20, ClientBucket: -1})
	for range 12 {
		h.get(PathAcademicYears).want(t, http.StatusOK)
	}
	r := h.get(PathAcademicYears).want(t, http.StatusTooManyRequests)
	// The wait is counted in simulated seconds: about 5 from now.
	at := int64(headerInt(t, r, HeaderRateLimitRetry))
	if now := time.Now().Unix(); at < now+4 || at > now+6 {
		t.Errorf("%s = %d, now %d", HeaderRateLimitRetry, at, now)
	}
	time.Sleep(300 * time.Millisecond)
	h.get(PathAcademicYears).want(t, http.StatusOK)
}
