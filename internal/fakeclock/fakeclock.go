// Package fakeclock is the injected clock of tests: it stands still until
// the test moves it, so expiry, backoff and rate limits are tested without
// waiting.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a clock a test moves by hand. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock showing t.
func New(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time; pass it where a Now func() time.Time is wanted.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
