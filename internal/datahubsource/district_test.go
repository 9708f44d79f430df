package datahubsource_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/valve"
)

// twoDistricts is a pipeline whose DataHub credentials see two districts: the
// simulator's first, a, and b, each with its own schools, people and sections.
func twoDistricts(t *testing.T) (p *pipeline, a, b string) {
	t.Helper()
	p = newPipeline(t, 50*time.Millisecond)
	a = p.hub.DistrictID()
	b, _ = p.hub.AddDistrict("Shelbyville Unified School District")
	p.hub.Populate(4, 30, 5, 5)
	p.hub.PopulateDistrict(b, 4, 30, 5, 5)
	return p, a, b
}

// scopeTo replaces the pipeline's source (not running yet) by one whose
// client reads only the district, as the poller builds it for a tenant with
// datahub.district_id.
func (p *pipeline) scopeTo(t *testing.T, district string) {
	t.Helper()
	client, err := datahub.New(datahub.Config{BaseURL: p.hub.URL(), ClientID: datahubtest.ClientIDDefault,
		ClientSecret: datahubtest.ClientSecretDefault, District: district})
	if err != nil {
		t.Fatal(err)
	}
	p.src = datahubsource.New(datahubsource.Config{Tenant: tenant, Client: client, JS: p.js, Stores: p.stores,
		PollInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// districtRoster is the district as DataHub has it now, and the ids of
// everything of other districts.
func (p *pipeline) districtRoster(t *testing.T, district string) (roster *datahubsource.Roster, others []string) {
	teachers := ofDistrict(t, p.hub.Teachers(), district, func(x datahubtest.Teacher) (string, string) { return x.District, x.ID }, datahub.DecodeTeacher, &others)
	students := ofDistrict(t, p.hub.Students(), district, func(x datahubtest.Student) (string, string) { return x.District, x.ID }, datahub.DecodeStudent, &others)
	sections := ofDistrict(t, p.hub.Sections(), district, func(x datahubtest.Section) (string, string) { return x.District, x.ID }, datahub.DecodeSection, &others)
	return datahubsource.RosterOf(teachers, students, sections), others
}

// ofDistrict converts the records of the district to the client's types,
// and adds the ids of the others to others.
func ofDistrict[S, T any](t *testing.T, records []S, district string, of func(S) (district, id string), decode func(json.RawMessage) (T, error), others *[]string) []T {
	var in []T
	for _, x := range records {
		if d, id := of(x); d != district {
			*others = append(*others, id)
			continue
		}
		in = append(in, convert(t, x, decode))
	}
	return in
}

// convergedOn waits until Class holds what the district says, and nothing of
// another district.
func (p *pipeline) convergedOn(t *testing.T, district, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		got, hosts := classView(p.cls.State())
		roster, _ := p.districtRoster(t, district)
		for id, sec := range roster.Sections {
			if sec.Teacher == "" {
				delete(got, "class "+events.ExternalID("datahub", tenant, "section", id))
			}
		}
		d := mapDiff(wantView(datahubsource.Mapper{Tenant: tenant}.States(roster), hosts), got)
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Class did not converge on district %s within 30s: %s", what, district, d)
		}
		<-tick.C
	}
}

// published returns the data of every change message in the stream.
func (p *pipeline) published(t *testing.T) []string {
	t.Helper()
	var out []string
	err := events.ReadStream(t.Context(), p.js, events.StreamName, nil, jetstream.DeliverAllPolicy, func(m jetstream.Msg) error {
		out = append(out, m.Subject()+" "+string(m.Data()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mentioning returns the messages that name one of the ids.
func mentioning(msgs, ids []string) []string {
	var out []string
	for _, m := range msgs {
		for _, id := range ids {
			if strings.Contains(m, id) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// onlyDistrictEndpoints fails the test if the simulator was asked for any
// list or feed outside a district since before.
func onlyDistrictEndpoints(t *testing.T, before, after datahubtest.Stats) {
	t.Helper()
	for endpoint, n := range after.ByEndpoint {
		if n == before.ByEndpoint[endpoint] || strings.HasPrefix(endpoint, "POST ") ||
			strings.HasPrefix(endpoint, "GET /datahub/services/v1/districts/{id}/") {
			continue
		}
		t.Errorf("the district's tenant requested %s", endpoint)
	}
}

func TestDistrictTenantPublishesOnlyItsDistrict(t *testing.T) {
	p, a, b := twoDistricts(t)
	p.scopeTo(t, a)
	before := p.hub.Stats()
	p.runSource(t)
	p.convergedOn(t, a, "first sync")

	// Changes in both districts; the feed of a reaches past b's.
	secA, secB := p.hub.Sections()[0], p.hub.Sections()[len(p.hub.Sections())-1]
	if secA.District != a || secB.District != b {
		t.Fatalf("sections of districts %s and %s, want %s and %s", secA.District, secB.District, a, b)
	}
	p.hub.UpdateSection(secB.ID, "Shelbyville only", "")
	p.hub.RenameStudent(secB.Students[0], "Other", "District")
	p.hub.AddStudent(datahubtest.Student{District: b, Email: "new.b@shelbyville.example.org", Name: datahubtest.Name{First: "New", Last: "B"}})
	p.hub.Enroll(secA.ID, p.hub.Sections()[1].Students[0])
	p.caughtUp(t, p.hub.UpdateSection(secA.ID, "Springfield only", ""))
	p.convergedOn(t, a, "changes in both districts")
	p.classNamed(t, secA.ID, "Springfield only")

	_, others := p.districtRoster(t, a)
	msgs := p.published(t)
	if len(msgs) == 0 {
		t.Fatal("nothing published")
	}
	if leaked := mentioning(msgs, others); len(leaked) > 0 {
		t.Errorf("%d of %d messages name records of district %s, the first: %s", len(leaked), len(msgs), b, leaked[0])
	}
	onlyDistrictEndpoints(t, before, p.hub.Stats())
}

func TestDistrictSetOnARunningTenantResyncsFromTheDistrictAlone(t *testing.T) {
	p, a, _ := twoDistricts(t)
	stop := p.runSource(t)
	p.converged(t, 30*time.Second, "first sync of every district")
	stop()

	// The operator sets datahub.district_id: the stored cursor is one of the
	// feed of every district, which the district's client refuses rather than
	// read every district's events on; the full resync that follows reads only
	// the district and deletes the rest, held by the safety valve since it is
	// half the tenant.
	p.scopeTo(t, a)
	before := p.hub.Stats()
	p.runSource(t)
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var sets []valve.ChangeSet
	for len(sets) == 0 {
		var err error
		if sets, err = p.stores.Held.List(ctx, tenant); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no deletions held within 30s (resyncs %d)", p.src.Stats.Resyncs.Load())
		}
		<-tick.C
	}
	if len(sets) != 1 || p.src.Stats.Resyncs.Load() != 1 {
		t.Fatalf("%d held sets after %d resyncs, want one after one", len(sets), p.src.Stats.Resyncs.Load())
	}
	_, others := p.districtRoster(t, a)
	for _, m := range sets[0].Messages {
		if !strings.Contains(m.Subject, ".delete") || len(mentioning([]string{string(m.Data)}, others)) == 0 {
			t.Errorf("held %s names nothing of the other district", m.Subject)
		}
	}
	// The district's feed goes on from the resync's head.
	sec := p.hub.Sections()[0]
	p.caughtUp(t, p.hub.UpdateSection(sec.ID, "Still polled", ""))
	p.classNamed(t, sec.ID, "Still polled")
	onlyDistrictEndpoints(t, before, p.hub.Stats())

	// Approved, the deletions take effect: they are versioned at the stored
	// cursor of the feed of every district, not at the district's older
	// head, so the worker does not skip them as older than what Class has.
	n, err := p.stores.Held.Approve(ctx, p.js, tenant, sets[0].ID)
	if err != nil || n != len(sets[0].Messages) {
		t.Fatalf("approve: %d, %v", n, err)
	}
	p.convergedOn(t, a, "the other district's records deleted")
	p.classNamed(t, sec.ID, "Still polled")
	p.noDuplicates(t)
}
