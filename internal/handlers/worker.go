// Package handlers is the worker: it applies change messages to Class, one
// key at a time and newest first, acknowledging a message only once Class
// confirmed its effect, and dead-lettering what can never succeed.
package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/rollcall/rollcall/internal/audit"
	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/pullsub"
	"github.com/rollcall/rollcall/internal/tenantctl"
)

// Defaults of [Config].
const (
	ConcurrencyDefault       = 32
	AckWaitDefault           = 30 * time.Second
	MaxAttemptsDefault       = 25
	MaxAgeDefault            = 24 * time.Hour
	BackoffInitialDefault    = time.Second
	BackoffMaxDefault        = 5 * time.Minute
	QuickRetriesDefault      = 2
	QuickRetryMaxDefault     = time.Second
	AuthProbeIntervalDefault = 30 * time.Second
	ConflictGraceDefault     = 15 * time.Minute
)

// Tenant is one tenant the worker serves.
type Tenant struct {
	ID string
	// Class is the tenant's Class, usually a *class.Client.
	Class ClassAPI
	// Timezone is the tenant's configured time zone (IANA).
	Timezone string
}

// Config configures a [Worker].
type Config struct {
	// JS is the JetStream context. Required.
	JS jetstream.JetStream
	// Resources are the ensured streams and buckets. Required.
	Resources *events.Resources
	// Tenants served by this worker. At least one.
	Tenants []Tenant
	// Concurrency is the number of messages applied at once, over all
	// tenants. Defaults to [ConcurrencyDefault].
	Concurrency int
	// AckWait of the consumers; a handler gives up at 80 % of it. Defaults
	// to [AckWaitDefault].
	AckWait time.Duration
	// Retry is filled with the *Default constants where zero.
	Retry RetryPolicy
	// AuthProbeInterval is how often a paused tenant's key is tried.
	// Defaults to [AuthProbeIntervalDefault].
	AuthProbeInterval time.Duration
	// HolderID names this process in key claims. Defaults to host and pid.
	HolderID string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// OnOutcome, if set, is called after every delivery.
	OnOutcome func(Outcome)
	// TracerProvider makes the span of each delivery. Defaults to the
	// global one.
	TracerProvider trace.TracerProvider
	// NoAudit turns off the outcome records in PROVISION_AUDIT (for the
	// benchmark's ceiling figures only).
	NoAudit bool
}

// Worker applies change messages of its tenants to Class.
type Worker struct {
	js                jetstream.JetStream
	res               *events.Resources
	log               *slog.Logger
	now               func() time.Time
	retry             RetryPolicy
	ackWait           time.Duration
	claimTTL          time.Duration
	concurrency       int
	authProbeInterval time.Duration
	onOutcome         func(Outcome)
	tracer            trace.Tracer
	audit             *audit.Writer
	holder            string
	keys              *KeyStore
	locks             *keyLocks
	sub               *pullsub.Subscriber

	tenants map[string]*tenantState
	order   []string
	counts  [5]atomic.Int64

	mu     sync.Mutex
	runCtx context.Context
}

type tenantState struct {
	Tenant
	// paused: Class refused the tenant's key; a probe resumes it.
	paused bool
	reason string
	since  time.Time
	// stopped: an operator paused or offboarded the tenant.
	stopped bool
}

// New validates cfg and returns a worker; Run starts it.
func New(cfg Config) (*Worker, error) {
	var errs []error
	if cfg.JS == nil {
		errs = append(errs, errors.New("handlers: Config.JS is required"))
	}
	if cfg.Resources == nil {
		errs = append(errs, errors.New("handlers: Config.Resources is required"))
	}
	if len(cfg.Tenants) == 0 {
		errs = append(errs, errors.New("handlers: at least one tenant is required"))
	}
	w := &Worker{
		js:                cfg.JS,
		res:               cfg.Resources,
		log:               cmp.Or(cfg.Logger, slog.Default()),
		now:               cfg.Now,
		ackWait:           cmp.Or(cfg.AckWait, AckWaitDefault),
		concurrency:       cmp.Or(cfg.Concurrency, ConcurrencyDefault),
		authProbeInterval: cmp.Or(cfg.AuthProbeInterval, AuthProbeIntervalDefault),
		onOutcome:         cfg.OnOutcome,
		locks:             newKeyLocks(),
		tenants:           map[string]*tenantState{},
		retry: RetryPolicy{
			MaxAttempts:    cmp.Or(cfg.Retry.MaxAttempts, MaxAttemptsDefault),
			MaxAge:         cmp.Or(cfg.Retry.MaxAge, MaxAgeDefault),
			BackoffInitial: cmp.Or(cfg.Retry.BackoffInitial, BackoffInitialDefault),
			BackoffMax:     cmp.Or(cfg.Retry.BackoffMax, BackoffMaxDefault),
			QuickRetries:   cmp.Or(cfg.Retry.QuickRetries, QuickRetriesDefault),
			QuickRetryMax:  cmp.Or(cfg.Retry.QuickRetryMax, QuickRetryMaxDefault),
			ConflictGrace:  cmp.Or(cfg.Retry.ConflictGrace, ConflictGraceDefault),
		},
	}
	if cfg.Retry.QuickRetries < 0 {
		w.retry.QuickRetries = 0
	}
	if w.now == nil {
		w.now = time.Now
	}
	for i, t := range cfg.Tenants {
		switch {
		case !events.ValidTenant(t.ID):
			errs = append(errs, fmt.Errorf("handlers: tenants[%d].id %q is not [a-z0-9-]{1,64}", i, t.ID))
		case w.tenants[t.ID] != nil:
			errs = append(errs, fmt.Errorf("handlers: tenants[%d].id %q is repeated", i, t.ID))
		case t.Class == nil:
			errs = append(errs, fmt.Errorf("handlers: tenants[%d].class is required", i))
		default:
			w.tenants[t.ID] = &tenantState{Tenant: t}
			w.order = append(w.order, t.ID)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// The claim outlives the handler's own deadline (80 % of AckWait), so a
	// live handler never loses its key to a second delivery.
	w.claimTTL = w.ackWait
	holder := cfg.HolderID
	if holder == "" {
		host, _ := os.Hostname()
		holder = host + "-" + strconv.Itoa(os.Getpid())
	}
	w.holder = holder
	w.keys = NewKeyStore(cfg.Resources.State, holder, w.claimTTL, w.now)
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	w.tracer = tp.Tracer("github.com/rollcall/rollcall/internal/handlers")
	if !cfg.NoAudit {
		w.audit = audit.NewWriter(cfg.JS, w.log)
	}
	sub, err := pullsub.New(pullsub.Config{
		Consumer: func(ctx context.Context, tenant string) (jetstream.Consumer, error) {
			return w.js.CreateOrUpdateConsumer(ctx, events.StreamName,
				events.WorkerConsumerConfig(tenant, w.ackWait, w.concurrency*4))
		},
		Concurrency: w.concurrency,
		AckWait:     w.ackWait,
		NakDelay:    w.retry.BackoffInitial,
		Logger:      w.log,
	})
	if err != nil {
		return nil, err
	}
	w.sub = sub
	return w, nil
}

// Run applies messages until ctx ends, then lets the messages in flight
// finish (up to AckWait) and returns.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	w.runCtx = ctx
	w.mu.Unlock()
	if w.res.Tenants != nil {
		controls, err := tenantctl.Watch(ctx, w.res.Tenants, w.log)
		if err != nil {
			return err
		}
		w.followControls(ctx, controls)
	}
	// watermill's Info lines are per handler start and stop; its Debug and
	// Trace lines are per message and stay at Debug here.
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: w.ackWait}, watermill.NewSlogLogger(w.log))
	if err != nil {
		return err
	}
	for _, id := range w.order {
		t := w.tenants[id]
		h := &tenantHandler{w: w, tenant: id, applier: &Applier{
			API: t.Class, Tenant: id, Timezone: t.Timezone, ClassIDs: w.res.ClassIDs,
		}}
		router.AddConsumerHandler("apply-"+id, id, w.sub, h.Handle)
	}
	runErr := router.Run(ctx)
	closeErr := w.sub.Close()
	return errors.Join(runErr, closeErr)
}

// TenantPaused reports whether a tenant's work is paused, because Class
// refused its key or an operator stopped it, and why.
func (w *Worker) TenantPaused(id string) (paused bool, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.tenants[id]
	switch {
	case !ok:
		return false, ""
	case t.paused:
		return true, t.reason
	case t.stopped:
		return true, "stopped by an operator"
	}
	return false, ""
}

// Counts is how many deliveries ended in each result so far.
type Counts struct{ Applied, Skipped, Retried, Dead, Paused int64 }

// Counts returns the delivery results so far.
func (w *Worker) Counts() Counts {
	return Counts{
		Applied: w.counts[0].Load(), Skipped: w.counts[1].Load(), Retried: w.counts[2].Load(),
		Dead: w.counts[3].Load(), Paused: w.counts[4].Load(),
	}
}

// followControls pauses and resumes tenants as operators say, now and on
// every change, until ctx ends.
func (w *Worker) followControls(ctx context.Context, controls *tenantctl.Watcher) {
	sync := func() {
		for _, id := range w.order {
			stopped := controls.State(id).Stopped()
			w.mu.Lock()
			t := w.tenants[id]
			was := t.stopped
			t.stopped = stopped
			authPaused := t.paused
			w.mu.Unlock()
			switch {
			case stopped && !was:
				w.sub.Pause(id)
				w.log.Info("tenant paused by an operator; its messages wait", slog.String("tenant", id))
			case !stopped && was && !authPaused:
				w.sub.Resume(id)
				w.log.Info("tenant resumed by an operator", slog.String("tenant", id))
			}
		}
	}
	changed := controls.Changed()
	sync()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				changed = controls.Changed()
				sync()
			}
		}
	}()
}

func (w *Worker) operatorStopped(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tenants[id].stopped
}

func (w *Worker) report(o Outcome) {
	switch o.Result {
	case ResultApplied:
		w.counts[0].Add(1)
	case ResultSkipped:
		w.counts[1].Add(1)
	case ResultRetry:
		w.counts[2].Add(1)
	case ResultDead:
		w.counts[3].Add(1)
	case ResultPaused:
		w.counts[4].Add(1)
	}
	if o.Result != ResultApplied && o.Result != ResultSkipped {
		w.log.Debug("message not applied", slog.String("tenant", o.Tenant), slog.String("kind", string(o.Kind)),
			slog.String("entity", o.Key), slog.String("result", string(o.Result)), slog.Uint64("attempt", o.Attempt), slog.String("error", o.Err))
	}
	if w.audit != nil && o.Kind != "" {
		w.audit.Write(audit.Record{
			Time: w.now().UTC(), Tenant: o.Tenant, Kind: o.Kind, Op: o.Op, Key: o.Key, MessageID: o.MessageID,
			Subject: o.Subject, StreamSeq: o.StreamSeq, Version: o.Version, Origin: o.Origin, Replay: o.Replay,
			Attempt: o.Attempt, Result: string(o.Result), Error: o.Err, Calls: o.Calls, TraceID: o.TraceID,
			Worker: w.holder, Took: o.Duration,
		})
	}
	if w.onOutcome != nil {
		w.onOutcome(o)
	}
}

// pauseTenant stops pulling a tenant's messages after Class refused its key:
// they wait in the stream, none is dead-lettered, and a probe resumes the
// tenant once the key works again.
func (w *Worker) pauseTenant(id string, cause error) {
	w.mu.Lock()
	t := w.tenants[id]
	if t.paused {
		w.mu.Unlock()
		return
	}
	t.paused, t.reason, t.since = true, cause.Error(), w.now()
	ctx := w.runCtx
	w.mu.Unlock()
	w.sub.Pause(id)
	w.log.Error("tenant paused: Class refused its API key; its messages are kept until the key works",
		slog.String("tenant", id), slog.String("reason", cause.Error()))
	go w.probeUntilResumed(ctx, t)
}

// authProbeRef is a class no one has: a lookup of it answers 404 when the key
// works and 401 or 403 when it does not, and changes nothing.
var authProbeRef = class.ClassRef{ExtClassID: "rollcall-auth-probe"}

func (w *Worker) probeUntilResumed(ctx context.Context, t *tenantState) {
	tick := time.NewTicker(w.authProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := t.Class.GetClass(pctx, authProbeRef)
		cancel()
		if err != nil && !errors.Is(err, class.ErrNotFound) {
			continue
		}
		w.mu.Lock()
		t.paused, t.reason = false, ""
		stopped := t.stopped
		w.mu.Unlock()
		if !stopped {
			w.sub.Resume(t.ID)
		}
		w.log.Info("tenant resumed: Class accepts its API key again", slog.String("tenant", t.ID))
		return
	}
}

// Why a tenant's work is paused; see [Worker.PauseCause].
const (
	PauseAuth     = "auth"     // Class refused the tenant's key
	PauseOperator = "operator" // an operator paused or offboarded it
)

// PauseCause returns why a tenant's work is paused: [PauseAuth],
// [PauseOperator], or "" while it runs.
func (w *Worker) PauseCause(id string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.tenants[id]
	switch {
	case !ok:
		return ""
	case t.paused:
		return PauseAuth
	case t.stopped:
		return PauseOperator
	}
	return ""
}
