package handlers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/eventually"
)

// gatedReads is a read whose calls are numbered from 1 and each wait for
// their gate to open, so a test decides when a read answers.
type gatedReads struct {
	calls atomic.Int32
	mu    sync.Mutex
	gates map[int32]chan struct{}
}

func newGatedReads() *gatedReads { return &gatedReads{gates: map[int32]chan struct{}{}} }

func (g *gatedReads) gate(n int32) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gates[n] == nil {
		g.gates[n] = make(chan struct{})
	}
	return g.gates[n]
}

func (g *gatedReads) read(ctx context.Context) (int32, error) {
	n := g.calls.Add(1)
	select {
	case <-g.gate(n):
		return n, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// gathering is the number of callers waiting for key's next read.
func (s *sharedRead[T]) gathering(key string) int {
	return s.callers(key, func(q *readQueue[T]) *readRound[T] { return q.gathering })
}

// inFlight is the number of callers of key's read in flight.
func (s *sharedRead[T]) inFlight(key string) int {
	return s.callers(key, func(q *readQueue[T]) *readRound[T] { return q.sending })
}

func (s *sharedRead[T]) callers(key string, round func(*readQueue[T]) *readRound[T]) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.keys[key]; q != nil && round(q) != nil {
		return round(q).callers
	}
	return 0
}

type readResult struct {
	n   int32
	err error
}

func doAsync(ctx context.Context, s *sharedRead[int32], g *gatedReads) chan readResult {
	return doAsyncIn(ctx, s, g, false)
}

func doAsyncIn(ctx context.Context, s *sharedRead[int32], g *gatedReads, anyInFlight bool) chan readResult {
	out := make(chan readResult, 1)
	go func() {
		n, err := s.Do(ctx, "class-1", anyInFlight, g.read)
		out <- readResult{n, err}
	}()
	return out
}

func TestSharedReadNeverAnswersWithAReadSentBeforeTheCall(t *testing.T) {
	var s sharedRead[int32]
	g := newGatedReads()
	ctx := context.Background()
	first := doAsync(ctx, &s, g)
	eventually.True(t, 5*time.Second, "the first read is sent", func() bool { return g.calls.Load() == 1 })
	// Three callers arrive while read 1 is on its way: it may have left
	// before they asked, so they must get read 2, and share it.
	later := []chan readResult{doAsync(ctx, &s, g), doAsync(ctx, &s, g), doAsync(ctx, &s, g)}
	eventually.True(t, 5*time.Second, "three callers gather", func() bool { return s.gathering("class-1") == 3 })
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("%d reads sent while the first was on its way, want 1", n)
	}
	close(g.gate(1))
	if r := <-first; r.n != 1 || r.err != nil {
		t.Errorf("first caller got read %d (%v), want read 1", r.n, r.err)
	}
	close(g.gate(2))
	for i, c := range later {
		if r := <-c; r.n != 2 || r.err != nil {
			t.Errorf("later caller %d got read %d (%v), want read 2", i, r.n, r.err)
		}
	}
	if n := g.calls.Load(); n != 2 {
		t.Errorf("%d reads for 4 callers, want 2", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) != 0 {
		t.Errorf("%d keys kept after every read ended, want 0", len(s.keys))
	}
}

// A leader that gives up while waiting must not strand the callers that
// gathered behind it: one of them leads instead.
func TestSharedReadCallersOutliveTheirLeader(t *testing.T) {
	var s sharedRead[int32]
	g := newGatedReads()
	first := doAsync(context.Background(), &s, g)
	eventually.True(t, 5*time.Second, "the first read is sent", func() bool { return g.calls.Load() == 1 })
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := doAsync(leaderCtx, &s, g)
	eventually.True(t, 5*time.Second, "the leader gathers", func() bool { return s.gathering("class-1") == 1 })
	follower := doAsync(context.Background(), &s, g)
	eventually.True(t, 5*time.Second, "a follower gathers", func() bool { return s.gathering("class-1") == 2 })
	cancelLeader()
	if r := <-leader; !errors.Is(r.err, context.Canceled) {
		t.Errorf("cancelled leader got %d, %v; want its own cancellation", r.n, r.err)
	}
	eventually.True(t, 5*time.Second, "the follower gathers again", func() bool { return s.gathering("class-1") == 1 })
	close(g.gate(1))
	close(g.gate(2))
	if r := <-first; r.n != 1 {
		t.Errorf("first caller got read %d, want 1", r.n)
	}
	if r := <-follower; r.n != 2 || r.err != nil {
		t.Errorf("follower got read %d (%v), want read 2", r.n, r.err)
	}
}

// A failed read answers every caller that shared it with the failure, and
// the next call reads again.
func TestSharedReadSharesAFailureOnce(t *testing.T) {
	var s sharedRead[int32]
	fail := errors.New("503")
	calls := 0
	_, err := s.Do(context.Background(), "class-1", false, func(context.Context) (int32, error) { calls++; return 0, fail })
	if !errors.Is(err, fail) {
		t.Fatalf("err = %v, want the read's", err)
	}
	n, err := s.Do(context.Background(), "class-1", false, func(context.Context) (int32, error) { calls++; return 7, nil })
	if n != 7 || err != nil || calls != 2 {
		t.Errorf("after a failure: %d, %v after %d reads; want a new read", n, err, calls)
	}
}

// A caller with no earlier attempt to see takes the read in flight; one
// that has such an attempt still waits for the next read.
func TestSharedReadFirstAttemptTakesTheReadInFlight(t *testing.T) {
	var s sharedRead[int32]
	g := newGatedReads()
	ctx := context.Background()
	first := doAsync(ctx, &s, g)
	eventually.True(t, 5*time.Second, "the first read is sent", func() bool { return g.calls.Load() == 1 })
	strict := doAsync(ctx, &s, g)
	eventually.True(t, 5*time.Second, "the strict caller gathers", func() bool { return s.gathering("class-1") == 1 })
	relaxed := doAsyncIn(ctx, &s, g, true)
	eventually.True(t, 5*time.Second, "the first-attempt caller joins the read in flight", func() bool { return s.inFlight("class-1") == 2 })
	close(g.gate(1))
	if r := <-relaxed; r.n != 1 || r.err != nil {
		t.Errorf("first-attempt caller got read %d (%v), want the one in flight, 1", r.n, r.err)
	}
	if r := <-first; r.n != 1 {
		t.Errorf("first caller got read %d, want 1", r.n)
	}
	close(g.gate(2))
	if r := <-strict; r.n != 2 || r.err != nil {
		t.Errorf("strict caller got read %d (%v), want 2", r.n, r.err)
	}
	// With nothing in flight, a first-attempt caller sends a read of its own.
	close(g.gate(3))
	if n, err := s.Do(ctx, "class-1", true, g.read); n != 3 || err != nil {
		t.Errorf("first-attempt caller with no read in flight got %d, %v; want read 3", n, err)
	}
}
