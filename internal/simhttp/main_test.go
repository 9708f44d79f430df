package simhttp

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: a server that Close did
// not stop, or a request waiting on latency that nothing ended. net/http lingers half a
// second, on purpose, on a connection it closes after a body over the limit, so the
// client reads the answer; that goroutine ends by itself.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}
