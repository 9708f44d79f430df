package hubmis

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// refillWait is how long a request waits for one refilled token at a time
// scale of 1: the interval and the tenth of it the client adds.
// refillWait is one refill at the paced (10 % slower) rate plus the margin.
const refillWait = time.Duration(float64(RefillIntervalDefault)*paceSafety) + RefillIntervalDefault/10

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	var clock *testClock
	var calls atomic.Int32
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if calls.Add(1) == 1 {
			w.Header().Set(headerLimit, "500")
			w.Header().Set(headerRemaining, "0")
			w.Header().Set(headerRetryAfterUnix, strconv.FormatInt(clock.Now().Add(30*time.Second).Unix(), 10))
			writeJSON(w, 429, `{"error":"too_many_requests","message":"Too Many Requests"}`)
			return
		}
		writeJSON(w, 200, `[]`)
	})
	clock = b.clock
	start := b.clock.Now()
	if _, err := b.client.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	// The 429's date is honoured; it is also past the refill of the
	// client's bucket, which the 429's Remaining: 0 emptied.
	if w := b.waits(); len(w) != 1 || w[0] != 30*time.Second {
		t.Errorf("waits = %v, want [30s]", w)
	}
	if got := b.clock.Now().Sub(start); got != 30*time.Second {
		t.Errorf("clock moved %s", got)
	}
	if len(b.fake.seen()) != 2 {
		t.Errorf("%d requests", len(b.fake.seen()))
	}
}

func TestRetryAfterAtLeastFiveSeconds(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if calls.Add(1) == 1 {
			// A date already past, and no rate headers at all.
			w.Header().Set(headerRetryAfterUnix, "1615203774")
			writeJSON(w, 429, `{}`)
			return
		}
		writeJSON(w, 200, `[]`)
	})
	if _, err := b.client.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	if w := b.waits(); len(w) != 1 || w[0] != RefillIntervalDefault {
		t.Errorf("waits = %v, want [5s]", w)
	}
}

func TestRateLimitedWhenWaitImpossible(t *testing.T) {
	t.Parallel()
	var clock *testClock
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		w.Header().Set(headerRetryAfterUnix, strconv.FormatInt(clock.Now().Add(10*time.Minute).Unix(), 10))
		writeJSON(w, 429, `{}`)
	})
	clock = b.clock
	_, err := b.client.AcademicYears(b.ctx)
	if !errors.Is(err, ErrRateLimited) || !IsRetryable(err) || RetryAfter(err) != 10*time.Minute {
		t.Fatalf("err = %v, RetryAfter %s", err, RetryAfter(err))
	}
	if len(b.waits()) != 0 || len(b.fake.seen()) != 1 {
		t.Errorf("waited %v over %d requests; a wait past RetryMaxElapsed is returned at once", b.waits(), len(b.fake.seen()))
	}

	// Retries spent: the last 429 is returned.
	b = setup(t, func(w http.ResponseWriter, r *http.Request, _ string) { writeJSON(w, 429, `{}`) },
		func(c *Config) { c.RetryMaxAttempts = 3 })
	if _, err := b.client.AcademicYears(b.ctx); !errors.Is(err, ErrRateLimited) || len(b.fake.seen()) != 3 {
		t.Errorf("err = %v after %d requests", err, len(b.fake.seen()))
	}
}

func TestClientBucketCorrectedFromHeaders(t *testing.T) {
	t.Parallel()
	var remaining atomic.Int32
	remaining.Store(3)
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		w.Header().Set(headerLimit, "450")
		w.Header().Set(headerRemaining, strconv.Itoa(int(remaining.Load())))
		writeJSON(w, 200, `[]`)
	})
	if avail, capacity := b.client.Budget(); avail != ClientBucketDefault || capacity != ClientBucketDefault {
		t.Errorf("fresh budget %v/%d", avail, capacity)
	}
	if _, err := b.client.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	if avail, capacity := b.client.Budget(); avail != 3 || capacity != 450 {
		t.Errorf("budget %v/%d, want 3/450 from the headers", avail, capacity)
	}
	// Another process spent the rest: the next request waits for a refill.
	remaining.Store(0)
	if _, err := b.client.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	if avail, _ := b.client.Budget(); avail != 0 {
		t.Errorf("budget %v, want 0", avail)
	}
	// A larger Remaining (the server refilled faster than the bucket here)
	// raises it again.
	remaining.Store(400)
	if _, err := b.client.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	if w := b.waits(); len(w) != 1 || w[0] != refillWait {
		t.Errorf("waits = %v, want [%s]", w, refillWait)
	}
	if avail, _ := b.client.Budget(); avail != 400 {
		t.Errorf("budget %v, want 400", avail)
	}
	// Token requests count: 1 token + 3 API requests.
	if b.client.Requests() != 4 {
		t.Errorf("Requests() = %d", b.client.Requests())
	}
}

func TestIPHeadersCorrectTheIPBucket(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		// What HUBmis reports when the IP's bucket, not the client's, is
		// the one that answers.
		w.Header().Set(headerLimit, "12")
		w.Header().Set(headerRemaining, "2")
		writeJSON(w, 200, `[]`)
	})
	if _, err := b.client.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	if avail, capacity := b.ip.Budget(); avail != 2 || capacity != IPBucketDefault {
		t.Errorf("IP budget %v/%d, want 2/12", avail, capacity)
	}
	// The client's bucket only lost the two requests (token and API).
	if avail, capacity := b.client.Budget(); avail != ClientBucketDefault-2 || capacity != ClientBucketDefault {
		t.Errorf("client budget %v/%d", avail, capacity)
	}
}

func TestIPLimiterSharedByClients(t *testing.T) {
	t.Parallel()
	api := func(w http.ResponseWriter, r *http.Request, _ string) { writeJSON(w, 200, `[]`) }
	b := setup(t, api)
	// A second tenant's client, on another server, sharing the IP bucket.
	other := newFake(t, api)
	c2 := b.newClient(t, Config{BaseURL: other.srv.URL, ClientID: testID, ClientSecret: testSecret, Realm: "S123",
		Now: b.clock.Now, IPLimiter: b.ip})

	// 12 requests in all go at once: 2 tokens and 10 API calls, alternating
	// between the clients.
	for i := range 5 {
		for _, c := range []*Client{b.client, c2} {
			if _, err := c.AcademicYears(b.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if len(b.waits()) != 0 {
			t.Fatalf("round %d waited %v", i, b.waits())
		}
	}
	if avail, _ := b.ip.Budget(); avail != 0 {
		t.Errorf("shared bucket holds %v, want 0", avail)
	}
	// Each client's own bucket is far from empty, yet the 13th request
	// waits for the shared one.
	if _, err := c2.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	if w := b.waits(); len(w) != 1 || w[0] != refillWait {
		t.Errorf("waits = %v, want [%s]", w, refillWait)
	}
	if a1, _ := b.client.Budget(); a1 < ClientBucketDefault-7 {
		t.Errorf("client budget %v", a1)
	}
	if b.client.Requests()+c2.Requests() != 13 {
		t.Errorf("requests %d + %d", b.client.Requests(), c2.Requests())
	}
}

func TestSharedIPLimiterIsPerProcess(t *testing.T) {
	t.Parallel()
	cfg := Config{BaseURL: "https://api.hubmis.com", ClientID: "a", ClientSecret: "b", Realm: "S1", TimeScale: 7}
	c1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Realm = "S2"
	c2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c1.IPLimiter() == nil || c1.IPLimiter() != c2.IPLimiter() || c1.IPLimiter() != SharedIPLimiter(7) {
		t.Errorf("clients do not share the process's IP limiter")
	}
	if SharedIPLimiter(7) == SharedIPLimiter(1) || SharedIPLimiter(0) != SharedIPLimiter(1) {
		t.Errorf("SharedIPLimiter is not one per time scale")
	}
}

func TestTimeScaleSpeedsRefill(t *testing.T) {
	t.Parallel()
	var clock *testClock
	var calls atomic.Int32
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		w.Header().Set(headerLimit, "500")
		w.Header().Set(headerRemaining, "0")
		if calls.Add(1) == 2 {
			// A time-scaled server counts the wait in its own seconds
			// from the real now.
			w.Header().Set(headerRetryAfterUnix, strconv.FormatInt(clock.Now().Add(20*time.Second).Unix(), 10))
			writeJSON(w, 429, `{}`)
			return
		}
		writeJSON(w, 200, `[]`)
	}, func(c *Config) { c.TimeScale = 10 })
	clock = b.clock
	for range 2 {
		if _, err := b.client.AcademicYears(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Request 2 waits for a refill of the emptied bucket (0.5s + 10%), is
	// refused, waits out the 429 (about 20s / 10: the date is in whole
	// seconds), and its retry goes at once.
	w := b.waits()
	if len(w) != 2 || w[0] != refillWait/10 || w[1] < 1900*time.Millisecond || w[1] > 2*time.Second {
		t.Errorf("waits = %v, want [%s ~2s]", w, refillWait/10)
	}
}

func TestLimiterWaitPastDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		w.Header().Set(headerRemaining, "0")
		writeJSON(w, 200, `[]`)
	})
	if _, err := b.client.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Second)
	defer cancel()
	_, err := b.client.AcademicYears(ctx)
	if !errors.Is(err, ErrRateLimited) || !IsRetryable(err) || RetryAfter(err) != refillWait {
		t.Fatalf("err = %v, RetryAfter %s", err, RetryAfter(err))
	}
	if len(b.fake.seen()) != 1 || len(b.waits()) != 0 {
		t.Errorf("requests %d, waits %v", len(b.fake.seen()), b.waits())
	}
	// The refused request gave its token back: waiting the refill is enough.
	if avail, _ := b.client.Budget(); math.Abs(avail) > 1e-9 {
		t.Errorf("budget %v after the cancelled request, want 0", avail)
	}
}

func TestNoRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		w.Header().Set(headerRemaining, "0")
		writeJSON(w, 200, `[]`)
	}, func(c *Config) { c.NoRateLimit = true })
	for range 20 {
		if _, err := b.client.AcademicYears(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.waits()) != 0 || b.client.Requests() != 21 {
		t.Errorf("waits %v, requests %d", b.waits(), b.client.Requests())
	}
}

func TestBucketCorrectionCountsInFlight(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	bk := newBucket(10, time.Second, clock.Now)
	s1, s2, s3 := bk.take(), bk.take(), bk.take()
	// s1's answer says 5 remain; s2 and s3 were sent but not yet counted.
	bk.correct(0, 5)
	if avail, _ := bk.budget(); avail != 3 {
		t.Errorf("tokens %v, want 5 - 2 in flight", avail)
	}
	s1.done()
	s2.done()
	s3.done()
	bk.correct(0, 0)
	if avail, _ := bk.budget(); avail != 0 {
		t.Errorf("tokens %v", avail)
	}
	clock.Advance(2500 * time.Millisecond)
	if avail, _ := bk.budget(); math.Abs(avail-2.5/paceSafety) > 1e-9 {
		t.Errorf("tokens %v after 2.5 intervals, want %v at the paced rate", avail, 2.5/paceSafety)
	}
	// Queued requests go one paced interval (1.1 s) apart, plus the margin.
	bk.correct(0, 0)
	a, b2 := bk.take(), bk.take()
	now := clock.Now()
	if a.at.Sub(now) != 1200*time.Millisecond || b2.at.Sub(now) != 2300*time.Millisecond {
		t.Errorf("slots at %s and %s", a.at.Sub(now), b2.at.Sub(now))
	}
	if avail, _ := bk.budget(); avail != -2 {
		t.Errorf("tokens %v with two queued", avail)
	}
	b2.cancel()
	if avail, _ := bk.budget(); avail != -1 {
		t.Errorf("tokens %v after a cancel", avail)
	}
	a.done()
}
