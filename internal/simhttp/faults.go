package simhttp

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// RetryAfterDefault is the Retry-After of injected 429 and 503 answers when
// [Faults.RetryAfter] is zero.
const RetryAfterDefault = time.Second

// faultStream is the PCG stream of fault draws ("fault"), kept apart from the streams of
// ids and tokens, so the fault sequence depends only on the number of draws.
const faultStream = 0x6661756c74

// Faults configure fault injection. The zero value injects nothing.
type Faults struct {
	// Rate500, Rate503 and Rate429 are the probabilities, per [Injector.Draw], of
	// answering that status instead of serving the request.
	Rate500, Rate503, Rate429 float64
	// AfterEffectRate is the probability, per [Injector.DrawAfterEffect], that a write is
	// applied and then answered 500 anyway.
	AfterEffectRate float64
	// RetryAfter is the Retry-After header of injected 429 and 503 answers, rounded up to
	// whole seconds and at least 1. Defaults to [RetryAfterDefault].
	RetryAfter time.Duration
	// Latency is how long a request waits before it is served; see [Server.Delay].
	Latency time.Duration
}

// Fault is an injected fault: the answer a request gets instead of being served.
type Fault struct {
	// Status is 429, 503 or 500.
	Status int
	// RetryAfter is the Retry-After of a 429 or 503 in whole seconds, at least 1; 0 for a
	// 500, which carries none.
	RetryAfter int
}

// Reply returns the fault's answer with body, the simulator's error shape, and its
// Retry-After header.
func (f Fault) Reply(body any) Reply {
	rep := JSON(f.Status, body)
	if f.RetryAfter > 0 {
		rep.SetHeader("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	return rep
}

// Injector draws faults from a seeded generator. It is safe for concurrent use.
type Injector struct {
	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
}

// NewInjector returns an injector that injects nothing until [Injector.Set], drawing from
// a generator seeded with seed.
func NewInjector(seed int64) *Injector {
	return &Injector{rng: rand.New(rand.NewPCG(uint64(seed), faultStream))}
}

// Set replaces the fault configuration.
func (in *Injector) Set(f Faults) {
	in.mu.Lock()
	in.faults = f
	in.mu.Unlock()
}

// Latency returns the configured latency.
func (in *Injector) Latency() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.faults.Latency
}

// Draw draws one number and reports the fault it falls on, if any: 429, 503 and 500 take
// consecutive bands of their rates, in that order. It draws whatever the rates, so the
// sequence depends only on how many draws there were.
func (in *Injector) Draw() (Fault, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	f := in.faults
	u := in.rng.Float64()
	switch {
	case u < f.Rate429:
		return Fault{Status: http.StatusTooManyRequests, RetryAfter: retryAfterSeconds(f.RetryAfter)}, true
	case u < f.Rate429+f.Rate503:
		return Fault{Status: http.StatusServiceUnavailable, RetryAfter: retryAfterSeconds(f.RetryAfter)}, true
	case u < f.Rate429+f.Rate503+f.Rate500:
		return Fault{Status: http.StatusInternalServerError}, true
	}
	return Fault{}, false
}

// DrawAfterEffect draws one number and reports whether a write that succeeded is to be
// answered 500 anyway, so its caller sees a failure of something that happened.
func (in *Injector) DrawAfterEffect() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.Float64() < in.faults.AfterEffectRate
}

func retryAfterSeconds(d time.Duration) int {
	if d <= 0 {
		d = RetryAfterDefault
	}
	return max(1, int(math.Ceil(d.Seconds())))
}
