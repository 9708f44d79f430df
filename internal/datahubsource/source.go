package datahubsource

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/desired"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/telemetry"
	"github.com/rollcall/rollcall/internal/valve"
)

// Bucket names of the DataHub source.
const (
	// CursorBucket holds per tenant the feed position: the last NEXT uri and
	// the last event id applied. The uri is what the feed continues from; the
	// id is what an operator (and a re-built uri, should the feed change its
	// link format) can check it against.
	CursorBucket = "DATAHUB_CURSORS"
	// RosterBucket (an object store) holds per tenant the roster projection
	// together with the cursor it was built at: written in one piece, so the
	// two can never disagree.
	RosterBucket = "DATAHUB_ROSTERS"
)

// PollIntervalDefault is how often the feed is read when nothing triggers it.
const PollIntervalDefault = 5 * time.Second

// testHookBeforeSave, set by tests, runs after a batch is published and
// before the cursor moves: an error there is a poller killed at that line.
var testHookBeforeSave func() error

// Cursor is the feed position of a tenant.
type Cursor struct {
	Next        string `json:"next"`
	LastEventID string `json:"last_event_id"`
	// LastEventTime is when that event happened: DataHub keeps its feed
	// for 30 days, so a cursor this old is about to be refused.
	LastEventTime time.Time `json:"last_event_time,omitzero"`
	Updated       time.Time `json:"updated"`
	Resyncs       int       `json:"resyncs"`
}

// saved is what the roster object holds.
type saved struct {
	Cursor  Cursor                   `json:"cursor"`
	Roster  *Roster                  `json:"roster"`
	Pending map[string]pendingDelete `json:"pending,omitempty"`
	// Unsettled is the union of the full reads whose changes were (or may
	// have been) published but never saved with their cursor: the process
	// died, or lost its lease, in between. What they published is in the
	// stream, the worker applies it, and the next full read must undo what
	// the district no longer has, though its own roster never held it.
	Unsettled *Roster `json:"unsettled,omitempty"`
	// UnsettledRun names the first of those reads: the reads that follow
	// it until one is saved publish under its name, so a state one of them
	// already published has the same message id, and the stream drops it.
	UnsettledRun string `json:"unsettled_run,omitempty"`
}

// pendingDelete is a deletion waiting out the grace period.
type pendingDelete struct {
	Due time.Time  `json:"due"`
	Msg valve.Held `json:"msg"`
}

// Stores are the JetStream resources of the DataHub source.
type Stores struct {
	Cursors jetstream.KeyValue
	Rosters jetstream.ObjectStore
	Held    *valve.Store
}

// EnsureStores creates or updates them.
func EnsureStores(ctx context.Context, js jetstream.JetStream, replicas int) (*Stores, error) {
	replicas = cmp.Or(replicas, 1)
	kv, err := events.EnsureBucket(ctx, js, jetstream.KeyValueConfig{Bucket: CursorBucket, Description: "rollcall DataHub feed cursors", History: 5, Storage: jetstream.FileStorage, Replicas: replicas})
	if err != nil {
		return nil, err
	}
	obj, err := events.EnsureObjectStore(ctx, js, jetstream.ObjectStoreConfig{Bucket: RosterBucket, Description: "rollcall DataHub roster projections", Storage: jetstream.FileStorage, Replicas: replicas})
	if err != nil {
		return nil, err
	}
	held, err := valve.EnsureStore(ctx, js, replicas)
	if err != nil {
		return nil, err
	}
	return &Stores{Cursors: kv, Rosters: obj, Held: held}, nil
}

// Deletion policies.
const (
	PolicyDelete = "delete"
	PolicyIgnore = "ignore"
	PolicyGrace  = "grace"
)

// Config configures a [Source].
type Config struct {
	Tenant string
	Client *datahub.Client
	JS     jetstream.JetStream
	Stores *Stores
	// PollInterval defaults to [PollIntervalDefault].
	PollInterval time.Duration
	// DeletionPolicy is delete (default), ignore or grace.
	DeletionPolicy string
	GracePeriod    time.Duration
	// MaxDeleteShare defaults to [valve.MaxDeleteShareDefault].
	MaxDeleteShare float64
	// Trigger, when it yields, polls at once (the webhook).
	Trigger <-chan struct{}
	Logger  *slog.Logger
	Now     func() time.Time
	// TracerProvider makes the spans of polls, pages and publishes.
	// Defaults to the global one.
	TracerProvider trace.TracerProvider
	// Metrics, if set, counts events polled and changes published.
	Metrics *telemetry.Metrics
}

// Stats counts what a source did.
type Stats struct {
	EventsPolled, EventsSkipped, EventsRejected atomic.Int64
	MessagesPublished, DeletesHeld              atomic.Int64
	Resyncs, Polls                              atomic.Int64
}

// Source follows one tenant's DataHub feed.
type Source struct {
	cfg    Config
	mapper Mapper
	log    *slog.Logger
	now    func() time.Time
	tracer trace.Tracer
	Stats  Stats

	// refusal says why DataHub refuses to serve the tenant at all (its
	// credentials, its district), empty while polls succeed.
	refusal atomic.Pointer[string]

	// state is the committed state, kept between polls so a poll does not
	// read the whole roster back; nil until loaded, and dropped after any
	// failed poll, so the next one starts from what the store holds, as a
	// restarted poller would.
	state *saved
}

// New returns a source; Run runs it.
func New(cfg Config) *Source {
	cfg.PollInterval = cmp.Or(cfg.PollInterval, PollIntervalDefault)
	cfg.DeletionPolicy = cmp.Or(cfg.DeletionPolicy, PolicyDelete)
	cfg.MaxDeleteShare = cmp.Or(cfg.MaxDeleteShare, valve.MaxDeleteShareDefault)
	s := &Source{cfg: cfg, mapper: Mapper{Tenant: cfg.Tenant}, log: cmp.Or(cfg.Logger, slog.Default()), now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.log = s.log.With(slog.String("tenant", cfg.Tenant), slog.String("source", source))
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	s.tracer = tp.Tracer("github.com/rollcall/rollcall/internal/datahubsource")
	return s
}

// Refusal says why DataHub refuses to serve the tenant at all (its
// credentials or its district), or "" while polls succeed: the tenant is
// in effect paused until an operator fixes its configuration.
func (s *Source) Refusal() string {
	if why := s.refusal.Load(); why != nil {
		return *why
	}
	return ""
}

// Run polls until ctx ends. Errors are logged and retried; it returns only
// ctx's end.
func (s *Source) Run(ctx context.Context) error {
	failures := 0
	for {
		err := s.PollOnce(ctx)
		wait := s.cfg.PollInterval
		switch {
		case err == nil:
			failures = 0
			s.refusal.Store(nil)
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, datahub.ErrUnauthorized), errors.Is(err, datahub.ErrDistrictNotFound):
			// Permanent for the tenant until an operator fixes the secret or
			// the district id; keep trying slowly, never lose the cursor.
			why := "DataHub refused the tenant's credentials"
			if errors.Is(err, datahub.ErrDistrictNotFound) {
				why = "DataHub does not know the tenant's district (datahub.district_id), or does not show it to these credentials"
			}
			s.refusal.Store(&why)
			s.log.Error(why+"; polling paused until it works", slog.Any("error", err))
			wait = max(wait, time.Minute)
		default:
			failures++
			wait = min(wait*time.Duration(1<<min(failures, 6)), 5*time.Minute)
			s.log.Warn("poll failed; retrying", slog.Any("error", err), slog.Duration("in", wait))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-s.cfg.Trigger:
			t.Stop()
		case <-t.C:
		}
	}
}

// PollOnce brings the tenant up to date: a full sync on first start or when
// the feed refused the cursor, then every event after the cursor.
func (s *Source) PollOnce(ctx context.Context) (err error) {
	s.Stats.Polls.Add(1)
	ctx, span := s.tracer.Start(ctx, "datahub.poll", trace.WithAttributes(attribute.String("rollcall.tenant", s.cfg.Tenant)))
	defer func() {
		if err != nil {
			s.state = nil
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	st := s.state
	if st == nil {
		if st, err = s.load(ctx); err != nil {
			return err
		}
	}
	if st == nil {
		st = &saved{Roster: NewRoster()}
		if err := s.resync(ctx, st, false, "first start of the tenant"); err != nil {
			return err
		}
		s.state = st
		return nil
	}
	s.state = st
	if st.Unsettled != nil {
		return s.resync(ctx, st, false, "an earlier full read was published but not saved")
	}
	if err := s.releaseDuePending(ctx, st); err != nil {
		return err
	}
	for {
		more, err := s.pollPage(ctx, st)
		if err != nil || !more {
			return err
		}
	}
}

// pollPage reads and applies one page of the feed, under its own span, and
// reports whether another may follow.
func (s *Source) pollPage(ctx context.Context, st *saved) (more bool, err error) {
	ctx, span := s.tracer.Start(ctx, "datahub.page")
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	page, err := s.cfg.Client.EventsPage(ctx, st.Cursor.Next)
	if errors.Is(err, datahub.ErrCursorRejected) {
		s.Stats.Resyncs.Add(1)
		s.log.Warn("DataHub refused the cursor (older than the feed keeps, unknown, or of another feed than the tenant's district): full resync",
			slog.String("last_event_id", st.Cursor.LastEventID))
		return false, s.resync(ctx, st, true, "the feed refused the cursor")
	}
	if err != nil {
		return false, err
	}
	span.SetAttributes(attribute.Int("rollcall.events", page.Len()))
	if page.Len() == 0 {
		return false, nil
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.SourceEvents(ctx, s.cfg.Tenant, telemetry.SourceDataHub, page.Len())
	}
	if err := s.applyPage(ctx, st, page); err != nil {
		return false, err
	}
	return page.Next != "", nil
}

func (s *Source) applyPage(ctx context.Context, st *saved, page datahub.Page[datahub.Event]) error {
	roster := st.Roster.Clone()
	var out []outgoing
	for _, bad := range page.Malformed {
		s.Stats.EventsRejected.Add(1)
		out = append(out, s.rejection(bad.ID, bad.Raw, bad.Err.Error()))
	}
	lastID, lastTime := st.Cursor.LastEventID, st.Cursor.LastEventTime
	items := page.Items
	if st.Cursor.Next == "" && lastID != "" {
		// DataHub gave no NEXT link after the head, so the feed is read from
		// its start: skip what the cursor covers.
		for i, ev := range items {
			if ev.ID == lastID {
				items = items[i+1:]
				break
			}
		}
	}
	for _, ev := range items {
		s.Stats.EventsPolled.Add(1)
		lastID = ev.ID
		if !ev.Created.IsZero() {
			lastTime = ev.Created
		}
		res, err := s.mapper.Apply(roster, ev)
		if err != nil {
			s.Stats.EventsRejected.Add(1)
			out = append(out, s.rejection(ev.ID, ev.Raw, err.Error()))
			continue
		}
		if !res.Known {
			s.Stats.EventsSkipped.Add(1)
			s.log.Debug("event type does not affect Class; skipped", slog.String("type", ev.Type), slog.String("event_id", ev.ID))
			continue
		}
		for _, note := range res.Notes {
			s.log.Info("state withheld", slog.String("event_id", ev.ID), slog.String("why", note))
		}
		version := events.Version{Time: ev.Created, Seq: ev.ID}
		for i, c := range res.Changes {
			m, err := events.NewMessage(s.cfg.Tenant, c.Op, c.State, version, events.Origin{Source: source, ID: ev.ID})
			if err != nil {
				out = append(out, s.rejection(ev.ID, ev.Raw, err.Error()))
				continue
			}
			m.ID = events.DataHubMessageID(s.cfg.Tenant, ev.ID, i)
			out = append(out, outgoing{msg: m, key: c.Key(), op: c.Op, kind: c.State.Kind()})
		}
	}
	next := Cursor{Next: cmp.Or(page.Next, st.Cursor.Next), LastEventID: lastID, LastEventTime: lastTime, Updated: s.now().UTC(), Resyncs: st.Cursor.Resyncs}
	return s.commit(ctx, st, roster, next, out, "upto-"+lastID, "events up to "+lastID)
}

// outgoing is a message to publish, or a rejected record.
type outgoing struct {
	msg      events.Message
	key      string
	op       events.Op
	kind     events.Kind
	rejected *nats.Msg
}

func (s *Source) rejection(eventID string, raw json.RawMessage, reason string) outgoing {
	s.log.Warn("event rejected to the dead-letter stream", slog.String("event_id", eventID), slog.String("reason", reason))
	return outgoing{rejected: events.Rejected(s.cfg.Tenant, source, eventID, bytes.Clone(raw), reason, s.now())}
}

// commit publishes a batch's messages, holds or defers deletions as the
// policy and the safety valve say, waits for JetStream to acknowledge every
// one, and only then saves the roster and moves the cursor: a crash anywhere
// before the save re-reads the same events and re-publishes the same ids,
// which the stream's duplicate window drops.
func (s *Source) commit(ctx context.Context, st *saved, roster *Roster, cursor Cursor, out []outgoing, batchID, what string) error {
	pending := st.Pending
	if pending == nil {
		pending = map[string]pendingDelete{}
	}
	var publish []*nats.Msg
	var deletes []valve.Held
	upserted := map[string]bool{}
	// The share of deletions is of what Class may hold: the saved roster,
	// and what unsettled full reads may have published besides.
	base := st.Roster
	if st.Unsettled != nil {
		base = st.Roster.Union(st.Unsettled)
	}
	totals := valve.Totals{Classes: len(base.Sections), Enrollments: enrollmentCount(base)}
	for _, o := range out {
		if o.rejected != nil {
			publish = append(publish, o.rejected)
			continue
		}
		msg, err := events.Encode(o.msg)
		if err != nil {
			return err
		}
		if o.op == events.OpUpsert {
			upserted[o.key] = true
			delete(pending, o.key)
			publish = append(publish, msg)
			continue
		}
		switch s.cfg.DeletionPolicy {
		case PolicyIgnore:
			continue
		case PolicyGrace:
			pending[o.key] = pendingDelete{Due: s.now().Add(s.cfg.GracePeriod), Msg: valve.NewHeld(msg, o.key)}
			continue
		}
		deletes = append(deletes, valve.NewHeld(msg, o.key))
		totals.Count(o.kind)
	}
	if exceeds, why := totals.Exceeds(s.cfg.MaxDeleteShare); exceeds {
		// The id comes from the batch, so a batch re-run after a crash
		// holds the same set again instead of a second one.
		set := valve.ChangeSet{ID: batchID, Tenant: s.cfg.Tenant, Created: s.now().UTC(), Reason: what + ": " + why, Messages: deletes}
		if err := s.cfg.Stores.Held.Hold(ctx, set); err != nil {
			return err
		}
		s.Stats.DeletesHeld.Add(int64(len(deletes)))
		s.log.Warn("deletions held for approval (provisionctl approve/reject)", slog.String("change_set", set.ID), slog.String("reason", set.Reason))
	} else {
		for _, d := range deletes {
			publish = append(publish, &nats.Msg{Subject: d.Subject, Header: d.Header, Data: d.Data})
		}
	}
	if err := events.PublishBatch(ctx, s.cfg.JS, publish); err != nil {
		return err
	}
	s.Stats.MessagesPublished.Add(int64(len(publish)))
	if s.cfg.Metrics != nil {
		for _, m := range publish {
			if _, kind, op, err := events.ParseSubject(m.Subject); err == nil {
				s.cfg.Metrics.ChangePublished(ctx, s.cfg.Tenant, string(kind), string(op))
			}
		}
	}
	if _, err := s.cfg.Stores.Held.Cancel(ctx, s.cfg.Tenant, upserted); err != nil {
		return err
	}
	if testHookBeforeSave != nil {
		if err := testHookBeforeSave(); err != nil {
			return err
		}
	}
	next := &saved{Cursor: cursor, Roster: roster, Pending: pending}
	if err := s.save(ctx, next); err != nil {
		return err
	}
	*st = *next
	return nil
}

func enrollmentCount(r *Roster) int {
	n := 0
	for _, s := range r.Sections {
		n += len(s.Students) + len(s.Teachers)
	}
	return n
}

// releaseDuePending publishes deletions whose grace period has passed.
func (s *Source) releaseDuePending(ctx context.Context, st *saved) error {
	var due []*nats.Msg
	for k, p := range st.Pending {
		if !s.now().Before(p.Due) {
			due = append(due, &nats.Msg{Subject: p.Msg.Subject, Header: p.Msg.Header, Data: p.Msg.Data})
			delete(st.Pending, k)
		}
	}
	if len(due) == 0 {
		return nil
	}
	if err := events.PublishBatch(ctx, s.cfg.JS, due); err != nil {
		return err
	}
	return s.save(ctx, st)
}

// resync reads the whole roster and publishes what differs from st's roster
// (empty on a first start); st becomes the new state. The head of the feed is noted first,
// so an event that happens during the read is applied after it, not lost.
func (s *Source) resync(ctx context.Context, st *saved, again bool, why string) error {
	head, err := s.cfg.Client.Head(ctx)
	if err != nil {
		return fmt.Errorf("read the head of the feed: %w", err)
	}
	teachers, err := s.cfg.Client.Teachers(ctx)
	if err != nil {
		return err
	}
	students, err := s.cfg.Client.Students(ctx)
	if err != nil {
		return err
	}
	sections, err := s.cfg.Client.Sections(ctx)
	if err != nil {
		return err
	}
	now := RosterOf(teachers, students, sections)
	res := s.mapper.Resync(st.Roster, now)
	if st.Unsettled != nil {
		res = s.mapper.ResyncUnsettled(st.Roster, st.Unsettled, now)
	}
	// Remembered before anything is published: if this read is not saved
	// with its cursor, the next one knows what it may have published.
	unsettled := now.Union(st.Unsettled)
	runID := st.UnsettledRun
	if st.Unsettled == nil || runID == "" {
		runID = "sync@" + cmp.Or(head.ID, "empty-feed")
	}
	if err := s.saveObject(ctx, &saved{Cursor: st.Cursor, Roster: st.Roster, Pending: st.Pending, Unsettled: unsettled, UnsettledRun: runID}); err != nil {
		return err
	}
	st.Unsettled, st.UnsettledRun = unsettled, runID
	version := SyncVersion(head, st.Cursor, "~sync")
	var out []outgoing
	for _, c := range res.Changes {
		m, err := events.NewMessage(s.cfg.Tenant, c.Op, c.State, version, events.Origin{Source: source, ID: runID})
		if err != nil {
			out = append(out, s.rejection(runID, nil, err.Error()))
			continue
		}
		// Named by the run and what it says: a read repeated before the
		// run was saved publishes an unchanged state under the same id.
		m.ID = events.SnapshotMessageID(source, s.cfg.Tenant, c.State.Kind(), c.State.Key(), runID+"#"+contentTag(c.Op, m.State))
		out = append(out, outgoing{msg: m, key: c.Key(), op: c.Op, kind: c.State.Kind()})
	}
	s.log.Info("full sync of the roster", slog.String("why", why), slog.Int("teachers", len(teachers)),
		slog.Int("students", len(students)), slog.Int("sections", len(sections)), slog.Int("changes", len(out)))
	resyncs := st.Cursor.Resyncs
	if again {
		resyncs++
	}
	cursor := Cursor{Next: head.Next, LastEventID: head.ID, LastEventTime: head.Created, Updated: s.now().UTC(), Resyncs: resyncs}
	return s.commit(ctx, st, now, cursor, out, "sync-"+cmp.Or(head.ID, "empty"), "full sync")
}

func (s *Source) load(ctx context.Context) (*saved, error) {
	data, err := s.cfg.Stores.Rosters.GetBytes(ctx, s.cfg.Tenant)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load roster: %w", err)
	}
	var st saved
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("roster of %s is corrupt: %w", s.cfg.Tenant, err)
	}
	if st.Roster == nil {
		st.Roster = NewRoster()
	}
	return &st, nil
}

// save writes the roster with its cursor in one object, then the cursor to
// its bucket for operators. The object is the truth: if a crash falls
// between the two writes, the next start reads the object.
func (s *Source) save(ctx context.Context, st *saved) error {
	if err := s.saveObject(ctx, st); err != nil {
		return err
	}
	cur, err := json.Marshal(st.Cursor)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Stores.Cursors.Put(ctx, s.cfg.Tenant, cur); err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	return nil
}

// contentTag is a short digest of a change's op and state.
func contentTag(op events.Op, state []byte) string {
	sum := sha256.Sum256(append([]byte(string(op)+"\x00"), state...))
	return hex.EncodeToString(sum[:8])
}

// saveObject writes the roster with its cursor, leaving the cursor's mirror
// in the KV bucket as it was.
func (s *Source) saveObject(ctx context.Context, st *saved) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Stores.Rosters.PutBytes(ctx, s.cfg.Tenant, data); err != nil {
		return fmt.Errorf("save roster: %w", err)
	}
	return nil
}

// ReadCursor returns a tenant's cursor, for status.
func ReadCursor(ctx context.Context, kv jetstream.KeyValue, tenant string) (Cursor, bool, error) {
	var c Cursor
	e, err := kv.Get(ctx, tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	return c, true, json.Unmarshal(e.Value(), &c)
}

// ReadDesired reads a tenant's whole roster from DataHub and returns its
// desired Class states, with the version a full read has ([SyncVersion]):
// after every event up to the head of the feed, noted before the read, or up
// to the tenant's stored cursor if that is further, and before every event
// after it. provisionctl resync publishes them.
func ReadDesired(ctx context.Context, tenant string, client *datahub.Client, cursor Cursor) (*desired.Set, events.Version, error) {
	head, err := client.Head(ctx)
	if err != nil {
		return nil, events.Version{}, fmt.Errorf("read the head of the feed: %w", err)
	}
	teachers, err := client.Teachers(ctx)
	if err != nil {
		return nil, events.Version{}, err
	}
	students, err := client.Students(ctx)
	if err != nil {
		return nil, events.Version{}, err
	}
	sections, err := client.Sections(ctx)
	if err != nil {
		return nil, events.Version{}, err
	}
	set := Mapper{Tenant: tenant}.Desired(RosterOf(teachers, students, sections))
	if head.Created.IsZero() && cursor.LastEventTime.IsZero() {
		// An empty feed and no cursor: nothing to order against.
		head.Created = time.Now().UTC()
	}
	// "~sync~resync" sorts after the poller's own full read at the same head
	// ("~sync"): a resync knows at least as much.
	return set, SyncVersion(head, cursor, "~sync~resync"), nil
}

// SyncVersion is the version of a full read of the roster at head, by a
// tenant whose stored cursor is cursor; suffix tells the poller's own reads
// ("~sync") from an operator's resync ("~sync~resync", which sorts after).
// It sorts after every event up to the head and before every event after
// it.
//
// When the cursor is ahead of the head, the tenant now reads another feed
// (its datahub.district_id was set), and Class holds versions up to the
// cursor's: its events', and full reads' at it ("<id>~sync..."). A read
// versioned at the head would lose to them and its deletions be skipped, so
// it is versioned just after all of those ("~~" sorts after "~s"). Events of
// the new feed still sort after it: the cursor's event was read before this
// head was, so every event after the head is newer.
func SyncVersion(head datahub.Head, cursor Cursor, suffix string) events.Version {
	at := events.Version{Time: head.Created, Seq: head.ID + suffix}
	seen := events.Version{Time: cursor.LastEventTime, Seq: cursor.LastEventID}
	if seen.Compare(events.Version{Time: head.Created, Seq: head.ID}) > 0 {
		at = events.Version{Time: seen.Time, Seq: seen.Seq + "~~feed-changed" + suffix}
	}
	return at
}
