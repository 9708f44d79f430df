package chaos

import (
	"testing"
	"time"
)

// TestChaosShort is the chaos suite cut to fit every `go test ./...`: a
// small district, a few SIGKILLs of each binary, one broker restart, 20 %
// upstream faults, a token expiry, malformed events and a poison record.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the chaos suite builds and runs the binaries")
	}
	runChaos(t, plan{
		seed:     1,
		teachers: 6, students: 60, sections: 8, perSection: 8,
		rounds: 24, pauseMin: 100 * time.Millisecond, pauseMax: 500 * time.Millisecond,
		workerKills: 3, pollerKills: 3, natsRestarts: 1, tokenExpiries: 2, malformed: 2,
		faultRate: 0.2, converge: 30 * time.Second, pollInterval: time.Second,
	})
}
