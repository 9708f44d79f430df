package datahub

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: a response
// body left open or a request that never ends would show up here.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
