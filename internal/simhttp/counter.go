package simhttp

import (
	"maps"
	"sync"
)

// Counts are the request counters of a simulator at one moment.
type Counts struct {
	// Requests counts every request, refused, faulted and abandoned ones included.
	Requests int
	// ByEndpoint counts requests by "METHOD path" or "METHOD pattern", as the simulator
	// names its endpoints.
	ByEndpoint map[string]int
	// ByStatus counts answers by HTTP status.
	ByStatus map[int]int
	// Faults counts injected faults.
	Faults int
}

// Counter counts the requests a simulator has answered. The zero value is ready to use.
// It is safe for concurrent use.
type Counter struct {
	mu sync.Mutex
	c  Counts
}

// Count records one answered request.
func (c *Counter) Count(endpoint string, status int, fault bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arrivedLocked(endpoint)
	if c.c.ByStatus == nil {
		c.c.ByStatus = map[int]int{}
	}
	c.c.ByStatus[status]++
	if fault {
		c.c.Faults++
	}
}

// Abandon records a request its caller gave up on before it was answered: it counts as a
// request of its endpoint, with no status.
func (c *Counter) Abandon(endpoint string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arrivedLocked(endpoint)
}

func (c *Counter) arrivedLocked(endpoint string) {
	if c.c.ByEndpoint == nil {
		c.c.ByEndpoint = map[string]int{}
	}
	c.c.Requests++
	c.c.ByEndpoint[endpoint]++
}

// Counts returns a copy of the counters; its maps are never nil and shared with nothing.
func (c *Counter) Counts() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.c
	out.ByEndpoint = make(map[string]int, len(c.c.ByEndpoint))
	maps.Copy(out.ByEndpoint, c.c.ByEndpoint)
	out.ByStatus = make(map[int]int, len(c.c.ByStatus))
	maps.Copy(out.ByStatus, c.c.ByStatus)
	return out
}
