package handlers_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/handlers"
)

const convergeTimeout = 90 * time.Second

func TestWorkerConvergesTwoTenants(t *testing.T) {
	b := setup(t, "alpha", "beta")
	// beta's Class defers new classes: schedules must resolve class_id anyway.
	b.sims["beta"].SetDeferClasses(true)
	alpha := newSchool("alpha", 1).build(500)
	beta := newSchool("beta", 2).build(500)
	b.publish(t, append(alpha.msgs, beta.msgs...))
	w, _ := b.startWorker(t)
	b.converged(t, convergeTimeout, alpha, beta)
	b.noDuplicates(t)
	if c := w.Counts(); c.Dead != 0 {
		t.Errorf("dead letters: %d, want 0", c.Dead)
	}
}

func TestWorkerDeliveredTwiceShuffledHasNoDuplicates(t *testing.T) {
	b := setup(t, "alpha", "beta")
	alpha := newSchool("alpha", 3).build(500)
	beta := newSchool("beta", 4).build(500)
	rng := rand.New(rand.NewPCG(9, 9))
	all := append(alpha.msgs, beta.msgs...)
	first := shuffled(rng, all)
	// A second delivery of each message under another id, so JetStream's
	// duplicate window does not drop it: the worker sees everything twice.
	second := shuffled(rng, all)
	for i := range second {
		second[i].ID += ":again"
	}
	b.publish(t, append(first, second...))
	w, _ := b.startWorker(t)
	b.converged(t, convergeTimeout, alpha, beta)
	eventually.Holds(t, convergeTimeout, "every message handled", func() (bool, string) {
		c := w.Counts()
		return c.Applied+c.Skipped >= int64(len(first)+len(second)), fmt.Sprintf("%+v", c)
	})
	b.noDuplicates(t)
	if c := w.Counts(); c.Skipped == 0 {
		t.Errorf("no message was skipped as stale, though every one came twice: %+v", c)
	}
}

func TestWorkerNewestVersionWinsAcrossWorkers(t *testing.T) {
	b := setup(t, "alpha")
	sim := b.sims["alpha"]
	// Slow Class calls keep both versions of a key in flight together.
	sim.SetFaults(classtest.Faults{Latency: 15 * time.Millisecond})
	s := newSchool("alpha", 5)
	host := events.Person{ExtPersonID: "test:alpha:teacher:1", Email: "host@alpha.example.org", FirstName: "Host", LastName: "One"}
	var older, newer []events.Message
	for i := range 40 {
		c := events.ClassState{ExtClassID: s.ext("section", i), Name: "v1", Host: host}
		older = append(older, s.emit(events.OpUpsert, c))
	}
	for i := range 40 {
		c := events.ClassState{ExtClassID: s.ext("section", i), Name: "v2", Host: host}
		newer = append(newer, s.emit(events.OpUpsert, c))
	}
	start := s.base.Add(48 * time.Hour)
	sched := func(name string, hours ...int) events.ScheduleState {
		st := events.ScheduleState{ExtClassID: s.ext("section", 0), WindowStart: start, WindowEnd: start.Add(7 * 24 * time.Hour)}
		for _, h := range hours {
			at := start.Add(time.Duration(h) * time.Hour)
			st.Sessions = append(st.Sessions, events.Session{Start: at, End: at.Add(time.Hour)})
		}
		return st
	}
	b.publish(t, older[:1])
	w1, _ := b.startWorker(t, func(c *handlers.Config) { c.HolderID = "w1" })
	b.converged(t, convergeTimeout, &school{tenant: "alpha", final: map[string]events.Message{"class/" + older[0].Key: older[0]}, classes: s.classes})
	// Two schedule versions sharing most dates, and the newer of every
	// class published first half the time, read by two workers at once.
	w2, _ := b.startWorker(t, func(c *handlers.Config) { c.HolderID = "w2" })
	var batch []events.Message
	for i := range older {
		if i == 0 {
			batch = append(batch, newer[0]) // older[0] is in Class already
			continue
		}
		if i%2 == 0 {
			batch = append(batch, newer[i], older[i])
		} else {
			batch = append(batch, older[i], newer[i])
		}
	}
	batch = append(batch, s.emit(events.OpUpsert, sched("v1", 1, 2, 3, 26)), s.emit(events.OpUpsert, sched("v2", 1, 2, 3, 50)))
	b.publish(t, batch)
	eventually.Holds(t, convergeTimeout, "newest versions applied", func() (bool, string) {
		st := sim.State()
		v2 := 0
		for _, c := range st.Classes {
			if c.Name == "v2" {
				v2++
			}
		}
		var dates int
		for _, c := range st.Classes {
			if c.ExtClassID == s.ext("section", 0) {
				dates = len(c.Dates)
			}
		}
		return v2 == 40 && dates == 4, ""
	})
	// Let every delivery settle, then check that nothing older overwrote
	// the newer state afterwards.
	eventually.Holds(t, convergeTimeout, "all deliveries settled", func() (bool, string) {
		c1, c2 := w1.Counts(), w2.Counts()
		return c1.Applied+c1.Skipped+c2.Applied+c2.Skipped >= int64(len(batch)+1), fmt.Sprintf("%+v %+v", c1, c2)
	})
	for _, c := range sim.State().Classes {
		if c.Name != "v2" {
			t.Errorf("class %s ended as %q, want v2", c.ExtClassID, c.Name)
		}
		if c.ExtClassID == s.ext("section", 0) {
			var got []int64
			for _, d := range c.Dates {
				got = append(got, (d.Start-start.Unix())/3600)
			}
			if want := []int64{1, 2, 3, 50}; !equalInts(got, want) {
				t.Errorf("dates (hours after window start) = %v, want %v", got, want)
			}
		}
	}
	b.noDuplicates(t)
	if c1, c2 := w1.Counts(), w2.Counts(); c1.Applied == 0 || c2.Applied == 0 {
		t.Logf("one worker applied nothing (w1 %+v, w2 %+v): the race was not exercised this run", c1, c2)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWorkerConvergesThroughClassFaults(t *testing.T) {
	b := setup(t, "alpha", "beta")
	for _, sim := range b.sims {
		// 20 % of calls fail, and some writes fail after taking effect.
		sim.SetFaults(classtest.Faults{Rate500: 0.07, Rate503: 0.07, Rate429: 0.06, AfterEffectRate: 0.05})
	}
	alpha := newSchool("alpha", 6).build(500)
	beta := newSchool("beta", 7).build(500)
	b.publish(t, append(alpha.msgs, beta.msgs...))
	w, _ := b.startWorker(t)
	b.converged(t, convergeTimeout, alpha, beta)
	b.noDuplicates(t)
	if c := w.Counts(); c.Dead != 0 {
		t.Errorf("dead letters: %d, want 0 (faults are transient)", c.Dead)
	}
	var faults int
	for _, sim := range b.sims {
		faults += sim.Stats().Faults
	}
	if faults == 0 {
		t.Fatal("no fault was injected: the test proved nothing")
	}
}

func TestWorkerDeadLettersInvalidEnrollment(t *testing.T) {
	b := setup(t, "alpha")
	s := newSchool("alpha", 8).build(200)
	var cls events.ClassState
	for _, gc := range s.classes {
		if !gc.deleted {
			cls = gc.state
			break
		}
	}
	bad := events.EnrollmentState{ExtClassID: cls.ExtClassID, Person: events.Person{
		ExtPersonID: s.ext("student", 999), Email: "not an email", FirstName: "Bad", LastName: "Email",
	}, Role: events.RoleStudent}
	badMsg := s.emit(events.OpUpsert, bad)
	delete(s.final, "enrollment/"+badMsg.Key) // Class must not have it
	b.publish(t, s.msgs)
	b.startWorker(t)
	b.converged(t, convergeTimeout, s)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var dead jetstream.RawStreamMsg
	eventually.Holds(t, 10*time.Second, "the invalid enrollment dead-lettered", func() (bool, string) {
		m, err := b.res.DLQ.GetLastMsgForSubject(ctx, events.DeadSubject("alpha", events.KindEnrollment, events.OpUpsert))
		if err != nil {
			return false, err.Error()
		}
		dead = *m
		return true, ""
	})
	if got := dead.Header.Get(events.HeaderID); got != badMsg.ID {
		t.Errorf("dead letter ce-id = %q, want %q", got, badMsg.ID)
	}
	reason := dead.Header.Get(events.HeaderDeadReason)
	if !strings.Contains(reason, "email") || !strings.Contains(reason, "400") {
		t.Errorf("dead letter reason = %q, want Class's validation error on email", reason)
	}
	if strings.Contains(reason, "not an email") {
		t.Errorf("dead letter reason leaks the value: %q", reason)
	}
	if dead.Header.Get(events.HeaderDeadAttempts) != "1" {
		t.Errorf("attempts = %q, want 1 (a validation error is not retried)", dead.Header.Get(events.HeaderDeadAttempts))
	}
	info, err := b.res.DLQ.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("DLQ holds %d messages, want 1", info.State.Msgs)
	}
}

func TestWorkerPausesTenantWithRevokedKey(t *testing.T) {
	b := setup(t, "alpha", "beta")
	alpha := newSchool("alpha", 10).build(150)
	beta := newSchool("beta", 11).build(150)
	b.sims["beta"].RevokeKey(b.keys["beta"])
	b.publish(t, append(alpha.msgs, beta.msgs...))
	w, _ := b.startWorker(t)
	b.converged(t, convergeTimeout, alpha)
	eventually.Holds(t, 10*time.Second, "beta paused", func() (bool, string) {
		paused, _ := w.TenantPaused("beta")
		return paused, ""
	})
	if paused, _ := w.TenantPaused("alpha"); paused {
		t.Error("alpha paused, want only beta")
	}
	_, reason := w.TenantPaused("beta")
	if !strings.Contains(reason, "401") {
		t.Errorf("pause reason = %q, want Class's 401", reason)
	}
	if c := w.Counts(); c.Dead != 0 {
		t.Fatalf("%d messages dead-lettered while the key was revoked, want 0", c.Dead)
	}
	if n := len(b.sims["beta"].State().Classes); n != 0 {
		t.Fatalf("beta's Class has %d classes with a revoked key", n)
	}
	b.sims["beta"].AddKey(b.keys["beta"])
	b.converged(t, convergeTimeout, alpha, beta)
	if paused, _ := w.TenantPaused("beta"); paused {
		t.Error("beta still paused after its key works again")
	}
	b.noDuplicates(t)
	if c := w.Counts(); c.Dead != 0 {
		t.Errorf("dead letters: %d, want 0", c.Dead)
	}
}

func TestWorkerRestartedMidBatchLosesNothing(t *testing.T) {
	b := setup(t, "alpha", "beta")
	for _, sim := range b.sims {
		sim.SetFaults(classtest.Faults{Latency: 2 * time.Millisecond})
	}
	alpha := newSchool("alpha", 12).build(500)
	beta := newSchool("beta", 13).build(500)
	b.publish(t, append(alpha.msgs, beta.msgs...))

	var mu sync.Mutex
	handled := 0
	w1, stop1 := b.startWorker(t, func(c *handlers.Config) {
		c.OnOutcome = func(handlers.Outcome) { mu.Lock(); handled++; mu.Unlock() }
	})
	eventually.Holds(t, convergeTimeout, "part of the batch handled", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return handled >= 300, ""
	})
	stop1() // SIGTERM: in-flight messages finish, the rest wait in the stream
	if c := w1.Counts(); c.Applied >= int64(len(alpha.msgs)+len(beta.msgs)) {
		t.Fatalf("the first worker handled everything (%+v): nothing was left for the restart", c)
	}
	b.startWorker(t)
	b.converged(t, convergeTimeout, alpha, beta)
	b.noDuplicates(t)
}

// The enrollments of a class applied together share their reads of the
// class's enrollments, and still enroll each person exactly once when posts
// take effect but answer 500 (the retry's read must see the first post).
func TestWorkerSharesAClassEnrollmentReads(t *testing.T) {
	b := setup(t, "alpha")
	sim := b.sims["alpha"]
	sim.SetFaults(classtest.Faults{Latency: 20 * time.Millisecond, AfterEffectRate: 0.2})
	s := newSchool("alpha", 11)
	teacher := events.UserState{ExtUserID: s.ext("teacher", 1), Email: "teacher1@alpha.example.org", FirstName: "Teacher", LastName: "One"}
	s.teachers = append(s.teachers, teacher)
	st := events.ClassState{ExtClassID: s.ext("section", 1), Name: "Class 1",
		Host: events.Person{ExtPersonID: teacher.ExtUserID, Email: teacher.Email, FirstName: teacher.FirstName, LastName: teacher.LastName}}
	gc := &genClass{state: st, enrolled: map[string]events.EnrollmentState{}}
	s.classes[st.ExtClassID] = gc
	s.order = append(s.order, st.ExtClassID)
	s.emit(events.OpUpsert, st)
	const pupils = 60
	for i := range pupils {
		s.enroll(gc, i)
	}
	b.publish(t, s.msgs)
	var mu sync.Mutex
	var outcomes []handlers.Outcome
	b.startWorker(t, func(c *handlers.Config) {
		c.OnOutcome = func(o handlers.Outcome) {
			mu.Lock()
			outcomes = append(outcomes, o)
			mu.Unlock()
		}
	})
	b.converged(t, convergeTimeout, s)
	b.noDuplicates(t)
	// Class may converge before the last deliveries end and record their
	// calls.
	eventually.True(t, convergeTimeout, "every message's delivery settled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		settled := map[string]bool{}
		for _, o := range outcomes {
			if o.Result == handlers.ResultApplied || o.Result == handlers.ResultSkipped {
				settled[o.MessageID] = true
			}
		}
		return len(settled) == len(s.msgs)
	})
	stats := sim.Stats()
	if stats.Faults == 0 {
		t.Fatal("no post failed after taking effect: the test proved nothing about retries")
	}
	gets := stats.ByEndpoint["GET /api/v1/class/enrollments"]
	if gets >= pupils {
		t.Errorf("%d reads of the class's enrollments for %d enrollments: none was shared", gets, pupils)
	} else {
		t.Logf("%d reads of the class's enrollments for %d enrollments (%d faults)", gets, pupils, stats.Faults)
	}

	// Every applied enrollment's record shows the read it used: its own, or
	// one it shared, marked so. Each read sent is recorded unshared once.
	mu.Lock()
	defer mu.Unlock()
	sent, shared := 0, 0
	for _, o := range outcomes {
		reads := 0
		for _, c := range o.Calls {
			if c.Method == "GET" && c.Path == "/api/v1/class/enrollments" {
				reads++
				if c.Shared {
					shared++
				} else {
					sent++
				}
			}
		}
		if o.Kind == events.KindEnrollment && o.Result == handlers.ResultApplied && reads == 0 {
			t.Errorf("applied enrollment %s (attempt %d) records no read of its class's enrollments: %+v", o.Key, o.Attempt, o.Calls)
		}
	}
	if sent != gets {
		t.Errorf("deliveries record %d reads they sent, the simulator answered %d", sent, gets)
	}
	if shared == 0 {
		t.Error("no delivery records a shared read")
	}
}

// A teacher who left is replaced by one with the same email, and the new
// teacher's upsert is applied before the old one's delete: Class refuses the
// email until the delete lands, and the upsert must wait for it, not be
// dead-lettered.
func TestWorkerRetriesAUserWhoseEmailIsBeingFreed(t *testing.T) {
	b := setup(t, "alpha")
	s := newSchool("alpha", 14)
	leaver := events.UserState{ExtUserID: s.ext("teacher", 1), Email: "head.of.maths@alpha.example.org", FirstName: "Old", LastName: "Head"}
	s.emit(events.OpUpsert, leaver)
	b.publish(t, s.msgs)
	var mu sync.Mutex
	results := map[string][]handlers.Result{}
	w, _ := b.startWorker(t, func(c *handlers.Config) {
		c.OnOutcome = func(o handlers.Outcome) {
			mu.Lock()
			results[o.Key] = append(results[o.Key], o.Result)
			mu.Unlock()
		}
	})
	b.converged(t, convergeTimeout, s)

	successor := events.UserState{ExtUserID: s.ext("teacher", 2), Email: leaver.Email, FirstName: "New", LastName: "Head"}
	b.publish(t, []events.Message{s.emit(events.OpUpsert, successor)})
	eventually.True(t, convergeTimeout, "the successor's upsert meets the conflict", func() bool {
		mu.Lock()
		defer mu.Unlock()
		got := results[successor.ExtUserID]
		return slices.Contains(got, handlers.ResultRetry) || slices.Contains(got, handlers.ResultDead)
	})
	mu.Lock()
	got := slices.Clone(results[successor.ExtUserID])
	mu.Unlock()
	if slices.Contains(got, handlers.ResultDead) {
		t.Fatalf("the successor's upsert was dead-lettered (%v) while the leaver's delete was on its way", got)
	}
	b.publish(t, []events.Message{s.emit(events.OpDelete, leaver)})
	b.converged(t, convergeTimeout, s)
	if c := w.Counts(); c.Dead != 0 {
		t.Errorf("dead letters: %d, want 0 (the conflict was passing)", c.Dead)
	}
}

// Two teachers of the school with one email is a real conflict: the second
// is retried for the configured grace, then dead-lettered with the reason.
func TestWorkerDeadLettersAConflictThatOutlastsItsGrace(t *testing.T) {
	b := setup(t, "alpha")
	s := newSchool("alpha", 15)
	first := events.UserState{ExtUserID: s.ext("teacher", 1), Email: "shared.inbox@alpha.example.org", FirstName: "First", LastName: "Teacher"}
	second := events.UserState{ExtUserID: s.ext("teacher", 2), Email: first.Email, FirstName: "Second", LastName: "Teacher"}
	b.publish(t, []events.Message{s.emit(events.OpUpsert, first)})
	var mu sync.Mutex
	var dead []handlers.Outcome
	var retried int
	w, _ := b.startWorker(t, func(c *handlers.Config) {
		c.Retry.ConflictGrace = 2 * time.Second
		c.OnOutcome = func(o handlers.Outcome) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case o.Result == handlers.ResultDead:
				dead = append(dead, o)
			case o.Result == handlers.ResultRetry && o.Key == second.ExtUserID:
				retried++
			}
		}
	})
	eventually.True(t, convergeTimeout, "the first teacher is applied", func() bool { return w.Counts().Applied == 1 })
	b.publish(t, []events.Message{s.emit(events.OpUpsert, second)})
	eventually.True(t, convergeTimeout, "the conflict is dead-lettered", func() bool { return w.Counts().Dead == 1 })
	mu.Lock()
	defer mu.Unlock()
	if retried == 0 {
		t.Error("the conflicting upsert was dead-lettered without being retried first")
	}
	if d := dead[0]; d.Key != second.ExtUserID || !strings.Contains(d.Err, handlers.ErrConflict.Error()) {
		t.Errorf("dead letter = %s: %s", d.Key, d.Err)
	}
}
