package hubmissource

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/rollcall/rollcall/internal/desired"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/telemetry"
	"github.com/rollcall/rollcall/internal/valve"
)

// SnapshotBucket (an object store) holds each tenant's last committed
// snapshot: the base of the next diff.
const SnapshotBucket = "HUBMIS_SNAPSHOTS"

// SnapshotIntervalDefault is how often a snapshot is taken.
const SnapshotIntervalDefault = 15 * time.Minute

// Year is an academic year.
type Year struct {
	ID         string
	Start, End time.Time
}

// API is what a snapshot needs of HUBmis; internal/clients/hubmis
// provides it through [ClientAPI].
type API interface {
	CurrentYear(ctx context.Context) (Year, error)
	Timezone(ctx context.Context) (string, error)
	Students(ctx context.Context) ([]Person, error)
	TeachingStaff(ctx context.Context) ([]Person, error)
	// Sets lists the year's subject sets with their student counts and
	// staff ids (StudentIDs empty).
	Sets(ctx context.Context, yearID string) ([]Set, error)
	SetStudents(ctx context.Context, yearID, setID string) ([]string, error)
	Calendar(ctx context.Context, staffID string, from, to time.Time) ([]Lesson, error)
	// Requests counts the requests sent so far.
	Requests() int64
}

// ErrUnauthorized is what an API returns (wrapped) when HUBmis refuses the
// tenant's credentials after a fresh token: the cycle stops.
var ErrUnauthorized = errors.New("HUBmis refused the credentials")

// Config configures a [Source].
type Config struct {
	Tenant string
	API    API
	JS     jetstream.JetStream
	// Snapshots is the object store of [SnapshotBucket].
	Snapshots jetstream.ObjectStore
	Held      *valve.Store
	// Timezone is the tenant's configured zone; empty means the school's.
	Timezone         string
	SnapshotInterval time.Duration
	LessonWindow     time.Duration
	Planner          SnapshotPlanner
	// DeletionPolicy delete (default), ignore or grace with GraceSnapshots.
	DeletionPolicy string
	GraceSnapshots int
	MaxDeleteShare float64
	Logger         *slog.Logger
	Now            func() time.Time
	// TracerProvider makes the snapshot spans (the requests are spans of
	// the client's transport). Defaults to the global one.
	TracerProvider trace.TracerProvider
	// Metrics, if set, records requests, budget and duration per snapshot
	// and the changes published.
	Metrics *telemetry.Metrics
}

// Deletion policies.
const (
	PolicyDelete = "delete"
	PolicyIgnore = "ignore"
	PolicyGrace  = "grace"
)

// Report describes one cycle.
type Report struct {
	SnapshotID string
	Requests   int64
	Plan       Plan
	Published  int
	Held       int
	// Oldest is the read time of the oldest set or calendar the snapshot
	// holds; Staleness its age.
	Oldest    time.Time
	Staleness time.Duration
	Took      time.Duration
}

// Source takes snapshots of one HUBmis school.
type Source struct {
	cfg    Config
	mapper Mapper
	log    *slog.Logger
	now    func() time.Time
	tracer trace.Tracer

	mu   sync.Mutex
	last Report

	// outboxSent is the snapshot whose outbox this process published:
	// Cycle runs from one goroutine.
	outboxSent string
}

// EnsureSnapshotStore creates or updates the object store.
func EnsureSnapshotStore(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.ObjectStore, error) {
	return events.EnsureObjectStore(ctx, js, jetstream.ObjectStoreConfig{Bucket: SnapshotBucket,
		Description: "rollcall HUBmis snapshots", Storage: jetstream.FileStorage, Replicas: cmp.Or(replicas, 1)})
}

// New returns a source.
func New(cfg Config) *Source {
	cfg.SnapshotInterval = cmp.Or(cfg.SnapshotInterval, SnapshotIntervalDefault)
	cfg.LessonWindow = cmp.Or(cfg.LessonWindow, LessonWindowDefault)
	cfg.DeletionPolicy = cmp.Or(cfg.DeletionPolicy, PolicyDelete)
	cfg.GraceSnapshots = cmp.Or(cfg.GraceSnapshots, 3)
	if cfg.Planner.Budget == 0 {
		cfg.Planner.Budget = CycleBudget(cfg.SnapshotInterval, 0)
	}
	s := &Source{cfg: cfg, mapper: Mapper{Tenant: cfg.Tenant, Timezone: cfg.Timezone}, log: cmp.Or(cfg.Logger, slog.Default()), now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.log = s.log.With(slog.String("tenant", cfg.Tenant), slog.String("source", source))
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	s.tracer = tp.Tracer("github.com/rollcall/rollcall/internal/hubmissource")
	return s
}

// LastReport is the report of the last completed cycle.
func (s *Source) LastReport() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Run takes a snapshot every SnapshotInterval until ctx ends.
func (s *Source) Run(ctx context.Context) error {
	for {
		rep, err := s.Cycle(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.Error("snapshot failed; the last committed snapshot stays the base", slog.Any("error", err))
		default:
			s.log.Info("snapshot committed", slog.String("snapshot", rep.SnapshotID), slog.Int64("requests", rep.Requests),
				slog.Int("published", rep.Published), slog.Int("held", rep.Held), slog.Duration("staleness", rep.Staleness),
				slog.Int("round_robin_short", rep.Plan.Short), slog.Duration("took", rep.Took))
		}
		t := time.NewTimer(s.cfg.SnapshotInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Cycle takes one snapshot, publishes what changed since the last committed
// one, and commits it. Any failure of a list leaves the last snapshot as the
// base and publishes nothing: a school that answers errors is not an empty
// school.
func (s *Source) Cycle(ctx context.Context) (rep Report, err error) {
	ctx, span := s.tracer.Start(ctx, "hubmis.snapshot", trace.WithAttributes(attribute.String("rollcall.tenant", s.cfg.Tenant)))
	defer func() {
		span.SetAttributes(attribute.Int64("rollcall.requests", rep.Requests), attribute.Int("rollcall.published", rep.Published))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	start := s.now()
	reqs0 := s.cfg.API.Requests()
	prev, err := s.load(ctx)
	if err != nil {
		return Report{}, err
	}
	if err := s.publishOutbox(ctx, prev); err != nil {
		return Report{}, err
	}
	next, plan, err := s.snapshot(ctx, prev, reqs0)
	if err != nil {
		return Report{}, err
	}
	base := prev
	if base == nil {
		base = NewSnapshot()
	}
	before, after, changes := s.mapper.diff(base, next)
	published, held, err := s.publish(ctx, base, next, before, after, changes, func() error {
		return s.save(ctx, next, s.cfg.API.Requests()-reqs0)
	})
	if err != nil {
		return Report{}, err
	}
	rep = Report{SnapshotID: next.ID, Requests: s.cfg.API.Requests() - reqs0, Plan: plan, Published: published, Held: held,
		Oldest: next.Oldest(), Took: s.now().Sub(start)}
	rep.Staleness = s.now().Sub(rep.Oldest)
	s.mu.Lock()
	s.last = rep
	s.mu.Unlock()
	if m := s.cfg.Metrics; m != nil {
		m.HUBmisSnapshot(ctx, s.cfg.Tenant, rep.Requests, rep.Took)
		m.HUBmisBudget(ctx, s.cfg.Tenant, max(int64(s.cfg.Planner.Budget)-rep.Requests, 0))
	}
	return rep, nil
}

// snapshot reads the school: the lists every cycle, then what the planner
// chose. A failed member or calendar read keeps the previous data.
func (s *Source) snapshot(ctx context.Context, prev *Snapshot, reqs0 int64) (*Snapshot, Plan, error) {
	now := s.now().UTC()
	next := NewSnapshot()
	next.Taken = now
	next.ID = fmt.Sprintf("%s-%d", s.cfg.Tenant, now.UnixNano())
	next.WindowStart = now.Truncate(24 * time.Hour)
	year, err := s.cfg.API.CurrentYear(ctx)
	if err != nil {
		return nil, Plan{}, fmt.Errorf("academic year: %w", err)
	}
	next.AcademicYearID, next.YearEnd = year.ID, year.End
	if s.cfg.Timezone == "" {
		if prev != nil && prev.Timezone != "" && prev.Taken.Truncate(24*time.Hour).Equal(next.WindowStart) {
			next.Timezone = prev.Timezone // read once a day
		} else if next.Timezone, err = s.cfg.API.Timezone(ctx); err != nil {
			return nil, Plan{}, fmt.Errorf("regional settings: %w", err)
		}
	}
	students, err := s.cfg.API.Students(ctx)
	if err != nil {
		return nil, Plan{}, fmt.Errorf("students: %w", err)
	}
	staff, err := s.cfg.API.TeachingStaff(ctx)
	if err != nil {
		return nil, Plan{}, fmt.Errorf("staff: %w", err)
	}
	sets, err := s.cfg.API.Sets(ctx, year.ID)
	if err != nil {
		return nil, Plan{}, fmt.Errorf("subject sets: %w", err)
	}
	for _, p := range students {
		next.Students[p.ID] = p
	}
	teaching := map[string]bool{}
	for _, p := range staff {
		next.Staff[p.ID] = p
	}
	for _, set := range sets {
		slices.Sort(set.StaffIDs)
		next.Sets[set.ID] = set
		for _, id := range set.StaffIDs {
			teaching[id] = true
		}
	}
	base := prev
	next.ended = map[string]bool{}
	if prev != nil && prev.AcademicYearID != year.ID && !year.Start.IsZero() && year.Start.Before(prev.YearEnd) {
		// A new year that has begun ends the old one, whatever end date
		// the old one had when it was last read.
		prev.YearEnd = year.Start
	}
	if prev != nil && prev.AcademicYearID != year.ID && !prev.YearEnd.After(now) {
		for id := range prev.Sets {
			next.ended[id] = true
		}
	}
	if prev != nil && len(prev.Retired) > 0 && !prev.RetiredAt.After(now) {
		for id := range prev.Retired {
			next.ended[id] = true
		}
	}
	if prev != nil && prev.AcademicYearID != year.ID {
		// Rollover: every set id is new. Last year's sets are kept (as
		// classes in Class) until that year ends, then follow the deletion
		// policy.
		if prev.YearEnd.After(now) {
			next.Retired = maps.Clone(prev.Sets)
			next.RetiredAt = prev.YearEnd
		}
		base = nil
	} else if prev != nil && prev.RetiredAt.After(now) {
		next.Retired, next.RetiredAt = prev.Retired, prev.RetiredAt
	}
	// Carry over what is not re-read.
	if base != nil {
		for id, set := range next.Sets {
			if old, ok := base.Sets[id]; ok {
				set.StudentIDs, set.MembersRead = old.StudentIDs, old.MembersRead
				next.Sets[id] = set
			}
		}
		for id, c := range base.Calendars {
			if teaching[id] {
				next.Calendars[id] = c
			}
		}
		next.Pending = maps.Clone(base.Pending)
	}
	listCost := int(s.cfg.API.Requests() - reqs0)
	plan := s.cfg.Planner.Plan(base, next.Sets, slices.Sorted(maps.Keys(teaching)), listCost)
	for _, id := range plan.MemberReads {
		ids, err := s.cfg.API.SetStudents(ctx, year.ID, id)
		if errors.Is(err, ErrUnauthorized) || ctx.Err() != nil {
			return nil, Plan{}, cmp.Or(ctx.Err(), err)
		}
		if err != nil {
			s.log.Warn("set members not read; the previous ones are kept", slog.String("set", id), slog.Any("error", err))
			continue
		}
		set := next.Sets[id]
		set.StudentIDs, set.MembersRead = ids, s.now().UTC()
		slices.Sort(set.StudentIDs)
		next.Sets[id] = set
	}
	to := next.WindowStart.Add(s.cfg.LessonWindow)
	for _, id := range plan.CalendarReads {
		lessons, err := s.cfg.API.Calendar(ctx, id, next.WindowStart, to)
		if errors.Is(err, ErrUnauthorized) || ctx.Err() != nil {
			return nil, Plan{}, cmp.Or(ctx.Err(), err)
		}
		if err != nil {
			s.log.Warn("staff calendar not read; the previous one is kept", slog.String("staff", id), slog.Any("error", err))
			continue
		}
		next.Calendars[id] = Calendar{From: next.WindowStart, To: to, Read: s.now().UTC(), Lessons: lessons}
	}
	return next, plan, nil
}

// publish publishes the changes as the deletion policy and the safety valve
// say, and waits for every acknowledgement.
// publish turns the changes into messages, holds the deletions the safety
// valve stops, commits next with the rest as its outbox (save), and only then
// publishes them.
func (s *Source) publish(ctx context.Context, prev, next *Snapshot, before, after *desired.Set, changes []desired.Change, save func() error) (published, held int, err error) {
	version := events.Version{Time: next.Taken, Seq: next.ID}
	var msgs []*nats.Msg
	var deletes []valve.Held
	upserted := map[string]bool{}
	totals := valve.Totals{}
	totals.Classes, totals.Enrollments = before.Count(events.KindClass), before.Count(events.KindEnrollment)
	for _, c := range changes {
		m, err := events.NewMessage(s.cfg.Tenant, c.Op, c.State, version, events.Origin{Source: source, ID: next.ID})
		if err != nil {
			msgs = append(msgs, events.Rejected(s.cfg.Tenant, source, next.ID+":"+c.Key(), nil, err.Error(), s.now()))
			continue
		}
		m.ID = events.SnapshotMessageID(source, s.cfg.Tenant, c.State.Kind(), c.State.Key(), next.ID)
		msg, err := events.Encode(m)
		if err != nil {
			return 0, 0, err
		}
		if c.Op == events.OpUpsert {
			upserted[c.Key()] = true
			msgs = append(msgs, msg)
			continue
		}
		switch s.cfg.DeletionPolicy {
		case PolicyIgnore:
			continue
		case PolicyGrace:
			// Deleted only once missing from GraceSnapshots snapshots in a
			// row: until then the deletion waits in the snapshot.
			if s.cfg.GraceSnapshots > 1 {
				next.Pending[c.Key()] = PendingDelete{Missing: 1, Msg: valve.NewHeld(msg, c.Key())}
				continue
			}
		}
		deletes = append(deletes, valve.NewHeld(msg, c.Key()))
		if !next.ended[s.setOf(c)] {
			totals.Count(c.State.Kind())
		}
	}
	// Deletions already waiting: cancelled if the entity is back, released
	// once it has been missing long enough.
	for key, p := range next.Pending {
		if upserted[key] || after.Has(key) {
			delete(next.Pending, key)
			continue
		}
		if _, carried := prev.Pending[key]; !carried {
			continue // added by this cycle
		}
		p.Missing++
		if p.Missing < s.cfg.GraceSnapshots {
			next.Pending[key] = p
			continue
		}
		delete(next.Pending, key)
		deletes = append(deletes, p.Msg)
		totals.Count(kindOf(key))
	}
	if exceeds, why := totals.Exceeds(s.cfg.MaxDeleteShare); exceeds {
		set := valve.ChangeSet{ID: next.ID, Tenant: s.cfg.Tenant, Created: s.now().UTC(), Reason: "snapshot " + next.ID + ": " + why, Messages: deletes}
		if err := s.cfg.Held.Hold(ctx, set); err != nil {
			return 0, 0, err
		}
		held = len(deletes)
		s.log.Warn("deletions held for approval (provisionctl approve/reject)", slog.String("change_set", set.ID), slog.String("reason", set.Reason))
	} else {
		for _, d := range deletes {
			msgs = append(msgs, &nats.Msg{Subject: d.Subject, Header: d.Header, Data: d.Data})
		}
	}
	next.Outbox = make([]valve.Held, 0, len(msgs))
	for _, m := range msgs {
		next.Outbox = append(next.Outbox, valve.NewHeld(m, ""))
	}
	if err := save(); err != nil {
		return 0, 0, err
	}
	if testHookBeforePublish != nil {
		if err := testHookBeforePublish(); err != nil {
			return 0, 0, err
		}
	}
	if err := events.PublishBatch(ctx, s.cfg.JS, msgs); err != nil {
		return 0, 0, err
	}
	s.outboxSent = next.ID
	if m := s.cfg.Metrics; m != nil {
		for _, msg := range msgs {
			if _, kind, op, err := events.ParseSubject(msg.Subject); err == nil {
				m.ChangePublished(ctx, s.cfg.Tenant, string(kind), string(op))
			}
		}
	}
	if _, err := s.cfg.Held.Cancel(ctx, s.cfg.Tenant, upserted); err != nil {
		return 0, 0, err
	}
	return len(msgs), held, nil
}

// testHookBeforePublish, when set by a test, runs between committing a
// snapshot and publishing its outbox; an error stops the cycle there.
var testHookBeforePublish func() error

// publishOutbox publishes the outbox of the committed snapshot unless this
// process published it: its poller may have died after saving it.
func (s *Source) publishOutbox(ctx context.Context, snap *Snapshot) error {
	if snap == nil || len(snap.Outbox) == 0 || s.outboxSent == snap.ID {
		return nil
	}
	msgs := make([]*nats.Msg, 0, len(snap.Outbox))
	for _, h := range snap.Outbox {
		msgs = append(msgs, &nats.Msg{Subject: h.Subject, Header: h.Header, Data: h.Data})
	}
	if err := events.PublishBatch(ctx, s.cfg.JS, msgs); err != nil {
		return fmt.Errorf("publish the outbox of snapshot %s: %w", snap.ID, err)
	}
	s.log.Info("published the last snapshot's messages again (the stream drops those it has)",
		slog.String("snapshot", snap.ID), slog.Int("messages", len(msgs)))
	s.outboxSent = snap.ID
	return nil
}

func (s *Source) load(ctx context.Context) (*Snapshot, error) {
	obj, err := s.cfg.Snapshots.Get(ctx, s.cfg.Tenant)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	defer obj.Close()
	info, err := obj.Info()
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	var r io.Reader = obj
	// Snapshots saved before they were compressed are plain JSON.
	if info.Metadata[metaEncoding] == encodingGzip {
		zr, err := gzip.NewReader(obj)
		if err != nil {
			return nil, fmt.Errorf("snapshot of %s is corrupt: %w", s.cfg.Tenant, err)
		}
		r = zr
	}
	snap := NewSnapshot()
	if err := json.NewDecoder(r).Decode(snap); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if errors.As(err, &syntax) || errors.As(err, &typ) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) {
			return nil, fmt.Errorf("snapshot of %s is corrupt: %w", s.cfg.Tenant, err)
		}
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	return snap, nil
}

// save commits the snapshot. It is saved before its outbox is published, so
// a crash between the two publishes the outbox at the next cycle.
//
// The snapshot is stored as gzip-compressed JSON: a school's snapshot, its
// outbox included, is megabytes of JSON that compress about tenfold, and the
// store keeps one per tenant on every replica.
func (s *Source) save(ctx context.Context, snap *Snapshot, requests int64) error {
	data, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	var zipped bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zipped, gzip.BestSpeed)
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	meta := jetstream.ObjectMeta{Name: s.cfg.Tenant, Metadata: map[string]string{
		metaTaken: snap.Taken.UTC().Format(time.RFC3339Nano), metaRequests: strconv.FormatInt(requests, 10),
		metaEncoding: encodingGzip,
	}}
	if _, err := s.cfg.Snapshots.Put(ctx, meta, &zipped); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	return nil
}

// Metadata of a stored snapshot, for status displays that should not read
// the whole snapshot.
const (
	metaTaken    = "taken"
	metaRequests = "requests"
	// metaEncoding says how the snapshot is encoded: [encodingGzip], or
	// absent for plain JSON.
	metaEncoding = "encoding"
	encodingGzip = "gzip+json"
)

// SnapshotInfo is what status shows of a tenant's last committed snapshot.
type SnapshotInfo struct {
	ID       string    `json:"id,omitempty"`
	Taken    time.Time `json:"taken"`
	Requests int64     `json:"requests"`
	Size     uint64    `json:"size"`
}

// ReadSnapshotInfo returns the tenant's last committed snapshot's info; ok
// is false when there is none yet.
func ReadSnapshotInfo(ctx context.Context, store jetstream.ObjectStore, tenant string) (info SnapshotInfo, ok bool, err error) {
	oi, err := store.GetInfo(ctx, tenant)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return info, false, nil
	}
	if err != nil {
		return info, false, fmt.Errorf("read snapshot info: %w", err)
	}
	info.Size = oi.Size
	info.Taken, _ = time.Parse(time.RFC3339Nano, oi.Metadata[metaTaken])
	info.Requests, _ = strconv.ParseInt(oi.Metadata[metaRequests], 10, 64)
	if info.Taken.IsZero() {
		info.Taken = oi.ModTime
	}
	return info, true, nil
}

// StoredDesired returns the desired Class states of the tenant's last
// committed snapshot, and its version. provisionctl resync publishes them
// rather than read the school again: HUBmis's per-address limit is shared
// with the poller, and a full read takes most of an hour.
func StoredDesired(ctx context.Context, store jetstream.ObjectStore, tenant, timezone string) (*desired.Set, events.Version, error) {
	s := &Source{cfg: Config{Tenant: tenant, Snapshots: store}}
	snap, err := s.load(ctx)
	if err != nil {
		return nil, events.Version{}, err
	}
	if snap == nil {
		return nil, events.Version{}, fmt.Errorf("tenant %s has no snapshot yet: let the poller take one first", tenant)
	}
	set := Mapper{Tenant: tenant, Timezone: timezone}.Desired(snap)
	return set, events.Version{Time: snap.Taken, Seq: snap.ID}, nil
}

func kindOf(key string) events.Kind {
	for i := range key {
		if key[i] == '/' {
			return events.Kind(key[:i])
		}
	}
	return ""
}

// setOf is the HUBmis set id a change belongs to, "" for a user.
func (s *Source) setOf(c desired.Change) string {
	var classID string
	switch st := c.State.(type) {
	case events.ClassState:
		classID = st.ExtClassID
	case events.EnrollmentState:
		classID = st.ExtClassID
	case events.ScheduleState:
		classID = st.ExtClassID
	default:
		return ""
	}
	return strings.TrimPrefix(classID, s.mapper.ext("set", ""))
}
