package hubmis

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// HUBmis's documented limits ("Usage Limits"): "12 requests per minute per IP
// address and 500 requests per client, with a rate of one new request every 5
// seconds". The client mirrors both as token buckets, so that it waits
// instead of collecting 429s.
const (
	// ClientBucketDefault is the capacity of the per-client bucket: 500
	// requests.
	ClientBucketDefault = 500
	// IPBucketDefault is the capacity of the per-IP bucket. The docs say "12
	// requests per minute per IP address"; with one request back every 5 s
	// that is a bucket of 12 refilled at 12 a minute.
	IPBucketDefault = 12
	// RefillIntervalDefault is how often both buckets get one request back.
	RefillIntervalDefault = 5 * time.Second
)

// HUBmis's rate-limit headers.
const (
	headerLimit          = "X-RateLimit-Limit"
	headerRemaining      = "X-RateLimit-Remaining"
	headerRetryAfterUnix = "X-RateLimit-Retry-After"
)

// IPLimiter is the client-side mirror of HUBmis's per-IP limit: a bucket of
// [IPBucketDefault] requests, refilled one per [RefillIntervalDefault].
//
// HUBmis counts the requests of every client that comes from one address, so
// every [Client] of a process (one per tenant) must draw on one IPLimiter:
// pass the same one in each [Config.IPLimiter], or leave it nil to use the
// process's [SharedIPLimiter]. More schools than one address's 12 requests a
// minute can serve means more pollers on more egress addresses, not a larger
// bucket. It is safe for concurrent use.
type IPLimiter struct {
	b     *bucket
	scale float64
}

// IPLimiterConfig configures an [IPLimiter].
type IPLimiterConfig struct {
	// Capacity is the bucket's size. Defaults to [IPBucketDefault].
	Capacity int
	// RefillInterval is how often the bucket gets one request back, in the
	// server's time. Defaults to [RefillIntervalDefault].
	RefillInterval time.Duration
	// TimeScale is how many times faster than real time the server's clock
	// runs; the bucket refills that many times faster. It must equal the
	// [Config.TimeScale] of every client that uses the limiter. Defaults to 1.
	TimeScale float64
	// Now is the limiter's clock. Defaults to time.Now.
	Now func() time.Time
}

// NewIPLimiter returns a full bucket after validating cfg.
func NewIPLimiter(cfg IPLimiterConfig) (*IPLimiter, error) {
	var errs []error
	capacity := cmp.Or(cfg.Capacity, IPBucketDefault)
	if capacity < 1 {
		errs = append(errs, errors.New("hubmis: IPLimiterConfig.Capacity: must be positive"))
	}
	interval := cmp.Or(cfg.RefillInterval, RefillIntervalDefault)
	if interval < 0 {
		errs = append(errs, errors.New("hubmis: IPLimiterConfig.RefillInterval: must be positive"))
	}
	scale, err := timeScale(cfg.TimeScale)
	if err != nil {
		errs = append(errs, fmt.Errorf("hubmis: IPLimiterConfig.%w", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &IPLimiter{b: newBucket(capacity, scaled(interval, scale), now), scale: scale}, nil
}

// Budget returns the requests the bucket holds now (fractions count; below
// zero when requests are queued for it) and its capacity.
func (l *IPLimiter) Budget() (available float64, capacity int) {
	return l.b.budget()
}

var (
	sharedMu  sync.Mutex
	sharedIPs = map[float64]*IPLimiter{}
)

// SharedIPLimiter returns the process's IPLimiter for a time scale (values
// of 0 or less mean 1), on the wall clock with the documented limits; a
// client whose [Config.IPLimiter] is nil uses the one of its
// [Config.TimeScale]. A poller process that polls many tenants from one
// address thus keeps one per-IP bucket for all of them.
func SharedIPLimiter(timeScale float64) *IPLimiter {
	if timeScale <= 0 || math.IsNaN(timeScale) || math.IsInf(timeScale, 0) {
		timeScale = 1
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	l, ok := sharedIPs[timeScale]
	if !ok {
		l = &IPLimiter{b: newBucket(IPBucketDefault, scaled(RefillIntervalDefault, timeScale), time.Now), scale: timeScale}
		sharedIPs[timeScale] = l
	}
	return l
}

// timeScale validates a TimeScale setting; 0 means 1.
func timeScale(s float64) (float64, error) {
	if s == 0 {
		return 1, nil
	}
	if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return 0, errors.New("TimeScale: must be a positive number")
	}
	return s, nil
}

// scaled divides a duration of the server's clock by the time scale.
func scaled(d time.Duration, scale float64) time.Duration {
	if scale == 1 {
		return d
	}
	return max(time.Duration(float64(d)/scale), 1)
}

// latencyMargin is the least a request that waited for a refill is held back
// beyond it, in real time: more than a loopback request takes, even under
// the race detector.
const latencyMargin = 50 * time.Millisecond

// bucket is one token bucket: a rate.Limiter driven by an injected clock
// (only its *At and ReserveN methods are used, never the ones that read the
// wall clock), and a count of requests that took a token but whose answer
// has not been seen yet, so that a correction from HUBmis's headers does not
// forget them.
type bucket struct {
	now   func() time.Time
	every time.Duration // refill interval, already divided by the time scale

	mu       sync.Mutex
	lim      *rate.Limiter
	capacity int
	inflight int
}

// paceSafety slows the refill this side assumes: HUBmis starts a token's
// refill when a request arrives, this side when it sends it, and the
// difference (latency, which varies) must not let a request arrive a step
// early. 10 % slower than documented keeps this side behind HUBmis's
// bucket after the first few refills; the margin in take covers those.
const paceSafety = 1.1

func newBucket(capacity int, every time.Duration, now func() time.Time) *bucket {
	lim := rate.NewLimiter(rate.Every(time.Duration(float64(every)*paceSafety)), capacity)
	return &bucket{now: now, every: every, capacity: capacity, lim: lim}
}

// slot is one token taken from a bucket: the request may go at at.
type slot struct {
	b   *bucket
	r   *rate.Reservation
	at  time.Time
	end sync.Once
}

// take takes one token. The request may go at the slot's time (now, or
// later when the bucket is empty); it counts as in flight until done or
// cancel.
func (b *bucket) take() *slot {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	r := b.lim.ReserveN(now, 1) // never refused: 1 <= capacity and no deadline
	b.inflight++
	at := now
	if d := r.DelayFrom(now); d > 0 {
		// HUBmis counts a request when it arrives, a little after the bucket
		// here let it go, and refills in whole steps from there: a request
		// that waited for a refill goes a tenth of an interval late, so
		// that jitter in latency does not make it a step early. The margin
		// never falls below latencyMargin of real time: on a time-scaled
		// simulator a tenth of an interval is shorter than a request's own
		// latency.
		at = now.Add(d + max(b.every/10, latencyMargin))
	}
	return &slot{b: b, r: r, at: at}
}

// done ends the slot once the request's answer was seen, or it failed.
func (s *slot) done() {
	s.end.Do(func() {
		s.b.mu.Lock()
		s.b.inflight--
		s.b.mu.Unlock()
	})
}

// cancel ends the slot of a request that was never sent: its token goes
// back to the bucket, unless requests queued behind it already counted on it
// (rate.Reservation's rule).
func (s *slot) cancel() {
	s.end.Do(func() {
		s.b.mu.Lock()
		s.b.inflight--
		s.b.mu.Unlock()
		s.r.CancelAt(s.b.now())
	})
}

func (b *bucket) budget() (float64, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lim.TokensAt(b.now()), b.capacity
}

// correct sets the bucket from HUBmis's view of it, read off an answer:
// limit (when positive) becomes its capacity, and the tokens it holds become
// remaining, less the other requests that took a token but were not yet
// answered (the server did not count those when it wrote remaining). The
// fraction of a token the bucket had refilled is dropped, which errs on the
// side of waiting.
func (b *bucket) correct(limit, remaining int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if limit > 0 {
		b.capacity = limit
	}
	tokens := min(max(remaining-max(b.inflight-1, 0), -b.capacity), b.capacity)
	// rate.Limiter cannot be told its tokens: start a full one and spend
	// what HUBmis says is gone. Reservations of the old limiter stay valid;
	// their requests are among the in-flight ones subtracted above.
	now := b.now()
	lim := rate.NewLimiter(rate.Every(time.Duration(float64(b.every)*paceSafety)), b.capacity)
	for spend := b.capacity - tokens; spend > 0; {
		n := min(spend, b.capacity)
		lim.ReserveN(now, n)
		spend -= n
	}
	b.lim = lim
}

// rateHeaders reads X-RateLimit-Limit and X-RateLimit-Remaining; ok is false
// when Remaining is missing or not a number. A missing or odd Limit is 0.
func rateHeaders(h http.Header) (limit, remaining int, ok bool) {
	rem, err := strconv.Atoi(strings.TrimSpace(h.Get(headerRemaining)))
	if err != nil || rem < 0 {
		return 0, 0, false
	}
	limit, err = strconv.Atoi(strings.TrimSpace(h.Get(headerLimit)))
	if err != nil || limit < 0 {
		limit = 0
	}
	return limit, rem, true
}
