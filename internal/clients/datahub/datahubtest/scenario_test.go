package datahubtest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// roster is a small school: two teachers, three students, one section taught by the
// first teacher with the first two students.
type roster struct {
	t1, t2     Teacher
	s1, s2, s3 Student
	sec        Section
}

func (h *harness) school() roster {
	h.t.Helper()
	var sc roster
	sc.t1, _ = h.srv.AddTeacher(Teacher{Name: Name{First: "T", Last: "One"}})
	sc.t2, _ = h.srv.AddTeacher(Teacher{Name: Name{First: "T", Last: "Two"}})
	sc.s1, _ = h.srv.AddStudent(Student{Name: Name{First: "S", Middle: "M", Last: "One"}})
	sc.s2, _ = h.srv.AddStudent(Student{Name: Name{First: "S", Last: "Two"}})
	sc.s3, _ = h.srv.AddStudent(Student{Name: Name{First: "S", Last: "Three"}})
	sc.sec, _ = h.srv.AddSection(Section{
		Name: "Algebra 7", Subject: "math", Teacher: sc.t1.ID, Students: []string{sc.s1.ID, sc.s2.ID},
		Term: Term{Name: "2025-2026", StartDate: "2025-08-18", EndDate: "2026-06-05"},
	})
	h.clock.Advance(time.Minute)
	return sc
}

// wantEvent fetches event id over HTTP and checks its type and object id.
func (h *harness) wantEvent(id, typ, objectID string) decodedEvent {
	h.t.Helper()
	if id == "" {
		h.t.Fatalf("no event id for %s", typ)
	}
	ev, _ := h.event(id)
	if ev.Type != typ || ev.Data.Object["id"] != objectID {
		h.t.Fatalf("event %s = %s on %v, want %s on %s", id, ev.Type, ev.Data.Object["id"], typ, objectID)
	}
	return ev
}

func TestCreatedEventsCarryTheObject(t *testing.T) {
	t.Parallel()
	h := setup(t)
	sec, id := h.srv.AddSection(Section{Name: "Art", Teacher: "t-1", Teachers: []string{"t-2"}})
	ev := h.wantEvent(id, "sections.created", sec.ID)
	if ev.Data.Previous != nil {
		t.Errorf("previous_attributes on a created event: %v", ev.Data.Previous)
	}
	if got := strs(t, ev.Data.Object["teachers"]); !slices.Equal(got, []string{"t-1", "t-2"}) {
		t.Errorf("teachers = %v, want the primary first", got)
	}
	if got := strs(t, ev.Data.Object["students"]); len(got) != 0 {
		t.Errorf("students = %v, want []", got)
	}
	if sec.LastModified != sec.Created || sec.Created.IsZero() {
		t.Errorf("times = %v, %v", sec.Created, sec.LastModified)
	}
}

func TestEnrollAndUnenrollCarryTheWholePreviousArray(t *testing.T) {
	t.Parallel()
	h := setup(t)
	sc := h.school()

	ev := h.wantEvent(h.srv.Enroll(sc.sec.ID, sc.s3.ID), "sections.updated", sc.sec.ID)
	wantKeys(t, ev.Data.Previous, "students")
	if got := strs(t, ev.Data.Previous["students"]); !slices.Equal(got, []string{sc.s1.ID, sc.s2.ID}) {
		t.Errorf("previous students = %v", got)
	}
	if got := strs(t, ev.Data.Object["students"]); !slices.Equal(got, []string{sc.s1.ID, sc.s2.ID, sc.s3.ID}) {
		t.Errorf("students = %v", got)
	}
	if ev.Data.Object["name"] != "Algebra 7" || ev.Data.Object["teacher"] != sc.t1.ID {
		t.Errorf("object is not the full section: %v", ev.Data.Object)
	}
	if ev.Data.Object["last_modified"] == ev.Data.Object["created"] {
		t.Error("last_modified not moved by the change")
	}

	ev = h.wantEvent(h.srv.Unenroll(sc.sec.ID, sc.s1.ID), "sections.updated", sc.sec.ID)
	if got := strs(t, ev.Data.Previous["students"]); !slices.Equal(got, []string{sc.s1.ID, sc.s2.ID, sc.s3.ID}) {
		t.Errorf("previous students = %v", got)
	}
	if got := strs(t, ev.Data.Object["students"]); !slices.Equal(got, []string{sc.s2.ID, sc.s3.ID}) {
		t.Errorf("students = %v", got)
	}

	n := len(h.srv.Events())
	if h.srv.Enroll(sc.sec.ID, sc.s2.ID) != "" || h.srv.Unenroll(sc.sec.ID, sc.s1.ID) != "" || len(h.srv.Events()) != n {
		t.Error("a no-op enrollment change made an event")
	}
	if got := h.list("/v1/sections/" + sc.sec.ID + "/students").ids(t); !slices.Equal(got, []string{sc.s2.ID, sc.s3.ID}) {
		t.Errorf("section students over HTTP = %v", got)
	}
}

func TestSetSectionTeacher(t *testing.T) {
	t.Parallel()
	h := setup(t)
	sc := h.school()
	ev := h.wantEvent(h.srv.SetSectionTeacher(sc.sec.ID, sc.t2.ID), "sections.updated", sc.sec.ID)
	wantKeys(t, ev.Data.Previous, "teacher", "teachers")
	if ev.Data.Previous["teacher"] != sc.t1.ID || !slices.Equal(strs(t, ev.Data.Previous["teachers"]), []string{sc.t1.ID}) {
		t.Errorf("previous = %v", ev.Data.Previous)
	}
	if ev.Data.Object["teacher"] != sc.t2.ID || !slices.Equal(strs(t, ev.Data.Object["teachers"]), []string{sc.t2.ID}) {
		t.Errorf("object teacher %v teachers %v", ev.Data.Object["teacher"], ev.Data.Object["teachers"])
	}
	if h.srv.SetSectionTeacher(sc.sec.ID, sc.t2.ID) != "" {
		t.Error("setting the current primary made an event")
	}
	if got := h.list("/v1/teachers/" + sc.t1.ID + "/sections").ids(t); len(got) != 0 {
		t.Errorf("old teacher still teaches %v", got)
	}
}

func TestUpdateSectionCarriesOnlyChangedFields(t *testing.T) {
	t.Parallel()
	h := setup(t)
	sc := h.school()
	ev := h.wantEvent(h.srv.UpdateSection(sc.sec.ID, "", "science"), "sections.updated", sc.sec.ID)
	if !reflect.DeepEqual(ev.Data.Previous, map[string]any{"subject": "math"}) {
		t.Errorf("previous = %v", ev.Data.Previous)
	}
	ev = h.wantEvent(h.srv.UpdateSection(sc.sec.ID, "Biology 7", "science"), "sections.updated", sc.sec.ID)
	if !reflect.DeepEqual(ev.Data.Previous, map[string]any{"name": "Algebra 7"}) {
		t.Errorf("previous = %v", ev.Data.Previous)
	}
	if ev.Data.Object["name"] != "Biology 7" || ev.Data.Object["subject"] != "science" {
		t.Errorf("object = %v", ev.Data.Object)
	}
	if h.srv.UpdateSection(sc.sec.ID, "Biology 7", "") != "" {
		t.Error("an update without change made an event")
	}
}

func TestRenameStudent(t *testing.T) {
	t.Parallel()
	h := setup(t)
	sc := h.school()
	ev := h.wantEvent(h.srv.RenameStudent(sc.s1.ID, "Sam", "Newname"), "students.updated", sc.s1.ID)
	if !reflect.DeepEqual(ev.Data.Previous, map[string]any{"name": map[string]any{"first": "S", "middle": "M", "last": "One"}}) {
		t.Errorf("previous = %v", ev.Data.Previous)
	}
	if !reflect.DeepEqual(ev.Data.Object["name"], map[string]any{"first": "Sam", "middle": "M", "last": "Newname"}) {
		t.Errorf("name = %v", ev.Data.Object["name"])
	}
}

func TestDeletionsCarryTheLastFullState(t *testing.T) {
	t.Parallel()
	h := setup(t)
	sc := h.school()
	h.srv.Enroll(sc.sec.ID, sc.s3.ID)
	last := h.srv.Sections()[0]

	ev := h.wantEvent(h.srv.DeleteSection(sc.sec.ID), "sections.deleted", sc.sec.ID)
	var got Section
	if err := jsonRoundTrip(ev.Data.Object, &got); err != nil || !reflect.DeepEqual(got, last) {
		t.Errorf("deleted object = %+v (%v), want %+v", got, err, last)
	}
	h.get("/v1/sections/"+sc.sec.ID).want(t, 404)

	// A removed teacher leaves its sections without sections.updated events.
	sec2, _ := h.srv.AddSection(Section{Name: "Two", Teacher: sc.t1.ID, Teachers: []string{sc.t2.ID}})
	n := len(h.srv.Events())
	ev = h.wantEvent(h.srv.RemoveTeacher(sc.t1.ID), "teachers.deleted", sc.t1.ID)
	var gotT Teacher
	if err := jsonRoundTrip(ev.Data.Object, &gotT); err != nil || !reflect.DeepEqual(gotT, sc.t1) {
		t.Errorf("deleted teacher = %+v (%v), want %+v", gotT, err, sc.t1)
	}
	if m := len(h.srv.Events()); m != n+1 {
		t.Errorf("%d events for one removal, want 1", m-n)
	}
	after := h.srv.Sections()[0]
	if after.ID != sec2.ID || after.Teacher != sc.t2.ID || !slices.Equal(after.Teachers, []string{sc.t2.ID}) {
		t.Errorf("section after removal = %+v", after)
	}
	h.get("/v1/teachers/"+sc.t1.ID).want(t, 404)
}

func TestScenarioPanicsOnUnknownIDs(t *testing.T) {
	t.Parallel()
	h := setup(t)
	for name, f := range map[string]func(){
		"Enroll":        func() { h.srv.Enroll("nope", "x") },
		"DeleteSection": func() { h.srv.DeleteSection("nope") },
		"RemoveTeacher": func() { h.srv.RemoveTeacher("nope") },
		"RenameStudent": func() { h.srv.RenameStudent("nope", "a", "b") },
		"AddTeacher twice": func() {
			tc, _ := h.srv.AddTeacher(Teacher{})
			h.srv.AddTeacher(Teacher{ID: tc.ID})
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestPopulate(t *testing.T) {
	t.Parallel()
	build := func(seed int64) (*harness, string) {
		h := setupWith(t, Options{Seed: seed})
		h.srv.Populate(4, 30, 6, 10)
		return h, fmt.Sprint(h.srv.Teachers(), h.srv.Students(), h.srv.Sections())
	}
	h, a := build(3)
	_, b := build(3)
	_, c := build(4)
	if a != b {
		t.Error("one seed gave two schools")
	}
	if a == c {
		t.Error("two seeds gave one school")
	}

	if n := len(h.srv.Events()); n != 4+30+6 {
		t.Errorf("%d events, want one created event per object", n)
	}
	teachers := h.srv.Teachers()
	for i, sec := range h.srv.Sections() {
		if len(sec.Students) != 10 || len(slices.Compact(slices.Sorted(slices.Values(sec.Students)))) != 10 {
			t.Errorf("section %d students = %v, want 10 distinct", i, sec.Students)
		}
		if sec.Teacher != teachers[i%4].ID || !slices.Equal(sec.Teachers, []string{sec.Teacher}) {
			t.Errorf("section %d teacher %s teachers %v", i, sec.Teacher, sec.Teachers)
		}
		if sec.Name == "" || sec.Subject == "" || sec.Term.Name == "" {
			t.Errorf("section %d lacks data: %+v", i, sec)
		}
	}
	for _, st := range h.srv.Students() {
		if st.Name.First == "" || st.Email == "" || st.Grade == "" || st.SISID == "" {
			t.Errorf("student lacks data: %+v", st)
		}
	}
	// A second batch adds to the first; with no new students, sections draw from all.
	h.srv.Populate(0, 0, 2, 5)
	if n := len(h.srv.Sections()); n != 8 {
		t.Errorf("%d sections after a second batch", n)
	}
	if _, pages := h.followAll("/v1/students?limit=7"); pages[0].Paging.Count != 30 || len(pages) != 5 {
		t.Errorf("students paging = %+v in %d pages", pages[0].Paging, len(pages))
	}
}

func TestIDsAreObjectIDLikeAndTimeOrdered(t *testing.T) {
	t.Parallel()
	h := setup(t)
	var ids []string
	for i := range 5 {
		tc, ev := h.srv.AddTeacher(Teacher{})
		ids = append(ids, tc.ID, ev)
		if i == 2 {
			h.clock.Advance(-time.Hour) // a clock that steps back does not reorder ids
		} else {
			h.clock.Advance(time.Second)
		}
	}
	for _, id := range ids {
		if !idRE.MatchString(id) {
			t.Errorf("id %q is not 24 hex digits", id)
		}
	}
	if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("ids not strictly increasing: %v", ids)
	}
}
