package datahubtest

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
)

func TestSeveralSchools(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{Seed: 5, Schools: 3})
	schools := h.srv.SchoolIDs()
	if len(schools) != 3 || schools[0] != h.srv.SchoolID() || !slices.IsSorted(schools) {
		t.Fatalf("SchoolIDs = %v, SchoolID = %s", schools, h.srv.SchoolID())
	}
	h.srv.Populate(6, 60, 9, 5)

	schoolOf := map[string]string{}
	// single is the id and name of a single entity's answer.
	single := func(uri string) (id, name string) {
		var v struct {
			Data struct{ ID, Name string } `json:"data"`
		}
		h.get(uri).want(t, http.StatusOK).decode(t, &v)
		return v.Data.ID, v.Data.Name
	}
	perSchool := func(n map[string]int) bool {
		return len(n) == 3 && n[schools[0]] == n[schools[1]] && n[schools[1]] == n[schools[2]]
	}
	teachers, students, sections := map[string]int{}, map[string]int{}, map[string]int{}
	for _, tc := range h.srv.Teachers() {
		teachers[tc.School]++
		schoolOf[tc.ID] = tc.School
	}
	for _, st := range h.srv.Students() {
		students[st.School]++
		schoolOf[st.ID] = st.School
	}
	for _, sec := range h.srv.Sections() {
		sections[sec.School]++
		schoolOf[sec.ID] = sec.School
		if schoolOf[sec.Teacher] != sec.School {
			t.Errorf("section %s of %s has teacher of %s", sec.ID, sec.School, schoolOf[sec.Teacher])
		}
		for _, st := range sec.Students {
			if schoolOf[st] != sec.School {
				t.Errorf("section %s of %s has student of %s", sec.ID, sec.School, schoolOf[st])
			}
		}
	}
	if !perSchool(teachers) || !perSchool(students) || !perSchool(sections) {
		t.Errorf("not spread over 3 schools: teachers %v students %v sections %v", teachers, students, sections)
	}

	if got := h.list("/v1/schools").ids(t); !slices.Equal(got, schools) {
		t.Errorf("/schools = %v, want %v", got, schools)
	}
	if got := h.list("/v1/districts/" + h.srv.DistrictID() + "/schools").ids(t); !slices.Equal(got, schools) {
		t.Errorf("/districts/{id}/schools = %v, want %v", got, schools)
	}
	for _, sc := range schools {
		if id, name := single("/v1/schools/" + sc); id != sc || name != "School "+strconv.Itoa(1+slices.Index(schools, sc)) {
			t.Errorf("/schools/%s = %s %q", sc, id, name)
		}
		secs := h.list("/v1/schools/" + sc + "/sections").ids(t)
		if len(secs) != 3 {
			t.Errorf("/schools/%s/sections = %d sections, want 3", sc, len(secs))
		}
		for _, id := range secs {
			if schoolOf[id] != sc {
				t.Errorf("/schools/%s/sections lists %s of %s", sc, id, schoolOf[id])
			}
		}
		if n := len(h.list("/v1/schools/" + sc + "/teachers").ids(t)); n != 2 {
			t.Errorf("/schools/%s/teachers = %d, want 2", sc, n)
		}
		if n := len(h.list("/v1/schools/" + sc + "/students?limit=100").ids(t)); n != 20 {
			t.Errorf("/schools/%s/students = %d, want 20", sc, n)
		}
		if id, _ := single("/v1/schools/" + sc + "/district"); id != h.srv.DistrictID() {
			t.Errorf("/schools/%s/district = %s", sc, id)
		}
	}
	sec := h.srv.Sections()[1]
	if id, _ := single("/v1/sections/" + sec.ID + "/school"); id != sec.School {
		t.Errorf("/sections/%s/school = %s, want %s", sec.ID, id, sec.School)
	}
	for _, uri := range []string{"/v1/schools/" + sec.ID, "/v1/schools/" + sec.ID + "/sections"} {
		h.get(uri).want(t, http.StatusNotFound)
	}
}
