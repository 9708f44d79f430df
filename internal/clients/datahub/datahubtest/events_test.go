package datahubtest

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// poll follows the feed from uri for n pages and returns the event ids read and the
// NEXT uri to continue from. Every feed page must carry NEXT.
func (h *harness) poll(uri string, n int) ([]string, string) {
	h.t.Helper()
	var ids []string
	for range n {
		p := h.list(uri)
		ids = append(ids, p.ids(h.t)...)
		next, ok := p.link("next")
		if !ok {
			h.t.Fatalf("feed page %s has no NEXT link: %+v", uri, p.Links)
		}
		uri = next
	}
	return ids, uri
}

func eventIDs(evs []Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func TestFeedPagingContinuesAfterTheLastIDWhileEventsArrive(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(2, 3, 0, 0) // five events

	var read []string
	p := h.list("/v1/events?limit=2")
	if p.Paging.Count != 5 || p.Paging.Total != 3 || p.Paging.Current != 1 {
		t.Errorf("paging = %+v", p.Paging)
	}
	read = append(read, p.ids(t)...)
	next, _ := p.link("next")
	for i := range 6 {
		// Events appended between pages are read once, in order, after the older ones.
		h.clock.Advance(time.Second)
		h.srv.AddStudent(Student{Name: Name{First: "S", Last: string(rune('a' + i))}})
		ids, n := h.poll(next, 1)
		read = append(read, ids...)
		next = n
	}
	rest, next := h.poll(next, 3)
	read = append(read, rest...)
	if want := eventIDs(h.srv.Events()); !slices.Equal(read, want) {
		t.Errorf("read %v\nwant %v", read, want)
	}
	if !slices.IsSorted(read) {
		t.Error("event ids are not in creation order")
	}

	// At the head, an empty page still carries NEXT: the same token, so polling goes on.
	p = h.list(next)
	if len(p.Data) != 0 {
		t.Fatalf("%d events past the head", len(p.Data))
	}
	again, ok := p.link("NEXT")
	if !ok || again != next {
		t.Fatalf("empty page NEXT = %q (%v), want %q", again, ok, next)
	}
	id := h.srv.AddEvent("districts.updated", map[string]any{"id": h.srv.DistrictID(), "name": "Renamed"}, map[string]any{"name": "Old"})
	if got := h.list(again).ids(t); !slices.Equal(got, []string{id}) {
		t.Errorf("after the head: %v, want the new event", got)
	}
}

func TestEmptyFeedCarriesNext(t *testing.T) {
	t.Parallel()
	h := setup(t)
	p := h.list("/v1/events")
	if len(p.Data) != 0 || p.Paging.Count != 0 || p.Paging.Total != 1 {
		t.Errorf("empty feed: %+v", p.Paging)
	}
	next, ok := p.link("next")
	if !ok {
		t.Fatal("empty feed without NEXT")
	}
	_, id := h.srv.AddTeacher(Teacher{Name: Name{First: "A", Last: "B"}})
	if got := h.list(next).ids(t); !slices.Equal(got, []string{id}) {
		t.Errorf("from the empty feed's NEXT: %v, want [%s]", got, id)
	}

	// A page past the end continues after the newest event.
	p = h.list("/v1/events?page=5")
	next, ok = p.link("next")
	if len(p.Data) != 0 || !ok || !strings.HasSuffix(searchTokenOf(t, next), "."+id) {
		t.Errorf("page past the end: %d events, NEXT %q", len(p.Data), next)
	}
}

func TestHeadOfFeedIsTheLastEventOfTheLastPage(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(3, 30, 4, 5) // 37 events
	p := h.list("/v1/events?limit=10")
	last := h.list("/v1/events?limit=10&page=" + strconv.Itoa(p.Paging.Total))
	evs := h.srv.Events()
	if ids := last.ids(t); len(ids) != 7 || ids[len(ids)-1] != evs[len(evs)-1].ID {
		t.Errorf("last page %v, want the 7 newest ending with %s", ids, evs[len(evs)-1].ID)
	}
	// Following the last page's NEXT gives only what comes later.
	next, _ := last.link("next")
	id := h.srv.Enroll(h.srv.Sections()[0].ID, "new-student")
	if got := h.list(next).ids(t); !slices.Equal(got, []string{id}) {
		t.Errorf("after the head: %v", got)
	}
}

func TestFeedHorizon(t *testing.T) {
	t.Parallel()
	h := setup(t)
	_, old1 := h.srv.AddTeacher(Teacher{Name: Name{First: "A", Last: "B"}})
	h.srv.AddTeacher(Teacher{Name: Name{First: "C", Last: "D"}})
	p := h.list("/v1/events?limit=1")
	stale, _ := p.link("next") // continues after old1

	h.advance(20 * 24 * time.Hour)
	_, kept := h.srv.AddTeacher(Teacher{Name: Name{First: "E", Last: "F"}})
	fresh, _ := h.list("/v1/events?limit=1&page=3").link("next") // continues after kept
	h.advance(11 * 24 * time.Hour)

	if got := eventIDs(h.srv.Events()); !slices.Equal(got, []string{kept}) {
		t.Errorf("feed after 31 days = %v, want only the 11-day-old event", got)
	}
	var ev json.RawMessage
	h.get("/v1/events/"+old1).want(t, http.StatusNotFound).decode(t, &ev)
	// The cursor points at a dropped event: refused, so the poller resyncs.
	h.get(stale).wantJSON(t, http.StatusBadRequest, `{"error":"invalid search_token"}`)
	// A cursor at a kept event still works.
	h.list(fresh)
	// Unknown and garbled cursors are refused too.
	for _, tok := range []string{"2.2.5.FORWARD.ffffffffffffffffffffffff", "2.x.5.FORWARD." + kept, "3.2.5.FORWARD." + kept, "2.2.5.BACKWARD." + kept, "2.2.5.FORWARD."} {
		h.get("/v1/events?search_token="+urlQueryEscape(tok)).wantJSON(t, http.StatusBadRequest, `{"error":"invalid search_token"}`)
	}
	// Everything gone: the empty feed's NEXT still leads on.
	h.advance(30 * 24 * time.Hour)
	head, _ := h.list("/v1/events").link("next")
	_, id := h.srv.AddTeacher(Teacher{Name: Name{First: "G", Last: "H"}})
	if got := h.list(head).ids(t); !slices.Equal(got, []string{id}) {
		t.Errorf("after a fully aged feed: %v", got)
	}
}

func TestQuietFeedCursorExpiresOnlyWhenItMissedSomething(t *testing.T) {
	t.Parallel()
	h := setup(t)
	head, _ := h.list("/v1/events").link("next") // an empty feed's cursor
	h.advance(45 * 24 * time.Hour)
	h.list(head) // nothing happened in between: still valid

	h.srv.AddTeacher(Teacher{Name: Name{First: "A", Last: "B"}})
	h.advance(31 * 24 * time.Hour)
	// An event after the cursor was dropped unseen: refused.
	h.get(head).wantJSON(t, http.StatusBadRequest, `{"error":"invalid search_token"}`)
}

func TestFeedHorizonIsConfigurable(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{FeedHorizon: time.Hour})
	h.srv.AddTeacher(Teacher{Name: Name{First: "A", Last: "B"}})
	h.clock.Advance(59 * time.Minute)
	if n := len(h.srv.Events()); n != 1 {
		t.Fatalf("%d events after 59 minutes", n)
	}
	h.clock.Advance(2 * time.Minute)
	if p := h.list("/v1/events"); len(p.Data) != 0 || p.Paging.Count != 0 {
		t.Errorf("after 61 minutes the feed holds %d events", len(p.Data))
	}
}

func TestPerEntityFeeds(t *testing.T) {
	t.Parallel()
	h := setup(t)
	st, created := h.srv.AddStudent(Student{Name: Name{First: "A", Last: "B"}})
	sec, _ := h.srv.AddSection(Section{Name: "Art"})
	enrolled := h.srv.Enroll(sec.ID, st.ID)
	renamed := h.srv.RenameStudent(st.ID, "Alex", "B")

	if got := h.list("/v1/students/" + st.ID + "/events").ids(t); !slices.Equal(got, []string{created, renamed}) {
		t.Errorf("student feed = %v", got)
	}
	p := h.list("/v1/sections/" + sec.ID + "/events?limit=1&page=2")
	if got := p.ids(t); !slices.Equal(got, []string{enrolled}) {
		t.Errorf("section feed page 2 = %v", got)
	}
	if _, ok := p.link("next"); !ok {
		t.Error("per-entity feed without NEXT")
	}
	if got := h.list("/v1/districts/" + h.srv.DistrictID() + "/events").Paging.Count; got != 4 {
		t.Errorf("district feed count = %d, want every event", got)
	}
	if got := h.list("/v1/schools/" + h.srv.SchoolID() + "/events").Paging.Count; got != 4 {
		t.Errorf("school feed count = %d", got)
	}
}

func TestEventShapeIsClevers(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tch, id := h.srv.AddTeacher(Teacher{SISID: "39", Name: Name{First: "Manuel", Middle: "S", Last: "Purdy"}})

	var raw map[string]any
	p := h.list("/v1/events")
	if p.Data[0].URI != "/v1/events/"+id {
		t.Errorf("uri = %s", p.Data[0].URI)
	}
	if err := json.Unmarshal(p.Data[0].Data, &raw); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, raw, "id", "created", "type", "data")
	wantKeys(t, raw["data"].(map[string]any), "object") // no previous_attributes on created
	if raw["id"] != id || raw["type"] != "teachers.created" || !timeRE.MatchString(raw["created"].(string)) {
		t.Errorf("event = %v", raw)
	}
	ev, single := h.event(id)
	if !reflect.DeepEqual(single, raw) {
		t.Errorf("GET /v1/events/{id} = %v, want the list's %v", single, raw)
	}
	if ev.Data.Object["id"] != tch.ID || ev.Data.Object["sis_id"] != "39" {
		t.Errorf("object = %v", ev.Data.Object)
	}
	evs := h.srv.Events()
	if len(evs) != 1 || evs[0].ID != id || evs[0].Type != "teachers.created" || !evs[0].Created.Equal(h.clock.Now()) {
		t.Errorf("Events() = %+v", evs)
	}
}

func TestAddEventAppendsAnything(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := h.srv.AddEvent("contacts.created", map[string]any{"id": "c1", "student": "s1"}, nil)
	b := h.srv.AddEvent("sections.updated", json.RawMessage(`"not an object"`), json.RawMessage(`{"students":"nope"}`))
	c := h.srv.AddEvent("sections.updated", map[string]any{"id": "partial", "subject": "math"}, map[string]any{"subject": "science"})

	p := h.list("/v1/events")
	if got := p.ids(t); !slices.Equal(got, []string{a, b, c}) {
		t.Errorf("ids = %v", got)
	}
	var ev struct {
		Type string
		Data json.RawMessage
	}
	if err := json.Unmarshal(p.Data[1].Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "sections.updated" || string(ev.Data) != `{"object":"not an object","previous_attributes":{"students":"nope"}}` {
		t.Errorf("malformed event = %s %s", ev.Type, ev.Data)
	}
	if len(h.srv.Sections()) != 0 {
		t.Error("AddEvent changed the roster")
	}
}
