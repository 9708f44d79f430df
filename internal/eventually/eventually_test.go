package eventually_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/eventually"
)

func TestHoldsReturnsOnceTheConditionHolds(t *testing.T) {
	var polls atomic.Int32
	eventually.Holds(t, 10*time.Second, "the third poll", func() (bool, string) {
		return polls.Add(1) >= 3, "too early"
	})
	if n := polls.Load(); n != 3 {
		t.Errorf("polled %d times, want 3", n)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records its message and ends
// the goroutine, as testing's does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

func TestHoldsFailsAfterTheTimeoutWithTheDetail(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != rec {
				t.Fatalf("recovered %v, want the recorder's Fatalf", r)
			}
		}()
		eventually.Holds(rec, 50*time.Millisecond, "never", func() (bool, string) { return false, "still false" })
	}()
	if !strings.Contains(rec.msg, "never") || !strings.Contains(rec.msg, "still false") {
		t.Errorf("failure %q names neither what was awaited nor the detail", rec.msg)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("failed after %s, before its timeout", took)
	}
}
