package datahubtest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// twoDistricts is a simulator whose first district and a second one (from AddDistrict)
// each have teachers, students and a section; the last of them are made alternately, so
// the two districts' events interleave in /v1/events.
type twoDistricts struct {
	*harness
	a, b             string // district ids
	bSchool          string
	aIDs, bIDs       []string // roster ids by district, in id order
	aEvents, bEvents []string // event ids by district, in feed order
}

func setupTwoDistricts(t *testing.T) *twoDistricts {
	t.Helper()
	h := setup(t)
	d := &twoDistricts{harness: h, a: h.srv.DistrictID()}
	d.b, d.bSchool = h.srv.AddDistrict("Shelbyville Unified School District")
	h.srv.Populate(1, 2, 1, 2)
	h.srv.PopulateDistrict(d.b, 1, 2, 1, 2)
	h.clock.Advance(time.Second)
	// Interleaved: A, B, A, B.
	ta, _ := h.srv.AddTeacher(Teacher{Name: Name{First: "Ann", Last: "A"}})
	tb, _ := h.srv.AddTeacher(Teacher{District: d.b, Name: Name{First: "Bob", Last: "B"}})
	sa, _ := h.srv.AddStudent(Student{Name: Name{First: "Amy", Last: "A"}})
	sb, _ := h.srv.AddStudent(Student{District: d.b, Name: Name{First: "Bea", Last: "B"}})
	if ta.School != h.srv.SchoolID() || tb.School != d.bSchool || sb.School != d.bSchool || sa.District != d.a {
		t.Fatalf("defaults: teacher A in %s, teacher B in %s, student B in %s", ta.School, tb.School, sb.School)
	}
	for _, x := range h.srv.Teachers() {
		d.add(x.District, x.ID)
	}
	for _, x := range h.srv.Students() {
		d.add(x.District, x.ID)
	}
	for _, x := range h.srv.Sections() {
		d.add(x.District, x.ID)
		if x.District == d.b && x.School != d.bSchool {
			t.Fatalf("section of district B in school %s", x.School)
		}
	}
	for _, e := range h.srv.Events() {
		var ev decodedEvent
		if err := jsonRoundTrip(e, &ev); err != nil {
			t.Fatal(err)
		}
		switch ev.Data.Object["district"] {
		case d.a:
			d.aEvents = append(d.aEvents, e.ID)
		case d.b:
			d.bEvents = append(d.bEvents, e.ID)
		default:
			t.Fatalf("event %s of district %v", e.ID, ev.Data.Object["district"])
		}
	}
	slices.Sort(d.aIDs)
	slices.Sort(d.bIDs)
	return d
}

func (d *twoDistricts) add(district, id string) {
	switch district {
	case d.a:
		d.aIDs = append(d.aIDs, id)
	case d.b:
		d.bIDs = append(d.bIDs, id)
	default:
		d.t.Fatalf("object %s of unknown district %s", id, district)
	}
}

// lists reads a district's teachers, students and sections, following NEXT links, and
// returns their ids in order.
func (d *twoDistricts) lists(district string) []string {
	var all []string
	for _, res := range []string{"teachers", "students", "sections"} {
		ids, pages := d.followAll("/v1/districts/" + district + "/" + res + "?limit=1")
		for _, p := range pages {
			if next, ok := p.link("next"); ok && !strings.HasPrefix(next, "/v1/districts/"+district+"/"+res+"?") {
				d.t.Errorf("NEXT of the district's %s leads to %s", res, next)
			}
		}
		all = append(all, ids...)
	}
	slices.Sort(all)
	return all
}

func TestSecondDistrictHasItsOwnListsAndSchools(t *testing.T) {
	t.Parallel()
	d := setupTwoDistricts(t)
	if got := d.list("/v1/districts").ids(t); !slices.Equal(got, []string{d.a, d.b}) {
		t.Errorf("districts = %v, want %s and %s", got, d.a, d.b)
	}
	if got := d.lists(d.a); !slices.Equal(got, d.aIDs) {
		t.Errorf("district A's lists = %v, want %v", got, d.aIDs)
	}
	if got := d.lists(d.b); !slices.Equal(got, d.bIDs) {
		t.Errorf("district B's lists = %v, want %v", got, d.bIDs)
	}
	// The credentials see both districts: the top-level lists hold both.
	if got := d.list("/v1/teachers").Paging.Count + d.list("/v1/students").Paging.Count + d.list("/v1/sections").Paging.Count; got != len(d.aIDs)+len(d.bIDs) {
		t.Errorf("top-level lists hold %d records, want %d", got, len(d.aIDs)+len(d.bIDs))
	}
	if got := d.list("/v1/districts/" + d.b + "/schools").ids(t); !slices.Equal(got, []string{d.bSchool}) {
		t.Errorf("district B's schools = %v", got)
	}
	if got := d.list("/v1/districts/" + d.a + "/schools").ids(t); !slices.Equal(got, []string{d.srv.SchoolID()}) {
		t.Errorf("district A's schools = %v", got)
	}
	var school struct {
		Data struct{ District string }
	}
	d.get("/v1/schools/"+d.bSchool).want(t, http.StatusOK).decode(t, &school)
	if school.Data.District != d.b {
		t.Errorf("school B's district = %s", school.Data.District)
	}
	if got := d.list("/v1/schools/" + d.bSchool + "/teachers").Paging.Count; got != 2 {
		t.Errorf("school B has %d teachers, want 2", got)
	}
	for _, p := range []string{"", "/teachers", "/students", "/sections", "/schools", "/events"} {
		d.get("/v1/districts/000000000000000000000000"+p).want(t, http.StatusNotFound)
	}
}

func TestDistrictFeedPagesLikeTheFeedAndHoldsOnlyItsEvents(t *testing.T) {
	t.Parallel()
	d := setupTwoDistricts(t)
	if n := d.list("/v1/events").Paging.Count; n != len(d.aEvents)+len(d.bEvents) {
		t.Errorf("/v1/events holds %d events, want both districts' %d", n, len(d.aEvents)+len(d.bEvents))
	}
	type feed struct {
		name, district string
		want           []string
		next           string // where the feed continues after its last event
	}
	feeds := []*feed{{"A", d.a, d.aEvents, ""}, {"B", d.b, d.bEvents, ""}}
	for _, f := range feeds {
		uri := "/v1/districts/" + f.district + "/events"
		first := d.list(uri + "?limit=2")
		if first.Paging.Count != len(f.want) || first.Paging.Total != (len(f.want)+1)/2 {
			t.Errorf("%s: paging = %+v, want %d events", f.name, first.Paging, len(f.want))
		}
		// Paging by number, as Head reads the last page.
		last := d.list(uri + "?limit=2&page=" + strconv.Itoa(first.Paging.Total))
		if got, want := last.ids(t), f.want[(first.Paging.Total-1)*2:]; !slices.Equal(got, want) {
			t.Errorf("%s: last page = %v, want %v", f.name, got, want)
		}
		// Following NEXT: every link leads back to the district's feed, and the events
		// are the district's, in order, each once, though the other district's
		// interleave with them in /v1/events.
		var read []string
		next := uri + "?limit=2"
		for range len(f.want)/2 + 2 {
			p := d.list(next)
			read = append(read, p.ids(t)...)
			n, ok := p.link("next")
			if !ok || !strings.HasPrefix(n, uri+"?") {
				t.Fatalf("%s: NEXT = %q, want a link to %s", f.name, n, uri)
			}
			next = n
		}
		if !slices.Equal(read, f.want) {
			t.Errorf("%s: feed read = %v, want %v", f.name, read, f.want)
		}
		f.next = next
	}
	// New events of each district continue its own feed only.
	d.clock.Advance(time.Second)
	_, inB := d.srv.AddStudent(Student{District: d.b, Name: Name{First: "New", Last: "B"}})
	_, inA := d.srv.AddStudent(Student{Name: Name{First: "New", Last: "A"}})
	for _, f := range feeds {
		want := inA
		if f.district == d.b {
			want = inB
		}
		if got, _ := d.poll(f.next, 1); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: after the cursor = %v, want only %s", f.name, got, want)
		}
	}
}
