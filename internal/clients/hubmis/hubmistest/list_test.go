package hubmistest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestPagingBareArrays(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(45, 0, 0, 0)
	var want []string
	for _, st := range h.srv.Students() {
		want = append(want, st.ID)
	}

	var got []string
	for n, size := range []int{20, 20, 5, 0} {
		page := h.get(PathStudents, "page[number]="+itoa(n+1)).want(t, http.StatusOK).list(t)
		if len(page) != size {
			t.Fatalf("page %d has %d, want %d", n+1, len(page), size)
		}
		got = append(got, ids(t, page)...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages = %v, want %v", got, want)
	}

	if page := h.get(PathStudents, "page[size]=7", "page[number]=7").want(t, http.StatusOK).list(t); len(page) != 3 {
		t.Errorf("page 7 of 7 has %d", len(page))
	}
	// page[size] above the maximum (100) is lowered to it.
	if page := h.get(PathStudents, "page[size]=500").want(t, http.StatusOK).list(t); len(page) != 45 {
		t.Errorf("page[size]=500 gave %d", len(page))
	}
	for _, q := range []string{"page[size]=0", "page[size]=x", "page[number]=0", "page[number]=-1"} {
		h.get(PathStudents, q).want(t, http.StatusBadRequest)
	}
	if page := h.get(PathStudents, "page[number]=999999999999").want(t, http.StatusOK).list(t); len(page) != 0 {
		t.Errorf("a far page has %d", len(page))
	}
}

func TestMaxPageSize(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{MaxPageSize: 10, IPBucket: -1, ClientBucket: -1})
	h.srv.Populate(25, 12, 0, 0)
	if page := h.get(PathStudents, "page[size]=50").list(t); len(page) != 10 {
		t.Errorf("students page = %d", len(page))
	}
	// Without page[size], the default (20) is lowered to the maximum too.
	if page := h.get(PathStaff).list(t); len(page) != 10 {
		t.Errorf("staff page = %d", len(page))
	}
}

func TestPagingEnvelope(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{Envelope: true, IPBucket: -1, ClientBucket: -1})
	h.srv.Populate(45, 0, 0, 0)

	type doc struct {
		Data  []map[string]any `json:"data"`
		Meta  map[string]any   `json:"meta"`
		Links map[string]any   `json:"links"`
	}
	var got []string
	next := h.srv.URL() + PathStudents
	pages := 0
	for next != "" {
		u, err := url.Parse(next)
		if err != nil {
			t.Fatal(err)
		}
		var d doc
		h.get(u.Path, u.RawQuery).want(t, http.StatusOK).decode(t, &d)
		pages++
		got = append(got, ids(t, d.Data)...)
		if d.Meta["total"] != float64(45) || d.Meta["last_page"] != float64(3) || d.Meta["per_page"] != float64(20) ||
			d.Meta["current_page"] != float64(pages) {
			t.Errorf("page %d meta = %v", pages, d.Meta)
		}
		next, _ = d.Links["next"].(string)
		if pages == 3 && next != "" {
			t.Errorf("the last page links next = %q", next)
		}
		if pages > 3 {
			t.Fatal("paging does not end")
		}
	}
	if len(got) != 45 || !slices.IsSorted(got) {
		t.Errorf("ids = %v", got)
	}

	// A filter is kept in the links.
	var d doc
	h.get(PathStudents, "filter[enrolmentStatus]=current", "page[size]=10").decode(t, &d)
	if next, _ := d.Links["next"].(string); !strings.Contains(next, "filter%5BenrolmentStatus%5D=current") {
		t.Errorf("next = %q", next)
	}

	// Lists that are not paged come whole in an envelope without a next link.
	d = doc{}
	h.get(PathAcademicYears, "page[size]=1").decode(t, &d)
	if len(d.Data) != 2 || d.Meta["total"] != float64(2) || d.Links["next"] != nil {
		t.Errorf("academic years = %+v", d)
	}
}

func TestUnpagedListsIgnorePaging(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(30, 3, 1, 1)
	set := h.srv.Sets()[0]
	if n := len(h.get(PathAcademicYears, "page[size]=1", "page[number]=2").list(t)); n != 2 {
		t.Errorf("academic years: %d", n)
	}
	members := h.get(path(PathSubjectSetStudents, set.AcademicYearID, set.ID), "page[size]=1", "page[number]=2").list(t)
	if len(members) != len(set.StudentIDs) || len(members) < 2 {
		t.Errorf("set students: %d, want %d", len(members), len(set.StudentIDs))
	}
}

func TestAcademicYears(t *testing.T) {
	t.Parallel()
	h := setup(t)
	years := h.get(PathAcademicYears).list(t)
	want := []map[string]any{
		{"id": float64(1), "name": "2024/25", "date_start": "2024-09-01", "date_end": "2025-08-31", "is_current": false},
		{"id": float64(2), "name": "2025/26", "date_start": "2025-09-01", "date_end": "2026-08-31", "is_current": true},
	}
	if !jsonEqual(years, want) {
		t.Errorf("years = %v", years)
	}
	cur := h.get(PathAcademicYears, "filter[current]=true").list(t)
	if len(cur) != 1 || cur[0]["id"] != float64(2) {
		t.Errorf("current = %v", cur)
	}
	if got := h.srv.CurrentAcademicYear(); got != (AcademicYear{ID: "2", Name: "2025/26", DateStart: "2025-09-01", DateEnd: "2026-08-31", Current: true}) {
		t.Errorf("CurrentAcademicYear = %+v", got)
	}
	if past := h.get(PathAcademicYears, "filter[current]=false").list(t); len(past) != 1 || past[0]["id"] != float64(1) {
		t.Errorf("past = %v", past)
	}
}

func TestRegionalSettingsAsDocumented(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{Timezone: "Europe/Dublin", IPBucket: -1, ClientBucket: -1})
	var got map[string]any
	h.get(PathRegionalSettings).want(t, http.StatusOK).decode(t, &got)
	want := map[string]any{"regional_country_id": float64(34), "start_day_week": "monday", "timezone": "Europe/Dublin"}
	if !jsonEqual(got, want) {
		t.Errorf("settings = %v", got)
	}
	if h.srv.Timezone() != "Europe/Dublin" {
		t.Errorf("Timezone() = %q", h.srv.Timezone())
	}
}

func TestObjectsHaveTheDocumentsFields(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(20, 4, 2, 2)
	set := h.srv.Sets()[0]

	// The keys of the document's samples: "Students: Get Student", "Staff: Get One Staff"
	// and "Subject Sets: Get one in an Academic Year".
	studentKeys := "id access_status multi_realm academic_house boarding_type boarding_house country_of_birth " +
		"date_of_birth deleted_at ethnicity enrolment_status external_id faith first_name gender has_global_note " +
		"form language_first language_second last_login last_name learning_support_record_summary middle_name " +
		"name_in_local_language national_identity nationalities person_type preferred_name primary_email " +
		"profile_image tags medical_condition_severity"
	staffKeys := "access_status multi_realm academic_houses boarding_houses departments email external_id " +
		"first_name forms gender id images job_title last_name middle_name person_type preferred_name " +
		"profile_image roles rooms sections status title"
	setKeys := "academic_year code max_students name rooms short_description staff staff_report_writers " +
		"student_count timetable_code id credit_score date_start date_end qualification section subject year_group"

	for _, tc := range []struct {
		name, keys string
		obj        response
	}{
		{"student list", studentKeys, h.get(PathStudents)},
		{"student", studentKeys, h.get(path(PathStudent, set.StudentIDs[0]))},
		{"set students", studentKeys, h.get(path(PathSubjectSetStudents, set.AcademicYearID, set.ID))},
		{"staff list", staffKeys, h.get(PathStaff)},
		{"staff", staffKeys, h.get(path(PathStaffMember, set.StaffIDs[0]))},
		{"set staff", staffKeys, h.get(path(PathSubjectSetStaff, set.AcademicYearID, set.ID))},
		{"set list", setKeys, h.get(path(PathSubjectSets, set.AcademicYearID))},
		{"set", setKeys, h.get(path(PathSubjectSet, set.AcademicYearID, set.ID))},
	} {
		tc.obj.want(t, http.StatusOK)
		var objs []map[string]any
		if tc.obj.body[0] == '[' {
			objs = tc.obj.list(t)
		} else {
			var o map[string]any
			tc.obj.decode(t, &o)
			objs = []map[string]any{o}
		}
		if len(objs) == 0 {
			t.Fatalf("%s: empty", tc.name)
		}
		want := strings.Fields(tc.keys)
		slices.Sort(want)
		for _, o := range objs {
			var got []string
			for k := range o {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s keys = %v\nwant %v", tc.name, got, want)
				break
			}
		}
	}

	var s map[string]any
	h.get(path(PathSubjectSet, set.AcademicYearID, set.ID)).decode(t, &s)
	if s["name"] != set.Name || s["code"] != set.Code || s["student_count"] != float64(len(set.StudentIDs)) ||
		len(s["staff"].([]any)) != len(set.StaffIDs) {
		t.Errorf("set = %v, want %+v", s, set)
	}
	if sub := s["subject"].(map[string]any); sub["name"] != set.Subject || sub["code"] != set.SubjectCode {
		t.Errorf("subject = %v", sub)
	}
}

func TestStudentsByEnrolmentStatus(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(5, 0, 0, 0)
	leaver := h.srv.Students()[1].ID
	h.srv.StudentLeaves(leaver)

	all := ids(t, h.get(PathStudents).list(t))
	current := ids(t, h.get(PathStudents, "filter[enrolmentStatus]=current").list(t))
	past := ids(t, h.get(PathStudents, "filter[enrolmentStatus]=past").list(t))
	if len(all) != 5 || len(current) != 4 || slices.Contains(current, leaver) || !slices.Equal(past, []string{leaver}) {
		t.Errorf("all %v current %v past %v", all, current, past)
	}
	var st map[string]any
	h.get(path(PathStudent, leaver)).want(t, http.StatusOK).decode(t, &st)
	if st["enrolment_status"] != "past" {
		t.Errorf("leaver = %v", st)
	}
	h.get(path(PathStudent, "1")).want(t, http.StatusNotFound)
	h.get(path(PathStaffMember, "1")).want(t, http.StatusNotFound)
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
