package admin

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: a server
// that did not stop when its context ended, or a check still running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
