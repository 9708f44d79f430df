package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
)

// plan sizes one chaos run.
type plan struct {
	seed uint64
	// The district at the start.
	teachers, students, sections, perSection int
	// rounds of source changes; each round makes 1 to 3 changes, may carry
	// one disruption, then pauses between pauseMin and pauseMax.
	rounds             int
	pauseMin, pauseMax time.Duration
	// Disruptions, spread at random over the rounds.
	workerKills, pollerKills, natsRestarts, tokenExpiries, malformed int
	// faultRate is the share of upstream requests (Class and DataHub) that
	// fail with 500, 503 or 429 while the chaos lasts.
	faultRate float64
	// converge bounds the wait for Class to equal the district once the
	// faults stop.
	converge     time.Duration
	pollInterval time.Duration
}

// figures are what a run did, printed at its end.
type figures struct {
	workerKills, pollerKills, natsRestarts, tokenExpiries int
	malformed, poison                                     int
	changes                                               map[string]int
	events                                                int
	faults                                                int
	selfExits                                             int
	chaos, converge                                       time.Duration
	streamMsgs                                            uint64
}

func (f figures) String() string {
	var ch []string
	total := 0
	for k, n := range f.changes {
		ch = append(ch, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	slices.Sort(ch)
	return fmt.Sprintf("SIGKILLs: worker %d, poller %d; nats-server restarts %d; DataHub token expiries %d; "+
		"upstream faults injected %d; malformed events %d, poison records %d; source changes %d (%s) in %d events; "+
		"processes exiting by themselves %d; chaos lasted %s; converged %s after the faults stopped; PROVISION holds %d messages",
		f.workerKills, f.pollerKills, f.natsRestarts, f.tokenExpiries, f.faults, f.malformed, f.poison,
		total, strings.Join(ch, ", "), f.events, f.selfExits, f.chaos.Round(time.Millisecond), f.converge.Round(time.Millisecond), f.streamMsgs)
}

// disruption is one thing done to the system in a round.
type disruption int

const (
	none disruption = iota
	killWorker
	killPoller
	restartNATS
	expireTokens
	malformedEvent
	poisonRecord
)

// runChaos runs the plan and asserts what must hold after it: Class equals
// the district, no side effect happened twice, every change reached Class,
// and the dead-letter stream holds exactly the poison and the malformed
// events.
func runChaos(t *testing.T, p plan) figures {
	rng := rand.New(rand.NewPCG(p.seed, 0xc4a05))
	c := startCluster(t, datahubtest.Options{Seed: int64(p.seed)}, p.pollInterval)
	f := figures{changes: map[string]int{}}
	firstEvent := len(c.hub.Events())
	c.hub.Populate(p.teachers, p.students, p.sections, p.perSection)

	// Faults from the first sync on.
	setFaults(c, p.faultRate)

	schedule := make([]disruption, p.rounds)
	i := 0
	for _, d := range []struct {
		what disruption
		n    int
	}{{killWorker, p.workerKills}, {killPoller, p.pollerKills}, {restartNATS, p.natsRestarts},
		{expireTokens, p.tokenExpiries}, {malformedEvent, p.malformed}, {poisonRecord, 1}} {
		for range d.n {
			schedule[i] = d.what
			i++
		}
	}
	if i > p.rounds {
		t.Fatalf("plan: %d disruptions in %d rounds", i, p.rounds)
	}
	rng.Shuffle(len(schedule), func(a, b int) { schedule[a], schedule[b] = schedule[b], schedule[a] })

	// The test's own view of the cursor, through a connection that rides
	// out the broker's restarts.
	watch := c.connect(nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	var cursors jetstream.KeyValue
	synced := false
	firstSyncDone := func() bool {
		if synced {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if cursors == nil {
			kv, err := watch.KeyValue(ctx, datahubsource.CursorBucket)
			if err != nil {
				return false
			}
			cursors = kv
		}
		_, found, err := datahubsource.ReadCursor(ctx, cursors, tenant)
		synced = err == nil && found
		return synced
	}
	pendingMalformed := 0
	var malformedMarks []string
	injectMalformed := func() {
		for ; pendingMalformed > 0; pendingMalformed-- {
			mark := fmt.Sprintf("chaos-malformed-%d", len(malformedMarks))
			malformedMarks = append(malformedMarks, mark)
			if len(malformedMarks)%2 == 1 {
				// data.object is not an object: the page decodes, the event does not.
				c.hub.AddEvent("sections.updated", mark, nil)
			} else {
				// An object without an id: the mapping cannot place it.
				c.hub.AddEvent("students.updated", map[string]any{"name": map[string]string{"first": mark}}, nil)
			}
			f.malformed++
		}
	}
	skip := map[string]bool{}
	var poisonKey string
	start := time.Now()
	for _, d := range schedule {
		for range 1 + rng.IntN(3) {
			if what := change(c, rng); what != "" {
				f.changes[what]++
			}
		}
		switch d {
		case killWorker:
			c.worker.kill()
			f.workerKills++
			pause(rng, 0, 300*time.Millisecond)
			mustStart(t, c.worker)
		case killPoller:
			c.poller.kill()
			f.pollerKills++
			pause(rng, 0, 300*time.Millisecond)
			mustStart(t, c.poller)
		case restartNATS:
			c.restartNATS()
			f.natsRestarts++
		case expireTokens:
			c.hub.ExpireTokens()
			f.tokenExpiries++
		case malformedEvent:
			// The first sync reads the roster, not the events before the
			// head it noted, so a malformed event from before then is
			// rightly never seen: inject them once a cursor is stored.
			pendingMalformed++
		case poisonRecord:
			// A teacher whose email Class refuses (400): one user upsert that
			// must end in the dead-letter stream, not spin or block.
			tch, _ := c.hub.AddTeacher(datahubtest.Teacher{Email: "poison teacher@chaos.example.org", Name: datahubtest.Name{First: "Poison", Last: "Record"}})
			poisonKey = events.ExternalID("datahub", tenant, "teacher", tch.ID)
			skip["user "+poisonKey] = true
			f.poison++
		}
		if pendingMalformed > 0 && firstSyncDone() {
			injectMalformed()
		}
		for _, p := range []*proc{c.worker, c.poller} {
			if gone, why := p.exitedByItself(); gone {
				t.Errorf("%s exited by itself: %s", p.name, strings.Join(why, "; "))
				f.selfExits++
				mustStart(t, p)
			}
		}
		pause(rng, p.pauseMin, p.pauseMax)
	}
	if pendingMalformed > 0 {
		if _, ok := waitFor(p.converge, 100*time.Millisecond, firstSyncDone); !ok {
			t.Fatalf("the poller stored no cursor within %s", p.converge)
		}
		injectMalformed()
	}
	f.chaos = time.Since(start)
	f.faults = c.hub.Stats().Faults + c.cls.Stats().Faults
	setFaults(c, 0)
	f.events = len(c.hub.Events()) - firstEvent

	// Convergence: the poller has read the whole feed, the worker has
	// nothing pending, and Class equals the district.
	js := c.connect()
	ctx := context.Background()
	stores, err := datahubsource.EnsureStores(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	feed := c.hub.Events()
	lastEvent := feed[len(feed)-1].ID
	var last []string
	var lastState string
	took, ok := waitFor(p.converge, 100*time.Millisecond, func() bool {
		cur, found, err := datahubsource.ReadCursor(ctx, stores.Cursors, tenant)
		if err != nil || !found || cur.LastEventID < lastEvent {
			lastState = fmt.Sprintf("cursor at %q (found %v, %v), feed head %q", cur.LastEventID, found, err, lastEvent)
			return false
		}
		cons, err := js.Consumer(ctx, events.StreamName, events.WorkerConsumerName(tenant))
		if err != nil {
			lastState = err.Error()
			return false
		}
		info, err := cons.Info(ctx)
		if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
			lastState = fmt.Sprintf("worker consumer: %d pending, %d unacknowledged (%v)", info.NumPending, info.NumAckPending, err)
			return false
		}
		if last, err = c.mismatch(skip); err != nil {
			t.Fatal(err)
		}
		lastState = "Class differs from the district: " + strings.Join(last, "; ")
		return len(last) == 0
	})
	f.converge = took
	if s, err := js.Stream(ctx, events.StreamName); err == nil {
		if info, err := s.Info(ctx); err == nil {
			f.streamMsgs = info.State.Msgs
		}
	}
	t.Logf("figures: %s", f)
	if !ok {
		t.Fatalf("no convergence within %s of the faults stopping: %s", p.converge, lastState)
	}

	if d := c.cls.Duplicates(); len(d) > 0 {
		t.Errorf("%d duplicate side effects in Class, first: %+v", len(d), d[0])
	}
	checkDeadLetters(t, ctx, js, malformedMarks, poisonKey)
	for _, p := range []*proc{c.worker, c.poller} {
		if !p.running() {
			t.Errorf("%s is not running at the end", p.name)
		}
	}
	return f
}

// checkDeadLetters asserts the dead-letter stream holds exactly one record
// per malformed event (rejected by the poller, with the raw event) and the
// poison user (dead-lettered by the worker, with its reason).
func checkDeadLetters(t *testing.T, ctx context.Context, js jetstream.JetStream, marks []string, poisonKey string) {
	t.Helper()
	dead, err := deadLetters(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, m := range dead {
		switch {
		case m.Subject == events.RejectedSubject(tenant):
			for _, mark := range marks {
				if strings.Contains(string(m.Data), mark) {
					found[mark]++
				}
			}
			if m.Header.Get(events.HeaderDeadReason) == "" {
				t.Errorf("rejected record without a reason: %s", m.Data)
			}
		case m.Subject == events.DeadSubject(tenant, events.KindUser, events.OpUpsert) && poisonKey != "" && strings.Contains(string(m.Data), poisonKey):
			found["poison"]++
			if r := m.Header.Get(events.HeaderDeadReason); !strings.Contains(r, "400") && !strings.Contains(strings.ToLower(r), "email") {
				t.Errorf("poison dead-lettered for %q, want Class's validation error", r)
			}
		default:
			t.Errorf("unexpected dead letter on %s: reason %q, body %.300s", m.Subject, m.Header.Get(events.HeaderDeadReason), m.Data)
		}
	}
	for _, mark := range marks {
		if found[mark] != 1 {
			t.Errorf("malformed event %s: %d dead letters, want 1", mark, found[mark])
		}
	}
	if poisonKey != "" && found["poison"] != 1 {
		t.Errorf("poison user %s: %d dead letters, want 1", poisonKey, found["poison"])
	}
	if want := len(marks) + 1; len(dead) != want {
		t.Errorf("PROVISION_DLQ holds %d records, want %d (%d malformed events and the poison)", len(dead), want, len(marks))
	}
}

func setFaults(c *cluster, rate float64) {
	// Half 500s, a quarter 503s, a quarter 429s (Retry-After 1s).
	c.cls.SetFaults(classtest.Faults{Rate500: rate / 2, Rate503: rate / 4, Rate429: rate / 4, RetryAfter: time.Second})
	c.hub.SetFaults(datahubtest.Faults{Rate500: rate / 2, Rate503: rate / 4, Rate429: rate / 4, RetryAfter: time.Second})
}

func mustStart(t *testing.T, p *proc) {
	t.Helper()
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
}

// pause waits a random time in [lo, hi): the chaos's pace, not a wait for
// anything to happen.
func pause(rng *rand.Rand, lo, hi time.Duration) {
	d := lo
	if hi > lo {
		d += time.Duration(rng.Int64N(int64(hi - lo)))
	}
	if d > 0 {
		time.Sleep(d)
	}
}

// change makes one random change to the district through the simulator's
// scenario API and returns its name, or "" when it found nothing to change.
// It keeps every teacher with an email (the poison aside), so each section's
// class keeps a host.
func change(c *cluster, rng *rand.Rand) string {
	sections := c.hub.Sections()
	students := c.hub.Students()
	teachers := c.hub.Teachers()
	var good []datahubtest.Teacher
	for _, t := range teachers {
		if !strings.Contains(t.Email, " ") {
			good = append(good, t)
		}
	}
	// Random, for the names' sake, and numbered: two teachers given one
	// email by chance are a genuine conflict (the second one is
	// dead-lettered), which this district must not hold.
	c.changes++
	n := fmt.Sprintf("%d-%d", rng.Uint32()%100000, c.changes)
	switch k := rng.IntN(100); {
	case k < 15 && len(sections) > 0:
		st, _ := c.hub.AddStudent(datahubtest.Student{Email: "pupil" + n + "@chaos.example.org", Name: datahubtest.Name{First: "New" + n, Last: "Pupil"}})
		c.hub.Enroll(sections[rng.IntN(len(sections))].ID, st.ID)
		return "student added and enrolled"
	case k < 30 && len(sections) > 0 && len(students) > 0:
		if c.hub.Enroll(sections[rng.IntN(len(sections))].ID, students[rng.IntN(len(students))].ID) != "" {
			return "student enrolled"
		}
	case k < 45 && len(sections) > 0:
		s := sections[rng.IntN(len(sections))]
		if len(s.Students) > 0 {
			c.hub.Unenroll(s.ID, s.Students[rng.IntN(len(s.Students))])
			return "student unenrolled"
		}
	case k < 60 && len(students) > 0:
		c.hub.RenameStudent(students[rng.IntN(len(students))].ID, "Renamed"+n, "Pupil")
		return "student renamed"
	case k < 68:
		c.hub.AddTeacher(datahubtest.Teacher{Email: "teacher" + n + "@chaos.example.org", Name: datahubtest.Name{First: "New" + n, Last: "Teacher"}})
		return "teacher added"
	case k < 78 && len(sections) > 0 && len(good) > 1:
		if c.hub.SetSectionTeacher(sections[rng.IntN(len(sections))].ID, good[rng.IntN(len(good))].ID) != "" {
			return "primary teacher changed"
		}
	case k < 84 && len(sections) > 0:
		c.hub.UpdateSection(sections[rng.IntN(len(sections))].ID, "Section "+n, "")
		return "section renamed"
	case k < 90 && len(good) > 0:
		c.hub.AddSection(datahubtest.Section{Name: "New section " + n, Subject: "math", Teacher: good[rng.IntN(len(good))].ID,
			Students: pick(rng, students, 3)})
		return "section added"
	case k < 95 && len(sections) > 4:
		c.hub.DeleteSection(sections[rng.IntN(len(sections))].ID)
		return "section deleted"
	default:
		// A teacher who is nobody's primary leaves the district.
		for _, i := range rng.Perm(len(good)) {
			if !primary(sections, good[i].ID) {
				c.hub.RemoveTeacher(good[i].ID)
				return "teacher removed"
			}
		}
	}
	return ""
}

func primary(sections []datahubtest.Section, teacherID string) bool {
	for _, s := range sections {
		if s.Teacher == teacherID || slices.Contains(s.Teachers, teacherID) {
			return true
		}
	}
	return false
}

func pick(rng *rand.Rand, students []datahubtest.Student, n int) []string {
	var out []string
	for _, i := range rng.Perm(len(students))[:min(n, len(students))] {
		out = append(out, students[i].ID)
	}
	return out
}
