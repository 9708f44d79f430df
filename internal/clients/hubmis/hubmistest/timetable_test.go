package hubmistest

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// calendar returns the entries of a staff member's calendar for [from, to].
func (h *harness) calendar(staffID, from, to string) []map[string]any {
	h.t.Helper()
	var c struct {
		Calendar []map[string]any `json:"calendar"`
	}
	h.get(path(PathStaffCalendar, staffID), "filter[dateFrom]="+from, "filter[dateTo]="+to).
		want(h.t, http.StatusOK).decode(h.t, &c)
	if c.Calendar == nil {
		h.t.Fatal("no calendar array")
	}
	return c.Calendar
}

type lessonKey struct {
	set        string
	start, end time.Time
}

// lessonsOf turns calendar entries into keys, checking each entry's fields agree.
func lessonsOf(t *testing.T, cal []map[string]any, loc *time.Location) []lessonKey {
	t.Helper()
	var out []lessonKey
	for _, e := range cal {
		if e["type"] != "lesson" {
			continue
		}
		start, err1 := time.Parse(time.RFC3339, e["start"].(string))
		end, err2 := time.Parse(time.RFC3339, e["end"].(string))
		if err1 != nil || err2 != nil {
			t.Fatalf("entry %v: %v %v", e, err1, err2)
		}
		local := start.In(loc)
		if e["date"] != local.Format(dateLayout) || e["time_from"] != local.Format(time.TimeOnly) ||
			e["time_to"] != end.In(loc).Format(time.TimeOnly) {
			t.Errorf("entry %v disagrees with itself", e)
		}
		ss := e["subject_set"].(map[string]any)
		out = append(out, lessonKey{strconv.Itoa(int(ss["id"].(float64))), start, end})
	}
	return out
}

func keysOf(ls []Lesson) []lessonKey {
	var out []lessonKey
	for _, l := range ls {
		out = append(out, lessonKey{l.SetID, l.Start, l.End})
	}
	return out
}

func equalKeys(a, b []lessonKey) bool {
	return slices.EqualFunc(a, b, func(x, y lessonKey) bool {
		return x.set == y.set && x.start.Equal(y.start) && x.end.Equal(y.end)
	})
}

func sortKeys(k []lessonKey) {
	slices.SortStableFunc(k, func(a, b lessonKey) int { return a.start.Compare(b.start) })
}

func TestCalendarMatchesLessons(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.Populate(30, 5, 6, 3)
	loc, _ := time.LoadLocation(h.srv.Timezone())

	for _, m := range h.srv.Staff() {
		var want []lessonKey
		for _, set := range h.srv.Sets() {
			if slices.Contains(set.StaffIDs, m.ID) {
				want = append(want, keysOf(h.srv.Lessons(set.ID))...)
			}
		}
		sortKeys(want)
		// Lessons covers 14 days from today: 2 to 15 March.
		got := lessonsOf(t, h.calendar(m.ID, "2026-03-02", "2026-03-15"), loc)
		if !equalKeys(got, want) {
			t.Errorf("staff %s: calendar %v\nwant %v", m.ID, got, want)
		}
		if len(want) == 0 {
			t.Errorf("staff %s teaches nothing", m.ID)
		}
	}

	set := h.srv.Sets()[0]
	staff := set.StaffIDs[0]
	for _, l := range h.srv.Lessons(set.ID) {
		local := l.Start.In(loc)
		if local.Weekday() == time.Saturday || local.Weekday() == time.Sunday || local.Hour() < 9 || l.End.Sub(l.Start) != 55*time.Minute {
			t.Errorf("lesson %v", l)
		}
	}

	// filter[date] alone asks for one day.
	day := h.srv.Lessons(set.ID)[0].Start.In(loc).Format(dateLayout)
	one := h.calendar(staff, day, day)
	var c struct{ Calendar []map[string]any }
	h.get(path(PathStaffCalendar, staff), "filter[date]="+day).want(t, http.StatusOK).decode(t, &c)
	if len(one) == 0 || !jsonEqual(one, c.Calendar) {
		t.Errorf("filter[date] = %v, want %v", c.Calendar, one)
	}

	for _, q := range [][]string{
		nil,
		{"filter[dateFrom]=2026-03-02"},
		{"filter[dateFrom]=2026-03-09", "filter[dateTo]=2026-03-02"},
		{"filter[dateFrom]=02/03/2026", "filter[dateTo]=2026-03-09"},
	} {
		h.get(path(PathStaffCalendar, staff), q...).want(t, http.StatusBadRequest)
	}
	h.get(path(PathStaffCalendar, "1"), "filter[date]=2026-03-02").want(t, http.StatusNotFound)

	// Outside the academic year there are no lessons.
	if cal := h.calendar(staff, "2026-09-01", "2026-09-30"); len(cal) != 0 {
		t.Errorf("lessons after the year: %v", cal)
	}
}

func TestLessonsKeepTheWallClockAcrossDST(t *testing.T) {
	t.Parallel()
	h := setup(t)
	m := h.srv.AddStaff(Staff{FirstName: "Sam", LastName: "Hill", Teacher: true})
	set := h.srv.AddSet(Set{StaffIDs: []string{m.ID}, Slots: []Slot{{Weekday: time.Monday, Start: 9 * time.Hour, Length: time.Hour}}})
	cal := h.calendar(m.ID, "2026-03-23", "2026-04-05")
	if len(cal) != 2 {
		t.Fatalf("calendar = %v", cal)
	}
	// The clocks go forward on 29 March: 09:00 is 09:00Z before and 08:00Z after.
	if cal[0]["start"] != "2026-03-23T09:00:00Z" || cal[1]["start"] != "2026-03-30T09:00:00+01:00" ||
		cal[1]["time_from"] != "09:00:00" || cal[1]["end"] != "2026-03-30T10:00:00+01:00" {
		t.Errorf("calendar = %v", cal)
	}
	if ss := cal[0]["subject_set"].(map[string]any); ss["id"] != float64(atoi(set.ID)) {
		t.Errorf("subject_set = %v", ss)
	}
	if n := len(h.srv.LessonsBetween(set.ID, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))); n != 5 {
		t.Errorf("LessonsBetween March = %d, want 5", n)
	}
}

func TestTimetableMutations(t *testing.T) {
	t.Parallel()
	h := setup(t)
	loc, _ := time.LoadLocation(h.srv.Timezone())
	h.srv.Populate(20, 3, 3, 2)
	set := h.srv.Sets()[0]
	old := set.StaffIDs[0]
	before := h.srv.Lessons(set.ID)
	first := before[0]
	idOf := func(staff string, start time.Time) float64 {
		for _, e := range h.calendar(staff, "2026-03-01", "2026-03-31") {
			if e["start"] == start.Format(time.RFC3339) {
				return e["id"].(float64)
			}
		}
		return 0
	}
	firstID := idOf(old, first.Start)
	if firstID == 0 {
		t.Fatal("first lesson not in the calendar")
	}

	// Move the first lesson to Saturday 10:00: it keeps its id and length.
	to := time.Date(2026, 3, 7, 10, 0, 0, 0, loc)
	h.srv.MoveLesson(set.ID, first.Start, to)
	after := h.srv.Lessons(set.ID)
	if len(after) != len(before) || slices.ContainsFunc(after, func(l Lesson) bool { return l.Start.Equal(first.Start) }) {
		t.Errorf("after MoveLesson: %v", after)
	}
	i := slices.IndexFunc(after, func(l Lesson) bool { return l.Start.Equal(to) })
	if i < 0 || after[i].End.Sub(after[i].Start) != first.End.Sub(first.Start) {
		t.Fatalf("moved lesson missing: %v", after)
	}
	if idOf(old, to) != firstID || idOf(old, first.Start) != 0 {
		t.Error("the moved lesson changed id or stayed")
	}
	// A moved lesson moves again.
	to2 := to.Add(time.Hour)
	h.srv.MoveLesson(set.ID, to, to2)
	if idOf(old, to2) != firstID || idOf(old, to) != 0 {
		t.Error("the lesson did not move twice")
	}

	h.srv.CancelLesson(set.ID, before[1].Start)
	h.srv.AddLesson(set.ID, time.Date(2026, 3, 4, 16, 0, 0, 0, loc), time.Date(2026, 3, 4, 17, 0, 0, 0, loc))
	if got := h.srv.Lessons(set.ID); len(got) != len(before) ||
		!slices.ContainsFunc(got, func(l Lesson) bool { return l.Start.Hour() == 16 }) ||
		slices.ContainsFunc(got, func(l Lesson) bool { return l.Start.Equal(before[1].Start) }) {
		t.Errorf("after cancel and add: %v", got)
	}

	// A change of teacher moves the lessons to the new teacher's calendar.
	var other string
	for _, m := range h.srv.Staff() {
		if m.Teacher && !slices.Contains(set.StaffIDs, m.ID) {
			other = m.ID
		}
	}
	want := keysOf(h.srv.Lessons(set.ID))
	h.srv.SetStaff(set.ID, other)
	got := lessonsOf(t, h.calendar(other, "2026-03-02", "2026-03-15"), loc)
	got = slices.DeleteFunc(got, func(k lessonKey) bool { return k.set != set.ID })
	if !equalKeys(got, want) {
		t.Errorf("new teacher's calendar = %v\nwant %v", got, want)
	}
	for _, k := range lessonsOf(t, h.calendar(old, "2026-03-02", "2026-03-15"), loc) {
		if k.set == set.ID {
			t.Errorf("old teacher still has %v", k)
		}
	}
}

func TestNonLessonEntries(t *testing.T) {
	t.Parallel()
	h := setupWith(t, Options{NonLessonEntries: true, IPBucket: -1, ClientBucket: -1})
	h.srv.Populate(10, 2, 1, 1)
	cal := h.calendar(h.srv.Staff()[0].ID, "2026-03-02", "2026-03-15")
	events := 0
	for _, e := range cal {
		if e["type"] == "event" {
			events++
			if e["subject_set"] != nil || e["time_from"] != "08:30:00" {
				t.Errorf("event %v", e)
			}
		}
	}
	if events != 2 || len(cal) != 4 {
		t.Errorf("calendar = %v", cal)
	}
}
