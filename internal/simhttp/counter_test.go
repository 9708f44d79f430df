package simhttp

import (
	"maps"
	"testing"
)

func TestCounter(t *testing.T) {
	t.Parallel()
	var c Counter
	if got := c.Counts(); got.ByEndpoint == nil || got.ByStatus == nil {
		t.Errorf("zero Counter's Counts has nil maps: %+v", got)
	}
	c.Count("GET /a", 200, false)
	c.Count("GET /a", 503, true)
	c.Count("POST /b", 500, true)
	c.Abandon("POST /b")

	got := c.Counts()
	if got.Requests != 4 || got.Faults != 2 {
		t.Errorf("counts = %+v", got)
	}
	if want := map[string]int{"GET /a": 2, "POST /b": 2}; !maps.Equal(got.ByEndpoint, want) {
		t.Errorf("ByEndpoint = %v, want %v", got.ByEndpoint, want)
	}
	if want := map[int]int{200: 1, 503: 1, 500: 1}; !maps.Equal(got.ByStatus, want) {
		t.Errorf("ByStatus = %v, want %v (an abandoned request has no status)", got.ByStatus, want)
	}

	got.ByEndpoint["GET /a"] = 99
	got.ByStatus[200] = 99
	if again := c.Counts(); again.ByEndpoint["GET /a"] != 2 || again.ByStatus[200] != 1 {
		t.Errorf("Counts shares its maps with the Counter: %+v", again)
	}
}
