package datahubsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/natstest"
)

const tenant = "springfield"

// pipeline is a DataHub district, the poller's source, the worker and Class,
// all real, in one test.
type pipeline struct {
	hub    *datahubtest.Server
	cls    *classtest.Server
	js     jetstream.JetStream
	res    *events.Resources
	stores *datahubsource.Stores
	src    *datahubsource.Source
	worker *handlers.Worker
	stop   func()
}

func newPipeline(t *testing.T, pollInterval time.Duration, opts ...func(*datahubsource.Config)) *pipeline {
	t.Helper()
	return newPipelineWith(t, datahubtest.Options{Seed: 1}, pollInterval, opts...)
}

// newPipelineWith is newPipeline with a DataHub district made by hubOpts.
func newPipelineWith(t *testing.T, hubOpts datahubtest.Options, pollInterval time.Duration, opts ...func(*datahubsource.Config)) *pipeline {
	t.Helper()
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := events.EnsureResources(ctx, js, events.StreamSettings{})
	if err != nil {
		t.Fatal(err)
	}
	stores, err := datahubsource.EnsureStores(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{hub: datahubtest.New(hubOpts), cls: classtest.New(classtest.Options{Seed: 2}), js: js, res: res, stores: stores}
	t.Cleanup(p.hub.Close)
	t.Cleanup(p.cls.Close)
	p.cls.AddKey("class-key")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	client, err := datahub.New(datahub.Config{BaseURL: p.hub.URL(), ClientID: datahubtest.ClientIDDefault, ClientSecret: datahubtest.ClientSecretDefault})
	if err != nil {
		t.Fatal(err)
	}
	cfg := datahubsource.Config{Tenant: tenant, Client: client, JS: js, Stores: stores, PollInterval: pollInterval, Logger: quiet}
	for _, o := range opts {
		o(&cfg)
	}
	p.src = datahubsource.New(cfg)
	cc, err := class.New(p.cls.URL(), "class-key")
	if err != nil {
		t.Fatal(err)
	}
	p.worker, err = handlers.New(handlers.Config{
		JS: js, Resources: res, Logger: quiet,
		Tenants: []handlers.Tenant{{ID: tenant, Class: cc, Timezone: "America/Chicago"}},
		Retry:   handlers.RetryPolicy{BackoffInitial: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = p.worker.Run(runCtx); done <- struct{}{} }()
	p.stop = func() {
		stop()
		<-done
	}
	t.Cleanup(p.stop)
	return p
}

// runSource runs the source until the returned function is called.
func (p *pipeline) runSource(t *testing.T) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.src.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// roster is the district as DataHub has it now.
func (p *pipeline) roster(t *testing.T) *datahubsource.Roster {
	var teachers []datahub.Teacher
	for _, x := range p.hub.Teachers() {
		teachers = append(teachers, convert(t, x, datahub.DecodeTeacher))
	}
	var students []datahub.Student
	for _, x := range p.hub.Students() {
		students = append(students, convert(t, x, datahub.DecodeStudent))
	}
	var sections []datahub.Section
	for _, x := range p.hub.Sections() {
		sections = append(sections, convert(t, x, datahub.DecodeSection))
	}
	return datahubsource.RosterOf(teachers, students, sections)
}

func convert[T any](t *testing.T, v any, decode func(json.RawMessage) (T, error)) T {
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// view is what the mapping promises Class holds. Enrollments without an
// external id (the hosts Class enrolled itself) are left out: a class keeps
// its first host even after its primary teacher changes.
func wantView(states []events.KeyedState, hosts map[string]string) map[string]string {
	v := map[string]string{}
	for _, s := range states {
		switch s := s.(type) {
		case events.UserState:
			v["user "+s.ExtUserID] = s.Email + "|" + s.FirstName + " " + s.LastName
		case events.ClassState:
			v["class "+s.ExtClassID] = s.Name + "|" + s.Description
		case events.EnrollmentState:
			if s.Role == events.RoleTeacher && hosts[s.ExtClassID] == s.Email {
				continue // Class's host of the class: matched by email, never posted
			}
			v["enrollment "+s.Key()] = s.Email + "|" + s.FirstName + "|" + s.LastName + "|" + s.Role
		}
	}
	return v
}

func classView(st classtest.State) (view, hosts map[string]string) {
	v := map[string]string{}
	hosts = map[string]string{}
	for _, u := range st.Users {
		v["user "+u.ExtUserID] = u.Email + "|" + u.UserName
	}
	for _, c := range st.Classes {
		v["class "+c.ExtClassID] = c.Name + "|" + c.Description
		hosts[c.ExtClassID] = c.HostEmail
		for _, e := range c.Enrollments {
			if e.ExtPersonID == "" {
				continue
			}
			v["enrollment "+events.EnrollmentKey(c.ExtClassID, e.ExtPersonID)] = e.Email + "|" + e.FirstName + "|" + e.LastName + "|" + e.Role
		}
	}
	return v, hosts
}

func mapDiff(want, got map[string]string) string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			out = append(out, k+" missing")
		} else if g != w {
			out = append(out, fmt.Sprintf("%s = %q, want %q", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, k+" unexpected")
		}
	}
	sort.Strings(out)
	if len(out) > 6 {
		out = append(out[:6], fmt.Sprintf("... %d more", len(out)-6))
	}
	return strings.Join(out, "; ")
}

// converged waits until Class holds what the district says.
func (p *pipeline) converged(t *testing.T, timeout time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		got, hosts := classView(p.cls.State())
		roster := p.roster(t)
		for id, sec := range roster.Sections {
			if sec.Teacher == "" {
				// Its teacher left: the class stays in Class as it was.
				delete(got, "class "+events.ExternalID("datahub", tenant, "section", id))
			}
		}
		want := wantView(datahubsource.Mapper{Tenant: tenant}.States(roster), hosts)
		d := mapDiff(want, got)
		if d == "" {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Class did not converge within %s: %s", what, timeout, d)
		}
		<-tick.C
	}
}

// caughtUp waits until the source's cursor has passed the event, so a check
// of Class that follows is not satisfied before the poller even saw it.
func (p *pipeline) caughtUp(t *testing.T, eventID string) {
	t.Helper()
	if eventID == "" {
		t.Fatal("the scenario step made no event")
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c, ok, err := datahubsource.ReadCursor(context.Background(), p.stores.Cursors, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if ok && c.LastEventID >= eventID {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source did not reach event %s within 30s (cursor %+v)", eventID, c)
		}
		<-tick.C
	}
}

// step runs a scenario step and waits until Class reflects it.
func (p *pipeline) step(t *testing.T, what string, eventID string) {
	t.Helper()
	p.caughtUp(t, eventID)
	p.converged(t, 30*time.Second, what)
}

// classNamed waits until a section's class in Class has the name.
func (p *pipeline) classNamed(t *testing.T, sectionID, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, ok := p.cls.FindClass(events.ExternalID("datahub", tenant, "section", sectionID)); ok && c.Name == name {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("class of section %s not named %q within 30s", sectionID, name)
		}
		<-tick.C
	}
}

func (p *pipeline) noDuplicates(t *testing.T) {
	t.Helper()
	if d := p.cls.Duplicates(); len(d) > 0 {
		t.Errorf("%d duplicate side effects in Class, first: %+v", len(d), d[0])
	}
}

func TestDistrictConvergesThroughEveryScenario(t *testing.T) {
	// A district of 3 schools, 30 teachers, 600 students and 60 sections.
	p := newPipelineWith(t, datahubtest.Options{Seed: 1, Schools: 3}, 100*time.Millisecond)
	p.hub.Populate(30, 600, 60, 10)
	p.runSource(t)
	took := p.converged(t, 60*time.Second, "first sync")
	t.Logf("first sync of %d schools, 30 teachers, 600 students, 60 sections converged in %s", len(p.hub.SchoolIDs()), took)

	teachers, students, sections := p.hub.Teachers(), p.hub.Students(), p.hub.Sections()
	newTeacher, ev := p.hub.AddTeacher(datahubtest.Teacher{Email: "new.teacher@springfield.example.org", Name: datahubtest.Name{First: "New", Last: "Teacher"}})
	p.step(t, "a teacher added", ev)
	newStudent, ev := p.hub.AddStudent(datahubtest.Student{Email: "new.pupil@springfield.example.org", Name: datahubtest.Name{First: "New", Last: "Pupil"}})
	p.step(t, "a student added", ev)
	sec, ev := p.hub.AddSection(datahubtest.Section{Name: "Robotics", Subject: "Technology", Teacher: newTeacher.ID, Students: []string{students[0].ID}})
	p.step(t, "a section added", ev)
	p.step(t, "a student enrolled", p.hub.Enroll(sec.ID, newStudent.ID))
	p.step(t, "a student unenrolled", p.hub.Unenroll(sections[0].ID, sections[0].Students[0]))
	p.step(t, "a section's teacher changed", p.hub.SetSectionTeacher(sections[1].ID, teachers[5].ID))
	p.step(t, "a student renamed", p.hub.RenameStudent(sections[4].Students[1], "Renamed", "Pupil"))
	p.step(t, "a section renamed", p.hub.UpdateSection(sections[2].ID, "Algebra II", ""))
	p.step(t, "a section deleted", p.hub.DeleteSection(sections[3].ID))
	p.step(t, "a teacher left", p.hub.RemoveTeacher(teachers[7].ID))
	p.noDuplicates(t)
	if c := p.worker.Counts(); c.Dead != 0 {
		t.Errorf("%d dead letters, want 0", c.Dead)
	}
	if _, ok := p.cls.FindClass(events.ExternalID("datahub", tenant, "section", sections[3].ID)); ok {
		t.Error("the deleted section's class is still in Class")
	}
}

func TestPollerKilledBeforeItsCursorMovesLosesNothing(t *testing.T) {
	p := newPipeline(t, 50*time.Millisecond)
	p.hub.Populate(5, 60, 6, 8)
	p.runSource(t)
	p.converged(t, 30*time.Second, "first sync")
	ctx := context.Background()
	before, err := p.res.Stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}

	kills := 0
	datahubsource.SetBeforeSaveHook(func() error {
		if kills < 3 {
			kills++
			return fmt.Errorf("killed between publishing and moving the cursor")
		}
		return nil
	})
	t.Cleanup(func() { datahubsource.SetBeforeSaveHook(nil) })
	sections := p.hub.Sections()
	p.hub.RenameStudent(sections[1].Students[0], "After", "Crash")
	p.step(t, "changes published by a poller that died before saving", p.hub.UpdateSection(sections[0].ID, "Renamed after crash", ""))
	if kills < 3 {
		t.Fatalf("the kill hook ran %d times, want 3", kills)
	}
	p.noDuplicates(t)
	after, err := p.res.Stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Three re-publishes of the same events were dropped by the stream's
	// duplicate window: the stream grew by one batch only.
	grown := after.State.Msgs - before.State.Msgs
	if grown == 0 || grown > 20 {
		t.Errorf("stream grew by %d messages; want the changes of two events once", grown)
	}
}

func TestExpiredTokenMidRunIsRenewed(t *testing.T) {
	p := newPipeline(t, 50*time.Millisecond)
	p.hub.Populate(3, 20, 2, 5)
	p.runSource(t)
	p.converged(t, 30*time.Second, "first sync")
	issued := p.hub.Stats().TokensIssued
	p.hub.ExpireTokens()
	p.step(t, "after the token expired", p.hub.RenameStudent(p.hub.Sections()[0].Students[0], "Token", "Renewed"))
	if got := p.hub.Stats().TokensIssued; got <= issued {
		t.Errorf("tokens issued %d → %d: no new token after expiry", issued, got)
	}
}

func TestMalformedEventsAreRejectedAndTheFeedGoesOn(t *testing.T) {
	p := newPipeline(t, 50*time.Millisecond)
	p.hub.Populate(3, 20, 2, 5)
	p.runSource(t)
	p.converged(t, 30*time.Second, "first sync")
	p.hub.AddEvent("sections.updated", "not an object", nil)
	p.hub.AddEvent("students.updated", map[string]any{"name": map[string]string{"first": "No id"}}, nil)
	p.hub.AddEvent("contacts.created", map[string]any{"id": "c1"}, nil)
	p.step(t, "a change after malformed events", p.hub.RenameStudent(p.hub.Sections()[0].Students[0], "After", "Malformed"))
	ctx := context.Background()
	msg, err := p.res.DLQ.GetLastMsgForSubject(ctx, events.RejectedSubject(tenant))
	if err != nil {
		t.Fatalf("no rejected record: %v", err)
	}
	if msg.Header.Get(events.HeaderDeadReason) == "" {
		t.Error("rejected record without a reason")
	}
	info, _ := p.res.DLQ.Info(ctx)
	if info.State.Msgs != 2 {
		t.Errorf("DLQ holds %d records, want 2 (the contact event is skipped, not rejected)", info.State.Msgs)
	}
	if got := p.src.Stats.EventsSkipped.Load(); got < 1 {
		t.Errorf("skipped events = %d, want the contacts event counted", got)
	}
	if !strings.Contains(string(msg.Data), "No id") {
		t.Errorf("rejected record does not hold the raw event: %s", msg.Data)
	}
}

func TestSafetyValveHoldsAMassDeletionUntilApproved(t *testing.T) {
	p := newPipeline(t, 50*time.Millisecond)
	p.hub.Populate(5, 40, 10, 4)
	stop := p.runSource(t)
	p.converged(t, 30*time.Second, "first sync")
	stop() // so that the four deletions land in one poll
	sections := p.hub.Sections()
	var last string
	for _, s := range sections[:4] { // 40 % of the classes
		last = p.hub.DeleteSection(s.ID)
	}
	p.runSource(t)
	p.caughtUp(t, last)
	ctx := context.Background()
	sets, err := p.stores.Held.List(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 1 || len(sets[0].Messages) == 0 {
		for _, s := range sets {
			t.Logf("set %s: %s (%d)", s.ID, s.Reason, len(s.Messages))
		}
		t.Fatalf("%d held change sets, want one with the deletions", len(sets))
	}
	t.Logf("held: %s (%d deletions)", sets[0].Reason, len(sets[0].Messages))
	for _, s := range sections[:4] {
		if _, ok := p.cls.FindClass(events.ExternalID("datahub", tenant, "section", s.ID)); !ok {
			t.Fatalf("class of section %s deleted while its deletion is held", s.ID)
		}
	}
	// A later change still flows while the deletions wait.
	p.caughtUp(t, p.hub.UpdateSection(sections[5].ID, "Still flowing", ""))
	p.classNamed(t, sections[5].ID, "Still flowing")
	n, err := p.stores.Held.Approve(ctx, p.js, tenant, sets[0].ID)
	if err != nil || n != len(sets[0].Messages) {
		t.Fatalf("approve: %d, %v", n, err)
	}
	p.converged(t, 30*time.Second, "held deletions approved")
	p.noDuplicates(t)
}

func TestIgnorePolicyNeverDeletes(t *testing.T) {
	p := newPipeline(t, 50*time.Millisecond, func(c *datahubsource.Config) { c.DeletionPolicy = datahubsource.PolicyIgnore })
	p.hub.Populate(3, 20, 4, 4)
	p.runSource(t)
	p.converged(t, 30*time.Second, "first sync")
	sec := p.hub.Sections()[0]
	p.caughtUp(t, p.hub.DeleteSection(sec.ID))
	renamed := p.hub.Sections()[0]
	p.caughtUp(t, p.hub.UpdateSection(renamed.ID, "After", ""))
	p.classNamed(t, renamed.ID, "After")
	if _, ok := p.cls.FindClass(events.ExternalID("datahub", tenant, "section", sec.ID)); !ok {
		t.Error("deletion policy ignore, yet the class was deleted")
	}
}

func TestGracePolicyDeletesOnlyAfterTheGracePeriod(t *testing.T) {
	const grace = 1500 * time.Millisecond
	p := newPipeline(t, 50*time.Millisecond, func(c *datahubsource.Config) {
		c.DeletionPolicy = datahubsource.PolicyGrace
		c.GracePeriod = grace
	})
	p.hub.Populate(3, 20, 6, 4)
	p.runSource(t)
	p.converged(t, 30*time.Second, "first sync")
	sec := p.hub.Sections()[0]
	deletedAt := time.Now()
	p.caughtUp(t, p.hub.DeleteSection(sec.ID))
	classID := events.ExternalID("datahub", tenant, "section", sec.ID)
	if _, ok := p.cls.FindClass(classID); !ok && time.Since(deletedAt) < grace {
		t.Fatal("class deleted before its grace period ended")
	}
	p.converged(t, 30*time.Second, "deletion after the grace period")
	if took := time.Since(deletedAt); took < grace {
		t.Errorf("class deleted %s after the event, before the %s grace period", took, grace)
	}
}

// A first sync published and then cut short before its cursor was saved,
// while the district changed: the next full read must remove from Class what
// the first one published and the district no longer has, though no saved
// roster ever held it.
func TestInterruptedFirstSyncLeavesNothingStale(t *testing.T) {
	p := newPipeline(t, 50*time.Millisecond)
	p.hub.Populate(5, 60, 6, 8)
	sections, teachers := p.hub.Sections(), p.hub.Teachers()
	unenrolled := false
	datahubsource.SetBeforeSaveHook(func() error {
		if unenrolled {
			return nil
		}
		unenrolled = true
		// The first sync's messages are in the stream; the district
		// changes; the poller dies before saving.
		p.hub.Unenroll(sections[0].ID, sections[0].Students[0])
		p.hub.RemoveTeacher(teachers[len(teachers)-1].ID)
		return fmt.Errorf("killed between publishing and moving the cursor")
	})
	t.Cleanup(func() { datahubsource.SetBeforeSaveHook(nil) })
	p.runSource(t)
	p.converged(t, 30*time.Second, "a first sync retried after the district changed")
	if !unenrolled {
		t.Fatal("the kill hook never ran: the test proved nothing")
	}
	// The second read published again only what changed: the states the
	// first one had published already had the same ids.
	info, err := p.res.Stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if states := len(datahubsource.Mapper{Tenant: tenant}.States(p.roster(t))); info.State.Msgs > uint64(states)+10 {
		t.Errorf("PROVISION holds %d messages for a district of %d states: the retried first sync published it twice", info.State.Msgs, states)
	}
	p.noDuplicates(t)
	if c := p.worker.Counts(); c.Dead != 0 {
		t.Errorf("%d dead letters, want 0", c.Dead)
	}
}
