package datahub

import (
	"context"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
)

// simBundle is a client talking to a fresh simulator.
type simBundle struct {
	sim    *datahubtest.Server
	client *Client
	ctx    context.Context
}

// setupSim starts a simulator (opts.Seed defaults to 1) and a client with the
// simulator's default credentials. The client's backoff does not wait, so
// injected faults cost no time.
func setupSim(t *testing.T, opts datahubtest.Options, mods ...func(*Config)) *simBundle {
	t.Helper()
	opts.Seed = max(opts.Seed, 1)
	sim := datahubtest.New(opts)
	t.Cleanup(sim.Close)
	cfg := Config{BaseURL: sim.URL(), ClientID: datahubtest.ClientIDDefault, ClientSecret: datahubtest.ClientSecretDefault}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.sleepFunc = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	t.Cleanup(c.http.CloseIdleConnections)
	return &simBundle{sim: sim, client: c, ctx: t.Context()}
}

func TestRoundTripLists(t *testing.T) {
	t.Parallel()
	b := setupSim(t, datahubtest.Options{}, func(c *Config) { c.PageLimit = 7 })
	b.sim.Populate(9, 60, 15, 12)

	teachers, err := b.client.Teachers(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	students, err := b.client.Students(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	sections, err := b.client.Sections(b.ctx)
	if err != nil {
		t.Fatal(err)
	}

	wantT := b.sim.Teachers()
	if len(teachers) != len(wantT) || len(teachers) != 9 {
		t.Fatalf("%d teachers, simulator has %d", len(teachers), len(wantT))
	}
	for i, w := range wantT {
		got := teachers[i]
		if got.ID != w.ID || got.Email != w.Email || got.Name.First != w.Name.First || got.Name.Last != w.Name.Last ||
			got.School != w.School || got.District != w.District || !got.Created.Equal(w.Created) {
			t.Errorf("teacher %d = %+v, simulator %+v", i, got, w)
		}
	}
	if wantS := b.sim.Students(); len(students) != len(wantS) || len(students) != 60 {
		t.Errorf("%d students, simulator has %d", len(students), len(wantS))
	} else {
		for i, w := range wantS {
			if students[i].ID != w.ID || students[i].Grade != w.Grade || students[i].Email != w.Email {
				t.Errorf("student %d = %+v, simulator %+v", i, students[i], w)
			}
		}
	}
	wantSec := b.sim.Sections()
	if len(sections) != len(wantSec) || len(sections) != 15 {
		t.Fatalf("%d sections, simulator has %d", len(sections), len(wantSec))
	}
	for i, w := range wantSec {
		got := sections[i]
		if got.ID != w.ID || got.Name != w.Name || got.Teacher != w.Teacher || got.Subject != w.Subject ||
			!sameSet(got.Students, w.Students) || !sameSet(got.Teachers, w.Teachers) || got.Term.Name != w.Term.Name {
			t.Errorf("section %d = %+v, simulator %+v", i, got, w)
		}
		if len(got.Students) != 12 {
			t.Errorf("section %d has %d students", i, len(got.Students))
		}
	}
	if st := b.sim.Stats(); st.TokensIssued != 1 {
		t.Errorf("TokensIssued = %d over %d requests, want 1", st.TokensIssued, st.Requests)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// followFeed reads the feed from next to its end and returns the events and
// the last NEXT uri.
func followFeed(t *testing.T, b *simBundle, next string) ([]Event, string) {
	t.Helper()
	var all []Event
	for range 1000 {
		p, err := b.client.EventsPage(b.ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Malformed) > 0 {
			t.Fatalf("malformed events: %+v", p.Malformed)
		}
		all = append(all, p.Items...)
		if p.Next == "" {
			t.Fatal("the simulator's feed always has a NEXT link")
		}
		if p.Len() == 0 {
			return all, next
		}
		next = p.Next
	}
	t.Fatal("the feed does not end")
	return nil, ""
}

func TestRoundTripFeed(t *testing.T) {
	t.Parallel()
	b := setupSim(t, datahubtest.Options{}, func(c *Config) { c.PageLimit = 5 })
	b.sim.Populate(3, 10, 4, 3)

	got, cursor := followFeed(t, b, "")
	want := b.sim.Events()
	if len(got) != len(want) || len(got) != 3+10+4 {
		t.Fatalf("%d events, simulator has %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].ID != w.ID || got[i].Type != w.Type || !got[i].Created.Equal(w.Created) {
			t.Errorf("event %d = %s %s %v, simulator %s %s %v", i, got[i].ID, got[i].Type, got[i].Created, w.ID, w.Type, w.Created)
		}
	}
	sec, err := DecodeSection(got[len(got)-1].Object)
	if err != nil || got[len(got)-1].Resource() != "sections" || got[len(got)-1].Action() != "created" || len(sec.Students) != 3 {
		t.Errorf("last event %s: %+v, %v", got[len(got)-1].Type, sec, err)
	}

	// New events appear after the cursor, and only they.
	sid := sec.ID
	enrolled := b.sim.Students()[9].ID
	if slices.Contains(sec.Students, enrolled) {
		enrolled = b.sim.Students()[8].ID
	}
	evID := b.sim.Enroll(sid, enrolled)
	more, _ := followFeed(t, b, cursor)
	if len(more) != 1 || more[0].ID != evID || more[0].Type != "sections.updated" {
		t.Fatalf("events after the cursor = %+v", more)
	}
	after, err := DecodeSection(more[0].Object)
	if err != nil || !slices.Contains(after.Students, enrolled) {
		t.Errorf("sections.updated object = %+v, %v", after, err)
	}
}

func TestRoundTripFeedHead(t *testing.T) {
	t.Parallel()
	b := setupSim(t, datahubtest.Options{}, func(c *Config) { c.PageLimit = 4 })
	b.sim.Populate(2, 9, 3, 2) // 14 events: 4 pages, the last one partial

	id, next, err := b.client.FeedHead(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs := b.sim.Events()
	if id != evs[len(evs)-1].ID || next == "" {
		t.Fatalf("FeedHead = %q, %q; newest event is %s", id, next, evs[len(evs)-1].ID)
	}
	if st := b.sim.Stats(); st.ByEndpoint["GET /datahub/services/v1/events"] > 3 {
		t.Errorf("FeedHead made %d requests of the feed", st.ByEndpoint["GET /datahub/services/v1/events"])
	}

	tch, evID := b.sim.AddTeacher(datahubtest.Teacher{Name: datahubtest.Name{First: "Ada", Last: "Byron"}, Email: "ada@example.com"})
	got, _ := followFeed(t, b, next)
	if len(got) != 1 || got[0].ID != evID || got[0].Resource() != "teachers" || got[0].Action() != "created" {
		t.Fatalf("events after the head = %+v", got)
	}
	dt, err := DecodeTeacher(got[0].Object)
	if err != nil || dt.ID != tch.ID || dt.Name.First != "Ada" || dt.Email != "ada@example.com" {
		t.Errorf("teacher = %+v, %v", dt, err)
	}

	// An empty feed has a head too.
	empty := setupSim(t, datahubtest.Options{})
	id, next, err = empty.client.FeedHead(empty.ctx)
	if err != nil || id != "" {
		t.Fatalf("empty FeedHead = %q, %q, %v", id, next, err)
	}
	_, evID = empty.sim.AddTeacher(datahubtest.Teacher{})
	if got, _ := followFeed(t, empty, next); len(got) != 1 || got[0].ID != evID {
		t.Errorf("events after the head of an empty feed = %+v", got)
	}
}

func TestRoundTripTokens(t *testing.T) {
	t.Parallel()
	b := setupSim(t, datahubtest.Options{})
	b.sim.Populate(2, 5, 2, 2)
	for range 10 {
		if _, err := b.client.Sections(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.sim.Stats().TokensIssued; n != 1 {
		t.Errorf("TokensIssued = %d after 10 calls, want 1", n)
	}
	b.sim.ExpireTokens()
	if _, err := b.client.Sections(b.ctx); err != nil {
		t.Fatal(err)
	}
	st := b.sim.Stats()
	if st.TokensIssued != 2 || st.ByStatus[401] != 1 {
		t.Errorf("after ExpireTokens: TokensIssued %d, 401s %d; want 2 and 1", st.TokensIssued, st.ByStatus[401])
	}
	if _, err := b.client.Teachers(b.ctx); err != nil || b.sim.Stats().TokensIssued != 2 {
		t.Errorf("the new token is not reused: %v, %d", err, b.sim.Stats().TokensIssued)
	}

	bad := setupSim(t, datahubtest.Options{}, func(c *Config) { c.ClientSecret = "wrong" })
	if _, err := bad.client.Teachers(bad.ctx); !errors.Is(err, ErrUnauthorized) || IsRetryable(err) {
		t.Errorf("wrong secret: err = %v", err)
	}
}

func TestRoundTripStaleCursor(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	b := setupSim(t, datahubtest.Options{Now: clock.Now, FeedHorizon: 24 * time.Hour}, func(c *Config) { c.PageLimit = 2 })
	b.sim.Populate(1, 3, 1, 1)
	p, err := b.client.EventsPage(b.ctx, "")
	if err != nil || p.Next == "" {
		t.Fatalf("EventsPage = %+v, %v", p, err)
	}
	// The events the cursor points after fall off the feed; the simulator's
	// tokens (on its own clock) have expired by then too.
	clock.Advance(48 * time.Hour)
	b.sim.AddTeacher(datahubtest.Teacher{})
	_, err = b.client.EventsPage(b.ctx, p.Next)
	if !errors.Is(err, ErrCursorRejected) || IsRetryable(err) {
		t.Errorf("stale cursor: err = %v, want ErrCursorRejected", err)
	}
	if n := b.sim.Stats().TokensIssued; n != 2 {
		t.Errorf("TokensIssued = %d, want 2 (one renewal after the simulator's 401)", n)
	}
}

func TestRoundTripFaults(t *testing.T) {
	t.Parallel()
	b := setupSim(t, datahubtest.Options{Seed: 3}, func(c *Config) {
		c.PageLimit = 3
		c.RetryMaxAttempts = 8
	})
	b.sim.Populate(4, 30, 6, 5)
	b.sim.SetFaults(datahubtest.Faults{Rate429: 0.15, Rate500: 0.1, Rate503: 0.1})
	students, err := b.client.Students(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	sections, err := b.client.Sections(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	events, _ := followFeed(t, b, "")
	if len(students) != 30 || len(sections) != 6 || len(events) != 40 {
		t.Errorf("%d students, %d sections, %d events", len(students), len(sections), len(events))
	}
	if b.sim.Stats().Faults == 0 {
		t.Error("no fault was injected; the test proves nothing")
	}
}
