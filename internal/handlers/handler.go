package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/httpx"
	"github.com/rollcall/rollcall/internal/pullsub"
)

// Result is what became of one delivery of a message.
type Result string

// The results of a delivery.
const (
	ResultApplied Result = "applied" // Class has the message's state
	ResultSkipped Result = "skipped" // an equal or newer version was applied before
	ResultRetry   Result = "retry"   // a transient failure: it comes back after a delay
	ResultDead    Result = "dead"    // dead-lettered, with the reason
	ResultPaused  Result = "paused"  // the tenant's key was refused; kept for later
)

// Outcome describes one delivery, for metrics, audit and tests.
type Outcome struct {
	Tenant    string
	Kind      events.Kind
	Op        events.Op
	Key       string
	MessageID string
	Version   events.Version
	Attempt   uint64
	Result    Result
	// Err is the failure's text (never personal data), empty when applied.
	Err      string
	Duration time.Duration

	Subject   string
	StreamSeq uint64
	Origin    events.Origin
	Replay    bool
	// Observed is when the source saw the change (the message's ce-time):
	// Observed to the end of an applied delivery is the change's lag.
	Observed time.Time
	// Calls are the Class calls this delivery made, with their answers.
	Calls []httpx.Call
	// TraceID is the trace the delivery's span belongs to, empty if none.
	TraceID string
}

// RetryPolicy says how long a failing message is retried.
type RetryPolicy struct {
	// MaxAttempts is the number of deliveries after which a transient
	// failure is dead-lettered.
	MaxAttempts int
	// MaxAge is the age (since the message was stored) after which a
	// failing message, or one whose class is still missing, is dead-lettered.
	MaxAge time.Duration
	// BackoffInitial and BackoffMax bound the exponential delay between
	// deliveries.
	BackoffInitial, BackoffMax time.Duration
	// QuickRetries is how often a transient failure is retried inside one
	// delivery, a fraction of a second apart, before the message goes back
	// to the stream: most faults of a busy Class pass that fast, and a
	// redelivery costs more than a short wait.
	QuickRetries int
	// QuickRetryMax is the longest such wait, and the longest Retry-After
	// honoured inside a delivery; a longer one sends the message back with
	// that delay.
	QuickRetryMax time.Duration
	// ConflictGrace is how long a message that conflicts with something in
	// Class is retried before it is dead-lettered (never longer than
	// MaxAge): long enough for a delete published beside it to be applied,
	// short enough that an operator hears of a real conflict the same day.
	ConflictGrace time.Duration
}

// nakDelay is the delay before the attempt-th redelivery: exponential with
// jitter, capped, and never shorter than what Class asked for.
func (p RetryPolicy) nakDelay(attempt uint64, retryAfter time.Duration) time.Duration {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.BackoffInitial
	b.MaxInterval = p.BackoffMax
	b.MaxElapsedTime = 0
	b.Reset()
	d := b.NextBackOff()
	for i := uint64(1); i < attempt && d < p.BackoffMax; i++ {
		d = b.NextBackOff()
	}
	return max(d, retryAfter)
}

// retryAfterBackOff makes a backoff wait at least as long as the last
// Retry-After that Class sent.
type retryAfterBackOff struct {
	backoff.BackOff
	retryAfter time.Duration
}

func (b *retryAfterBackOff) NextBackOff() time.Duration {
	d := b.BackOff.NextBackOff()
	if d == backoff.Stop {
		return d
	}
	ra := b.retryAfter
	b.retryAfter = 0
	return max(d, ra)
}

// tenantHandler handles the messages of one tenant.
type tenantHandler struct {
	w       *Worker
	tenant  string
	applier *Applier
}

// Handle is the watermill handler. It settles the message itself (ack,
// nack with a delay, or terminate after dead-lettering) and never returns an
// error, so the router does not log every retry as an error.
func (h *tenantHandler) Handle(msg *message.Message) error {
	start := h.w.now()
	subject := msg.Metadata.Get(pullsub.MetaSubject)
	header := pullsub.Header(msg)
	seq, _ := strconv.ParseUint(msg.Metadata.Get(pullsub.MetaStreamSeq), 10, 64)
	out := Outcome{Tenant: h.tenant, MessageID: msg.UUID, Attempt: pullsub.NumDelivered(msg), Subject: subject, StreamSeq: seq}
	// The poller's trace goes on here: its publish span is this span's
	// parent, and the Class calls below are its children.
	ctx := events.TracePropagator.Extract(msg.Context(), events.TraceCarrier(header))
	ctx, span := h.w.tracer.Start(ctx, "apply "+subject, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.message.id", msg.UUID),
			attribute.Int64("messaging.message.delivery_count", int64(out.Attempt)),
			attribute.String("rollcall.tenant", h.tenant),
		))
	if sc := span.SpanContext(); sc.HasTraceID() {
		out.TraceID = sc.TraceID().String()
	}
	ctx, calls := httpx.WithCallLog(ctx)
	defer func() {
		if r := recover(); r != nil {
			// A bug must not spin a message forever or stop the others.
			out.Result = h.deadLetter(ctx, msg, subject, fmt.Errorf("handler panicked: %v", r))
		}
		out.Duration = h.w.now().Sub(start)
		out.Calls = calls.Calls()
		span.SetAttributes(attribute.String("rollcall.result", string(out.Result)))
		if out.Result == ResultDead {
			span.SetStatus(codes.Error, out.Err)
		}
		span.End()
		h.w.report(out)
	}()

	m, decodeErr := events.Decode(subject, header, msg.Payload)
	if decodeErr == nil && m.Tenant != h.tenant {
		decodeErr = fmt.Errorf("%w: message of tenant %q on tenant %q's consumer", events.ErrInvalid, m.Tenant, h.tenant)
	}
	if decodeErr != nil {
		out.Err = decodeErr.Error()
		out.Result = h.deadLetter(ctx, msg, subject, decodeErr)
		return nil
	}
	out.Kind, out.Op, out.Key, out.Version = m.Kind, m.Op, m.Key, m.Version
	out.Origin, out.Replay, out.Observed = m.Origin, m.Replay, m.Time
	span.SetAttributes(attribute.String("rollcall.kind", string(m.Kind)), attribute.String("rollcall.op", string(m.Op)),
		attribute.String("rollcall.key", m.Key), attribute.String("rollcall.version", m.Version.String()))
	if h.w.operatorStopped(h.tenant) {
		// Pulled just before an operator paused the tenant: it waits too.
		h.nack(msg, min(h.w.authProbeInterval, 5*time.Second))
		out.Result = ResultPaused
		return nil
	}

	unlock, err := h.w.locks.lock(ctx, events.StateKey(m.Tenant, m.Kind, m.Key))
	if err != nil {
		out.Result, out.Err = h.nack(msg, h.w.retry.BackoffInitial), err.Error()
		return nil
	}
	defer unlock()

	lease, err := h.w.keys.Claim(ctx, m)
	var busy *KeyBusyError
	switch {
	case errors.Is(err, ErrStale):
		out.Result = ResultSkipped
		msg.Ack()
		return nil
	case errors.As(err, &busy):
		out.Result, out.Err = h.nack(msg, min(max(busy.Until.Sub(h.w.now()), 100*time.Millisecond), h.w.claimTTL)), err.Error()
		return nil
	case err != nil:
		out.Result, out.Err = h.nack(msg, h.w.retry.nakDelay(out.Attempt, 0)), err.Error()
		return nil
	}

	applyErr := h.applyWithQuickRetries(ctx, m, lease.FirstAttempt())
	// The release must happen even when the handler's time ran out.
	relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if applyErr == nil {
		if err := h.w.keys.Release(relCtx, lease, true); err != nil {
			// Class has the state but the record does not say so: apply
			// again later, which changes nothing in Class.
			out.Result, out.Err = h.nack(msg, h.w.retry.BackoffInitial), err.Error()
			return nil
		}
		out.Result = ResultApplied
		// Acknowledged only now: Class confirmed and the applied version is
		// recorded, so a crash before this line re-applies, never loses.
		msg.Ack()
		return nil
	}
	if err := h.w.keys.Release(relCtx, lease, false); err != nil {
		h.w.log.Warn("could not release key claim; it expires by itself", slog.String("tenant", h.tenant), slog.String("entity", m.Key), slog.Any("error", err))
	}
	out.Err = applyErr.Error()
	out.Result = h.fail(ctx, msg, subject, m, out.Attempt, applyErr)
	return nil
}

// applyWithQuickRetries applies m, retrying transient faults a few times;
// only the first try of a key's first attempt counts as one with nothing
// before it.
func (h *tenantHandler) applyWithQuickRetries(ctx context.Context, m events.Message, firstAttempt bool) error {
	b := &retryAfterBackOff{BackOff: backoff.WithContext(backoff.WithMaxRetries(&backoff.ExponentialBackOff{
		InitialInterval:     h.w.retry.QuickRetryMax / 8,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         h.w.retry.QuickRetryMax,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}, uint64(h.w.retry.QuickRetries)), ctx)}
	return backoff.Retry(func() error {
		err := h.applier.apply(ctx, m, firstAttempt)
		firstAttempt = false
		if err == nil || !class.IsRetryable(err) {
			return backoff.Permanent(err)
		}
		if ra, ok := class.RetryAfter(err); ok {
			if ra > h.w.retry.QuickRetryMax {
				return backoff.Permanent(err)
			}
			b.retryAfter = ra
		}
		return err
	}, b)
}

// fail decides what a failed application means: the tenant's key is bad
// (pause the tenant, keep the message), a transient fault or a class not yet
// there (retry later, until the limits), or a permanent error (dead letter).
func (h *tenantHandler) fail(ctx context.Context, msg *message.Message, subject string, m events.Message, attempt uint64, err error) Result {
	age := h.w.now().Sub(pullsub.StoredAt(msg))
	retryAfter, _ := class.RetryAfter(err)
	switch {
	case class.IsAuth(err):
		h.w.pauseTenant(h.tenant, err)
		return h.pausedNack(msg)
	case errors.Is(err, ErrDependencyMissing):
		if age >= h.w.retry.MaxAge {
			return h.deadLetter(ctx, msg, subject, fmt.Errorf("gave up after %s: %w", age.Round(time.Second), err))
		}
		return h.nack(msg, h.w.retry.nakDelay(attempt, 0))
	case errors.Is(err, ErrConflict):
		// The Class user holding the email may be one whose delete is on its
		// way: a teacher who left, replaced by one with the same email, in
		// the same poll. Messages of different keys are applied in any
		// order, so the conflict is retried for a while before it is taken
		// for a real one.
		if grace := min(h.w.retry.MaxAge, h.w.retry.ConflictGrace); age >= grace {
			return h.deadLetter(ctx, msg, subject, fmt.Errorf("gave up after %s: %w", age.Round(time.Second), err))
		}
		return h.nack(msg, h.w.retry.nakDelay(attempt, 0))
	// A call cut short (this delivery's time ran out, or a connection was
	// torn down under it) says nothing about the message: retry it.
	case class.IsRetryable(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		if attempt >= uint64(h.w.retry.MaxAttempts) || age >= h.w.retry.MaxAge {
			return h.deadLetter(ctx, msg, subject, fmt.Errorf("gave up after %d attempts over %s: %w", attempt, age.Round(time.Second), err))
		}
		return h.nack(msg, h.w.retry.nakDelay(attempt, retryAfter))
	default:
		return h.deadLetter(ctx, msg, subject, err)
	}
}

func (h *tenantHandler) nack(msg *message.Message, d time.Duration) Result {
	delay.Message(msg, delay.For(d))
	msg.Nack()
	return ResultRetry
}

func (h *tenantHandler) pausedNack(msg *message.Message) Result {
	h.nack(msg, h.w.authProbeInterval)
	return ResultPaused
}

// deadLetter publishes the message, with its original headers and body, the
// reason and the attempt count, to PROVISION_DLQ and terminates it. If the
// dead letter cannot be written the message is kept and retried: it is
// never dropped.
func (h *tenantHandler) deadLetter(ctx context.Context, msg *message.Message, subject string, reason error) Result {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	tokens := strings.Split(subject, ".")
	kind, op := "unknown", "unknown"
	if len(tokens) == 4 {
		kind, op = tokens[2], tokens[3]
	}
	dead := nats.NewMsg(events.DeadSubject(h.tenant, events.Kind(kind), events.Op(op)))
	dead.Data = msg.Payload
	dead.Header = pullsub.Header(msg)
	dead.Header.Del(nats.MsgIdHdr)
	reasonText := reason.Error()
	dead.Header.Set(events.HeaderDeadReason, reasonText)
	dead.Header.Set(events.HeaderDeadAttempts, strconv.FormatUint(pullsub.NumDelivered(msg), 10))
	dead.Header.Set(events.HeaderDeadSubject, subject)
	dead.Header.Set(events.HeaderDeadSequence, msg.Metadata.Get(pullsub.MetaStreamSeq))
	dead.Header.Set(events.HeaderDeadTime, h.w.now().UTC().Format(time.RFC3339Nano))
	// One dead letter per stored message, even if the term is lost and the
	// message is dead-lettered again.
	id := "dead:" + msg.Metadata.Get(pullsub.MetaStreamSeq)
	if _, err := h.w.js.PublishMsg(ctx, dead, jetstream.WithMsgID(id), jetstream.WithExpectStream(events.DLQStreamName)); err != nil {
		h.w.log.Error("dead letter not written; message kept for retry", slog.String("tenant", h.tenant), slog.String("subject", subject), slog.Any("error", err))
		return h.nack(msg, h.w.retry.BackoffInitial)
	}
	h.w.log.Warn("message dead-lettered", slog.String("tenant", h.tenant), slog.String("subject", subject),
		slog.String("message_id", msg.UUID), slog.String("reason", reasonText))
	pullsub.Terminate(msg, reasonText)
	msg.Ack()
	return ResultDead
}
