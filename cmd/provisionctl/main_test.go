package main

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/ops"
)

const converge = 60 * time.Second

func TestUsageErrorsExitTwo(t *testing.T) {
	s := &site{t: t, ctx: context.Background(), cfgPath: "/nonexistent/config.yaml"}
	for _, tc := range []struct {
		args []string
		code int
		say  string
	}{
		{nil, exitUsage, "usage: provisionctl"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"replay"}, exitUsage, "--tenant is required"},
		{[]string{"replay", "--tenant", "x", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"dlq", "show"}, exitUsage, "dlq show takes one sequence number"},
		{[]string{"dlq", "show", "--help"}, exitOK, "usage: provisionctl dlq show <seq>"},
		{[]string{"dlq", "list", "--tenant", "x", "42"}, exitUsage, "did you mean dlq show 42?"},
		{[]string{"dlq", "list", "--tenant", "x", "--all"}, exitUsage, "flag provided but not defined: -all"},
		{[]string{"dlq", "redrive", "--tenant", "x"}, exitUsage, "needs sequence numbers, --subject or --all"},
		{[]string{"dlq", "drop", "--tenant", "x", "abc"}, exitUsage, `"abc" is not a dead letter's sequence number`},
		{[]string{"status"}, exitUsage, "invalid configuration /nonexistent/config.yaml"},
		{[]string{"help", "replay"}, exitOK, "--dry-run"},
		{[]string{"explain", "--help"}, exitOK, "usage: provisionctl explain"},
	} {
		code, out, errOut := s.ctl(tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.say) {
			t.Errorf("provisionctl %v: exit %d, want %d saying %q; got:\n%s%s", tc.args, code, tc.code, tc.say, out, errOut)
		}
	}
}

// Help asked for is the output, so that it can be paged or searched; help
// after a mistake goes with the error to stderr.
func TestHelpAskedForGoesToStdout(t *testing.T) {
	s := &site{t: t, ctx: context.Background(), cfgPath: "/nonexistent/config.yaml"}
	for _, args := range [][]string{{"--help"}, {"help"}, {"help", "replay"}, {"replay", "--help"}, {"dlq", "--help"}, {"dlq", "drop", "-h"}} {
		code, out, errOut := s.ctl(args...)
		if code != exitOK || !strings.Contains(out, "usage: provisionctl") || errOut != "" {
			t.Errorf("provisionctl %v: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", args, code, out, errOut)
		}
	}
	code, out, errOut := s.ctl("replay", "--bogus")
	if code != exitUsage || out != "" || !strings.Contains(errOut, "usage: provisionctl replay") {
		t.Errorf("a bad flag: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", code, out, errOut)
	}
}

func TestReplayRestoresAWipedClass(t *testing.T) {
	s := newSite(t, siteOpts{})
	want := s.converged(converge)
	if len(want.Classes) == 0 || len(want.Users) == 0 {
		t.Fatalf("nothing provisioned: %+v", want)
	}

	s.cls.Reset()
	// A dry run over the wiped Class finds every entity missing, and
	// changes nothing.
	var dry ops.ReplayResult
	s.ctlJSON(&dry, "replay", "--tenant", tenant, "--dry-run")
	// Every entity but the hosts' teacher enrollments, which Class makes
	// with the class, differs.
	if dry.Differing != dry.Entities-len(want.Classes) || dry.Errors != 0 || dry.Published != 0 {
		t.Errorf("dry run over an empty Class: %d of %d entities differ (%d classes), %d errors, %d published", dry.Differing, dry.Entities, len(want.Classes), dry.Errors, dry.Published)
	}
	if st := s.cls.State(); len(st.Classes)+len(st.Users) != 0 {
		t.Fatalf("the dry run changed Class: %d classes, %d users", len(st.Classes), len(st.Users))
	}

	var res ops.ReplayResult
	s.ctlJSON(&res, "replay", "--tenant", tenant)
	if res.Published == 0 || res.Published != res.Entities-res.Skipped {
		t.Fatalf("replay: %+v", res)
	}
	if got := s.converged(converge); got.diff(want) != "" {
		t.Fatalf("after replay Class differs from before the wipe:\n%s", want.diff(got))
	}
	if d := s.cls.Duplicates(); len(d) != 0 {
		t.Errorf("duplicate side effects: %+v", d)
	}

	// --all rebuilds from the desired-state bucket, messages or not.
	s.cls.Reset()
	s.ctlJSON(&res, "replay", "--tenant", tenant, "--all")
	if res.Published == 0 {
		t.Fatalf("replay --all published nothing: %+v", res)
	}
	if got := s.converged(converge); got.diff(want) != "" {
		t.Fatalf("after replay --all Class differs:\n%s", want.diff(got))
	}
	code, out, _ := s.ctl("replay", "--tenant", tenant, "--kind", "class", "--dry-run")
	if code != 0 || !strings.Contains(out, "0 differ from Class (0 changes)") {
		t.Errorf("a dry run over a repaired Class should find nothing: exit %d\n%s", code, out)
	}
}

func TestReplayDryRunListsExactlyTheDifferences(t *testing.T) {
	s := newSite(t, siteOpts{})
	s.converged(converge)
	api, err := class.New(s.cls.URL(), classKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := s.cls.State()
	renamed := st.Classes[0].ExtClassID
	newName := "Renamed by hand"
	if err := api.UpdateClass(ctx, class.UpdateClassRequest{Ref: class.ClassRef{ExtClassID: renamed}, ClassName: &newName}); err != nil {
		t.Fatal(err)
	}
	var unenrolled events.EnrollmentState
	for _, e := range st.Classes[1].Enrollments {
		if e.Role == events.RoleStudent && e.ExtPersonID != "" {
			unenrolled = events.EnrollmentState{ExtClassID: st.Classes[1].ExtClassID, Person: events.Person{ExtPersonID: e.ExtPersonID}}
			break
		}
	}
	if err := api.DeleteEnrollment(ctx, class.EnrollmentRef{ExtClassID: unenrolled.ExtClassID, ExtPersonID: unenrolled.ExtPersonID}); err != nil {
		t.Fatal(err)
	}
	before := classView(s.cls.State())
	writes := func() int {
		n := 0
		for ep, c := range s.cls.Stats().ByEndpoint {
			if !strings.HasPrefix(ep, "GET ") {
				n += c
			}
		}
		return n
	}
	writesBefore := writes()

	var res ops.ReplayResult
	s.ctlJSON(&res, "replay", "--tenant", tenant, "--dry-run")
	var got []string
	for _, it := range res.Items {
		for _, c := range it.Changes {
			got = append(got, string(c.Kind)+" "+c.Key+" "+c.Action+" "+strings.Join(c.Fields, ","))
		}
	}
	slices.Sort(got)
	want := []string{
		"class " + renamed + " update class class_name",
		"enrollment " + unenrolled.Key() + " create enrollment ",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("dry run found\n  %s\nwant exactly\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if res.Differing != 2 || res.Changes != 2 {
		t.Errorf("counts: %d entities differ with %d changes, want 2 and 2", res.Differing, res.Changes)
	}
	if after := classView(s.cls.State()); after.diff(before) != "" || writes() != writesBefore {
		t.Errorf("the dry run changed Class (%d writes):\n%s", writes()-writesBefore, before.diff(after))
	}
	code, out, _ := s.ctl("replay", "--tenant", tenant, "--dry-run")
	if code != 0 || !strings.Contains(out, "class "+renamed+": update class (class_name)") || !strings.Contains(out, "2 differ from Class (2 changes)") {
		t.Errorf("human dry run output: exit %d\n%s", code, out)
	}
}

func TestDeadLetterFixedAndRedrivenConverges(t *testing.T) {
	noZone := ""
	s := newSite(t, siteOpts{workerTimezone: &noZone})
	sections := len(s.hub.Sections())
	eventually.Holds(t, converge, "every class dead-lettered", func() (bool, string) {
		st := s.status()
		return st.DeadLetters == uint64(sections), strconv.FormatUint(st.DeadLetters, 10)
	})
	var list []ops.DeadLetter
	s.ctlJSON(&list, "dlq", "list", "--tenant", tenant)
	if len(list) != sections {
		t.Fatalf("dlq list: %d, want %d", len(list), sections)
	}
	for _, d := range list {
		if !strings.Contains(d.Reason, "time zone") || !strings.HasPrefix(d.OriginalSubject, "provision."+tenant+".class.upsert") {
			t.Errorf("dead letter %d: %+v", d.Seq, d)
		}
	}
	// A class never applied says so, not a zero date.
	if code, out, _ := s.ctl("explain", "--tenant", tenant, s.hub.Sections()[0].ID); code != 0 || !strings.Contains(out, "applied to Class: never") {
		t.Errorf("explain of a dead-lettered class: exit %d\n%s", code, out)
	}
	// Nor does an answer repeat an email asked about: it goes into tickets.
	if code, out, errOut := s.ctl("explain", "--tenant", tenant, "nobody.here@pupils.example"); code != 0 || strings.Contains(out+errOut, "nobody.here") || !strings.Contains(out, "[email]") {
		t.Errorf("explain of an unknown email: exit %d\n%s%s", code, out, errOut)
	}
	// The subject the list shows selects them, as does the dead letters' own.
	for _, filter := range []string{"provision." + tenant + ".class.upsert", "provision." + tenant + ".dead.class.*", "provision." + tenant + ".user.*"} {
		var some []ops.DeadLetter
		s.ctlJSON(&some, "dlq", "list", "--tenant", tenant, "--subject", filter)
		want := sections
		if strings.Contains(filter, "user") {
			want = 0
		}
		if len(some) != want {
			t.Errorf("dlq list --subject %s: %d, want %d", filter, len(some), want)
		}
	}
	var one ops.DeadLetter
	s.ctlJSON(&one, "dlq", "show", strconv.FormatUint(list[0].Seq, 10))
	if !strings.Contains(string(one.Data), `"ext_class_id"`) || one.Header.Get(events.HeaderID) == "" {
		t.Errorf("dlq show lacks the original message: %+v", one)
	}

	// The fix: the worker gets its time zone. Then redrive.
	s.stopWorker()
	s.startWorker(nil)
	var rr ops.RedriveResult
	s.ctlJSON(&rr, "dlq", "redrive", "--tenant", tenant, "--all")
	if len(rr.Redriven) != sections {
		t.Fatalf("redriven %v, want %d", rr.Redriven, sections)
	}
	s.converged(converge)
	if st := s.status(); st.DeadLetters != 0 {
		t.Errorf("dead letters after redrive: %d", st.DeadLetters)
	}
	if d := s.cls.Duplicates(); len(d) != 0 {
		t.Errorf("duplicate side effects: %+v", d)
	}
}

func TestExplainTellsAnEnrolledStudentsStory(t *testing.T) {
	s := newSite(t, siteOpts{})
	s.converged(converge)
	var sectionID, studentID string
	for _, sec := range s.hub.Sections() {
		if len(sec.Students) > 0 {
			sectionID, studentID = sec.ID, sec.Students[0]
			break
		}
	}
	var email string
	for _, st := range s.hub.Students() {
		if st.ID == studentID {
			email = st.Email
		}
	}
	var ex ops.Explanation
	s.ctlJSON(&ex, "explain", "--tenant", tenant, studentID)
	var found *ops.EntityHistory
	for i, h := range ex.Entities {
		if h.Kind == events.KindEnrollment && strings.Contains(h.Key, sectionID) && strings.HasSuffix(h.Key, ":"+studentID) {
			found = &ex.Entities[i]
		}
	}
	if found == nil {
		t.Fatalf("explain %s: no enrollment in section %s: %+v", studentID, sectionID, ex.Entities)
	}
	if found.Applied.IsZero() || len(found.Messages) == 0 {
		t.Fatalf("entity: %+v", found)
	}
	m := found.Messages[0]
	if m.Origin.Source != "datahub" || m.Origin.ID == "" || !strings.HasPrefix(m.Source, "/rollcall/datahub/") || m.MessageID == "" || m.Subject != "provision."+tenant+".enrollment.upsert" {
		t.Errorf("message: %+v", m)
	}
	traceID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	var applied bool
	for _, a := range m.Attempts {
		if a.Result != "applied" || !traceID.MatchString(a.TraceID) {
			continue
		}
		var read, posted bool
		for _, c := range a.Calls {
			// The read may be one another enrollment of the class sent.
			read = read || c.Method == "GET" && c.Path == "/api/v1/class/enrollments" && c.Status == 200
			posted = posted || c.Method == "POST" && c.Path == "/api/v1/class/enrollments" && c.Status/100 == 2
		}
		applied = applied || read && posted
	}
	if !applied {
		t.Errorf("no applied attempt with a trace id, the read of the class's enrollments and a successful POST /api/v1/class/enrollments: %+v", m.Attempts)
	}

	// By email too, and for people to read.
	code, out, errOut := s.ctl("explain", "--tenant", tenant, email)
	if code != 0 || !strings.Contains(out, "enrollment "+found.Key) || !strings.Contains(out, "POST /api/v1/class/enrollments -> 200") || !strings.Contains(out, "GET /api/v1/class/enrollments -> 200") || !strings.Contains(out, ", trace ") {
		t.Errorf("explain by email: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, email) {
		t.Errorf("explain prints the pupil's email")
	}
}

func TestHeldMassDeletionWaitsForApprove(t *testing.T) {
	s := newSite(t, siteOpts{maxDeleteShare: 0.2})
	s.converged(converge)
	sections := s.hub.Sections()
	for _, sec := range sections[:3] {
		s.hub.DeleteSection(sec.ID)
	}
	var held string
	eventually.Holds(t, converge, "the deletions held", func() (bool, string) {
		st := s.status()
		if len(st.Held) == 1 {
			held = st.Held[0].ID
		}
		return held != "", "none held"
	})
	if n := len(s.cls.State().Classes); n != len(sections) {
		t.Fatalf("held deletions were applied: %d classes, want %d", n, len(sections))
	}
	// Without --yes and without a terminal, nothing happens.
	code, out, errOut := s.ctl("approve", "--tenant", tenant, held)
	if code != exitUsage || !strings.Contains(errOut, "refusing without --yes") || !strings.Contains(out, "delete class datahub:"+tenant+":section:"+sections[0].ID) {
		t.Fatalf("approve without --yes: exit %d\n%s%s", code, out, errOut)
	}
	if st := s.status(); len(st.Held) != 1 {
		t.Fatalf("held sets after a refused approve: %+v", st.Held)
	}
	if code, out, errOut := s.ctl("approve", "--tenant", tenant, held, "--yes"); code != 0 {
		t.Fatalf("approve: exit %d\n%s%s", code, out, errOut)
	}
	eventually.Holds(t, converge, "the approved deletions applied", func() (bool, string) {
		n := len(s.cls.State().Classes)
		return n == len(sections)-3, strconv.Itoa(n) + " classes"
	})
	if st := s.status(); len(st.Held) != 0 {
		t.Errorf("held sets after approve: %+v", st.Held)
	}
}

func TestPausedTenantWaitsThenConvergesOnResume(t *testing.T) {
	s := newSite(t, siteOpts{})
	s.converged(converge)
	st := s.status()
	if st.Lease == nil || st.Lease.Holder != "test-poller" || st.Cursor == nil || st.State.Status != "active" {
		t.Fatalf("status before pause: %+v", st)
	}
	if code, out, errOut := s.ctl("pause", "--tenant", tenant, "--reason", "term break"); code != 0 || !strings.Contains(out, "is paused") {
		t.Fatalf("pause: exit %d\n%s%s", code, out, errOut)
	}
	eventually.Holds(t, 10*time.Second, "the worker to pause the tenant", func() (bool, string) {
		paused, _ := s.worker.TenantPaused(tenant)
		return paused, "running"
	})
	// The poller stops too: DataHub sees no more requests.
	last, still := -1, 0
	eventually.Holds(t, 10*time.Second, "the poller to stop polling", func() (bool, string) {
		n := s.hub.Stats().Requests
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
		return still >= 25, "" // 25 looks 20 ms apart: five poll intervals without a request
	})
	sec := s.hub.Sections()[0]
	added, _ := s.hub.AddStudent(datahubStudent("Paused", "Pupil"))
	s.hub.Enroll(sec.ID, added.ID)
	ext := "datahub:" + tenant + ":section:" + sec.ID
	enrolled := func() bool {
		c, _ := s.cls.FindClass(ext)
		for _, e := range c.Enrollments {
			if strings.HasSuffix(e.ExtPersonID, ":"+added.ID) {
				return true
			}
		}
		return false
	}
	// For ten poll intervals, the change waits at the source.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if enrolled() || s.hub.Stats().Requests != last {
			t.Fatal("a paused tenant was polled or its change applied")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := s.status(); st.State.Status != "paused" || st.State.Reason != "term break" {
		t.Errorf("status while paused: %+v", st.State)
	}
	if code, out, _ := s.ctl("status", "--tenant", tenant); code != 0 || !strings.Contains(out, ": term break") {
		t.Errorf("status, for people, while paused: exit %d\n%s", code, out)
	}
	if code, _, errOut := s.ctl("resume", "--tenant", tenant); code != 0 {
		t.Fatalf("resume: exit %d %s", code, errOut)
	}
	eventually.Holds(t, converge, "the waiting change applied", func() (bool, string) { return enrolled(), "not enrolled" })
	s.converged(converge)
}

func TestResyncRestoresAndRemovesOnlyItsOwn(t *testing.T) {
	s := newSite(t, siteOpts{})
	want := s.converged(converge)
	api, err := class.New(s.cls.URL(), classKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	host := s.cls.State().Users[0]
	for _, ext := range []string{"datahub:" + tenant + ":section:ghost", "handmade-1"} {
		if _, err := api.CreateClass(ctx, class.CreateClassRequest{Email: host.Email, FirstName: "A", LastName: "B", Timezone: tz, ExtClassID: ext, ClassName: ext}); err != nil {
			t.Fatal(err)
		}
	}
	lost := s.cls.State().Classes[0].ExtClassID
	if lost == "datahub:"+tenant+":section:ghost" || lost == "handmade-1" {
		lost = s.cls.State().Classes[2].ExtClassID
	}
	if err := api.DeleteClass(ctx, class.ClassRef{ExtClassID: lost}); err != nil {
		t.Fatal(err)
	}

	var dry ops.ResyncResult
	s.ctlJSON(&dry, "resync", "--tenant", tenant, "--dry-run")
	if len(dry.Deletions) != 1 || dry.Deletions[0].Key != "datahub:"+tenant+":section:ghost" || dry.DeletionsHow != "published" || dry.Published != 0 {
		t.Fatalf("resync --dry-run: %+v", dry)
	}
	if _, ok := s.cls.FindClass("datahub:" + tenant + ":section:ghost"); !ok {
		t.Fatal("the dry run deleted the ghost")
	}
	var res ops.ResyncResult
	s.ctlJSON(&res, "resync", "--tenant", tenant)
	if res.Upserts == 0 || res.Published != res.Upserts+1 {
		t.Fatalf("resync: %+v", res)
	}
	eventually.Holds(t, converge, "resync applied", func() (bool, string) {
		_, ghost := s.cls.FindClass("datahub:" + tenant + ":section:ghost")
		_, back := s.cls.FindClass(lost)
		_, hand := s.cls.FindClass("handmade-1")
		return !ghost && back && hand, "ghost " + strconv.FormatBool(ghost) + " back " + strconv.FormatBool(back) + " handmade " + strconv.FormatBool(hand)
	})
	got := classView(s.cls.State())
	delete(got.Classes, "handmade-1")
	if d := want.diff(got); d != "" {
		t.Errorf("after resync:\n%s", d)
	}
}

func TestOffboardRemovesOnlyWhatThisSystemCreated(t *testing.T) {
	s := newSite(t, siteOpts{})
	s.converged(converge)
	api, err := class.New(s.cls.URL(), classKey)
	if err != nil {
		t.Fatal(err)
	}
	hand := s.cls.SeedUser(classtestUser("hand@school.example"))
	if _, err := api.CreateClass(context.Background(), class.CreateClassRequest{Email: hand.Email, FirstName: "H", LastName: "M", Timezone: tz, ExtClassID: "handmade-1", ClassName: "Handmade"}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := s.ctl("offboard", "--tenant", tenant, "--delete-from-class", "--yes")
	if code != 0 || !strings.Contains(out, "is offboarded") {
		t.Fatalf("offboard: exit %d\n%s%s", code, out, errOut)
	}
	st := s.cls.State()
	if len(st.Classes) != 1 || st.Classes[0].ExtClassID != "handmade-1" {
		t.Errorf("classes left: %+v", st.Classes)
	}
	for _, u := range st.Users {
		if ops.Ours(u.ExtUserID, tenant) {
			t.Errorf("user %s left", u.ExtUserID)
		}
	}
	if len(st.Users) != 1 || st.Users[0].Email != hand.Email {
		t.Errorf("users left: %d", len(st.Users))
	}
	if paused, _ := s.worker.TenantPaused(tenant); !paused {
		eventually.Holds(t, 10*time.Second, "the worker to stop the tenant", func() (bool, string) {
			p, _ := s.worker.TenantPaused(tenant)
			return p, ""
		})
	}
	if s := s.status(); s.State.Status != "offboarded" {
		t.Errorf("status: %+v", s.State)
	}
}
