package handlers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/natstest"
)

// bundle is what a worker test needs: a real JetStream, one Class simulator
// per tenant, and clients for them.
type bundle struct {
	ns   *natstest.Server
	js   jetstream.JetStream
	res  *events.Resources
	sims map[string]*classtest.Server
	keys map[string]string
}

func setup(t *testing.T, tenants ...string) *bundle {
	t.Helper()
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := events.EnsureResources(ctx, js, events.StreamSettings{})
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{ns: ns, js: js, res: res, sims: map[string]*classtest.Server{}, keys: map[string]string{}}
	for i, id := range tenants {
		sim := classtest.New(classtest.Options{Seed: int64(i + 1)})
		t.Cleanup(sim.Close)
		key := "key-" + id
		sim.AddKey(key)
		b.sims[id], b.keys[id] = sim, key
	}
	return b
}

type workerOpt func(*handlers.Config)

// startWorker runs a worker until the returned stop function is called (or
// the test ends); stop waits for it to finish.
func (b *bundle) startWorker(t *testing.T, opts ...workerOpt) (*handlers.Worker, func()) {
	t.Helper()
	js := b.js
	cfg := handlers.Config{
		JS:          js,
		Resources:   b.res,
		Concurrency: 32,
		AckWait:     3 * time.Second,
		Retry: handlers.RetryPolicy{
			BackoffInitial: 20 * time.Millisecond,
			BackoffMax:     300 * time.Millisecond,
			MaxAttempts:    50,
			QuickRetryMax:  100 * time.Millisecond,
		},
		AuthProbeInterval: 100 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for id, sim := range b.sims {
		c, err := class.New(sim.URL(), b.keys[id])
		if err != nil {
			t.Fatal(err)
		}
		cfg.Tenants = append(cfg.Tenants, handlers.Tenant{ID: id, Class: c, Timezone: "Europe/London"})
	}
	slices.SortFunc(cfg.Tenants, func(a, b handlers.Tenant) int { return strings.Compare(a.ID, b.ID) })
	cfg.OnOutcome = func(o handlers.Outcome) {
		if o.Result == handlers.ResultDead {
			t.Logf("dead letter: %s %s %s: %s", o.Kind, o.Op, o.Key, o.Err)
		}
	}
	for _, o := range opts {
		o(&cfg)
	}
	w, err := handlers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("worker did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	return w, stop
}

func (b *bundle) publish(t *testing.T, msgs []events.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, m := range msgs {
		if _, err := events.Publish(ctx, b.js, m); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// school generates change messages for one tenant and remembers the newest
// message per key, from which the Class it should produce is derived.
type school struct {
	tenant   string
	rng      *rand.Rand
	seq      int
	base     time.Time
	msgs     []events.Message
	final    map[string]events.Message // kind/key → newest message
	teachers []events.UserState
	classes  map[string]*genClass
	order    []string
}

type genClass struct {
	state    events.ClassState
	host     events.EnrollmentState
	deleted  bool
	enrolled map[string]events.EnrollmentState
}

func newSchool(tenant string, seed uint64) *school {
	return &school{
		tenant:  tenant,
		rng:     rand.New(rand.NewPCG(seed, seed*7+1)),
		base:    time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC),
		final:   map[string]events.Message{},
		classes: map[string]*genClass{},
	}
}

func (s *school) emit(op events.Op, state events.KeyedState) events.Message {
	s.seq++
	v := events.Version{Time: s.base.Add(time.Duration(s.seq) * time.Second), Seq: fmt.Sprintf("%06d", s.seq)}
	m, err := events.NewMessage(s.tenant, op, state, v, events.Origin{Source: "test", ID: fmt.Sprint(s.seq)})
	if err != nil {
		panic(err)
	}
	m.ID = fmt.Sprintf("test:%s:%06d", s.tenant, s.seq)
	s.msgs = append(s.msgs, m)
	s.final[string(m.Kind)+"/"+m.Key] = m
	return m
}

func (s *school) ext(kind string, i int) string {
	return events.ExternalID("test", s.tenant, kind, fmt.Sprint(i))
}

func (s *school) student(i int) events.Person {
	return events.Person{ExtPersonID: s.ext("student", i), Email: fmt.Sprintf("pupil%d@%s.example.org", i, s.tenant), FirstName: "Pupil", LastName: fmt.Sprintf("N%d", i)}
}

// build makes a school of teachers, classes with hosts and students, and
// schedules, then mutates it until it has n messages.
func (s *school) build(n int) *school {
	for i := range 10 {
		u := events.UserState{ExtUserID: s.ext("teacher", i), Email: fmt.Sprintf("teacher%d@%s.example.org", i, s.tenant), FirstName: "Teacher", LastName: fmt.Sprintf("T%d", i)}
		s.teachers = append(s.teachers, u)
		s.emit(events.OpUpsert, u)
	}
	for c := range 12 {
		host := s.teachers[c%len(s.teachers)]
		st := events.ClassState{
			ExtClassID: s.ext("section", c), Name: fmt.Sprintf("Class %d", c), Description: "generated",
			Host: events.Person{ExtPersonID: host.ExtUserID, Email: host.Email, FirstName: host.FirstName, LastName: host.LastName},
		}
		gc := &genClass{state: st, enrolled: map[string]events.EnrollmentState{}}
		s.classes[st.ExtClassID] = gc
		s.order = append(s.order, st.ExtClassID)
		s.emit(events.OpUpsert, st)
		// The host's own teacher enrollment: Class enrolled them already.
		gc.host = events.EnrollmentState{ExtClassID: st.ExtClassID, Person: st.Host, Role: events.RoleTeacher}
		s.emit(events.OpUpsert, gc.host)
		for k := range 8 {
			s.enroll(gc, c*5+k)
		}
		s.schedule(gc)
	}
	for len(s.msgs) < n {
		gc := s.classes[s.order[s.rng.IntN(len(s.order))]]
		if gc.deleted {
			continue
		}
		switch r := s.rng.IntN(100); {
		case r < 35:
			s.enroll(gc, s.rng.IntN(120))
		case r < 55:
			if p, ok := s.anyEnrolled(gc); ok {
				p.FirstName = fmt.Sprintf("Renamed%d", s.seq)
				gc.enrolled[p.ExtPersonID] = p
				s.emit(events.OpUpsert, p)
			}
		case r < 70:
			if p, ok := s.anyEnrolled(gc); ok {
				delete(gc.enrolled, p.ExtPersonID)
				s.emit(events.OpDelete, p)
			}
		case r < 82:
			s.schedule(gc)
		case r < 92:
			gc.state.Name = fmt.Sprintf("Class renamed %d", s.seq)
			s.emit(events.OpUpsert, gc.state)
		case r < 96:
			t := s.teachers[s.rng.IntN(len(s.teachers))]
			t.LastName = fmt.Sprintf("Moved%d", s.seq)
			s.emit(events.OpUpsert, t)
		default:
			if len(s.order) > 6 {
				s.deleteClass(gc)
			}
		}
	}
	return s
}

func (s *school) anyEnrolled(gc *genClass) (events.EnrollmentState, bool) {
	ids := make([]string, 0, len(gc.enrolled))
	for id := range gc.enrolled {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return events.EnrollmentState{}, false
	}
	sort.Strings(ids)
	return gc.enrolled[ids[s.rng.IntN(len(ids))]], true
}

func (s *school) enroll(gc *genClass, student int) {
	e := events.EnrollmentState{ExtClassID: gc.state.ExtClassID, Person: s.student(student), Role: events.RoleStudent}
	gc.enrolled[e.ExtPersonID] = e
	s.emit(events.OpUpsert, e)
}

func (s *school) schedule(gc *genClass) {
	start := s.base.Add(24 * time.Hour)
	st := events.ScheduleState{ExtClassID: gc.state.ExtClassID, WindowStart: start, WindowEnd: start.Add(14 * 24 * time.Hour)}
	for d := range 1 + s.rng.IntN(5) {
		at := start.Add(time.Duration(s.rng.IntN(14))*24*time.Hour + time.Duration(9+d)*time.Hour)
		st.Sessions = append(st.Sessions, events.Session{Start: at, End: at.Add(50 * time.Minute)})
	}
	s.emit(events.OpUpsert, st)
}

func (s *school) deleteClass(gc *genClass) {
	gc.deleted = true
	s.order = slices.DeleteFunc(s.order, func(id string) bool { return id == gc.state.ExtClassID })
	for _, e := range gc.enrolled {
		s.emit(events.OpDelete, e)
	}
	gc.enrolled = map[string]events.EnrollmentState{}
	s.emit(events.OpDelete, gc.host)
	s.emit(events.OpDelete, events.ScheduleState{ExtClassID: gc.state.ExtClassID, WindowStart: s.base, WindowEnd: s.base.Add(60 * 24 * time.Hour)})
	s.emit(events.OpDelete, gc.state)
}

// view is a comparable picture of a Class: what the mapping promises.
type view struct {
	Users   map[string]string            // ext_user_id → email|name|roles
	Classes map[string]string            // ext_class_id → name|description|host email
	Enrolls map[string]map[string]string // ext_class_id → person → email|first|last|role
	Dates   map[string][]string          // ext_class_id → sorted start-end
}

func newView() view {
	return view{Users: map[string]string{}, Classes: map[string]string{}, Enrolls: map[string]map[string]string{}, Dates: map[string][]string{}}
}

// want derives the Class a school's newest messages should produce.
func (s *school) want() view {
	v := newView()
	for _, m := range s.final {
		if m.Op != events.OpUpsert {
			continue
		}
		switch m.Kind {
		case events.KindUser:
			u, _ := m.User()
			v.Users[u.ExtUserID] = u.Email + "|" + u.FirstName + " " + u.LastName + "|instructor"
		case events.KindClass:
			c, _ := m.Class()
			v.Classes[c.ExtClassID] = c.Name + "|" + c.Description + "|" + c.Host.Email
			v.enroll(c.ExtClassID, "host:"+c.Host.Email, c.Host.Email+"|"+c.Host.FirstName+"|"+c.Host.LastName+"|teacher")
		}
	}
	for _, m := range s.final {
		if m.Op != events.OpUpsert {
			continue
		}
		switch m.Kind {
		case events.KindEnrollment:
			e, _ := m.Enrollment()
			if host := s.classes[e.ExtClassID].state.Host; host.Email == e.Email {
				continue // folded into the host's enrollment
			}
			v.enroll(e.ExtClassID, e.ExtPersonID, e.Email+"|"+e.FirstName+"|"+e.LastName+"|"+e.Role)
		case events.KindSchedule:
			sc, _ := m.Schedule()
			var dates []string
			for _, ses := range sc.Sessions {
				dates = append(dates, fmt.Sprintf("%d-%d", ses.Start.Unix(), ses.End.Unix()))
			}
			sort.Strings(dates)
			if len(dates) > 0 {
				v.Dates[sc.ExtClassID] = dates
			}
		}
	}
	return v
}

func (v view) enroll(classID, person, value string) {
	if v.Enrolls[classID] == nil {
		v.Enrolls[classID] = map[string]string{}
	}
	v.Enrolls[classID][person] = value
}

// classView reads the simulator's state into a view.
func classView(st classtest.State) view {
	v := newView()
	for _, u := range st.Users {
		roles := slices.Clone(u.Roles)
		sort.Strings(roles)
		v.Users[u.ExtUserID] = u.Email + "|" + u.UserName + "|" + strings.Join(roles, ",")
	}
	for _, c := range st.Classes {
		v.Classes[c.ExtClassID] = c.Name + "|" + c.Description + "|" + c.HostEmail
		for _, e := range c.Enrollments {
			person := e.ExtPersonID
			if person == "" {
				person = "host:" + e.Email
			}
			v.enroll(c.ExtClassID, person, e.Email+"|"+e.FirstName+"|"+e.LastName+"|"+e.Role)
		}
		var dates []string
		for _, d := range c.Dates {
			dates = append(dates, fmt.Sprintf("%d-%d", d.Start, d.End))
		}
		sort.Strings(dates)
		if len(dates) > 0 {
			v.Dates[c.ExtClassID] = dates
		}
	}
	return v
}

// diff says how two views differ, briefly; empty when equal.
func diff(want, got view) string {
	var out []string
	cmpMap := func(what string, w, g map[string]string) {
		for k, wv := range w {
			if gv, ok := g[k]; !ok {
				out = append(out, fmt.Sprintf("%s %s missing", what, k))
			} else if gv != wv {
				out = append(out, fmt.Sprintf("%s %s = %q, want %q", what, k, gv, wv))
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				out = append(out, fmt.Sprintf("%s %s unexpected", what, k))
			}
		}
	}
	cmpMap("user", want.Users, got.Users)
	cmpMap("class", want.Classes, got.Classes)
	for c := range merge(want.Enrolls, got.Enrolls) {
		cmpMap("enrollment in "+c, want.Enrolls[c], got.Enrolls[c])
	}
	for c := range mergeDates(want.Dates, got.Dates) {
		if w, g := strings.Join(want.Dates[c], ","), strings.Join(got.Dates[c], ","); w != g {
			out = append(out, fmt.Sprintf("dates of %s = [%s], want [%s]", c, g, w))
		}
	}
	sort.Strings(out)
	if len(out) > 8 {
		out = append(out[:8], fmt.Sprintf("... and %d more", len(out)-8))
	}
	return strings.Join(out, "; ")
}

func merge(a, b map[string]map[string]string) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

func mergeDates(a, b map[string][]string) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

// converged waits until every tenant's Class equals what its school says.
func (b *bundle) converged(t *testing.T, timeout time.Duration, schools ...*school) {
	t.Helper()
	eventually.Holds(t, timeout, "Class converges to the sources", func() (bool, string) {
		for _, s := range schools {
			if d := diff(s.want(), classView(b.sims[s.tenant].State())); d != "" {
				return false, s.tenant + ": " + d
			}
		}
		return true, ""
	})
}

func (b *bundle) noDuplicates(t *testing.T) {
	t.Helper()
	for id, sim := range b.sims {
		if d := sim.Duplicates(); len(d) > 0 {
			t.Errorf("tenant %s: %d duplicate side effects in Class, first: %+v", id, len(d), d[0])
		}
	}
}

func shuffled(rng *rand.Rand, msgs []events.Message) []events.Message {
	out := slices.Clone(msgs)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
