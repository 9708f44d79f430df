//go:build chaos

package chaos

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestChaosFull is the whole chaos suite: a district of 600 pupils, twelve
// SIGKILLs of each binary at random moments, three broker restarts, 20 %
// upstream faults throughout, token expiries, malformed events and a poison
// record, over about two minutes of changes. It runs in under ten minutes.
//
//	go test -tags chaos -run TestChaosFull -v -timeout 15m ./chaos/
//
// The seed is random and logged; CHAOS_SEED=<n> repeats a run's schedule.
func TestChaosFull(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED: %v", err)
		}
	}
	t.Logf("seed %d (CHAOS_SEED=%d repeats this schedule)", seed, seed)
	runChaos(t, plan{
		seed:     seed,
		teachers: 30, students: 600, sections: 60, perSection: 10,
		rounds: 120, pauseMin: 200 * time.Millisecond, pauseMax: 1500 * time.Millisecond,
		workerKills: 12, pollerKills: 12, natsRestarts: 3, tokenExpiries: 5, malformed: 6,
		faultRate: 0.2, converge: 3 * time.Minute, pollInterval: time.Second,
	})
}
