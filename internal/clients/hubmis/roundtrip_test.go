package hubmis

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
)

// simTimeScale fast-forwards the simulators' rate limits: a bucket refills
// one request every 5 s / 50 = 100 ms.
const simTimeScale = 50

// simBundle is a client talking to a fresh simulator, on the wall clock.
type simBundle struct {
	sim    *hubmistest.Server
	client *Client
	ctx    context.Context
}

// setupSim starts a simulator (opts.Seed defaults to 1, TimeScale to
// simTimeScale) and a client with the simulator's credentials and time scale,
// its own IP limiter (each simulator has its own per-IP buckets) and its own
// transport, closed when the test ends.
func setupSim(t *testing.T, opts hubmistest.Options, mods ...func(*Config)) *simBundle {
	t.Helper()
	opts.Seed = max(opts.Seed, 1)
	if opts.TimeScale == 0 {
		opts.TimeScale = simTimeScale
	}
	sim := hubmistest.New(opts)
	t.Cleanup(sim.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := Config{
		BaseURL: sim.URL(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), Realm: sim.Realm(),
		TimeScale: opts.TimeScale, HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second},
	}
	for _, m := range mods {
		m(&cfg)
	}
	if cfg.IPLimiter == nil && !cfg.NoRateLimit {
		ip, err := NewIPLimiter(IPLimiterConfig{TimeScale: cfg.TimeScale})
		if err != nil {
			t.Fatal(err)
		}
		cfg.IPLimiter = ip
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &simBundle{sim: sim, client: c, ctx: t.Context()}
}

// TestRoundTripSnapshot reads a whole school the way the poller does, with
// both client-side limiters on: HUBmis must never answer 429.
func TestRoundTripSnapshot(t *testing.T) {
	t.Parallel()
	b := setupSim(t, hubmistest.Options{NonLessonEntries: true}, func(c *Config) { c.PageSize = 25 })
	b.sim.Populate(60, 10, 8, 3)

	year, err := b.client.CurrentAcademicYear(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := b.sim.CurrentAcademicYear(); year.ID != want.ID || year.DateStart != want.DateStart || year.DateEnd != want.DateEnd || !year.Current {
		t.Fatalf("year %+v, simulator %+v", year, want)
	}

	students, err := b.client.Students(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantS := b.sim.Students()
	if len(students) != len(wantS) || len(students) != 60 {
		t.Fatalf("%d students, simulator %d", len(students), len(wantS))
	}
	for i, w := range wantS {
		g := students[i]
		if g.ID != w.ID || g.FirstName != w.FirstName || g.LastName != w.LastName || g.MiddleName != w.MiddleName ||
			g.PreferredName != w.PreferredName || g.Email != w.Email || g.ExternalID != w.ExternalID || g.Form.Name != w.Form ||
			g.EnrolmentStatus != hubmistest.EnrolmentCurrent {
			t.Errorf("student %d = %+v, simulator %+v", i, g, w)
		}
	}

	teachers, err := b.client.TeachingStaff(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wantT []string
	for _, m := range b.sim.Staff() {
		if m.Teacher {
			wantT = append(wantT, m.ID)
		}
	}
	if got := ids(teachers, func(s Staff) string { return s.ID }); !slices.Equal(got, wantT) {
		t.Errorf("teachers %v, simulator %v", got, wantT)
	}

	sets, err := b.client.SubjectSets(b.ctx, year.ID)
	if err != nil {
		t.Fatal(err)
	}
	var wantSets []hubmistest.Set
	for _, s := range b.sim.Sets() {
		if s.AcademicYearID == year.ID {
			wantSets = append(wantSets, s)
		}
	}
	if len(sets) != len(wantSets) || len(sets) != 8 {
		t.Fatalf("%d sets, simulator %d", len(sets), len(wantSets))
	}
	for i, w := range wantSets {
		g := sets[i]
		if g.ID != w.ID || g.AcademicYearID != w.AcademicYearID || g.Code != w.Code || g.Name != w.Name ||
			g.Subject.Name != w.Subject || g.Subject.Code != w.SubjectCode || !slices.Equal(g.StaffIDs, w.StaffIDs) ||
			g.StudentCount != len(w.StudentIDs) || len(g.Rooms) != 1 || g.Rooms[0].Code != w.Room {
			t.Errorf("set %d = %+v, simulator %+v", i, g, w)
		}
		members, err := b.client.SetStudents(b.ctx, year.ID, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(members, studentID), slices.Sorted(slices.Values(w.StudentIDs)); !slices.Equal(got, want) {
			t.Errorf("set %s students %v, simulator %v", g.ID, got, want)
		}
		staff, err := b.client.SetStaff(b.ctx, year.ID, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(staff, func(s Staff) string { return s.ID }); !slices.Equal(got, w.StaffIDs) {
			t.Errorf("set %s staff %v, simulator %v (main teacher first)", g.ID, got, w.StaffIDs)
		}
	}

	rs, err := b.client.RegionalSettings(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := rs.Location()
	if err != nil || rs.TimeZone != b.sim.Timezone() {
		t.Fatalf("regional settings %+v, %v", rs, err)
	}

	// Lessons: every teacher's calendar for two weeks from today, in the
	// school's time zone, gathered by set.
	now := time.Now().In(loc)
	from := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	to := from.AddDate(0, 0, 13)
	got := map[string][]time.Time{}
	events := 0
	for _, m := range teachers {
		entries, err := b.client.StaffCalendar(b.ctx, m.ID, from, to)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.IsLesson() {
				events++
				continue
			}
			got[e.SubjectSet.ID] = append(got[e.SubjectSet.ID], e.Start, e.End)
		}
	}
	if events == 0 {
		t.Errorf("no non-lesson entries seen; the simulator adds weekly briefings")
	}
	for _, w := range wantSets {
		var want []time.Time
		for _, l := range b.sim.LessonsBetween(w.ID, from, from.AddDate(0, 0, 14)) {
			want = append(want, l.Start, l.End)
		}
		// A set with two teachers is in both calendars.
		g := dedupPairs(got[w.ID])
		if len(g) != len(want) || len(want) == 0 {
			t.Errorf("set %s: %d lesson times, simulator %d", w.ID, len(g), len(want))
			continue
		}
		for i := range want {
			if !g[i].Equal(want[i]) {
				t.Errorf("set %s lesson time %d: %s, simulator %s", w.ID, i, g[i], want[i])
			}
		}
	}

	st := b.sim.Stats()
	if st.TooMany != 0 {
		t.Errorf("the simulator answered %d 429s with the client's limiters on", st.TooMany)
	}
	if b.client.Requests() != int64(st.Requests) {
		t.Errorf("client counted %d requests, simulator %d", b.client.Requests(), st.Requests)
	}
	if st.TokensIssued != 1 {
		t.Errorf("%d tokens issued", st.TokensIssued)
	}
	// The simulator's headers set the client's bucket; it refilled a little
	// while the snapshot ran.
	if avail, capacity := b.client.Budget(); capacity != hubmistest.ClientBucketDefault || avail >= float64(capacity) || avail < float64(capacity-st.Requests) {
		t.Errorf("budget %v/%d after %d requests", avail, capacity, st.Requests)
	}
}

// dedupPairs sorts (start, end) pairs by start and drops repeats.
func dedupPairs(ts []time.Time) []time.Time {
	type pair struct{ s, e time.Time }
	var ps []pair
	for i := 0; i+1 < len(ts); i += 2 {
		ps = append(ps, pair{ts[i], ts[i+1]})
	}
	slices.SortFunc(ps, func(a, b pair) int { return a.s.Compare(b.s) })
	ps = slices.CompactFunc(ps, func(a, b pair) bool { return a.s.Equal(b.s) && a.e.Equal(b.e) })
	var out []time.Time
	for _, p := range ps {
		out = append(out, p.s, p.e)
	}
	return out
}

// TestRoundTripEnvelopeCappedPages reads JSON:API documents from a server
// that pages by fewer records than asked: links and meta decide, not the
// short page.
func TestRoundTripEnvelopeCappedPages(t *testing.T) {
	t.Parallel()
	b := setupSim(t, hubmistest.Options{Envelope: true, MaxPageSize: 7}, func(c *Config) { c.PageSize = 10 })
	b.sim.Populate(30, 6, 4, 1)
	students, err := b.client.Students(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(students, studentID), ids(b.sim.Students(), func(s hubmistest.Student) string { return s.ID }); !slices.Equal(got, want) {
		t.Errorf("students %v, simulator %v", got, want)
	}
	year := b.sim.CurrentAcademicYear()
	set := b.sim.Sets()[0]
	members, err := b.client.SetStudents(b.ctx, year.ID, set.ID)
	if err != nil || len(members) != len(set.StudentIDs) {
		t.Errorf("set students: %d, %v; simulator %d", len(members), err, len(set.StudentIDs))
	}
	years, err := b.client.AcademicYears(b.ctx)
	if err != nil || len(years) != len(b.sim.AcademicYears()) {
		t.Errorf("years %+v, %v", years, err)
	}
	if n := b.sim.Stats().ByEndpoint["GET "+hubmistest.PathStudents]; n != 5 {
		t.Errorf("%d student pages read, want 5 (30 by 7)", n)
	}
}

func TestRoundTripExpiredTokenRenewed(t *testing.T) {
	t.Parallel()
	b := setupSim(t, hubmistest.Options{})
	if _, err := b.client.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.sim.ExpireTokens()
	if _, err := b.client.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	if st := b.sim.Stats(); st.TokensIssued != 2 || st.ByStatus[401] != 1 {
		t.Errorf("tokens %d, 401s %d", st.TokensIssued, st.ByStatus[401])
	}
}

func TestRoundTripRefusals(t *testing.T) {
	t.Parallel()
	b := setupSim(t, hubmistest.Options{}, func(c *Config) { c.ClientSecret = "wrong" })
	if _, err := b.client.Students(b.ctx); !errors.Is(err, ErrUnauthorized) || IsRetryable(err) {
		t.Errorf("bad secret: %v", err)
	}
	b = setupSim(t, hubmistest.Options{}, func(c *Config) { c.Realm = "S000" })
	if _, err := b.client.Students(b.ctx); !errors.Is(err, ErrForbidden) || IsRetryable(err) {
		t.Errorf("another school's realm: %v", err)
	}
	b = setupSim(t, hubmistest.Options{})
	if _, err := b.client.SubjectSets(b.ctx, "999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown year: %v", err)
	}
	if _, err := b.client.SetStaff(b.ctx, b.sim.CurrentAcademicYear().ID, "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown set: %v", err)
	}
	b = setupSim(t, hubmistest.Options{}, func(c *Config) { c.AcademicYearID = "999" })
	if _, err := b.client.Students(b.ctx); err == nil || IsRetryable(err) {
		t.Errorf("unknown academic-year-id: %v", err)
	}
}

func TestRoundTripRollover(t *testing.T) {
	t.Parallel()
	b := setupSim(t, hubmistest.Options{})
	b.sim.Populate(10, 4, 2, 1)
	old, err := b.client.CurrentAcademicYear(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := b.sim.NewAcademicYear(time.Time{})
	cur, err := b.client.CurrentAcademicYear(b.ctx)
	if err != nil || cur.ID != next.ID || cur.ID == old.ID {
		t.Fatalf("after rollover: %+v, %v; simulator %+v", cur, err, next)
	}
	sets, err := b.client.SubjectSets(b.ctx, cur.ID)
	if err != nil || len(sets) != 2 {
		t.Fatalf("new year's sets %d, %v", len(sets), err)
	}
}

// TestRoundTripServerLimitsWaitedOut turns the client's limiters off: the
// simulator then answers 429, and the client waits each out until its
// X-RateLimit-Retry-After (divided by the time scale) and succeeds.
func TestRoundTripServerLimitsWaitedOut(t *testing.T) {
	t.Parallel()
	b := setupSim(t, hubmistest.Options{}, func(c *Config) {
		c.NoRateLimit = true
		c.RetryMaxAttempts = 10
	})
	b.sim.Populate(5, 3, 1, 1)
	start := time.Now()
	for range 20 {
		if _, err := b.client.AcademicYears(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	st := b.sim.Stats()
	if st.TooMany == 0 {
		t.Errorf("no 429 with the client's limiters off; the test proves nothing")
	}
	// 8 requests beyond the IP's 12, one per 100 ms at the earliest.
	if el := time.Since(start); el < 700*time.Millisecond {
		t.Errorf("20 requests took %s; the 429s were not waited out", el)
	}
}

func TestRoundTripFaultsRetried(t *testing.T) {
	t.Parallel()
	b := setupSim(t, hubmistest.Options{IPBucket: -1, ClientBucket: -1, Seed: 3}, func(c *Config) {
		c.NoRateLimit = true
		c.RetryMaxAttempts = 8
		c.PageSize = 5
	})
	b.client.sleepFunc = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	b.sim.Populate(40, 6, 4, 1)
	b.sim.SetFaults(hubmistest.Faults{Rate500: 0.2, Rate503: 0.2})
	students, err := b.client.Students(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(students) != 40 {
		t.Errorf("%d students", len(students))
	}
	if b.sim.Stats().Faults == 0 {
		t.Errorf("no faults injected; the test proves nothing")
	}
}
