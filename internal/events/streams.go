package events

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the spans this package makes.
const tracerName = "github.com/rollcall/rollcall/internal/events"

// Stream and bucket names.
const (
	// StreamName holds the change messages, subjects provision.*.*.*.
	StreamName = "PROVISION"
	// DLQStreamName holds dead letters: provision.*.rejected from the
	// pollers, provision.*.dead.*.* from the workers.
	DLQStreamName = "PROVISION_DLQ"
	// StateBucket holds, per key, the newest desired state seen, the last
	// applied version and the claim of the worker applying it. No expiry:
	// replay --all and resync rebuild Class from it after the stream's
	// retention has dropped the messages.
	StateBucket = "PROVISION_STATE"
	// ClassIDBucket caches ext_class_id → Class class_id, which schedules
	// need and a deferred class only reveals through a lookup.
	ClassIDBucket = "PROVISION_CLASS_IDS"
	// AuditStreamName holds the worker's outcome record of every delivery,
	// subjects audit.<tenant>.<kind>.<base64url(key)>, for explain.
	AuditStreamName = "PROVISION_AUDIT"
	// TenantBucket holds the operator's word on each tenant (paused,
	// offboarded); a tenant without an entry is active.
	TenantBucket = "PROVISION_TENANTS"
)

// Defaults of [StreamSettings].
const (
	// MaxAgeDefault is how long messages (which hold pupils' names and
	// emails) are kept.
	MaxAgeDefault = 30 * 24 * time.Hour
	// DuplicateWindowDefault must outlast any re-publish horizon of a poller
	// (a crash and restart, a cursor re-read); JetStream's own default of two
	// minutes does not.
	DuplicateWindowDefault = 2 * time.Hour
	// ReplicasDefault suits a single server; a cluster uses 3.
	ReplicasDefault = 1
)

// StreamSettings are the deployment's choices for the streams and buckets.
type StreamSettings struct {
	// MaxAge is the retention of PROVISION and PROVISION_DLQ. Defaults to
	// [MaxAgeDefault].
	MaxAge time.Duration
	// DuplicateWindow of PROVISION. Defaults to [DuplicateWindowDefault].
	DuplicateWindow time.Duration
	// Replicas of every stream and bucket. Defaults to [ReplicasDefault].
	Replicas int
}

func (s StreamSettings) withDefaults() StreamSettings {
	s.MaxAge = cmp.Or(s.MaxAge, MaxAgeDefault)
	s.DuplicateWindow = cmp.Or(s.DuplicateWindow, DuplicateWindowDefault)
	s.Replicas = cmp.Or(s.Replicas, ReplicasDefault)
	return s
}

// StreamConfig is the PROVISION stream's definition.
func (s StreamSettings) StreamConfig() jetstream.StreamConfig {
	s = s.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "rollcall change messages: desired state of Class entities",
		Subjects:    []string{SubjectRoot + ".*.*.*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
		Duplicates:  s.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
}

// DLQStreamConfig is the PROVISION_DLQ stream's definition.
func (s StreamSettings) DLQStreamConfig() jetstream.StreamConfig {
	s = s.withDefaults()
	return jetstream.StreamConfig{
		Name:        DLQStreamName,
		Description: "rollcall dead letters: rejected source records and messages the worker could not apply",
		Subjects:    []string{SubjectRoot + ".*.rejected", SubjectRoot + ".*.dead.*.*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
		Duplicates:  s.DuplicateWindow,
	}
}

// AuditStreamConfig is the PROVISION_AUDIT stream's definition. Its records
// carry keys, versions and Class call paths, never personal data, and are
// kept as long as the messages they explain.
func (s StreamSettings) AuditStreamConfig() jetstream.StreamConfig {
	s = s.withDefaults()
	return jetstream.StreamConfig{
		Name:        AuditStreamName,
		Description: "rollcall worker outcomes: one record per delivery of a change message",
		Subjects:    []string{AuditSubjectRoot + ".>"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
		Discard:     jetstream.DiscardOld,
	}
}

// AuditSubjectRoot is the first token of audit subjects.
const AuditSubjectRoot = "audit"

// AuditSubject is the subject of the audit records of one entity.
func AuditSubject(tenant string, kind Kind, key string) string {
	return AuditSubjectRoot + "." + StateKey(tenant, kind, key)
}

// Resources are the streams and buckets once ensured.
type Resources struct {
	Stream   jetstream.Stream
	DLQ      jetstream.Stream
	Audit    jetstream.Stream
	State    jetstream.KeyValue
	ClassIDs jetstream.KeyValue
	Tenants  jetstream.KeyValue
}

// EnsureResources creates the streams and buckets, or updates them to these
// settings, so that whichever binary starts first sets them up and a second
// one starting at the same time does no harm.
func EnsureResources(ctx context.Context, js jetstream.JetStream, settings StreamSettings) (*Resources, error) {
	settings = settings.withDefaults()
	var r Resources
	var err error
	if r.Stream, err = ensureStream(ctx, js, settings.StreamConfig()); err != nil {
		return nil, err
	}
	if r.DLQ, err = ensureStream(ctx, js, settings.DLQStreamConfig()); err != nil {
		return nil, err
	}
	if r.Audit, err = ensureStream(ctx, js, settings.AuditStreamConfig()); err != nil {
		return nil, err
	}
	if r.Tenants, err = EnsureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      TenantBucket,
		Description: "rollcall operator controls per tenant: paused, offboarded",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    settings.Replicas,
	}); err != nil {
		return nil, err
	}
	if r.State, err = EnsureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "rollcall per-key desired state, applied version and claim",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    settings.Replicas,
	}); err != nil {
		return nil, err
	}
	if r.ClassIDs, err = EnsureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      ClassIDBucket,
		Description: "rollcall ext_class_id to Class class_id",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    settings.Replicas,
	}); err != nil {
		return nil, err
	}
	return &r, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return ensure(ctx, "stream "+cfg.Name,
		func() (jetstream.Stream, *jetstream.StreamConfig, error) {
			s, err := js.Stream(ctx, cfg.Name)
			if err != nil {
				return nil, nil, err
			}
			return s, &s.CachedInfo().Config, nil
		},
		func(have jetstream.StreamConfig) bool { return streamHas(have, cfg) },
		func() (jetstream.Stream, error) { return js.CreateOrUpdateStream(ctx, cfg) })
}

// EnsureBucket creates the KV bucket, or updates it to cfg, so that whichever
// binary starts first sets it up and a second one starting at the same time
// does no harm. A bucket already as wanted is left alone (see [ensure]).
func EnsureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = max(cfg.Replicas, 1)
	return ensure(ctx, "bucket "+cfg.Bucket,
		func() (jetstream.KeyValue, *jetstream.StreamConfig, error) {
			kv, err := js.KeyValue(ctx, cfg.Bucket)
			if err != nil {
				return nil, nil, err
			}
			st, err := kv.Status(ctx)
			return kv, streamConfigOf(st), err
		},
		func(have jetstream.StreamConfig) bool {
			return have.Description == cfg.Description && have.MaxMsgsPerSubject == int64(cfg.History) &&
				have.Storage == cfg.Storage && have.Replicas == cfg.Replicas
		},
		func() (jetstream.KeyValue, error) { return js.CreateOrUpdateKeyValue(ctx, cfg) })
}

// EnsureObjectStore is [EnsureBucket] for an object store.
func EnsureObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = max(cfg.Replicas, 1)
	return ensure(ctx, "object store "+cfg.Bucket,
		func() (jetstream.ObjectStore, *jetstream.StreamConfig, error) {
			obj, err := js.ObjectStore(ctx, cfg.Bucket)
			if err != nil {
				return nil, nil, err
			}
			st, err := obj.Status(ctx)
			return obj, streamConfigOf(st), err
		},
		func(have jetstream.StreamConfig) bool {
			return have.Description == cfg.Description && have.Storage == cfg.Storage && have.Replicas == cfg.Replicas
		},
		func() (jetstream.ObjectStore, error) { return js.CreateOrUpdateObjectStore(ctx, cfg) })
}

// streamConfigOf is the configuration of the stream under a bucket's
// status, nil if the status does not show it.
func streamConfigOf(status any) *jetstream.StreamConfig {
	if s, ok := status.(interface{ StreamInfo() *jetstream.StreamInfo }); ok && s.StreamInfo() != nil {
		return &s.StreamInfo().Config
	}
	return nil
}

// ensure returns the resource that lookup finds if its stream's
// configuration already has what matches checks, and otherwise creates it
// or updates it with createOrUpdate.
//
// A resource already as wanted is left alone: nats-server 2.15.2 updates a
// stream's store without the lock that creating a consumer on it takes (a
// data race under -race), and every binary ensures the resources at start
// while others create consumers on them.
func ensure[T any](ctx context.Context, what string, lookup func() (T, *jetstream.StreamConfig, error),
	matches func(jetstream.StreamConfig) bool, createOrUpdate func() (T, error)) (T, error) {
	if r, have, err := lookup(); err == nil && have != nil && matches(*have) {
		return r, nil
	}
	var r T
	err := retryCreateRace(ctx, func() (err error) {
		r, err = createOrUpdate()
		return err
	})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("ensure %s: %w", what, err)
	}
	return r, nil
}

// streamHas reports whether a stream's configuration already holds every
// setting of want that this package sets.
func streamHas(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description && slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention && have.MaxAge == want.MaxAge && have.Storage == want.Storage &&
		have.Replicas == want.Replicas && have.Discard == want.Discard &&
		(want.Duplicates == 0 || have.Duplicates == want.Duplicates)
}

// retryCreateRace retries once when two binaries raced to create the same
// resource: the loser's create fails with "already in use", and its update
// on the second try succeeds.
func retryCreateRace(ctx context.Context, f func() error) error {
	err := f()
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || errors.Is(err, jetstream.ErrBucketExists) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = f()
	}
	return err
}

// StateKey is the key of an entity's record in [StateBucket]:
// "<tenant>.<kind>.<base64url(key)>". Keys hold colons, which KV keys may
// not; the tenant and kind stay readable so a watch can filter by them.
func StateKey(tenant string, kind Kind, key string) string {
	return tenant + "." + string(kind) + "." + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// ClassIDKey is the key of a class's id in [ClassIDBucket].
func ClassIDKey(tenant, extClassID string) string {
	return tenant + "." + base64.RawURLEncoding.EncodeToString([]byte(extClassID))
}

// Publish publishes m to JetStream and waits for the stream's
// acknowledgement, the point after which a poller may move its cursor.
func Publish(ctx context.Context, js jetstream.JetStream, m Message) (*jetstream.PubAck, error) {
	msg, err := Encode(m)
	if err != nil {
		return nil, err
	}
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(m.ID), jetstream.WithExpectStream(StreamName))
	if err != nil {
		return nil, fmt.Errorf("publish %s %s: %w", Subject(m.Tenant, m.Kind, m.Op), m.ID, err)
	}
	return ack, nil
}

// WorkerConsumerName is the durable consumer of one tenant's messages. One
// consumer per tenant (not per kind) lets the worker pause a tenant whose
// Class key is refused without touching the others, and share its
// concurrency between tenants fairly; every worker replica pulls from it.
func WorkerConsumerName(tenant string) string { return "worker-" + tenant }

// WorkerConsumerConfig is the definition of a tenant's worker consumer.
// MaxDeliver is unlimited on purpose: the worker dead-letters a message
// itself on its last attempt (JetStream would drop it silently), and a
// paused tenant's messages must never run out of attempts.
func WorkerConsumerConfig(tenant string, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       WorkerConsumerName(tenant),
		Description:   "rollcall worker: applies tenant " + tenant + "'s changes to Class",
		FilterSubject: TenantSubjects(tenant),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
	}
}

// PublishBatch publishes already encoded messages asynchronously and waits
// until JetStream acknowledged every one: the point after which a source may
// move its cursor or commit its snapshot. Rejected records
// (provision.<tenant>.rejected) go to the dead-letter stream, the rest to
// PROVISION.
//
// Each message gets a producer span, a child of the span in ctx (the poll,
// the page, the snapshot), whose W3C trace context goes into the message's
// headers so the worker continues the trace. A message that already carries
// trace context (a held deletion released later) keeps it.
func PublishBatch(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) (err error) {
	tracer := trace.SpanFromContext(ctx).TracerProvider().Tracer(tracerName)
	spans := make([]trace.Span, 0, len(msgs))
	defer func() {
		for _, sp := range spans {
			if err != nil {
				sp.SetStatus(codes.Error, "publish not acknowledged")
			}
			sp.End()
		}
	}()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		if m.Header.Get("traceparent") == "" {
			sctx, span := tracer.Start(ctx, "publish "+m.Subject, trace.WithSpanKind(trace.SpanKindProducer),
				trace.WithAttributes(
					attribute.String("messaging.system", "nats"),
					attribute.String("messaging.operation.type", "send"),
					attribute.String("messaging.destination.name", m.Subject),
					attribute.String("messaging.message.id", m.Header.Get(HeaderID)),
				))
			TracePropagator.Inject(sctx, TraceCarrier(m.Header))
			spans = append(spans, span)
		}
		stream := StreamName
		if strings.HasPrefix(m.Subject, SubjectRoot+".") && strings.HasSuffix(m.Subject, ".rejected") {
			stream = DLQStreamName
		}
		f, err := js.PublishMsgAsync(m, jetstream.WithExpectStream(stream))
		if err != nil {
			return fmt.Errorf("publish %s: %w", m.Subject, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Rejected builds a poller's dead letter for a source record it cannot turn
// into change messages: the raw record, the reason, and an id that makes a
// re-run of the same record a duplicate.
func Rejected(tenant, source, recordID string, raw []byte, reason string, now time.Time) *nats.Msg {
	msg := nats.NewMsg(RejectedSubject(tenant))
	msg.Data = raw
	msg.Header.Set(HeaderDeadReason, reason)
	msg.Header.Set(HeaderSource, "/rollcall/"+source+"/"+tenant)
	msg.Header.Set(HeaderDeadTime, now.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(nats.MsgIdHdr, "rejected:"+tenant+":"+recordID)
	return msg
}
