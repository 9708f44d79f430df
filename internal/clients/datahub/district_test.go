package datahub

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
)

// scopedClient returns a client of one district of b's simulator, with b's
// page limit, whose backoff does not wait.
func scopedClient(t *testing.T, b *simBundle, district string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: b.sim.URL(), ClientID: datahubtest.ClientIDDefault, ClientSecret: datahubtest.ClientSecretDefault,
		PageLimit: b.client.limit, District: district})
	if err != nil {
		t.Fatal(err)
	}
	c.sleepFunc = b.client.sleepFunc
	t.Cleanup(c.http.CloseIdleConnections)
	return c
}

// readAll reads c's roster and its whole feed, and returns the ids of each.
func readAll(t *testing.T, b *simBundle, c *Client) (roster, feed []string, head Head) {
	t.Helper()
	teachers, err := c.Teachers(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	students, err := c.Students(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	sections, err := c.Sections(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range teachers {
		roster = append(roster, x.ID)
	}
	for _, x := range students {
		roster = append(roster, x.ID)
	}
	for _, x := range sections {
		roster = append(roster, x.ID)
	}
	if head, err = c.Head(b.ctx); err != nil {
		t.Fatal(err)
	}
	next := ""
	for range 100 {
		p, err := c.EventsPage(b.ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			feed = append(feed, e.ID)
		}
		if p.Len() == 0 {
			return roster, feed, head
		}
		next = p.Next
	}
	t.Fatal("the feed does not end")
	return nil, nil, Head{}
}

// requestsSince returns the endpoints requested since before, with their
// counts.
func requestsSince(before, after datahubtest.Stats) map[string]int {
	out := map[string]int{}
	for k, n := range after.ByEndpoint {
		if d := n - before.ByEndpoint[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func TestDistrictClientReadsOnlyTheDistrictsEndpoints(t *testing.T) {
	t.Parallel()
	b := setupSim(t, datahubtest.Options{}, func(c *Config) { c.PageLimit = 4 })
	b.sim.Populate(5, 21, 6, 4) // several pages of everything

	wantRoster, wantFeed, wantHead := readAll(t, b, b.client)
	before := b.sim.Stats()
	c := scopedClient(t, b, b.sim.DistrictID())
	roster, feed, head := readAll(t, b, c)
	if !slices.Equal(roster, wantRoster) || !slices.Equal(feed, wantFeed) {
		t.Errorf("the district's client read %d records and %d events; the client of everything %d and %d",
			len(roster), len(feed), len(wantRoster), len(wantFeed))
	}
	if head.ID != wantHead.ID || !head.Created.Equal(wantHead.Created) {
		t.Errorf("Head = %+v, want %+v", head, wantHead)
	}
	if want := "/v1/districts/" + b.sim.DistrictID() + "/events?"; !strings.HasPrefix(head.Next, want) {
		t.Errorf("Head.Next = %q, want a NEXT link of %s", head.Next, want)
	}
	requested := requestsSince(before, b.sim.Stats())
	for endpoint := range requested {
		if endpoint != "POST "+datahubtest.TokenPath && !strings.HasPrefix(endpoint, "GET /datahub/services/v1/districts/{id}/") {
			t.Errorf("the district's client requested %s", endpoint)
		}
	}
	for _, res := range []string{"teachers", "students", "sections", "events"} {
		if requested["GET /datahub/services/v1/districts/{id}/"+res] < 2 {
			t.Errorf("requests of the district's %s: %v; want more than one page", res, requested)
		}
	}

	// The cursor of Head continues the district's feed.
	_, id := b.sim.AddStudent(datahubtest.Student{Name: datahubtest.Name{First: "After", Last: "Head"}})
	p, err := c.EventsPage(b.ctx, head.Next)
	if err != nil || len(p.Items) != 1 || p.Items[0].ID != id {
		t.Errorf("after the head: %+v, %v; want event %s", p.Items, err, id)
	}
}

func TestDistrictClientNeverSeesAnotherDistrict(t *testing.T) {
	t.Parallel()
	b := setupSim(t, datahubtest.Options{}, func(c *Config) { c.PageLimit = 3 })
	other, _ := b.sim.AddDistrict("Shelbyville Unified School District")
	b.sim.Populate(3, 8, 3, 3)
	b.sim.PopulateDistrict(other, 2, 7, 2, 3)
	sec := b.sim.Sections()[0]
	b.sim.AddStudent(datahubtest.Student{District: other})
	b.sim.RenameStudent(sec.Students[0], "Renamed", "InA")
	b.sim.AddTeacher(datahubtest.Teacher{District: other})

	districtOf := map[string]string{}
	for _, x := range b.sim.Teachers() {
		districtOf[x.ID] = x.District
	}
	for _, x := range b.sim.Students() {
		districtOf[x.ID] = x.District
	}
	for _, x := range b.sim.Sections() {
		districtOf[x.ID] = x.District
	}
	for _, district := range []string{b.sim.DistrictID(), other} {
		c := scopedClient(t, b, district)
		roster, feed, head := readAll(t, b, c)
		var want []string
		for _, id := range slices.Sorted(maps.Keys(districtOf)) {
			if districtOf[id] == district {
				want = append(want, id)
			}
		}
		if got := slices.Sorted(slices.Values(roster)); !slices.Equal(got, want) {
			t.Errorf("district %s: roster %v, want %v", district, got, want)
		}
		var wantFeed []string
		for _, e := range b.sim.Events() {
			var obj struct{ District string }
			if err := json.Unmarshal(e.Data, &struct{ Object any }{&obj}); err != nil {
				t.Fatal(err)
			}
			if obj.District == district {
				wantFeed = append(wantFeed, e.ID)
			}
		}
		if !slices.Equal(feed, wantFeed) || head.ID != wantFeed[len(wantFeed)-1] {
			t.Errorf("district %s: feed %v with head %s, want %v", district, feed, head.ID, wantFeed)
		}
	}
}

func TestUnknownDistrictIsAPermanentErrorNamingIt(t *testing.T) {
	t.Parallel()
	b := setupSim(t, datahubtest.Options{})
	b.sim.Populate(1, 2, 1, 1)
	const unknown = "5f0000000000000000000bad"
	c := scopedClient(t, b, unknown)
	before := b.sim.Stats()
	calls := map[string]func() error{
		"Teachers":   func() error { _, err := c.Teachers(b.ctx); return err },
		"Students":   func() error { _, err := c.Students(b.ctx); return err },
		"Sections":   func() error { _, err := c.Sections(b.ctx); return err },
		"EventsPage": func() error { _, err := c.EventsPage(b.ctx, ""); return err },
		"Head":       func() error { _, err := c.Head(b.ctx); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, ErrDistrictNotFound) || !errors.Is(err, ErrNotFound) || IsRetryable(err) {
			t.Errorf("%s: %v; want a permanent ErrDistrictNotFound", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "district "+unknown+" not found") {
			t.Errorf("%s: %q does not name the district", name, err)
		}
	}
	got := requestsSince(before, b.sim.Stats())
	delete(got, "POST "+datahubtest.TokenPath)
	want := map[string]int{ // one request each: nothing retried
		"GET /datahub/services/v1/districts/{id}/teachers": 1,
		"GET /datahub/services/v1/districts/{id}/students": 1,
		"GET /datahub/services/v1/districts/{id}/sections": 1,
		"GET /datahub/services/v1/districts/{id}/events":   2,
	}
	if !maps.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	// A 404 of a client of every district is no district's.
	if _, err := b.client.EventsPage(b.ctx, "/v1/events/nope/x"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrDistrictNotFound) {
		t.Errorf("unscoped 404: %v", err)
	}
}

func TestDistrictClientRefusesCursorsOutOfItsDistrict(t *testing.T) {
	t.Parallel()
	b := setupSim(t, datahubtest.Options{}, func(c *Config) { c.PageLimit = 2 })
	other, _ := b.sim.AddDistrict("Shelbyville Unified School District")
	b.sim.Populate(2, 3, 1, 2)
	b.sim.PopulateDistrict(other, 2, 3, 1, 2)
	district := b.sim.DistrictID()
	c := scopedClient(t, b, district)

	// Cursors a tenant may have stored before its district was set, or for
	// another district, or that climb out of the district.
	unscoped, err := b.client.EventsPage(b.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	otherClient := scopedClient(t, b, other)
	otherPage, err := otherClient.EventsPage(b.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	scoped, err := c.EventsPage(b.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	_, query, _ := strings.Cut(scoped.Next, "?")
	before := b.sim.Stats()
	for _, next := range []string{
		unscoped.Next,
		otherPage.Next,
		"/v1/districts/" + district + "/../../events?" + query,
		"/v1/districts/" + district + "/%2e%2e/%2e%2e/events?" + query,
		"/v1/districts/" + district + "?" + query,
		"/v1/districts/" + district + "x/events?" + query,
		b.sim.URL() + "/datahub/services/v1/events?" + query,
	} {
		if _, err := c.EventsPage(b.ctx, next); !errors.Is(err, ErrCursorRejected) || !strings.Contains(err.Error(), "leads out of district "+district) {
			t.Errorf("EventsPage(%q) = %v; want the cursor rejected", next, err)
		}
	}
	// And the other way: a tenant whose district_id was removed does not
	// go on following its district's feed.
	if _, err := b.client.EventsPage(b.ctx, scoped.Next); !errors.Is(err, ErrCursorRejected) || !strings.Contains(err.Error(), "reads every district") {
		t.Errorf("unscoped EventsPage(%q) = %v; want the cursor rejected", scoped.Next, err)
	}
	if got := requestsSince(before, b.sim.Stats()); len(got) != 0 {
		t.Errorf("refused cursors were requested: %v", got)
	}
	// The district's own links, relative, with the services root, or absolute,
	// are followed.
	for _, next := range []string{
		scoped.Next,
		datahubtest.ServicesRoot + scoped.Next,
		b.sim.URL() + datahubtest.ServicesRoot + scoped.Next,
	} {
		if p, err := c.EventsPage(b.ctx, next); err != nil || p.Len() == 0 {
			t.Errorf("EventsPage(%q) = %d events, %v", next, p.Len(), err)
		}
	}
}

func TestDistrictClientRefusesListLinksOutOfItsDistrict(t *testing.T) {
	t.Parallel()
	// A hand-written DataHub whose district list links to every teacher.
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		switch r.URL.Path {
		case "/datahub/services/v1/districts/d1/teachers":
			writeJSON(w, http.StatusOK, listBody([]string{`{"id":"t1","name":{"first":"A","last":"B"}}`}, 1, 2, 2,
				link("NEXT", "/v1/teachers?search_token=2.2.2.FORWARD.t1")))
		default:
			t.Errorf("requested %s", r.URL.Path)
			writeJSON(w, http.StatusOK, listBody([]string{`{"id":"t2","name":{"first":"C","last":"D"}}`}, 2, 2, 2))
		}
	}, func(c *Config) { c.District = "d1" })
	if _, err := b.client.Teachers(b.ctx); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "leads out of district d1") {
		t.Errorf("Teachers = %v; want the NEXT link refused", err)
	}
}

func TestNewChecksAndEscapesDistrict(t *testing.T) {
	t.Parallel()
	good := Config{BaseURL: "https://datahub.example.org/base", ClientID: "id", ClientSecret: "secret"}
	for _, bad := range []string{".", "..", " d1", "d1\n", "d\x001"} {
		cfg := good
		cfg.District = bad
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "datahub: District: ") {
			t.Errorf("District %q: %v; want it refused", bad, err)
		}
	}
	for id, want := range map[string]string{
		"":                         "https://datahub.example.org/base/datahub/services/v1/teachers?limit=100",
		"4fd43cc56d11340000000005": "https://datahub.example.org/base/datahub/services/v1/districts/4fd43cc56d11340000000005/teachers?limit=100",
		"a/b?c#d":                  "https://datahub.example.org/base/datahub/services/v1/districts/a%2Fb%3Fc%23d/teachers?limit=100",
		"é ü":                      "https://datahub.example.org/base/datahub/services/v1/districts/%C3%A9%20%C3%BC/teachers?limit=100",
	} {
		cfg := good
		cfg.District = id
		c, err := New(cfg)
		if err != nil {
			t.Fatalf("District %q: %v", id, err)
		}
		if got := c.listURL("teachers", nil).String(); got != want {
			t.Errorf("District %q: list URL %s, want %s", id, got, want)
		}
		// Its own NEXT links pass.
		if id != "" {
			next := c.listURL("events", nil)
			if _, err := c.resolveNext(next.String()); err != nil {
				t.Errorf("District %q: its own NEXT link %s refused: %v", id, next, err)
			}
		}
	}
}
