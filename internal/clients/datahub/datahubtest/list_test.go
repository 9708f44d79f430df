package datahubtest

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"
)

var (
	idRE   = regexp.MustCompile(`^[0-9a-f]{24}$`)
	timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

func TestListShapeIsTheDocuments(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tch, _ := h.srv.AddTeacher(Teacher{
		SISID: "39", Email: "manuel.purdy@example.com",
		Name: Name{First: "Manuel", Middle: "S", Last: "Purdy"},
	})

	var body map[string]any
	h.get("/v1/teachers").want(t, http.StatusOK).decode(t, &body)
	wantKeys(t, body, "data", "paging", "links")
	if !reflect.DeepEqual(body["paging"], map[string]any{"current": 1.0, "total": 1.0, "count": 1.0}) {
		t.Errorf("paging = %v", body["paging"])
	}
	if !reflect.DeepEqual(body["links"], []any{map[string]any{"rel": "SELF", "uri": "/v1/teachers"}}) {
		t.Errorf("links = %v, want only SELF (no more records)", body["links"])
	}
	entry := body["data"].([]any)[0].(map[string]any)
	wantKeys(t, entry, "data", "uri")
	if entry["uri"] != "/v1/teachers/"+tch.ID {
		t.Errorf("uri = %v", entry["uri"])
	}
	obj := entry["data"].(map[string]any)
	// The fields of Clever's teachers.deleted fixture; empty optional ones are left out.
	wantKeys(t, obj, "id", "district", "school", "sis_id", "email", "name", "created", "last_modified")
	if !idRE.MatchString(tch.ID) || obj["district"] != h.srv.DistrictID() || obj["school"] != h.srv.SchoolID() {
		t.Errorf("teacher = %v", obj)
	}
	if !timeRE.MatchString(obj["created"].(string)) || obj["created"] != "2026-03-02T08:00:00.000Z" {
		t.Errorf("created = %v, want DataHub's millisecond UTC format", obj["created"])
	}
	if !reflect.DeepEqual(obj["name"], map[string]any{"first": "Manuel", "middle": "S", "last": "Purdy"}) {
		t.Errorf("name = %v", obj["name"])
	}
	// The typed value round-trips.
	var got Teacher
	if err := json.Unmarshal(mustJSON("t", obj), &got); err != nil || !reflect.DeepEqual(got, tch) {
		t.Errorf("decoded %+v (%v), want %+v", got, err, tch)
	}

	// An empty list is one empty page.
	h.get("/v1/contacts").wantJSON(t, http.StatusOK,
		`{"data":[],"paging":{"current":1,"total":1,"count":0},"links":[{"rel":"SELF","uri":"/v1/contacts"}]}`)
}

func TestSingleEntityShape(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tch, _ := h.srv.AddTeacher(Teacher{Name: Name{First: "A", Last: "B"}})
	st, _ := h.srv.AddStudent(Student{Name: Name{First: "C", Last: "D"}, Grade: "7"})
	sec, _ := h.srv.AddSection(Section{Name: "Math 7", Teacher: tch.ID, Students: []string{st.ID}})

	var body struct {
		Data  Section `json:"data"`
		Links []struct{ Rel, URI string }
	}
	h.get("/v1/sections/"+sec.ID).want(t, http.StatusOK).decode(t, &body)
	if !reflect.DeepEqual(body.Data, sec) {
		t.Errorf("section = %+v, want %+v", body.Data, sec)
	}
	if !slices.Equal(sec.Teachers, []string{tch.ID}) {
		t.Errorf("teachers = %v, want the primary added", sec.Teachers)
	}
	if body.Links[0].Rel != "self" || body.Links[0].URI != "/v1/sections/"+sec.ID {
		t.Errorf("links = %v", body.Links)
	}
	rels := map[string]string{}
	for _, l := range body.Links {
		rels[l.Rel] = l.URI
	}
	// Every related link resolves.
	for _, rel := range []string{"students", "teachers", "teacher", "school", "district", "events"} {
		uri, ok := rels[rel]
		if !ok {
			t.Errorf("no %s link in %v", rel, body.Links)
			continue
		}
		h.get(uri).want(t, http.StatusOK)
	}
	if ids := h.list("/v1/sections/" + sec.ID + "/students").ids(t); !slices.Equal(ids, []string{st.ID}) {
		t.Errorf("section students = %v", ids)
	}
	if ids := h.list("/v1/students/" + st.ID + "/teachers").ids(t); !slices.Equal(ids, []string{tch.ID}) {
		t.Errorf("student teachers = %v", ids)
	}
	if ids := h.list("/v1/teachers/" + tch.ID + "/sections").ids(t); !slices.Equal(ids, []string{sec.ID}) {
		t.Errorf("teacher sections = %v", ids)
	}
	if ids := h.list("/v1/districts/" + h.srv.DistrictID() + "/students").ids(t); !slices.Equal(ids, []string{st.ID}) {
		t.Errorf("district students = %v", ids)
	}
	if ids := h.list("/v1/schools/" + h.srv.SchoolID() + "/teachers").ids(t); !slices.Equal(ids, []string{tch.ID}) {
		t.Errorf("school teachers = %v", ids)
	}
	var primary struct{ Data Teacher }
	h.get("/v1/sections/"+sec.ID+"/teacher").want(t, http.StatusOK).decode(t, &primary)
	if primary.Data.ID != tch.ID {
		t.Errorf("primary teacher = %v", primary.Data.ID)
	}
	for _, uri := range []string{"/v1/districts", "/v1/schools", "/v1/district_admins", "/v1/school_admins", "/v1/districts/" + h.srv.DistrictID()} {
		h.get(uri).want(t, http.StatusOK)
	}
	for _, uri := range []string{"/v1/teachers/0000", "/v1/sections/0000/students", "/v1/events/0000", "/v1/contacts/0000", "/v1/districts/0000"} {
		h.get(uri).wantJSON(t, http.StatusNotFound, `{"error":"not found"}`)
	}
}

func TestPagingCollectsEveryTeacherOnce(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(250, 0, 0, 0)
	want := []string{}
	for _, tc := range h.srv.Teachers() {
		want = append(want, tc.ID)
	}

	ids, pages := h.followAll("/v1/teachers")
	if !slices.Equal(ids, want) {
		t.Fatalf("followed %d ids, want the %d teachers once each in id order", len(ids), len(want))
	}
	if len(pages) != 3 {
		t.Fatalf("%d pages of the default limit, want 3", len(pages))
	}
	for i, p := range pages {
		if p.Paging.Current != i+1 || p.Paging.Total != 3 || p.Paging.Count != 250 {
			t.Errorf("page %d: paging = %+v", i+1, p.Paging)
		}
		if _, ok := p.link("NEXT"); ok != (i < 2) {
			t.Errorf("page %d: NEXT present = %v", i+1, ok)
		}
	}
	next, _ := pages[0].link("next")
	if tok := searchTokenOf(t, next); tok != "2.2.250.FORWARD."+want[99] {
		t.Errorf("search_token = %q, want 2.2.250.FORWARD.<last id of page 1>", tok)
	}

	// A smaller limit is carried by the NEXT links.
	ids, pages = h.followAll("/v1/teachers?limit=40")
	if !slices.Equal(ids, want) || len(pages) != 7 || pages[0].Paging.Total != 7 {
		t.Errorf("limit 40: %d ids in %d pages (total %d)", len(ids), len(pages), pages[0].Paging.Total)
	}

	// page is 1-based and offset-based.
	p := h.list("/v1/teachers?page=3")
	if got := p.ids(t); !slices.Equal(got, want[200:]) || p.Paging.Current != 3 {
		t.Errorf("page 3: %d ids, paging %+v", len(got), p.Paging)
	}
	if _, ok := p.link("next"); ok {
		t.Error("the last page has a NEXT link")
	}
	if p := h.list("/v1/teachers?page=9"); len(p.Data) != 0 || p.Paging.Current != 9 {
		t.Errorf("page 9: %+v", p.Paging)
	}
	if p := h.list("/v1/teachers?limit=5000"); len(p.Data) != 250 || p.Paging.Total != 1 {
		t.Errorf("limit 5000: %d records, want all (limited to %d)", len(p.Data), LimitMax)
	}
	h.get("/v1/teachers?limit=0").wantJSON(t, http.StatusBadRequest, `{"error":"invalid limit"}`)
	h.get("/v1/teachers?page=0").wantJSON(t, http.StatusBadRequest, `{"error":"invalid page"}`)
	h.get("/v1/teachers?search_token=garbage").wantJSON(t, http.StatusBadRequest, `{"error":"invalid search_token"}`)
}

func TestResourcePagingSurvivesChangesBetweenPages(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(6, 0, 0, 0)
	before := h.srv.Teachers()

	p1 := h.list("/v1/teachers?limit=3")
	next, _ := p1.link("next")
	// Between the pages: one teacher of page 1 leaves, one joins at the end.
	h.srv.RemoveTeacher(before[0].ID)
	h.clock.Advance(time.Second)
	added, _ := h.srv.AddTeacher(Teacher{Name: Name{First: "New", Last: "Hire"}})

	ids := p1.ids(t)
	rest, _ := h.followAll(next)
	ids = append(ids, rest...)
	want := []string{}
	for _, tc := range before {
		want = append(want, tc.ID)
	}
	want = append(want, added.ID)
	if !slices.Equal(ids, want) {
		t.Errorf("ids = %v\nwant  %v (none skipped, none twice)", ids, want)
	}
}

func TestSearchTokenMayBeAWholeNextURI(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(3, 0, 0, 0)
	next, _ := h.list("/v1/teachers?limit=2").link("next")
	p := h.list("/v1/teachers?search_token=" + urlQueryEscape(next))
	if len(p.Data) != 1 || p.Paging.Current != 2 {
		t.Errorf("following the whole uri: %d records, paging %+v", len(p.Data), p.Paging)
	}
}
