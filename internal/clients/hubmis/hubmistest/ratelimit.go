package hubmistest

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rollcall/rollcall/internal/simhttp"
)

// bucket is a token bucket of the document's shape: it holds up to size requests and
// gains one every [RefillInterval] of simulated time, in whole steps ("one new request
// every 5 seconds"), not continuously.
type bucket struct {
	size   int
	tokens int
	// last is the simulated time of the last whole refill step; the next request arrives
	// at last+RefillInterval. While the bucket is full it follows the clock, so a full
	// bucket banks no progress towards a request it could not hold.
	last time.Time
}

func newBucket(size int, sim time.Time) *bucket {
	return &bucket{size: size, tokens: size, last: sim}
}

// refill adds the requests gained by sim.
func (b *bucket) refill(sim time.Time) {
	if b.tokens >= b.size {
		b.last = sim
		return
	}
	steps := int(sim.Sub(b.last) / RefillInterval)
	if steps <= 0 {
		return
	}
	b.tokens = min(b.size, b.tokens+steps)
	if b.tokens >= b.size {
		b.last = sim
	} else {
		b.last = b.last.Add(time.Duration(steps) * RefillInterval)
	}
}

// take spends one request, reporting whether there was one.
func (b *bucket) take(sim time.Time) bool {
	b.refill(sim)
	if b.tokens == 0 {
		return false
	}
	b.tokens--
	return true
}

// stamp sets the X-RateLimit headers of an answer; a nil bucket (limit off) sets none.
func (b *bucket) stamp(rep *simhttp.Reply, sim time.Time) {
	if b == nil {
		return
	}
	b.refill(sim)
	rep.SetHeader(HeaderRateLimitLimit, strconv.Itoa(b.size))
	rep.SetHeader(HeaderRateLimitRemaining, strconv.Itoa(b.tokens))
}

// simTime maps a reading of Now to the buckets' simulated time, which runs TimeScale
// times as fast from the moment the server started.
func (s *Server) simTime(now time.Time) time.Time {
	if s.scale == 1 {
		return now
	}
	return s.epoch.Add(time.Duration(float64(now.Sub(s.epoch)) * s.scale))
}

// tooMany answers 429 for a bucket that is empty at sim. X-RateLimit-Retry-After is the
// real now plus the simulated wait until its next request, rounded up to a whole second:
// never early for a client unaware of the scale, and exact enough for one that divides
// the wait by it.
func (s *Server) tooMany(b *bucket, now, sim time.Time) simhttp.Reply {
	rep := errReply(http.StatusTooManyRequests, "too_many_requests", "Too Many Requests")
	b.stamp(&rep, sim)
	wait := b.last.Add(RefillInterval).Sub(sim)
	at := now.Add(wait)
	sec := at.Unix()
	if at.After(time.Unix(sec, 0)) {
		sec++
	}
	rep.SetHeader(HeaderRateLimitRetry, strconv.FormatInt(sec, 10))
	// Retry-After (seconds) as well, for clients that know only the standard header.
	rep.SetHeader("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	return rep
}

// ipBucketLocked returns the bucket of r's source IP, or nil when that limit is off.
func (s *Server) ipBucketLocked(r *http.Request) *bucket {
	if s.ipCap < 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	b := s.ipBuckets[host]
	if b == nil {
		b = newBucket(s.ipCap, s.simTime(s.now()))
		s.ipBuckets[host] = b
	}
	return b
}

// clientBucketLocked returns the bucket of a client id, or nil when that limit is off.
func (s *Server) clientBucketLocked(clientID string) *bucket {
	if s.clientCap < 0 {
		return nil
	}
	b := s.clientBuckets[clientID]
	if b == nil {
		b = newBucket(s.clientCap, s.simTime(s.now()))
		s.clientBuckets[clientID] = b
	}
	return b
}
