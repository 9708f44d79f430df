package telemetry

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: a batch
// span processor or an OTLP client that Shutdown did not stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
