// Package eventually is how tests here wait for something to happen: they
// poll a condition until it holds or a deadline passes, and never sleep in
// place of a condition.
package eventually

import (
	"testing"
	"time"
)

// Interval is how often a condition is polled: short next to anything a
// test waits for, long enough not to spin.
const Interval = 5 * time.Millisecond

// Holds polls cond until it reports true, and fails t once timeout has
// passed, naming what it waited for and cond's last detail (say what was
// seen instead).
func Holds(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, detail string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if detail != "" {
				t.Fatalf("%s: not within %s: %s", what, timeout, detail)
			}
			t.Fatalf("%s: not within %s", what, timeout)
		}
		<-tick.C
	}
}

// True is [Holds] for a condition with nothing more to say.
func True(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Holds(t, timeout, what, func() (bool, string) { return cond(), "" })
}
