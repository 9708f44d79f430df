package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
)

// ReplayOptions choose what a replay re-applies.
type ReplayOptions struct {
	Tenant string
	// Kind limits the replay to one kind; empty means all.
	Kind events.Kind
	// Subject limits it to a subject filter within the tenant's, e.g.
	// provision.<tenant>.enrollment.*; empty means the tenant's.
	Subject string
	// Since and Until bound the messages by the time they were stored;
	// FromSeq and ToSeq by stream sequence. Zero means unbounded.
	Since, Until   time.Time
	FromSeq, ToSeq uint64
	// All rebuilds from the desired-state bucket instead of the stream, so
	// entities unchanged for longer than the stream's retention are
	// replayed too.
	All bool
	// DryRun applies nothing: it reads Class and says what would change.
	DryRun bool
	// RunID scopes the message ids; a replay restarted with the same run id
	// is not published twice. Defaults to one made from the time.
	RunID string
}

// ReplayEntity is what became of one entity in a replay.
type ReplayEntity struct {
	Kind    events.Kind    `json:"kind"`
	Key     string         `json:"key"`
	Op      events.Op      `json:"op"`
	Version events.Version `json:"version"`
	// Skipped says why the entity is left alone (a newer version was
	// applied since).
	Skipped string `json:"skipped,omitempty"`
	// Changes are what a dry run found would change; empty means Class
	// already has this state.
	Changes []handlers.PlannedChange `json:"changes,omitempty"`
	// Error is what a dry run met instead (a class missing, Class failing).
	Error string `json:"error,omitempty"`
}

// ReplayResult sums a replay up.
type ReplayResult struct {
	RunID    string `json:"run_id"`
	DryRun   bool   `json:"dry_run"`
	Scanned  int    `json:"scanned"`
	Invalid  int    `json:"invalid"`
	Entities int    `json:"entities"`
	// Published is how many messages were re-published (0 in a dry run).
	Published int `json:"published"`
	Skipped   int `json:"skipped"`
	// Changes counts the writes a dry run found, and Differing the
	// entities they belong to.
	Changes   int            `json:"changes"`
	Differing int            `json:"differing"`
	Errors    int            `json:"errors"`
	Items     []ReplayEntity `json:"items,omitempty"`
}

func (o ReplayOptions) check() error {
	var errs []error
	if !events.ValidTenant(o.Tenant) {
		errs = append(errs, fmt.Errorf("--tenant %q is not a tenant id", o.Tenant))
	}
	if o.Kind != "" && !slices.Contains(events.Kinds, o.Kind) {
		errs = append(errs, fmt.Errorf("--kind %q is not one of user, class, enrollment, schedule", o.Kind))
	}
	if o.Subject != "" && !strings.HasPrefix(o.Subject, events.SubjectRoot+"."+o.Tenant+".") {
		errs = append(errs, fmt.Errorf("--subject %q is not within the tenant's subjects %s", o.Subject, events.TenantSubjects(o.Tenant)))
	}
	if o.All && (o.Subject != "" || !o.Since.IsZero() || !o.Until.IsZero() || o.FromSeq != 0 || o.ToSeq != 0) {
		errs = append(errs, errors.New("--all rebuilds from the desired-state bucket: it takes no subject, time or sequence range"))
	}
	if (!o.Since.IsZero() || !o.Until.IsZero()) && (o.FromSeq != 0 || o.ToSeq != 0) {
		errs = append(errs, errors.New("give a time range or a sequence range, not both"))
	}
	if !o.Until.IsZero() && o.Until.Before(o.Since) {
		errs = append(errs, errors.New("--until is before --since"))
	}
	if o.ToSeq != 0 && o.ToSeq < o.FromSeq {
		errs = append(errs, errors.New("--to-seq is before --from-seq"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	return nil
}

// ErrBadOptions is matched by the errors of options that make no sense
// together or name no tenant, kind or subject of the system.
var ErrBadOptions = errors.New("bad options")

// Replay re-applies the newest state of each entity in the chosen range,
// even where it was applied before (so a wiped or damaged Class is
// repaired), and never an older state over a newer one: entities whose
// newest message in the range is older than what was applied are skipped.
func (e *Env) Replay(ctx context.Context, o ReplayOptions) (ReplayResult, error) {
	if err := o.check(); err != nil {
		return ReplayResult{}, err
	}
	t, err := e.Tenant(o.Tenant)
	if err != nil {
		return ReplayResult{}, err
	}
	if o.RunID == "" {
		o.RunID = "replay-" + strconv.FormatInt(e.now().UnixNano(), 36)
	}
	res := ReplayResult{RunID: o.RunID, DryRun: o.DryRun}
	var newest map[string]events.Message
	if o.All {
		newest, err = e.desiredMessages(ctx, o.Tenant, o.Kind, &res)
	} else {
		newest, err = e.streamMessages(ctx, o, &res)
	}
	if err != nil {
		return res, err
	}
	msgs := sortedMessages(newest)
	res.Entities = len(msgs)

	var dry *handlers.DryRun
	if o.DryRun {
		api, err := e.classOf(o.Tenant)
		if err != nil {
			return res, err
		}
		dry = handlers.NewDryRun(api, o.Tenant, t.Class.Timezone)
	}
	var batch []*nats.Msg
	for i, m := range msgs {
		e.progress(i, len(msgs))
		item := ReplayEntity{Kind: m.Kind, Key: m.Key, Op: m.Op, Version: m.Version}
		rec, ok, err := e.record(ctx, o.Tenant, m.Kind, m.Key)
		if err != nil {
			return res, err
		}
		if ok && m.Version.Compare(rec.Applied) < 0 {
			item.Skipped = "a newer version (" + rec.Applied.String() + ") was applied"
			res.Skipped++
			if o.DryRun {
				res.Items = append(res.Items, item)
			}
			continue
		}
		if o.DryRun {
			changes, err := dry.Plan(ctx, m)
			item.Changes = changes
			if err != nil {
				item.Error = err.Error()
				res.Errors++
			}
			if len(changes) > 0 {
				res.Differing++
				res.Changes += len(changes)
			}
			res.Items = append(res.Items, item)
			continue
		}
		m.Replay = true
		m.ID = events.RunMessageID(o.RunID, m.Kind, m.Key)
		nm, err := events.Encode(m)
		if err != nil {
			item.Error = err.Error()
			res.Errors++
			continue
		}
		batch = append(batch, nm)
		if len(batch) == 500 {
			if err := events.PublishBatch(ctx, e.JS, batch); err != nil {
				return res, err
			}
			res.Published += len(batch)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := events.PublishBatch(ctx, e.JS, batch); err != nil {
			return res, err
		}
		res.Published += len(batch)
	}
	e.progress(len(msgs), len(msgs))
	return res, nil
}

// record reads a key's state record; provisionctl never claims a key, so
// its store needs no holder or claim time.
func (e *Env) record(ctx context.Context, tenant string, kind events.Kind, key string) (handlers.KeyRecord, bool, error) {
	return handlers.NewKeyStore(e.Res.State, "", 0, e.now).Record(ctx, tenant, kind, key)
}

func sortedMessages(byKey map[string]events.Message) []events.Message {
	out := make([]events.Message, 0, len(byKey))
	for _, m := range byKey {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b events.Message) int { return compareEntities(a.Kind, a.Key, b.Kind, b.Key) })
	return out
}

// streamMessages reads the range from PROVISION and keeps the newest
// message of each entity.
func (e *Env) streamMessages(ctx context.Context, o ReplayOptions, res *ReplayResult) (map[string]events.Message, error) {
	subject := o.Subject
	switch {
	case subject != "":
	case o.Kind != "":
		subject = events.SubjectRoot + "." + o.Tenant + "." + string(o.Kind) + ".*"
	default:
		subject = events.TenantSubjects(o.Tenant)
	}
	policy := jetstream.DeliverAllPolicy
	var opt func(*jetstream.OrderedConsumerConfig)
	switch {
	case o.FromSeq > 0:
		policy = jetstream.DeliverByStartSequencePolicy
		opt = func(c *jetstream.OrderedConsumerConfig) { c.OptStartSeq = o.FromSeq }
	case !o.Since.IsZero():
		policy = jetstream.DeliverByStartTimePolicy
		since := o.Since
		opt = func(c *jetstream.OrderedConsumerConfig) { c.OptStartTime = &since }
	}
	var opts []func(*jetstream.OrderedConsumerConfig)
	if opt != nil {
		opts = append(opts, opt)
	}
	newest := map[string]events.Message{}
	errStop := errors.New("end of range")
	err := events.ReadStream(ctx, e.JS, events.StreamName, []string{subject}, policy, func(msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		if (o.ToSeq != 0 && md.Sequence.Stream > o.ToSeq) || (!o.Until.IsZero() && md.Timestamp.After(o.Until)) {
			return errStop
		}
		res.Scanned++
		m, err := events.Decode(msg.Subject(), msg.Headers(), msg.Data())
		if err != nil {
			// The worker dead-letters these; a replay has nothing to apply.
			res.Invalid++
			return nil
		}
		k := string(m.Kind) + "/" + m.Key
		if have, ok := newest[k]; !ok || m.Version.Compare(have.Version) >= 0 {
			newest[k] = m
		}
		if res.Scanned%1000 == 0 {
			e.progress(res.Scanned, 0)
		}
		return nil
	}, opts...)
	if errors.Is(err, errStop) {
		err = nil
	}
	return newest, err
}

// desiredMessages rebuilds every entity's newest message from the state
// bucket.
func (e *Env) desiredMessages(ctx context.Context, tenant string, kind events.Kind, res *ReplayResult) (map[string]events.Message, error) {
	ents, err := e.states(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := map[string]events.Message{}
	for _, ent := range ents {
		if kind != "" && ent.rec.Kind != kind {
			continue
		}
		res.Scanned++
		m, ok := ent.message(tenant)
		if !ok {
			continue
		}
		out[string(m.Kind)+"/"+m.Key] = m
	}
	return out, nil
}
