package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics holds every instrument of rollcall. Callers record through its
// methods, which name the attributes, so a label is spelt one way everywhere
// and no personal data can reach a label: the only attribute values are
// tenant ids, source and message kinds, operations, results, endpoint
// templates and status codes.
//
// The Prometheus exporter behind [Telemetry.MetricsHandler] turns dots into
// underscores, appends a unit suffix for "s" and "_total" for counters, and
// drops curly-brace units, so the exposed names that dashboards and alert
// rules use are:
//
//	rollcall_source_events_total{tenant,source}                       counter
//	rollcall_changes_published_total{tenant,kind,op}                  counter
//	rollcall_messages_processed_total{tenant,kind,op,result}          counter
//	rollcall_messages_dead_lettered_total{tenant,kind,reason_class}   counter
//	rollcall_class_request_duration_seconds_bucket|_sum|_count
//	    {tenant,http_request_method,url_template,http_response_status_code,error_type}
//	rollcall_change_lag_seconds_bucket|_sum|_count{tenant,kind}
//	rollcall_consumer_pending{tenant}                                  gauge
//	rollcall_hubmis_budget_remaining{tenant}                           gauge
//	rollcall_hubmis_snapshot_requests_bucket|_sum|_count{tenant}
//	rollcall_hubmis_snapshot_duration_seconds_bucket|_sum|_count{tenant}
//	rollcall_valve_held_sets{tenant}                                   gauge
//	rollcall_tenant_paused{tenant,reason}                              gauge
//	rollcall_datahub_cursor_age_seconds{tenant}                        gauge
//
// Every series also carries otel_scope_name (and otel_scope_version etc.),
// and the resource is exposed once as target_info. Examples:
//
//	dead letters per tenant:  sum by (tenant) (rate(rollcall_messages_dead_lettered_total[15m]))
//	p95 Class latency:        histogram_quantile(0.95, sum by (le, url_template) (rate(rollcall_class_request_duration_seconds_bucket[5m])))
//	feed horizon (30 days):   rollcall_datahub_cursor_age_seconds > 25*86400
//	paused tenants:           rollcall_tenant_paused == 1
type Metrics struct {
	meter metric.Meter

	sourceEvents     metric.Int64Counter
	changesPublished metric.Int64Counter
	processed        metric.Int64Counter
	deadLettered     metric.Int64Counter
	classDuration    metric.Float64Histogram
	changeLag        metric.Float64Histogram
	budgetRemaining  metric.Int64Gauge
	snapshotRequests metric.Int64Histogram
	snapshotDuration metric.Float64Histogram

	consumerPending metric.Int64ObservableGauge
	heldSets        metric.Int64ObservableGauge
	tenantPaused    metric.Int64ObservableGauge
	cursorAge       metric.Float64ObservableGauge
}

// Instrument names, the OpenTelemetry form; see [Metrics] for the exposed
// Prometheus names.
const (
	MetricSourceEvents          = "rollcall.source.events"
	MetricChangesPublished      = "rollcall.changes.published"
	MetricMessagesProcessed     = "rollcall.messages.processed"
	MetricMessagesDeadLettered  = "rollcall.messages.dead_lettered"
	MetricClassRequestDuration  = "rollcall.class.request.duration"
	MetricChangeLag             = "rollcall.change.lag"
	MetricConsumerPending       = "rollcall.consumer.pending"
	MetricHubmisBudgetRemaining = "rollcall.hubmis.budget.remaining"
	MetricHubmisSnapshotReqs    = "rollcall.hubmis.snapshot.requests"
	MetricHubmisSnapshotDur     = "rollcall.hubmis.snapshot.duration"
	MetricValveHeldSets         = "rollcall.valve.held_sets"
	MetricTenantPaused          = "rollcall.tenant.paused"
	MetricDatahubCursorAge      = "rollcall.datahub.cursor.age"
)

// Attribute keys. The HTTP ones are the semantic conventions'.
const (
	attrTenant      = attribute.Key("tenant")
	attrSource      = attribute.Key("source")
	attrKind        = attribute.Key("kind")
	attrOp          = attribute.Key("op")
	attrResult      = attribute.Key("result")
	attrReasonClass = attribute.Key("reason_class")
	attrReason      = attribute.Key("reason")
	attrMethod      = attribute.Key("http.request.method")
	attrURLTemplate = attribute.Key("url.template")
	attrStatusCode  = attribute.Key("http.response.status_code")
	attrErrorType   = attribute.Key("error.type")
)

// Histogram buckets.
var (
	// requestBuckets cover a Class call from 1 ms to the 60 s beyond which
	// the client gives up anyway.
	requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	// lagBuckets reach past a HUBmis snapshot interval (15 min by default)
	// and a retried message's backoff, because a change from a snapshot
	// waits for the next snapshot and lags by minutes, not milliseconds.
	lagBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200}
	// snapshotDurationBuckets reach half an hour: a large school's first
	// snapshot is paced by HUBmis's rate limit.
	snapshotDurationBuckets = []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600}
	// snapshotRequestBuckets count the requests one snapshot spends against
	// the budget, from a tiny school to a full district.
	snapshotRequestBuckets = []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000}
)

// NewMetrics creates every instrument on meter, normally
// tel.Meter([InstrumentationName]).
func NewMetrics(meter metric.Meter) (*Metrics, error) {
	m := &Metrics{meter: meter}
	var errs []error
	check := func(name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("telemetry: instrument %s: %w", name, err))
		}
	}
	var err error
	m.sourceEvents, err = meter.Int64Counter(MetricSourceEvents, metric.WithUnit("{event}"),
		metric.WithDescription("Events read from a tenant's school data source."))
	check(MetricSourceEvents, err)
	m.changesPublished, err = meter.Int64Counter(MetricChangesPublished, metric.WithUnit("{message}"),
		metric.WithDescription("Change messages published to JetStream."))
	check(MetricChangesPublished, err)
	m.processed, err = meter.Int64Counter(MetricMessagesProcessed, metric.WithUnit("{message}"),
		metric.WithDescription("Change messages handled by a worker, by result: applied, skipped, retry, dead, paused."))
	check(MetricMessagesProcessed, err)
	m.deadLettered, err = meter.Int64Counter(MetricMessagesDeadLettered, metric.WithUnit("{message}"),
		metric.WithDescription("Change messages moved to the dead-letter stream, by reason class."))
	check(MetricMessagesDeadLettered, err)
	m.classDuration, err = meter.Float64Histogram(MetricClassRequestDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of Class API requests, by endpoint template and status."),
		metric.WithExplicitBucketBoundaries(requestBuckets...))
	check(MetricClassRequestDuration, err)
	m.changeLag, err = meter.Float64Histogram(MetricChangeLag, metric.WithUnit("s"),
		metric.WithDescription("Time from a change at the source to its confirmation by Class."),
		metric.WithExplicitBucketBoundaries(lagBuckets...))
	check(MetricChangeLag, err)
	m.budgetRemaining, err = meter.Int64Gauge(MetricHubmisBudgetRemaining, metric.WithUnit("{request}"),
		metric.WithDescription("HUBmis requests left in the tenant's budget."))
	check(MetricHubmisBudgetRemaining, err)
	m.snapshotRequests, err = meter.Int64Histogram(MetricHubmisSnapshotReqs, metric.WithUnit("{request}"),
		metric.WithDescription("HUBmis requests spent by one snapshot."),
		metric.WithExplicitBucketBoundaries(snapshotRequestBuckets...))
	check(MetricHubmisSnapshotReqs, err)
	m.snapshotDuration, err = meter.Float64Histogram(MetricHubmisSnapshotDur, metric.WithUnit("s"),
		metric.WithDescription("Duration of one HUBmis snapshot."),
		metric.WithExplicitBucketBoundaries(snapshotDurationBuckets...))
	check(MetricHubmisSnapshotDur, err)
	m.consumerPending, err = meter.Int64ObservableGauge(MetricConsumerPending, metric.WithUnit("{message}"),
		metric.WithDescription("Change messages waiting for the workers."))
	check(MetricConsumerPending, err)
	m.heldSets, err = meter.Int64ObservableGauge(MetricValveHeldSets, metric.WithUnit("{set}"),
		metric.WithDescription("Sets of deletions held by the safety valve, awaiting an operator."))
	check(MetricValveHeldSets, err)
	m.tenantPaused, err = meter.Int64ObservableGauge(MetricTenantPaused, metric.WithUnit("{tenant}"),
		metric.WithDescription("1 while the tenant is paused, with the reason: auth or operator."))
	check(MetricTenantPaused, err)
	m.cursorAge, err = meter.Float64ObservableGauge(MetricDatahubCursorAge, metric.WithUnit("s"),
		metric.WithDescription("Age of the newest event behind the tenant's DataHub cursor; the feed keeps 30 days."))
	check(MetricDatahubCursorAge, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Source names for [Metrics.SourceEvents].
const (
	SourceDataHub = "datahub"
	SourceHUBmis  = "hubmis"
	SourceWebhook = "webhook"
)

// SourceEvents counts n events read from a tenant's source (one of the
// Source constants).
func (m *Metrics) SourceEvents(ctx context.Context, tenant, source string, n int) {
	if n <= 0 {
		return
	}
	m.sourceEvents.Add(ctx, int64(n), metric.WithAttributes(attrTenant.String(tenant), attrSource.String(source)))
}

// ChangePublished counts one change message published (kind such as "user",
// "class", "enrollment"; op such as "upsert", "delete").
func (m *Metrics) ChangePublished(ctx context.Context, tenant, kind, op string) {
	m.changesPublished.Add(ctx, 1, metric.WithAttributes(attrTenant.String(tenant), attrKind.String(kind), attrOp.String(op)))
}

// Result is what a worker did with a message.
type Result string

// The results of [Metrics.MessageProcessed].
const (
	ResultApplied Result = "applied" // Class holds the change.
	ResultSkipped Result = "skipped" // nothing to do: stale version, already there.
	ResultRetry   Result = "retry"   // nak'ed with a delay after a retryable failure.
	ResultDead    Result = "dead"    // dead-lettered; see MessageDeadLettered.
	ResultPaused  Result = "paused"  // held back because the tenant is paused.
)

// ReasonClass says why a message was dead-lettered; a small fixed set, so
// the label stays bounded.
type ReasonClass string

// The reason classes of [Metrics.MessageDeadLettered].
const (
	ReasonPermanent ReasonClass = "permanent" // Class refused the change for good (4xx other than auth/rate).
	ReasonDecode    ReasonClass = "decode"    // the message could not be decoded.
	ReasonExhausted ReasonClass = "exhausted" // retries ran out on a retryable failure.
	ReasonOther     ReasonClass = "other"
)

// MessageProcessed counts one message handled with result r. ResultDead is
// counted as [Metrics.MessageDeadLettered] with [ReasonOther], so the dead
// letters of the two counters always agree; prefer MessageDeadLettered,
// which says why.
func (m *Metrics) MessageProcessed(ctx context.Context, tenant, kind, op string, r Result) {
	if r == ResultDead {
		m.MessageDeadLettered(ctx, tenant, kind, op, ReasonOther)
		return
	}
	m.processed.Add(ctx, 1, metric.WithAttributes(attrTenant.String(tenant), attrKind.String(kind), attrOp.String(op), attrResult.String(string(r))))
}

// MessageDeadLettered counts one message dead-lettered: once under
// rollcall.messages.processed with result "dead", and once under
// rollcall.messages.dead_lettered with its reason class (an unknown class
// is counted as "other").
func (m *Metrics) MessageDeadLettered(ctx context.Context, tenant, kind, op string, reason ReasonClass) {
	switch reason {
	case ReasonPermanent, ReasonDecode, ReasonExhausted, ReasonOther:
	default:
		reason = ReasonOther
	}
	m.processed.Add(ctx, 1, metric.WithAttributes(attrTenant.String(tenant), attrKind.String(kind), attrOp.String(op), attrResult.String(string(ResultDead))))
	m.deadLettered.Add(ctx, 1, metric.WithAttributes(attrTenant.String(tenant), attrKind.String(kind), attrReasonClass.String(string(reason))))
}

// ClassRequest records one Class API call. path is the request's path (a
// query string is dropped, ids become {id} by [EndpointTemplate]); status is
// the answer's status code, 0 when no answer came (transport error,
// cancellation), which is recorded as error.type "no_response".
func (m *Metrics) ClassRequest(ctx context.Context, tenant, method, path string, status int, d time.Duration) {
	attrs := []attribute.KeyValue{
		attrTenant.String(tenant),
		attrMethod.String(method),
		attrURLTemplate.String(EndpointTemplate(path)),
	}
	if status > 0 {
		attrs = append(attrs, attrStatusCode.Int(status))
		if status >= 400 {
			// The semantic conventions' error.type for an HTTP error is the
			// status code as a string.
			attrs = append(attrs, attrErrorType.String(strconv.Itoa(status)))
		}
	} else {
		attrs = append(attrs, attrErrorType.String("no_response"))
	}
	m.classDuration.Record(ctx, d.Seconds(), metric.WithAttributes(attrs...))
}

// ChangeApplied records the lag of one change: from its time at the source
// to Class confirming it. A negative lag (clocks apart) is recorded as 0.
func (m *Metrics) ChangeApplied(ctx context.Context, tenant, kind string, lag time.Duration) {
	m.changeLag.Record(ctx, max(lag, 0).Seconds(), metric.WithAttributes(attrTenant.String(tenant), attrKind.String(kind)))
}

// HUBmisBudget records the requests left in a tenant's HUBmis budget.
func (m *Metrics) HUBmisBudget(ctx context.Context, tenant string, remaining int64) {
	m.budgetRemaining.Record(ctx, remaining, metric.WithAttributes(attrTenant.String(tenant)))
}

// HUBmisSnapshot records one finished snapshot: the requests it spent and
// how long it took.
func (m *Metrics) HUBmisSnapshot(ctx context.Context, tenant string, requests int64, d time.Duration) {
	attrs := metric.WithAttributes(attrTenant.String(tenant))
	m.snapshotRequests.Record(ctx, requests, attrs)
	m.snapshotDuration.Record(ctx, d.Seconds(), attrs)
}

// PauseReason says why a tenant is paused.
type PauseReason string

// The reasons of [Metrics.ObserveTenantsPaused].
const (
	PauseAuth     PauseReason = "auth"     // Class refused the API key; resumes when it works again.
	PauseOperator PauseReason = "operator" // an operator paused it.
	// PauseSource: the source refuses the tenant's credentials or does not
	// know its district; the poller retries every minute.
	PauseSource PauseReason = "source"
)

// The observe functions are called at every scrape, so they must be quick
// and must not block on the network: read a value the owner keeps up to
// date. A tenant missing from the answer has no series at that scrape.

// ObserveConsumerPending registers f, the messages pending for the workers
// by tenant. Unregister the returned registration when the source goes away.
func (m *Metrics) ObserveConsumerPending(f func(ctx context.Context) map[string]int64) (metric.Registration, error) {
	return m.observeInt(m.consumerPending, MetricConsumerPending, f)
}

// ObserveValveHeldSets registers f, the sets held by the safety valve by
// tenant.
func (m *Metrics) ObserveValveHeldSets(f func(ctx context.Context) map[string]int64) (metric.Registration, error) {
	return m.observeInt(m.heldSets, MetricValveHeldSets, f)
}

// ObserveTenantsPaused registers f, the paused tenants and why. Each is
// exposed as 1 with its reason; a running tenant is left out, so its series
// disappears when it resumes.
func (m *Metrics) ObserveTenantsPaused(f func(ctx context.Context) map[string]PauseReason) (metric.Registration, error) {
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for tenant, reason := range f(ctx) {
			o.ObserveInt64(m.tenantPaused, 1, metric.WithAttributes(attrTenant.String(tenant), attrReason.String(string(reason))))
		}
		return nil
	}, m.tenantPaused)
	if err != nil {
		return nil, fmt.Errorf("telemetry: registering %s: %w", MetricTenantPaused, err)
	}
	return reg, nil
}

// ObserveDataHubCursorAge registers f, by tenant the age of the newest event
// the DataHub cursor has passed, so an alert fires well before the feed's
// 30-day horizon loses events.
func (m *Metrics) ObserveDataHubCursorAge(f func(ctx context.Context) map[string]time.Duration) (metric.Registration, error) {
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for tenant, age := range f(ctx) {
			o.ObserveFloat64(m.cursorAge, age.Seconds(), metric.WithAttributes(attrTenant.String(tenant)))
		}
		return nil
	}, m.cursorAge)
	if err != nil {
		return nil, fmt.Errorf("telemetry: registering %s: %w", MetricDatahubCursorAge, err)
	}
	return reg, nil
}

func (m *Metrics) observeInt(g metric.Int64ObservableGauge, name string, f func(ctx context.Context) map[string]int64) (metric.Registration, error) {
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for tenant, v := range f(ctx) {
			o.ObserveInt64(g, v, metric.WithAttributes(attrTenant.String(tenant)))
		}
		return nil
	}, g)
	if err != nil {
		return nil, fmt.Errorf("telemetry: registering %s: %w", name, err)
	}
	return reg, nil
}
