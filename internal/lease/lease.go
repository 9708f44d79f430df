// Package lease keeps exactly one active poller per tenant: the poller holds
// a lease, a record in the JetStream KV bucket [BucketName] written by
// compare-and-set, and renews it while it works. A hot standby polls the
// record and takes over when the holder releases it or stops renewing it,
// within two lease periods of the holder's death.
//
// The record carries an absolute expiry ([Record.Until]) that the standby
// compares with its own clock, so the hosts' clocks must agree to within a
// third of the TTL: the holder stops working a third of the TTL before the
// expiry it wrote, and that margin is what absorbs the skew.
package lease

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/events"
)

// BucketName is the KV bucket holding one lease record per key.
const BucketName = "POLLER_LEASES"

// TTLDefault is how long a lease lasts without renewal.
const TTLDefault = 15 * time.Second

// ttlMin keeps the renewal interval (TTL/3) and the retry interval (TTL/10)
// meaningful.
const ttlMin = 30 * time.Millisecond

// ErrLost means the lease is no longer ours: another holder took it, it was
// deleted, or it could not be renewed before it ran out.
var ErrLost = errors.New("lease lost")

// EnsureBucket creates the lease bucket, or updates it to these settings, so
// whichever binary starts first sets it up and a second one starting at the
// same time does no harm. replicas below 1 mean 1.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      BucketName,
		Description: "rollcall poller leases: which process polls each tenant",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	}
	return events.EnsureBucket(ctx, js, cfg)
}

// HUBmisEgressName is the name of the lease that the pollers behind one
// network address (one hubmis_egress name) share: only its holder polls
// HUBmis, whose limit is per address.
func HUBmisEgressName(egress string) string { return "hubmis-egress." + egress }

// Record is the value of a lease key.
type Record struct {
	// Holder names the process holding the lease.
	Holder string `json:"holder"`
	// Until is when the lease runs out unless renewed.
	Until time.Time `json:"until"`
	// Acquired is when the holder took the lease; renewals keep it.
	Acquired time.Time `json:"acquired"`
}

// Read returns the lease record under name; ok is false when there is none
// (never taken, or released). For status displays: a record whose Until has
// passed is held by nobody.
func Read(ctx context.Context, kv jetstream.KeyValue, name string) (rec Record, ok bool, err error) {
	entry, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read lease %s: %w", name, err)
	}
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return rec, false, fmt.Errorf("lease %s is corrupt: %w", name, err)
	}
	return rec, true, nil
}

// Config configures a [Lease].
type Config struct {
	// KV is the lease bucket, from [EnsureBucket]. Required.
	KV jetstream.KeyValue
	// Name is the lease's key in the bucket, such as "datahub.<tenant>": a
	// legal KV key (letters, digits, "-/_=.", dot-separated tokens, none
	// empty). Required.
	Name string
	// Holder names this process in the record. It must be unique among the
	// processes competing for Name: a record with our Holder is taken to be
	// ours. Defaults to host and pid.
	Holder string
	// TTL is how long the lease lasts without renewal; it is renewed every
	// TTL/3. Defaults to [TTLDefault].
	TTL time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Lease is one process's claim on one lease key. Its methods are safe for
// concurrent use; [Lease.Hold] is the usual way to use it.
type Lease struct {
	kv     jetstream.KeyValue
	name   string
	holder string
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger

	// opMu serialises the operations that write the record, so a renewal
	// never races a release; mu guards the state they leave, so Held does
	// not wait on I/O.
	opMu sync.Mutex
	mu   sync.Mutex
	held bool
	rev  uint64 // revision of the record we last wrote
	rec  Record // the record we last wrote
}

var validKeyRe = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

// validKey is JetStream KV's rule for a key, which nats.go otherwise reports
// only at the first write.
func validKey(k string) bool {
	return validKeyRe.MatchString(k) && !strings.HasPrefix(k, ".") && !strings.HasSuffix(k, ".") && !strings.Contains(k, "..")
}

// New validates cfg and returns a lease, not yet held.
func New(cfg Config) (*Lease, error) {
	var errs []error
	if cfg.KV == nil {
		errs = append(errs, errors.New("lease: Config.KV is required"))
	}
	if !validKey(cfg.Name) {
		errs = append(errs, fmt.Errorf("lease: Config.Name %q is not a valid KV key", cfg.Name))
	}
	switch {
	case cfg.TTL < 0:
		errs = append(errs, fmt.Errorf("lease: Config.TTL %s is negative", cfg.TTL))
	case cfg.TTL > 0 && cfg.TTL < ttlMin:
		errs = append(errs, fmt.Errorf("lease: Config.TTL %s is below the minimum of %s", cfg.TTL, ttlMin))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	holder := cfg.Holder
	if holder == "" {
		host, _ := os.Hostname()
		holder = host + "-" + strconv.Itoa(os.Getpid())
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	logger := cmp.Or(cfg.Logger, slog.Default())
	return &Lease{
		kv:     cfg.KV,
		name:   cfg.Name,
		holder: holder,
		ttl:    cmp.Or(cfg.TTL, TTLDefault),
		now:    now,
		log:    logger.With(slog.String("lease", cfg.Name), slog.String("holder", holder)),
	}, nil
}

// Held reports whether this process holds the lease: its last write of the
// record succeeded and has not run out.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held && l.now().Before(l.rec.Until)
}

func (l *Lease) setHeld(rev uint64, rec Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held, l.rev, l.rec = true, rev, rec
}

func (l *Lease) setLost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = false
}

func (l *Lease) state() (held bool, rev uint64, rec Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held, l.rev, l.rec
}

// TryAcquire takes the lease if nobody holds it, its record has run out or
// the record is already ours, by compare-and-set on the record's revision:
// of several processes trying at once, one wins. held reports whether we
// hold it now; losing the race is held=false with a nil error.
func (l *Lease) TryAcquire(ctx context.Context) (held bool, err error) {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	now := l.now()
	rec := Record{Holder: l.holder, Until: now.Add(l.ttl).UTC(), Acquired: now.UTC()}
	var rev uint64
	entry, err := l.kv.Get(ctx, l.name)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		// Create also takes a key whose last record is a release's delete
		// marker, by compare-and-set on the marker.
		value, err := json.Marshal(rec)
		if err != nil {
			return false, err
		}
		rev, err = l.kv.Create(ctx, l.name, value)
		if err != nil {
			return l.failAcquire(err)
		}
	case err != nil:
		return false, fmt.Errorf("read lease %s: %w", l.name, err)
	default:
		var cur Record
		if err := json.Unmarshal(entry.Value(), &cur); err != nil {
			// Taking over a record we cannot read could give the tenant two
			// pollers; none until someone looks is the safer failure.
			return false, fmt.Errorf("lease %s is corrupt: %w", l.name, err)
		}
		if cur.Holder != l.holder && !now.After(cur.Until) {
			l.setLost()
			return false, nil
		}
		if cur.Holder == l.holder && !cur.Acquired.IsZero() {
			rec.Acquired = cur.Acquired
		}
		value, err := json.Marshal(rec)
		if err != nil {
			return false, err
		}
		rev, err = l.kv.Update(ctx, l.name, value, entry.Revision())
		if err != nil {
			return l.failAcquire(err)
		}
	}
	l.setHeld(rev, rec)
	return true, nil
}

func (l *Lease) failAcquire(err error) (bool, error) {
	if isConflict(err) {
		// Another process wrote the record between our read and our write.
		l.setLost()
		return false, nil
	}
	return false, fmt.Errorf("acquire lease %s: %w", l.name, err)
}

// Renew extends the lease by a TTL from now, by compare-and-set on the
// revision we last wrote. It returns [ErrLost] if we do not hold the lease
// or someone else wrote the record meanwhile; any other error leaves the
// lease held until its Until.
func (l *Lease) Renew(ctx context.Context) error {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	held, rev, last := l.state()
	if !held {
		return ErrLost
	}
	// Two attempts: a renewal whose reply was lost (a timeout after the
	// server applied it) leaves our revision stale while the record is
	// still ours, and the second attempt adopts the record's revision.
	for range 2 {
		now := l.now()
		rec := Record{Holder: l.holder, Until: now.Add(l.ttl).UTC(), Acquired: last.Acquired}
		value, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		newRev, err := l.kv.Update(ctx, l.name, value, rev)
		if err == nil {
			l.setHeld(newRev, rec)
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("renew lease %s: %w", l.name, err)
		}
		cur, curRev, ok, err := l.read(ctx)
		if err != nil {
			return fmt.Errorf("renew lease %s: %w", l.name, err)
		}
		if !ok || cur.Holder != l.holder {
			l.setLost()
			return ErrLost
		}
		rev = curRev
	}
	l.setLost()
	return ErrLost
}

func (l *Lease) read(ctx context.Context) (rec Record, rev uint64, ok bool, err error) {
	entry, err := l.kv.Get(ctx, l.name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, 0, false, nil
	}
	if err != nil {
		return rec, 0, false, err
	}
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return rec, 0, false, fmt.Errorf("lease %s is corrupt: %w", l.name, err)
	}
	return rec, entry.Revision(), true, nil
}

// Release gives the lease up by deleting its record (compare-and-set on our
// revision), so a standby takes over at once instead of waiting for the
// record to run out. It returns nil if we did not hold the lease, and
// [ErrLost] if someone else had taken it.
func (l *Lease) Release(ctx context.Context) error {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	held, rev, _ := l.state()
	if !held {
		return nil
	}
	// Whatever the outcome, this process has stopped working under the
	// lease; if the delete failed, the record runs out by itself.
	l.setLost()
	err := l.kv.Delete(ctx, l.name, jetstream.LastRevision(rev))
	if isConflict(err) {
		// A renewal cut short (fn returned meanwhile) may have been applied
		// without our learning its revision: the record is then still ours.
		cur, curRev, ok, rerr := l.read(ctx)
		if rerr != nil {
			return fmt.Errorf("release lease %s: %w", l.name, rerr)
		}
		if !ok || cur.Holder != l.holder {
			return ErrLost
		}
		err = l.kv.Delete(ctx, l.name, jetstream.LastRevision(curRev))
		if isConflict(err) {
			return ErrLost
		}
	}
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.name, err)
	}
	return nil
}

// Hold runs fn while this process holds the lease, and waits as a standby
// while it does not.
//
// It tries to acquire the lease every TTL/3 (and at once when the holder
// releases it). Once held, it runs fn with a context that is cancelled when
// ctx ends or the lease is lost: renewed every TTL/3, it is lost when a
// renewal finds another holder, or when renewals keep failing until a third
// of the TTL before the lease runs out, so that fn stops before a standby
// may start. fn must return promptly once its context is cancelled;
// [context.Cause] of that context wraps [ErrLost] after a loss.
//
// After a loss Hold goes back to waiting. When fn returns for any other
// reason, Hold releases the lease and returns fn's error, or nil when ctx
// has ended.
func (l *Lease) Hold(ctx context.Context, fn func(ctx context.Context) error) error {
	for {
		if !l.await(ctx) {
			return nil
		}
		l.log.Info("lease acquired")
		lost, err := l.run(ctx, fn)
		if lost {
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		// Past a third of the TTL a release gains little over letting the
		// record run out, and shutdown should not wait longer.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.ttl/3)
		if rerr := l.Release(rctx); rerr != nil {
			l.log.Warn("lease not released; it runs out by itself", slog.String("error", rerr.Error()))
		} else {
			l.log.Info("lease released")
		}
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}

// await tries to acquire the lease until it is held (true) or ctx ends.
func (l *Lease) await(ctx context.Context) bool {
	held, err := l.TryAcquire(ctx)
	if held {
		return true
	}
	if err != nil && ctx.Err() == nil {
		l.log.Warn("lease not acquired", slog.String("error", err.Error()))
	}
	// Only a standby watches for releases: a process that takes a free
	// lease at once creates no watch consumer at all.
	ctx, cancel := context.WithCancel(ctx)
	retry := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { l.watchReleases(ctx, retry) })
	defer wg.Wait()
	defer cancel()

	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		case <-retry:
		}
		held, err := l.TryAcquire(ctx)
		if held {
			return true
		}
		if err != nil && ctx.Err() == nil {
			l.log.Warn("lease not acquired", slog.String("error", err.Error()))
		}
	}
}

// watchReleases signals on retry when the lease record is deleted, so a
// standby need not wait for its next attempt. It is only a shortcut: the
// periodic attempts do not depend on it, so a watch that cannot be set up
// (the connection is down) just leaves them.
func (l *Lease) watchReleases(ctx context.Context, retry chan<- struct{}) {
	signal := func() {
		select {
		case retry <- struct{}{}:
		default:
		}
	}
	w, err := l.kv.Watch(ctx, l.name, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		if ctx.Err() == nil {
			l.log.Debug("lease releases not watched", slog.String("error", err.Error()))
		}
		return
	}
	defer func() { _ = w.Stop() }()
	// A release between the failed attempt and the start of the watch
	// would go unseen; one more attempt now covers it.
	signal()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil && e.Operation() != jetstream.KeyValuePut {
				signal()
			}
		}
	}
}

// errFnReturned stops the renewals once fn has returned by itself.
var errFnReturned = errors.New("lease: fn returned")

// run runs fn under the held lease, renewing it meanwhile. lost reports
// that fn's context was cancelled because the lease was lost.
func (l *Lease) run(ctx context.Context, fn func(ctx context.Context) error) (lost bool, err error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.keep(runCtx, cancel)
	}()
	stop := sync.OnceFunc(func() {
		cancel(errFnReturned)
		<-done
	})
	// The renewals stop even if fn panics, so a lease is never renewed for
	// work that is not happening.
	defer stop()
	err = fn(runCtx)
	stop()
	return errors.Is(context.Cause(runCtx), ErrLost), err
}

// keep renews the lease every TTL/3 until ctx ends, and cancels ctx with a
// cause wrapping [ErrLost] when the lease is lost.
func (l *Lease) keep(ctx context.Context, lose context.CancelCauseFunc) {
	interval, retry := l.ttl/3, l.ttl/10
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		_, _, rec := l.state()
		// The holder stops a third of the TTL before the Until it wrote, so
		// it has stopped before any standby (whose clock may differ a little)
		// sees the record run out.
		stopAt := rec.Until.Add(-l.ttl / 3)
		left := stopAt.Sub(l.now())
		if left <= 0 {
			l.setLost()
			l.log.Warn("lease lost: not renewed in time", slog.Time("until", rec.Until))
			lose(fmt.Errorf("%w: not renewed before %s", ErrLost, stopAt.Format(time.RFC3339Nano)))
			return
		}
		rctx, cancel := context.WithTimeout(ctx, left)
		err := l.Renew(rctx)
		cancel()
		switch {
		case err == nil:
			timer.Reset(interval)
		case errors.Is(err, ErrLost):
			l.log.Warn("lease lost to another holder")
			lose(err)
			return
		case ctx.Err() != nil:
			return
		default:
			l.log.Warn("lease not renewed", slog.String("error", err.Error()))
			// Retry sooner than the usual interval, and wake at the stop
			// time at the latest.
			timer.Reset(max(0, min(retry, stopAt.Sub(l.now()))))
		}
	}
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
