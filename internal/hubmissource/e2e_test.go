package hubmissource_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/hubmis"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/hubmissource"
	"github.com/rollcall/rollcall/internal/natstest"
	"github.com/rollcall/rollcall/internal/valve"
)

const tenant = "greenwood"

// timeScale makes HUBmis's 12 requests a minute pass in a fraction of a
// second, for the simulator and the client alike.
const timeScale = 200

type pipeline struct {
	mis     *hubmistest.Server
	cls     *classtest.Server
	src     *hubmissource.Source
	snaps   jetstream.ObjectStore
	deletes atomic.Int64
	worker  *handlers.Worker
}

func newPipeline(t *testing.T, students, staff, sets int, planner hubmissource.SnapshotPlanner, opts ...func(*hubmis.Config)) *pipeline {
	t.Helper()
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := events.EnsureResources(ctx, js, events.StreamSettings{})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := hubmissource.EnsureSnapshotStore(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	held, err := valve.EnsureStore(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{
		mis: hubmistest.New(hubmistest.Options{Seed: 5, TimeScale: timeScale, Logger: simLogger}),
		cls: classtest.New(classtest.Options{Seed: 6}),
	}
	t.Cleanup(p.mis.Close)
	t.Cleanup(p.cls.Close)
	p.mis.Populate(students, staff, sets, 3)
	p.cls.AddKey("k")
	ccfg := hubmis.Config{BaseURL: p.mis.URL(), ClientID: p.mis.ClientID(), ClientSecret: p.mis.ClientSecret(),
		Realm: p.mis.Realm(), TimeScale: timeScale}
	for _, o := range opts {
		o(&ccfg)
	}
	client, err := hubmis.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	p.src = hubmissource.New(hubmissource.Config{Tenant: tenant, API: hubmissource.ClientAPI{C: client}, JS: js, Snapshots: snaps, Held: held,
		Planner: planner, Logger: quiet})
	p.snaps = snaps
	cc, _ := class.New(p.cls.URL(), "k")
	p.worker, err = handlers.New(handlers.Config{JS: js, Resources: res, Logger: quiet,
		Tenants: []handlers.Tenant{{ID: tenant, Class: cc}},
		Retry:   handlers.RetryPolicy{BackoffInitial: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond},
		OnOutcome: func(o handlers.Outcome) {
			if o.Op == events.OpDelete {
				p.deletes.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.worker.Run(wctx); close(done) }()
	t.Cleanup(func() { wcancel(); <-done })
	return p
}

// outsider is a student who is not in set.
func (p *pipeline) outsider(set hubmistest.Set) string {
	for _, s := range p.mis.Students() {
		if !slices.Contains(set.StudentIDs, s.ID) {
			return s.ID
		}
	}
	return ""
}

func (p *pipeline) cycle(t *testing.T) hubmissource.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := p.src.Cycle(ctx)
	if err != nil {
		t.Fatalf("cycle: %v", err)
	}
	return rep
}

// want is what Class should hold, from the simulator's own state: users,
// classes, enrollments with an external id (hosts, enrolled by Class without
// one, are matched by email), and dates.
func (p *pipeline) want(hosts map[string]string) map[string]string {
	ext := func(kind, id string) string { return events.ExternalID("hubmis", tenant, kind, id) }
	v := map[string]string{}
	staff := map[string]hubmistest.Staff{}
	for _, s := range p.mis.Staff() {
		staff[s.ID] = s
	}
	students := map[string]hubmistest.Student{}
	for _, s := range p.mis.Students() {
		students[s.ID] = s
	}
	year := p.mis.CurrentAcademicYear().ID
	day := time.Now().UTC().Truncate(24 * time.Hour)
	for _, set := range p.mis.Sets() {
		if set.AcademicYearID != year {
			continue
		}
		classID := ext("set", set.ID)
		ids := slices.Sorted(slices.Values(set.StaffIDs))
		v["class "+classID] = set.Name
		for _, sid := range ids {
			s := staff[sid]
			v["user "+ext("staff", sid)] = s.Email
			if hosts[classID] != s.Email {
				v["enrollment "+classID+"#"+ext("staff", sid)] = "teacher"
			}
		}
		for _, pid := range set.StudentIDs {
			if _, ok := students[pid]; ok {
				v["enrollment "+classID+"#"+ext("student", pid)] = "student"
			}
		}
		var dates []string
		for _, l := range p.mis.LessonsBetween(set.ID, day, day.Add(hubmissource.LessonWindowDefault)) {
			if l.Start.Before(day.Add(hubmissource.LessonWindowDefault)) {
				dates = append(dates, fmt.Sprint(l.Start.Unix()))
			}
		}
		sort.Strings(dates)
		v["dates "+classID] = strings.Join(dates, ",")
	}
	return v
}

func (p *pipeline) got() (map[string]string, map[string]string) {
	v, hosts := map[string]string{}, map[string]string{}
	st := p.cls.State()
	for _, u := range st.Users {
		v["user "+u.ExtUserID] = u.Email
	}
	for _, c := range st.Classes {
		hosts[c.ExtClassID] = c.HostEmail
		v["class "+c.ExtClassID] = c.Name
		for _, e := range c.Enrollments {
			if e.ExtPersonID != "" {
				v["enrollment "+c.ExtClassID+"#"+e.ExtPersonID] = e.Role
			}
		}
		var dates []string
		for _, d := range c.Dates {
			dates = append(dates, fmt.Sprint(d.Start))
		}
		sort.Strings(dates)
		v["dates "+c.ExtClassID] = strings.Join(dates, ",")
	}
	return v, hosts
}

func (p *pipeline) converged(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		got, hosts := p.got()
		want := p.want(hosts)
		var diff []string
		for k, w := range want {
			if g := got[k]; g != w {
				diff = append(diff, fmt.Sprintf("%s = %.60q, want %.60q", k, g, w))
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				diff = append(diff, k+" unexpected")
			}
		}
		if len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(diff)
			t.Fatalf("%s: Class did not converge: %d differences, first: %s", what, len(diff), strings.Join(diff[:min(4, len(diff))], "; "))
		}
		<-tick.C
	}
}

func TestSchoolConvergesThroughEveryScenario(t *testing.T) {
	p := newPipeline(t, 300, 30, 40, hubmissource.SnapshotPlanner{RefreshEveryCycles: 2, Budget: 60})
	rep := p.cycle(t)
	t.Logf("first snapshot: %d requests, %d messages", rep.Requests, rep.Published)
	p.converged(t, "first snapshot")
	// What provisionctl status shows of it.
	info, ok, err := hubmissource.ReadSnapshotInfo(context.Background(), p.snaps, tenant)
	if err != nil || !ok || info.Requests != rep.Requests || info.Taken.IsZero() || info.Size == 0 {
		t.Errorf("snapshot info = %+v, %v, %v; want %d requests", info, ok, err, rep.Requests)
	}

	sets := p.mis.Sets()
	students := p.mis.Students()
	set := sets[0]
	outsider := p.outsider(set)
	p.mis.JoinSet(set.ID, outsider)
	p.mis.LeaveSet(sets[1].ID, sets[1].StudentIDs[0])
	p.cycle(t)
	p.converged(t, "a student joined and another left a set (one cycle)")

	staff := p.mis.Staff()
	p.mis.SetStaff(sets[2].ID, staff[len(staff)-1].ID)
	p.mis.RenameSet(sets[3].ID, "Renamed set")
	p.cycle(t)
	p.converged(t, "a set's teacher changed and a set renamed (one cycle)")

	if lessons := p.mis.Lessons(sets[4].ID); len(lessons) > 0 {
		p.mis.MoveLesson(sets[4].ID, lessons[0].Start, lessons[0].Start.Add(time.Hour))
	}
	p.mis.DeleteSet(sets[5].ID)
	p.mis.StudentLeaves(students[len(students)-1].ID)
	bound := 2 // RefreshEveryCycles: a moved lesson is seen within it
	for range bound {
		p.cycle(t)
	}
	p.converged(t, "a lesson moved, a set deleted, a student left (within the staleness bound)")
	if n := p.mis.Stats().TooMany; n != 0 {
		t.Errorf("the simulator answered %d 429s", n)
	}
	if d := p.cls.Duplicates(); len(d) > 0 {
		t.Errorf("duplicate side effects: %+v", d[0])
	}
}

func TestHalfTheRequestsFailingDeletesNothing(t *testing.T) {
	p := newPipeline(t, 100, 12, 12, hubmissource.SnapshotPlanner{RefreshEveryCycles: 1, Budget: 100},
		func(c *hubmis.Config) { c.RetryMaxAttempts = 2 })
	p.cycle(t)
	p.converged(t, "first snapshot")
	before := len(p.cls.State().Classes)
	p.mis.SetFaults(hubmistest.Faults{Rate500: 0.5})
	ctx := context.Background()
	failed := 0
	for range 4 {
		if _, err := p.src.Cycle(ctx); err != nil {
			failed++
		}
	}
	p.mis.SetFaults(hubmistest.Faults{})
	if p.mis.Stats().Faults == 0 {
		t.Fatal("no fault injected")
	}
	t.Logf("%d of 4 cycles failed outright; faults injected: %d", failed, p.mis.Stats().Faults)
	if n := p.deletes.Load(); n != 0 {
		t.Errorf("%d deletions applied while HUBmis was failing", n)
	}
	if after := len(p.cls.State().Classes); after != before {
		t.Errorf("classes %d → %d", before, after)
	}
	p.cycle(t)
	p.converged(t, "after the faults")
}

func TestReferenceSchoolStaysInsideTheRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("the reference school takes a while")
	}
	planner := hubmissource.SnapshotPlanner{RefreshEveryCycles: 4, Budget: hubmissource.CycleBudget(15*time.Minute, 500)}
	p := newPipeline(t, 1500, 150, 300, planner)
	first := p.cycle(t)
	t.Logf("first snapshot of the reference school: %d requests", first.Requests)
	for i := range 4 {
		rep := p.cycle(t)
		t.Logf("cycle %d: %d requests (budget %d), round-robin %d, short %d", i+2, rep.Requests, planner.Budget, rep.Plan.RoundRobin, rep.Plan.Short)
		if rep.Plan.Short != 0 {
			t.Errorf("cycle %d could not keep the staleness bound: %d reads short", i+2, rep.Plan.Short)
		}
		if int(rep.Requests) > planner.Budget {
			t.Errorf("cycle %d used %d requests, over its budget of %d", i+2, rep.Requests, planner.Budget)
		}
	}
	t.Logf("staleness bound with a 15m snapshot interval: %s", planner.StalenessBound(15*time.Minute))
	if n := p.mis.Stats().TooMany; n != 0 {
		t.Errorf("the simulator answered %d 429s", n)
	}
}

var simLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestAcademicYearRolloverIsNotHeldAsAMassDeletion(t *testing.T) {
	p := newPipeline(t, 60, 8, 6, hubmissource.SnapshotPlanner{RefreshEveryCycles: 1, Budget: 200})
	p.cycle(t)
	p.converged(t, "first snapshot")
	oldClasses := len(p.cls.State().Classes)
	// The new year starts today: last year ended yesterday, so its classes
	// go, and the new year's sets (every id new) become classes.
	p.mis.NewAcademicYear(time.Now().UTC().Truncate(24 * time.Hour))
	rep := p.cycle(t)
	if rep.Held != 0 {
		t.Errorf("rollover held %d deletions for approval; an ended year's classes follow the deletion policy", rep.Held)
	}
	p.converged(t, "after the rollover")
	if got := len(p.cls.State().Classes); got != oldClasses {
		t.Errorf("classes after rollover %d, want the new year's %d", got, oldClasses)
	}
}

// A poller dies between committing a snapshot and publishing its changes,
// and the school changes back before the next cycle: the next cycle
// publishes the lost changes and undoes them, so Class ends as the school.
func TestPollerDyingBetweenSavingAndPublishingLeavesNothingStale(t *testing.T) {
	p := newPipeline(t, 60, 8, 10, hubmissource.SnapshotPlanner{RefreshEveryCycles: 1, Budget: 60})
	p.cycle(t)
	p.converged(t, "first snapshot")
	set := p.mis.Sets()[0]
	outsider := p.outsider(set)
	p.mis.JoinSet(set.ID, outsider)
	died := false
	hubmissource.SetBeforePublishHook(func() error {
		if died {
			return nil
		}
		died = true
		return errors.New("killed between saving the snapshot and publishing it")
	})
	t.Cleanup(func() { hubmissource.SetBeforePublishHook(nil) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := p.src.Cycle(ctx); err == nil || !died {
		t.Fatalf("the cycle that dies: %v (hook ran: %v)", err, died)
	}
	p.mis.LeaveSet(set.ID, outsider)
	p.cycle(t)
	p.converged(t, "a join published by a cycle that died, then undone at the school")
	if d := p.cls.Duplicates(); len(d) > 0 {
		t.Errorf("duplicate side effects: %+v", d[0])
	}
}

// A snapshot is stored compressed; one an earlier version stored as plain
// JSON still loads, and the next cycle diffs against it.
func TestSnapshotIsStoredCompressedAndAPlainOneStillLoads(t *testing.T) {
	p := newPipeline(t, 60, 8, 10, hubmissource.SnapshotPlanner{RefreshEveryCycles: 1, Budget: 60})
	p.cycle(t)
	p.converged(t, "first snapshot")
	ctx := context.Background()
	obj, err := p.snaps.Get(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	info, err := obj.Info()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(obj)
	if err != nil {
		t.Fatalf("stored snapshot is not gzip (metadata %v): %v", info.Metadata, err)
	}
	plain, err := io.ReadAll(zr)
	obj.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(plain) || info.Size*3 > uint64(len(plain)) {
		t.Fatalf("stored %d bytes for %d bytes of JSON (valid: %v): not compressed", info.Size, len(plain), json.Valid(plain))
	}
	t.Logf("snapshot: %d bytes of JSON stored in %d", len(plain), info.Size)

	// As an earlier version stored it.
	if _, err := p.snaps.PutBytes(ctx, tenant, plain); err != nil {
		t.Fatal(err)
	}
	set := p.mis.Sets()[0]
	p.mis.LeaveSet(set.ID, set.StudentIDs[0])
	rep := p.cycle(t)
	// One enrollment's delete, not the school again: the diff had a base.
	if rep.Published != 1 {
		t.Fatalf("the cycle after a plain snapshot published %d messages, want 1: %+v", rep.Published, rep)
	}
	p.converged(t, "a student left a set, diffed against a plain JSON snapshot")
	if d := p.cls.Duplicates(); len(d) > 0 {
		t.Errorf("duplicate side effects: %+v", d[0])
	}
}
