package lease_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/fakeclock"
	"github.com/rollcall/rollcall/internal/lease"
	"github.com/rollcall/rollcall/internal/natstest"
)

// TestMain fails the package if a test leaves goroutines behind: a renewal
// loop or a release watch outliving its Hold would show up here.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

type bundle struct {
	ns *natstest.Server
	kv jetstream.KeyValue
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	kv, err := lease.EnsureBucket(testCtx(t), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{ns: ns, kv: kv}
}

// bucket returns the lease bucket over a connection of its own, which the
// test may close to make its holder die.
func (b *bundle) bucket(t *testing.T) (jetstream.KeyValue, func()) {
	t.Helper()
	nc, js := b.ns.Connect(t)
	kv, err := js.KeyValue(testCtx(t), lease.BucketName)
	if err != nil {
		t.Fatal(err)
	}
	return kv, nc.Close
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newLease(t *testing.T, kv jetstream.KeyValue, holder string, ttl time.Duration, now func() time.Time) *lease.Lease {
	t.Helper()
	l, err := lease.New(lease.Config{KV: kv, Name: "datahub.alpha", Holder: holder, TTL: ttl, Now: now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock {
	return fakeclock.New(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC))
}

func TestNewNamesEveryBadSetting(t *testing.T) {
	t.Parallel()
	_, err := lease.New(lease.Config{Name: "datahub..alpha", TTL: time.Millisecond})
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	for _, want := range []string{"Config.KV", "Config.Name", "Config.TTL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	for _, name := range []string{"", ".alpha", "alpha.", "a..b", "a b", "datahub:alpha", "datahub.*", "datahub.>"} {
		if _, err := lease.New(lease.Config{Name: name}); err == nil || !strings.Contains(err.Error(), "Config.Name") {
			t.Errorf("name %q: %v, want it refused", name, err)
		}
	}
}

func TestAcquireRenewReleaseByCompareAndSet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	clock := newFakeClock()
	ttl := 15 * time.Second
	a := newLease(t, b.kv, "poller-a", ttl, clock.Now)
	other := newLease(t, b.kv, "poller-b", ttl, clock.Now)

	if held, err := a.TryAcquire(ctx); err != nil || !held {
		t.Fatalf("first acquire: %v %v", held, err)
	}
	acquired := clock.Now()
	if held, err := other.TryAcquire(ctx); err != nil || held {
		t.Fatalf("acquire while held by another: %v %v, want false", held, err)
	}
	rec, ok, err := lease.Read(ctx, b.kv, "datahub.alpha")
	if err != nil || !ok || rec.Holder != "poller-a" || !rec.Until.Equal(acquired.Add(ttl)) {
		t.Fatalf("Read = %+v %v %v", rec, ok, err)
	}

	// A renewal extends Until and keeps Acquired.
	clock.Advance(5 * time.Second)
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	rec, _, _ = lease.Read(ctx, b.kv, "datahub.alpha")
	if !rec.Until.Equal(clock.Now().Add(ttl)) || !rec.Acquired.Equal(acquired) {
		t.Fatalf("after renew: %+v", rec)
	}

	// Exactly at Until the lease still holds; just after, it is free.
	clock.Advance(ttl)
	if held, _ := other.TryAcquire(ctx); held {
		t.Fatal("acquired at Until, want only after it")
	}
	clock.Advance(time.Millisecond)
	if held, err := other.TryAcquire(ctx); err != nil || !held {
		t.Fatalf("acquire after expiry: %v %v", held, err)
	}
	if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("renew of a lease taken over: %v, want ErrLost", err)
	}
	if a.Held() || !other.Held() {
		t.Fatalf("Held: a=%v other=%v, want false true", a.Held(), other.Held())
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("release of a lease not held: %v, want nil", err)
	}

	// A holder that has not noticed its loss cannot release the new
	// holder's lease.
	clock.Advance(ttl + time.Second)
	if held, err := a.TryAcquire(ctx); err != nil || !held {
		t.Fatalf("acquire after expiry: %v %v", held, err)
	}
	if err := other.Release(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("release of a lease taken over: %v, want ErrLost", err)
	}
	if rec, _, _ := lease.Read(ctx, b.kv, "datahub.alpha"); rec.Holder != "poller-a" {
		t.Fatalf("record after a stale release: %+v", rec)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := lease.Read(ctx, b.kv, "datahub.alpha"); ok || err != nil {
		t.Fatalf("Read after release: ok=%v err=%v, want none", ok, err)
	}
	// A released lease is free at once, long before its Until.
	if held, err := a.TryAcquire(ctx); err != nil || !held {
		t.Fatalf("acquire after release: %v %v", held, err)
	}
}

func TestRecordWithOurHolderIsOurs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	clock := newFakeClock()
	a := newLease(t, b.kv, "poller-a", 15*time.Second, clock.Now)
	if held, err := a.TryAcquire(ctx); err != nil || !held {
		t.Fatal(held, err)
	}
	acquired := clock.Now()

	// A renewal applied by the server whose reply never arrived leaves a
	// stale revision; the record is still ours, and the next renewal adopts it.
	entry, err := b.kv.Get(ctx, "datahub.alpha")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.kv.Update(ctx, "datahub.alpha", entry.Value(), entry.Revision()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("renew over our own newer record: %v", err)
	}

	// The same holder restarting takes its own unexpired lease back.
	clock.Advance(time.Second)
	restarted := newLease(t, b.kv, "poller-a", 15*time.Second, clock.Now)
	if held, err := restarted.TryAcquire(ctx); err != nil || !held {
		t.Fatalf("restarted holder: %v %v", held, err)
	}
	rec, _, _ := lease.Read(ctx, b.kv, "datahub.alpha")
	if !rec.Acquired.Equal(acquired) {
		t.Errorf("Acquired = %s, want the first acquisition %s", rec.Acquired, acquired)
	}

	// The same goes for a release after such a renewal.
	entry, err = b.kv.Get(ctx, "datahub.alpha")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.kv.Update(ctx, "datahub.alpha", entry.Value(), entry.Revision()); err != nil {
		t.Fatal(err)
	}
	if err := restarted.Release(ctx); err != nil {
		t.Fatalf("release over our own newer record: %v", err)
	}
	if _, ok, _ := lease.Read(ctx, b.kv, "datahub.alpha"); ok {
		t.Error("record still there after release")
	}
}

func TestConcurrentAcquireYieldsOneHolder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	clock := newFakeClock()
	const ttl = 15 * time.Second
	leases := make([]*lease.Lease, 8)
	for i := range leases {
		// Each on its own connection, so the writes really race.
		kv, _ := b.bucket(t)
		leases[i] = newLease(t, kv, fmt.Sprintf("poller-%d", i), ttl, clock.Now)
	}
	for round := range 6 {
		var wg sync.WaitGroup
		var won atomic.Int32
		start := make(chan struct{})
		for _, l := range leases {
			wg.Go(func() {
				<-start
				held, err := l.TryAcquire(ctx)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				if held {
					won.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		holding := 0
		for _, l := range leases {
			if l.Held() {
				holding++
			}
		}
		if won.Load() != 1 || holding != 1 {
			t.Fatalf("round %d: %d acquired and %d hold, want exactly 1", round, won.Load(), holding)
		}
		// Let the lease run out, so every process may take it next round;
		// on odd rounds release it instead.
		if round%2 == 1 {
			for _, l := range leases {
				if err := l.Release(ctx); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			clock.Advance(ttl + time.Second)
		}
	}
}

func TestEnsureBucketConcurrently(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	js := make([]jetstream.JetStream, 8)
	for i := range js {
		_, js[i] = ns.Connect(t)
	}
	ctx := testCtx(t)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, j := range js {
		wg.Go(func() {
			<-start
			if _, err := lease.EnsureBucket(ctx, j, 1); err != nil {
				t.Errorf("EnsureBucket: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	kv, err := lease.EnsureBucket(ctx, js[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bucket() != lease.BucketName || st.History() != 1 {
		t.Errorf("bucket %s history %d, want %s 1", st.Bucket(), st.History(), lease.BucketName)
	}
}

// contenders run [lease.Lease.Hold] for several holders of one lease and
// check that at most one of them runs its fn at any moment.
type contenders struct {
	t          *testing.T
	base       time.Time
	active     atomic.Int32
	violations atomic.Int32
}

type holder struct {
	c       *contenders
	name    string
	lease   *lease.Lease
	cancel  context.CancelFunc
	done    chan error
	running atomic.Bool
	runs    atomic.Int32
	startAt atomic.Int64 // since c.base, of the latest fn start
	endAt   atomic.Int64 // since c.base, of the latest fn end
	cause   atomic.Pointer[error]
}

func newContenders(t *testing.T) *contenders {
	c := &contenders{t: t, base: time.Now()}
	t.Cleanup(func() {
		if n := c.violations.Load(); n > 0 {
			t.Errorf("%d times more than one holder ran at once", n)
		}
	})
	return c
}

func (c *contenders) since() int64 { return int64(time.Since(c.base)) }

// start runs Hold for h until h.stop; fn blocks until its context ends.
func (c *contenders) start(h *holder) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h.c, h.cancel, h.done = c, cancel, done
	go func() {
		done <- h.lease.Hold(ctx, func(ctx context.Context) error {
			if c.active.Add(1) > 1 {
				c.violations.Add(1)
			}
			h.startAt.Store(c.since())
			h.runs.Add(1)
			h.running.Store(true)
			<-ctx.Done()
			cause := context.Cause(ctx)
			h.cause.Store(&cause)
			h.running.Store(false)
			h.endAt.Store(c.since())
			c.active.Add(-1)
			return ctx.Err()
		})
	}()
	c.t.Cleanup(func() { h.stop(c.t) })
}

// stop ends h's Hold as a graceful shutdown would, and waits for it.
func (h *holder) stop(t *testing.T) {
	t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("%s: Hold = %v, want nil after cancel", h.name, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: Hold did not return after cancel", h.name)
	}
}

func TestHoldRunsOneHolderAtATimeOverHandOvers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ttl = 300 * time.Millisecond
	c := newContenders(t)
	hs := make([]*holder, 2)
	for i := range hs {
		kv, _ := b.bucket(t)
		hs[i] = &holder{name: fmt.Sprintf("poller-%d", i), lease: newLease(t, kv, fmt.Sprintf("poller-%d", i), ttl, nil)}
		c.start(hs[i])
	}
	running := func() *holder {
		for _, h := range hs {
			if h.running.Load() {
				return h
			}
		}
		return nil
	}
	eventually.True(t, 2*time.Second, "a holder runs", func() bool { return running() != nil })
	for range 4 {
		cur := running()
		next := hs[0]
		if cur == hs[0] {
			next = hs[1]
		}
		runs := next.runs.Load()
		// Several renewals pass while cur runs and next waits.
		eventually.True(t, 2*time.Second, "cur renews", func() bool { return time.Duration(c.since()-cur.startAt.Load()) > ttl })
		cur.stop(t)
		eventually.True(t, 2*time.Second, "standby takes over", func() bool { return next.runs.Load() > runs })
		if !next.lease.Held() || cur.lease.Held() {
			t.Fatalf("Held: next=%v cur=%v", next.lease.Held(), cur.lease.Held())
		}
		c.start(cur)
	}
}

func TestReleaseLetsStandbyTakeOverAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A long TTL: a standby that merely polled would wait a second.
	const ttl = 3 * time.Second
	c := newContenders(t)
	kvA, _ := b.bucket(t)
	kvB, _ := b.bucket(t)
	a := &holder{name: "poller-a", lease: newLease(t, kvA, "poller-a", ttl, nil)}
	standby := &holder{name: "poller-b", lease: newLease(t, kvB, "poller-b", ttl, nil)}
	c.start(a)
	eventually.True(t, 2*time.Second, "a runs", a.running.Load)
	c.start(standby)
	// The standby waits, watching the record for a release: its watch is
	// the bucket's only consumer.
	_, js := b.ns.Connect(t)
	eventually.True(t, 2*time.Second, "standby watches", func() bool {
		s, err := js.Stream(t.Context(), "KV_"+lease.BucketName)
		return err == nil && s.CachedInfo().State.Consumers == 1
	})

	released := c.since()
	a.stop(t)
	eventually.True(t, 2*time.Second, "standby takes over", standby.running.Load)
	took := time.Duration(standby.startAt.Load() - released)
	t.Logf("takeover after release: %s (TTL %s)", took, ttl)
	if took > ttl/6 {
		t.Errorf("takeover after release took %s, want well under the polling interval %s", took, ttl/3)
	}
}

func TestStandbyTakesOverWhenHolderDies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ttl = 300 * time.Millisecond
	c := newContenders(t)
	kvA, killA := b.bucket(t)
	kvB, _ := b.bucket(t)
	a := &holder{name: "poller-a", lease: newLease(t, kvA, "poller-a", ttl, nil)}
	standby := &holder{name: "poller-b", lease: newLease(t, kvB, "poller-b", ttl, nil)}
	c.start(a)
	eventually.True(t, 2*time.Second, "a runs", a.running.Load)
	c.start(standby)
	// a keeps the lease over several renewals.
	eventually.True(t, 2*time.Second, "a renews", func() bool { return time.Duration(c.since()-a.startAt.Load()) > ttl })
	if standby.runs.Load() != 0 {
		t.Fatal("standby ran while a renewed")
	}

	// a's connection dies: it cannot renew, and must stop before the
	// standby may start.
	died := c.since()
	killA()
	eventually.True(t, 4*ttl, "standby takes over", standby.running.Load)
	took := time.Duration(standby.startAt.Load() - died)
	stopped := time.Duration(a.endAt.Load() - died)
	t.Logf("takeover after the holder died: %s (TTL %s); the dead holder stopped its work after %s", took, ttl, stopped)
	if took > 2*ttl {
		t.Errorf("takeover took %s, want under 2×TTL = %s", took, 2*ttl)
	}
	if a.running.Load() || a.endAt.Load() > standby.startAt.Load() {
		t.Errorf("a stopped at %s, after the standby started at %s", time.Duration(a.endAt.Load()), time.Duration(standby.startAt.Load()))
	}
	if cause := a.cause.Load(); cause == nil || !errors.Is(*cause, lease.ErrLost) {
		t.Errorf("cause of a's cancellation = %v, want ErrLost", cause)
	}
}

func TestHoldGoesBackToStandbyWhenLeaseTaken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ttl = 300 * time.Millisecond
	c := newContenders(t)
	a := &holder{name: "poller-a", lease: newLease(t, b.kv, "poller-a", ttl, nil)}
	c.start(a)
	eventually.True(t, 2*time.Second, "a runs", a.running.Load)

	// An operator overwrites the record: a's next renewal finds it gone.
	ctx := testCtx(t)
	usurper := fmt.Appendf(nil, `{"holder":"operator","until":%q}`, time.Now().Add(time.Hour).Format(time.RFC3339Nano))
	if _, err := b.kv.Put(ctx, "datahub.alpha", usurper); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 2*time.Second, "a stops", func() bool { return !a.running.Load() && a.runs.Load() == 1 })
	if cause := a.cause.Load(); cause == nil || !errors.Is(*cause, lease.ErrLost) {
		t.Errorf("cause = %v, want ErrLost", cause)
	}
	select {
	case err := <-a.done:
		t.Fatalf("Hold returned %v after a loss, want it to wait as a standby", err)
	default:
	}
	// The operator deletes the record; the waiting Hold takes it again.
	if err := b.kv.Delete(ctx, "datahub.alpha"); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 2*time.Second, "a runs again", func() bool { return a.runs.Load() == 2 && a.running.Load() })
}

func TestHoldReturnsFnErrorAndReleases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l := newLease(t, b.kv, "poller-a", 300*time.Millisecond, nil)
	boom := errors.New("boom")
	if err := l.Hold(testCtx(t), func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Hold = %v, want fn's error", err)
	}
	if _, ok, err := lease.Read(testCtx(t), b.kv, "datahub.alpha"); ok || err != nil {
		t.Fatalf("lease after Hold returned: ok=%v err=%v, want released", ok, err)
	}

	// fn ending because ctx ended is a clean stop.
	ctx, cancel := context.WithCancel(testCtx(t))
	err := l.Hold(ctx, func(ctx context.Context) error {
		cancel()
		<-ctx.Done()
		return fmt.Errorf("poll: %w", ctx.Err())
	})
	if err != nil {
		t.Fatalf("Hold after cancel = %v, want nil", err)
	}
	if _, ok, _ := lease.Read(testCtx(t), b.kv, "datahub.alpha"); ok || l.Held() {
		t.Fatal("lease still held after Hold returned")
	}
}
