package datahubsource

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/events"
)

func testRoster() *Roster {
	r := NewRoster()
	r.Teachers["t1"] = datahub.Teacher{ID: "t1", Email: "t1@example.org", Name: datahub.Name{First: "Tess", Last: "One"}}
	r.Teachers["t2"] = datahub.Teacher{ID: "t2", Email: "t2@example.org", Name: datahub.Name{First: "Tom", Last: "Two"}}
	for _, id := range []string{"s1", "s2", "s3"} {
		r.Students[id] = datahub.Student{ID: id, Email: id + "@example.org", Name: datahub.Name{First: "Pupil", Last: strings.ToUpper(id)}}
	}
	r.Sections["a"] = datahub.Section{ID: "a", Name: "Maths", Subject: "math", Period: "1", Teacher: "t1", Teachers: []string{"t1"}, Students: []string{"s1", "s2"}}
	r.Sections["b"] = datahub.Section{ID: "b", Name: "Art", Teacher: "t2", Teachers: []string{"t2"}, Students: []string{"s1", "s3"}}
	return r
}

func event(t *testing.T, typ string, object any, previous any) datahub.Event {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"id": "e1", "created": time.Now().UTC().Format(time.RFC3339), "type": typ,
		"data": map[string]any{"object": object, "previous_attributes": previous}})
	ev, err := datahub.DecodeEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func summary(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s", c.Op, c.Key()))
	}
	return out
}

var m = Mapper{Tenant: "sp"}

func key(kind, section, person string) string {
	if kind == "enrollment" {
		return "enrollment/" + events.EnrollmentKey(events.ExternalID("datahub", "sp", "section", section), person)
	}
	return kind + "/" + events.ExternalID("datahub", "sp", "section", section)
}

func TestStudentRenameUpdatesEveryEnrollment(t *testing.T) {
	r := testRoster()
	res, err := m.Apply(r, event(t, "students.updated", map[string]any{"id": "s1", "name": map[string]string{"first": "Ada", "last": "S1"}}, map[string]any{"name": map[string]string{"first": "Pupil"}}))
	if err != nil {
		t.Fatal(err)
	}
	got := summary(res.Changes)
	want := []string{
		"upsert " + key("enrollment", "a", events.ExternalID("datahub", "sp", "student", "s1")),
		"upsert " + key("enrollment", "b", events.ExternalID("datahub", "sp", "student", "s1")),
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
	if r.Students["s1"].Email != "s1@example.org" {
		t.Error("a partial update erased the email")
	}
	e := res.Changes[0].State.(events.EnrollmentState)
	if e.FirstName != "Ada" || e.Email != "s1@example.org" {
		t.Errorf("enrollment state %+v", e)
	}
}

func TestSectionDeletionRemovesItsEnrollmentsThenTheClass(t *testing.T) {
	r := testRoster()
	res, err := m.Apply(r, event(t, "sections.deleted", r.Sections["a"], nil))
	if err != nil {
		t.Fatal(err)
	}
	got := summary(res.Changes)
	if len(got) != 4 || got[len(got)-1] != "delete "+key("class", "a", "") {
		t.Fatalf("changes = %v, want 3 enrollment deletions then the class", got)
	}
	for _, c := range res.Changes {
		if c.Op != events.OpDelete {
			t.Errorf("%v is not a deletion", c)
		}
	}
	if _, ok := r.Sections["a"]; ok {
		t.Error("section still in the roster")
	}
}

func TestTeacherChangeMovesTheTeacherEnrollment(t *testing.T) {
	r := testRoster()
	res, err := m.Apply(r, event(t, "sections.updated", map[string]any{"id": "a", "teacher": "t2", "teachers": []string{"t2"}}, map[string]any{"teacher": "t1", "teachers": []string{"t1"}}))
	if err != nil {
		t.Fatal(err)
	}
	got := summary(res.Changes)
	want := []string{
		"upsert " + key("class", "a", ""),
		"upsert " + key("enrollment", "a", events.ExternalID("datahub", "sp", "teacher", "t2")),
		"delete " + key("enrollment", "a", events.ExternalID("datahub", "sp", "teacher", "t1")),
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
	if c := res.Changes[0].State.(events.ClassState); c.Host.Email != "t2@example.org" {
		t.Errorf("class host in the desired state = %s, want the new primary teacher", c.Host.Email)
	}
}

func TestSectionWithoutTeacherIsNeitherCreatedNorDeleted(t *testing.T) {
	r := testRoster()
	res, err := m.Apply(r, event(t, "teachers.deleted", r.Teachers["t1"], nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Changes {
		if c.Key() == key("class", "a", "") {
			t.Errorf("the class of a section whose teacher left got %s", c.Op)
		}
	}
	got := summary(res.Changes)
	if !slices.Contains(got, "delete user/"+events.ExternalID("datahub", "sp", "teacher", "t1")) {
		t.Errorf("changes = %v, want the teacher's user deleted", got)
	}
	if len(res.Notes) == 0 {
		t.Error("no note says why the class is withheld")
	}
}

func TestUnknownTypesAreSkippedAndMalformedRejected(t *testing.T) {
	r := testRoster()
	for _, typ := range []string{"contacts.created", "district_admins.updated", "districts.updated", "sections.archived", "gradebooks.created"} {
		res, err := m.Apply(r, event(t, typ, map[string]any{"id": "x"}, nil))
		if err != nil || res.Known || len(res.Changes) != 0 {
			t.Errorf("%s: known %v, %d changes, err %v; want skipped", typ, res.Known, len(res.Changes), err)
		}
	}
	before := r.Clone()
	_, err := m.Apply(r, event(t, "students.updated", map[string]any{"name": map[string]string{"first": "Secret Name"}}, nil))
	var bad *errMalformed
	if !errors.As(err, &bad) {
		t.Fatalf("event without an id: %v, want malformed", err)
	}
	if strings.Contains(err.Error(), "Secret Name") {
		t.Errorf("error leaks a name: %v", err)
	}
	if len(r.Students) != len(before.Students) || r.Students["s1"] != before.Students["s1"] {
		t.Error("a rejected event changed the roster")
	}
}

func TestResyncDiffsTheWholeDistrict(t *testing.T) {
	before := testRoster()
	after := before.Clone()
	delete(after.Sections, "b")
	s := after.Sections["a"]
	s.Name = "Maths II"
	after.Sections["a"] = s
	got := summary(m.Resync(before, after).Changes)
	if len(got) != 5 || got[0] != "upsert "+key("class", "a", "") {
		t.Errorf("changes = %v, want the class upserted and section b's 3 enrollments and class deleted", got)
	}
	first := summary(m.Resync(NewRoster(), before).Changes)
	// 2 users, 2 classes, 6 enrollments (4 students, 2 teachers).
	if len(first) != 10 {
		t.Errorf("first sync gives %d changes, want 10: %v", len(first), first)
	}
}
