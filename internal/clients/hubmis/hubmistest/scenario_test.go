package hubmistest

import (
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestPopulateIsDeterministic(t *testing.T) {
	t.Parallel()
	build := func(seed int64) *Server {
		clock := newClock()
		s := New(Options{Seed: seed, Now: clock.Now})
		t.Cleanup(s.Close)
		s.Populate(120, 17, 30, 4)
		return s
	}
	a, b, c := build(5), build(5), build(6)
	if !reflect.DeepEqual(a.Students(), b.Students()) || !reflect.DeepEqual(a.Staff(), b.Staff()) ||
		!reflect.DeepEqual(a.Sets(), b.Sets()) {
		t.Error("one seed built two schools")
	}
	if reflect.DeepEqual(a.Sets(), c.Sets()) {
		t.Error("two seeds built one school")
	}

	if len(a.Students()) != 120 || len(a.Staff()) != 17 || len(a.Sets()) != 30 {
		t.Fatalf("counts: %d students, %d staff, %d sets", len(a.Students()), len(a.Staff()), len(a.Sets()))
	}
	teachers := map[string]bool{}
	support := 0
	for _, m := range a.Staff() {
		if m.Teacher {
			teachers[m.ID] = true
		} else {
			support++
		}
		if m.Email == "" || m.FirstName == "" || m.Status != "current" {
			t.Errorf("staff %+v", m)
		}
	}
	if support != 2 { // the 8th and 16th of 17
		t.Errorf("%d support staff, want 2", support)
	}
	year := a.CurrentAcademicYear().ID
	taught := map[string]bool{}
	members, twoTeachers := 0, 0
	for _, set := range a.Sets() {
		if set.AcademicYearID != year || set.Name == "" || set.Code == "" || set.Subject == "" {
			t.Errorf("set %+v", set)
		}
		if len(set.StaffIDs) == 0 || len(set.StaffIDs) > 2 {
			t.Errorf("set %s has %d staff", set.ID, len(set.StaffIDs))
		}
		if len(set.StaffIDs) == 2 {
			twoTeachers++
		}
		for _, id := range set.StaffIDs {
			if !teachers[id] {
				t.Errorf("set %s taught by %s, who does not teach", set.ID, id)
			}
			taught[id] = true
		}
		if len(set.Slots) != 4 {
			t.Errorf("set %s has %d slots", set.ID, len(set.Slots))
		}
		if len(set.StudentIDs) < 12 || len(set.StudentIDs) > 20 { // 120*4/30 = 16 ± 20 %
			t.Errorf("set %s has %d students", set.ID, len(set.StudentIDs))
		}
		members += len(set.StudentIDs)
		if ls := a.Lessons(set.ID); len(ls) != 8 { // two weeks
			t.Errorf("set %s has %d lessons in the horizon", set.ID, len(ls))
		}
	}
	if len(taught) != len(teachers) {
		t.Errorf("%d of %d teachers teach a set", len(taught), len(teachers))
	}
	if twoTeachers == 0 || twoTeachers > 15 {
		t.Errorf("%d sets of 30 have two teachers", twoTeachers)
	}
	if avg := float64(members) / 30; avg < 14 || avg > 18 {
		t.Errorf("average set size %.1f", avg)
	}

	// Populating again adds a batch on top, with the existing people.
	a.Populate(0, 0, 2, 1)
	if len(a.Sets()) != 32 || len(a.Students()) != 120 {
		t.Errorf("after a second Populate: %d sets, %d students", len(a.Sets()), len(a.Students()))
	}
}

// setMembers returns the student ids the API lists for a set.
func (h *harness) setMembers(set Set) []string {
	h.t.Helper()
	return ids(h.t, h.get(path(PathSubjectSetStudents, set.AcademicYearID, set.ID)).want(h.t, http.StatusOK).list(h.t))
}

func (h *harness) setStaff(set Set) []string {
	h.t.Helper()
	return ids(h.t, h.get(path(PathSubjectSetStaff, set.AcademicYearID, set.ID)).want(h.t, http.StatusOK).list(h.t))
}

func (h *harness) setObject(set Set) map[string]any {
	h.t.Helper()
	var o map[string]any
	h.get(path(PathSubjectSet, set.AcademicYearID, set.ID)).want(h.t, http.StatusOK).decode(h.t, &o)
	return o
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return s
}

func TestSubjectSetEndpoints(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(40, 6, 5, 2)
	year := h.srv.CurrentAcademicYear().ID
	sets := h.srv.Sets()

	got := ids(t, h.get(path(PathSubjectSets, year)).want(t, http.StatusOK).list(t))
	var want []string
	for _, s := range sets {
		want = append(want, s.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("sets = %v, want %v", got, want)
	}
	for _, set := range sets {
		if m := h.setMembers(set); !slices.Equal(m, sorted(set.StudentIDs)) {
			t.Errorf("set %s members = %v, want %v", set.ID, m, sorted(set.StudentIDs))
		}
		if st := h.setStaff(set); !slices.Equal(st, set.StaffIDs) {
			t.Errorf("set %s staff = %v, want %v", set.ID, st, set.StaffIDs)
		}
		// The documented staff filter gives the same people.
		if st := ids(t, h.get(PathStaff, "filter[subjectSet]="+set.ID).list(t)); !slices.Equal(st, sorted(set.StaffIDs)) {
			t.Errorf("staff filter = %v", st)
		}
	}

	last := h.srv.AcademicYears()[0].ID
	if n := len(h.get(path(PathSubjectSets, last)).want(t, http.StatusOK).list(t)); n != 0 {
		t.Errorf("last year has %d sets", n)
	}
	h.get(path(PathSubjectSets, "99")).want(t, http.StatusNotFound)
	h.get(path(PathSubjectSet, last, sets[0].ID)).want(t, http.StatusNotFound)
	h.get(path(PathSubjectSetStudents, year, "1")).want(t, http.StatusNotFound)
	h.get(path(PathSubjectSetStaff, "x", sets[0].ID)).want(t, http.StatusNotFound)

	if st := h.srv.Stats(); st.ByEndpoint["GET "+PathSubjectSetStudents] != 6 || st.ByEndpoint["GET "+PathSubjectSets] != 3 {
		t.Errorf("ByEndpoint = %v", st.ByEndpoint)
	}
}

func TestMembershipMutations(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(60, 4, 6, 2)
	set := h.srv.Sets()[0]
	var outsider string
	for _, st := range h.srv.Students() {
		if !slices.Contains(set.StudentIDs, st.ID) {
			outsider = st.ID
			break
		}
	}
	if outsider == "" {
		t.Fatal("every student is in the set")
	}

	if !h.srv.JoinSet(set.ID, outsider) || h.srv.JoinSet(set.ID, outsider) {
		t.Error("JoinSet did not report the change once")
	}
	if m := h.setMembers(set); !slices.Contains(m, outsider) || len(m) != len(set.StudentIDs)+1 {
		t.Errorf("after JoinSet: %v", m)
	}
	if c := h.setObject(set)["student_count"]; c != float64(len(set.StudentIDs)+1) {
		t.Errorf("student_count = %v", c)
	}

	leaving := set.StudentIDs[0]
	if !h.srv.LeaveSet(set.ID, leaving) || h.srv.LeaveSet(set.ID, leaving) {
		t.Error("LeaveSet did not report the change once")
	}
	if m := h.setMembers(set); slices.Contains(m, leaving) {
		t.Errorf("after LeaveSet: %v", m)
	}

	// A student who leaves the school leaves every set.
	var inTwo string
	for _, st := range h.srv.Students() {
		n := 0
		for _, s := range h.srv.Sets() {
			if slices.Contains(s.StudentIDs, st.ID) {
				n++
			}
		}
		if n >= 2 {
			inTwo = st.ID
			break
		}
	}
	h.srv.StudentLeaves(inTwo)
	for _, s := range h.srv.Sets() {
		if slices.Contains(h.setMembers(s), inTwo) || slices.Contains(s.StudentIDs, inTwo) {
			t.Errorf("leaver still in set %s", s.ID)
		}
	}
	if slices.ContainsFunc(h.srv.Students(), func(st Student) bool { return st.ID == inTwo }) {
		t.Error("Students() lists the leaver")
	}
	if slices.Contains(ids(t, h.get(PathStudents, "filter[enrolmentStatus]=current", "page[size]=100").list(t)), inTwo) {
		t.Error("the current students list the leaver")
	}

	// New students appear at once.
	st := h.srv.AddStudent(Student{FirstName: "Nia", LastName: "Jones", Form: "10C"})
	if st.ID == "" || st.EnrolmentStatus != EnrolmentCurrent || st.YearGroup != 10 || st.Email == "" {
		t.Errorf("AddStudent = %+v", st)
	}
	h.srv.JoinSet(set.ID, st.ID)
	if m := h.setMembers(set); !slices.Contains(m, st.ID) {
		t.Errorf("new student not in the set: %v", m)
	}
}

func TestSetMutations(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(20, 4, 3, 2)
	set := h.srv.Sets()[0]

	h.srv.RenameSet(set.ID, "Further Maths 9A")
	if n := h.setObject(set)["name"]; n != "Further Maths 9A" {
		t.Errorf("name = %v", n)
	}

	newcomer := h.srv.AddStaff(Staff{Title: "Dr", FirstName: "Ada", LastName: "Lovelace", JobTitle: "Teacher of Computing", Teacher: true})
	h.srv.SetStaff(set.ID, newcomer.ID)
	if st := h.setStaff(set); !slices.Equal(st, []string{newcomer.ID}) {
		t.Errorf("staff after SetStaff = %v", st)
	}
	var o map[string]any
	h.get(path(PathStaffMember, newcomer.ID)).decode(t, &o)
	if roles := o["roles"].([]any); len(roles) != 1 || roles[0].(map[string]any)["name"] != "Teacher" {
		t.Errorf("roles = %v", o["roles"])
	}

	h.srv.DeleteSet(set.ID)
	h.get(path(PathSubjectSet, set.AcademicYearID, set.ID)).want(t, http.StatusNotFound)
	h.get(path(PathSubjectSetStudents, set.AcademicYearID, set.ID)).want(t, http.StatusNotFound)
	if got := ids(t, h.get(path(PathSubjectSets, set.AcademicYearID)).list(t)); slices.Contains(got, set.ID) || len(got) != 2 {
		t.Errorf("sets after DeleteSet = %v", got)
	}
	if cal := h.calendar(newcomer.ID, "2026-03-02", "2026-03-15"); len(cal) != 0 {
		t.Errorf("the deleted set's lessons are still in the calendar: %v", cal)
	}

	added := h.srv.AddSet(Set{
		Subject: "Physics", YearGroup: 11, StaffIDs: []string{newcomer.ID}, StudentIDs: h.srv.Sets()[0].StudentIDs[:2],
		Slots: []Slot{{Weekday: time.Tuesday, Start: 14 * time.Hour, Length: time.Hour}},
	})
	if added.Name != "Physics 11A" || added.Code != "PH11A" || added.AcademicYearID != h.srv.CurrentAcademicYear().ID {
		t.Errorf("AddSet = %+v", added)
	}
	if m := h.setMembers(added); len(m) != 2 {
		t.Errorf("added set members = %v", m)
	}

	for name, f := range map[string]func(){
		"JoinSet":    func() { h.srv.JoinSet("1", h.srv.Students()[0].ID) },
		"SetStaff":   func() { h.srv.SetStaff(added.ID, "9") },
		"MoveLesson": func() { h.srv.MoveLesson(added.ID, time.Now(), time.Now()) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with an unknown id did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestNewAcademicYear(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(20, 3, 2, 5) // every weekday has a lesson or more
	oldSets := h.srv.Sets()
	oldYear := h.srv.CurrentAcademicYear()
	teacher := oldSets[0].StaffIDs[0]

	ny := h.srv.NewAcademicYear(time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC))
	if ny.ID == oldYear.ID || !ny.Current || ny.DateStart != "2026-03-09" || ny.DateEnd != "2027-03-08" {
		t.Errorf("new year = %+v", ny)
	}
	years := h.get(PathAcademicYears).list(t)
	if len(years) != 3 || years[1]["date_end"] != "2026-03-08" || years[1]["is_current"] != false || years[2]["is_current"] != true {
		t.Errorf("years = %v", years)
	}

	newSets := ids(t, h.get(path(PathSubjectSets, ny.ID)).list(t))
	if len(newSets) != len(oldSets) {
		t.Fatalf("new year sets = %v", newSets)
	}
	for i, id := range newSets {
		o := oldSets[i]
		if id == o.ID {
			t.Errorf("set %s kept its id", id)
		}
		n := h.setObject(Set{ID: id, AcademicYearID: ny.ID})
		if n["name"] != o.Name || n["student_count"] != float64(len(o.StudentIDs)) {
			t.Errorf("copy of %s = %v", o.ID, n)
		}
	}
	// The old sets stay in the old year.
	if got := ids(t, h.get(path(PathSubjectSets, oldYear.ID)).list(t)); len(got) != len(oldSets) {
		t.Errorf("old year sets = %v", got)
	}

	// The calendar switches sets at the rollover.
	for _, e := range h.calendar(teacher, "2026-03-02", "2026-03-15") {
		ss := e["subject_set"].(map[string]any)
		setID := strconv.Itoa(int(ss["id"].(float64)))
		date := e["date"].(string)
		isNew := slices.Contains(newSets, setID)
		if (date >= "2026-03-09") != isNew {
			t.Errorf("%s: lesson of set %s (new: %v)", date, setID, isNew)
		}
	}
}
