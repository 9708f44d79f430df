package simhttp

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

func draws(seed int64, f Faults, n int) []int {
	in := NewInjector(seed)
	in.Set(f)
	out := make([]int, n)
	for i := range out {
		fault, _ := in.Draw()
		out[i] = fault.Status
	}
	return out
}

func TestDrawIsDeterministicForOneSeed(t *testing.T) {
	t.Parallel()
	f := Faults{Rate500: 0.2, Rate503: 0.2, Rate429: 0.2}
	a, b, other := draws(42, f, 100), draws(42, f, 100), draws(43, f, 100)
	if !slices.Equal(a, b) {
		t.Errorf("seed 42 gave\n%v\nand\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Errorf("seeds 42 and 43 gave the same faults %v", a)
	}
}

func TestDrawDrawsWhateverTheRates(t *testing.T) {
	t.Parallel()
	// Draws without faults still advance the generator, so the faults after them depend
	// only on how many draws there were.
	in := NewInjector(7)
	for range 5 {
		if f, ok := in.Draw(); ok {
			t.Fatalf("the zero Faults injected %+v", f)
		}
	}
	f := Faults{Rate500: 0.5}
	in.Set(f)
	var got []int
	for range 20 {
		fault, _ := in.Draw()
		got = append(got, fault.Status)
	}
	if want := draws(7, f, 25)[5:]; !slices.Equal(got, want) {
		t.Errorf("after 5 fault-free draws: %v, want %v", got, want)
	}
}

func TestDrawBandsAndRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		faults     Faults
		status     int
		retryAfter int
	}{
		{Faults{Rate429: 1}, http.StatusTooManyRequests, 1},
		{Faults{Rate503: 1, RetryAfter: 1500 * time.Millisecond}, http.StatusServiceUnavailable, 2},
		{Faults{Rate429: 1, RetryAfter: time.Millisecond}, http.StatusTooManyRequests, 1},
		{Faults{Rate500: 1, RetryAfter: 3 * time.Second}, http.StatusInternalServerError, 0},
	} {
		in := NewInjector(1)
		in.Set(tc.faults)
		f, ok := in.Draw()
		if !ok || f.Status != tc.status || f.RetryAfter != tc.retryAfter {
			t.Errorf("%+v: drew %+v, %v; want %d with Retry-After %d", tc.faults, f, ok, tc.status, tc.retryAfter)
		}
	}
}

func TestDrawAfterEffect(t *testing.T) {
	t.Parallel()
	in := NewInjector(1)
	if in.DrawAfterEffect() {
		t.Error("after-effect with rate 0")
	}
	in.Set(Faults{AfterEffectRate: 1, Latency: time.Second})
	if !in.DrawAfterEffect() {
		t.Error("no after-effect with rate 1")
	}
	if in.Latency() != time.Second {
		t.Errorf("Latency = %v", in.Latency())
	}
}

func TestFaultReply(t *testing.T) {
	t.Parallel()
	rep := Fault{Status: http.StatusServiceUnavailable, RetryAfter: 2}.Reply(map[string]string{"error": "busy"})
	if rep.Status != 503 || string(rep.Body) != `{"error":"busy"}` || rep.Header.Get("Retry-After") != "2" {
		t.Errorf("reply = %d %s %v", rep.Status, rep.Body, rep.Header)
	}
	rep = Fault{Status: http.StatusInternalServerError}.Reply(map[string]string{"error": "oops"})
	if _, ok := rep.Header["Retry-After"]; ok {
		t.Errorf("a 500 carries Retry-After: %v", rep.Header)
	}
}
