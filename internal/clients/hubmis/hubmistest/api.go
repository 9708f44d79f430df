package hubmistest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/rollcall/rollcall/internal/simhttp"
)

// Handlers of the API endpoints; each runs with s.mu held, after the pipeline of
// [Server.apiHandler].

// listAcademicYears answers [PathAcademicYears], every year in id order. It is not paged
// (the document shows no paging for it). filter[current]=true keeps the current year,
// false the others.
func (s *Server) listAcademicYears(r *http.Request) simhttp.Reply {
	cur, hasCur := boolFilter(r.URL.Query().Get("filter[current]"))
	items := []any{}
	for _, id := range sortedIDs(s.data.years) {
		if hasCur && (id == s.data.current) != cur {
			continue
		}
		items = append(items, s.yearJSON(s.data.years[id]))
	}
	return s.all(r, items)
}

// listStudents answers [PathStudents], paged. Without filter[enrolmentStatus] it lists
// every student, past ones included: the document's basic call needs the scopes of past
// students and applicants. filter[enrolmentStatus]=current lists the school's current
// students.
func (s *Server) listStudents(r *http.Request) simhttp.Reply {
	status := r.URL.Query().Get("filter[enrolmentStatus]")
	items := []any{}
	for _, id := range sortedIDs(s.data.students) {
		st := s.data.students[id]
		if status != "" && st.EnrolmentStatus != status {
			continue
		}
		items = append(items, studentJSON(st))
	}
	return s.paged(r, items)
}

// getStudent answers [PathStudent], past students included.
func (s *Server) getStudent(r *http.Request) simhttp.Reply {
	st, ok := s.data.students[atoi(r.PathValue("id"))]
	if !ok {
		return notFound()
	}
	return simhttp.JSON(http.StatusOK, studentJSON(st))
}

// listStaff answers [PathStaff], paged. filter[subjectSet] (documented) keeps a set's
// staff; the other filters are ignored.
func (s *Server) listStaff(r *http.Request) simhttp.Reply {
	ids := sortedIDs(s.data.staff)
	if v := r.URL.Query().Get("filter[subjectSet]"); v != "" {
		ids = nil
		if set, ok := s.data.sets[atoi(v)]; ok {
			ids = slices.Sorted(slices.Values(set.staff))
		}
	}
	items := []any{}
	for _, id := range ids {
		items = append(items, s.staffJSON(s.data.staff[id]))
	}
	return s.paged(r, items)
}

// getStaffMember answers [PathStaffMember].
func (s *Server) getStaffMember(r *http.Request) simhttp.Reply {
	m, ok := s.data.staff[atoi(r.PathValue("id"))]
	if !ok {
		return notFound()
	}
	return simhttp.JSON(http.StatusOK, s.staffJSON(m))
}

// listSubjectSets answers [PathSubjectSets], the year's sets in id order, paged. An
// unknown year is 404.
func (s *Server) listSubjectSets(r *http.Request) simhttp.Reply {
	year := atoi(r.PathValue("academicYearId"))
	if _, ok := s.data.years[year]; !ok {
		return notFound()
	}
	items := []any{}
	for _, id := range sortedIDs(s.data.sets) {
		if set := s.data.sets[id]; set.year == year {
			items = append(items, s.setJSON(set))
		}
	}
	return s.paged(r, items)
}

// setOf returns the set of a request's path, which must belong to the path's year.
func (s *Server) setOf(r *http.Request) (*setRec, bool) {
	set, ok := s.data.sets[atoi(r.PathValue("id"))]
	if !ok || set.year != atoi(r.PathValue("academicYearId")) {
		return nil, false
	}
	return set, true
}

// getSubjectSet answers [PathSubjectSet].
func (s *Server) getSubjectSet(r *http.Request) simhttp.Reply {
	set, ok := s.setOf(r)
	if !ok {
		return notFound()
	}
	return simhttp.JSON(http.StatusOK, s.setJSON(set))
}

// listSubjectSetStudents answers [PathSubjectSetStudents]: the set's students in id
// order, as student objects, not paged (the document shows no paging for it).
func (s *Server) listSubjectSetStudents(r *http.Request) simhttp.Reply {
	set, ok := s.setOf(r)
	if !ok {
		return notFound()
	}
	items := []any{}
	for _, id := range slices.Sorted(slices.Values(set.students)) {
		items = append(items, studentJSON(s.data.students[id]))
	}
	return s.all(r, items)
}

// listSubjectSetStaff answers [PathSubjectSetStaff]: the set's staff, main teacher
// first, as staff objects, not paged. The document has no such endpoint (it has
// filter[subjectSet] on the staff list and "staff" in the set); the design assumes it.
func (s *Server) listSubjectSetStaff(r *http.Request) simhttp.Reply {
	set, ok := s.setOf(r)
	if !ok {
		return notFound()
	}
	items := []any{}
	for _, id := range set.staff {
		items = append(items, s.staffJSON(s.data.staff[id]))
	}
	return s.all(r, items)
}

// staffCalendar answers [PathStaffCalendar]: {"calendar":[...]}, the lessons of every set
// the member teaches (any academic year) whose local start date is within
// filter[dateFrom]..filter[dateTo] (inclusive, "YYYY-MM-DD" in the school's time zone),
// ordered by start. filter[date] alone asks for one day. Missing or malformed dates, or
// dateTo before dateFrom, are 400; an unknown member 404.
func (s *Server) staffCalendar(r *http.Request) simhttp.Reply {
	staffID := atoi(r.PathValue("id"))
	if _, ok := s.data.staff[staffID]; !ok {
		return notFound()
	}
	q := r.URL.Query()
	fromS, toS := q.Get("filter[dateFrom]"), q.Get("filter[dateTo]")
	if fromS == "" && toS == "" {
		fromS, toS = q.Get("filter[date]"), q.Get("filter[date]")
	}
	if fromS == "" || toS == "" {
		return badRequest("filter[dateFrom] and filter[dateTo] are required")
	}
	from, err1 := time.ParseInLocation(dateLayout, fromS, s.loc)
	to, err2 := time.ParseInLocation(dateLayout, toS, s.loc)
	if err1 != nil || err2 != nil {
		return badRequest("filter[dateFrom] and filter[dateTo] must be dates (YYYY-MM-DD)")
	}
	if to.Before(from) {
		return badRequest("filter[dateTo] must not be before filter[dateFrom]")
	}
	end := to.AddDate(0, 0, 1)
	type entry struct {
		occ occurrence
		set *setRec
	}
	var entries []entry
	for _, id := range sortedIDs(s.data.sets) {
		set := s.data.sets[id]
		if !slices.Contains(set.staff, staffID) {
			continue
		}
		for _, o := range s.occurrencesLocked(set, from, end) {
			entries = append(entries, entry{o, set})
		}
	}
	if s.briefings {
		for day := from; day.Before(end); day = day.AddDate(0, 0, 1) {
			if day.Weekday() == time.Monday {
				start := time.Date(day.Year(), day.Month(), day.Day(), 8, 30, 0, 0, s.loc)
				entries = append(entries, entry{occ: occurrence{
					id: lessonID("briefing", staffID, start), start: start, end: start.Add(20 * time.Minute),
				}})
			}
		}
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return a.occ.start.Compare(b.occ.start) })
	cal := []any{}
	for _, e := range entries {
		cal = append(cal, s.calendarJSON(e.occ, e.set))
	}
	return simhttp.JSON(http.StatusOK, map[string]any{"calendar": cal})
}

// regionalSettings answers [PathRegionalSettings] exactly as the document's sample.
func (s *Server) regionalSettings(*http.Request) simhttp.Reply {
	return simhttp.JSON(http.StatusOK, map[string]any{
		"regional_country_id": 34,
		"start_day_week":      "monday",
		"timezone":            s.loc.String(),
	})
}

// Lists.

// all answers a list that is not paged: every item, page parameters ignored.
func (s *Server) all(r *http.Request, items []any) simhttp.Reply {
	if !s.envelope {
		return simhttp.JSON(http.StatusOK, items)
	}
	return simhttp.JSON(http.StatusOK, map[string]any{
		"data":  items,
		"meta":  map[string]any{"total": len(items)},
		"links": map[string]any{"self": s.URL() + r.URL.RequestURI()},
	})
}

// paged answers one page of a paged list.
func (s *Server) paged(r *http.Request, items []any) simhttp.Reply {
	q := r.URL.Query()
	number, size := 1, s.pageSize
	if v := q.Get("page[number]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return badRequest("page[number] must be a positive integer")
		}
		number = n
	}
	if v := q.Get("page[size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return badRequest("page[size] must be a positive integer")
		}
		size = min(n, s.maxPageSize)
	}
	total := len(items)
	lo := min(total, (number-1)*size)
	hi := min(total, lo+size)
	if number-1 > total/size { // (number-1)*size may overflow for absurd numbers
		lo, hi = total, total
	}
	page := items[lo:hi]
	if !s.envelope {
		return simhttp.JSON(http.StatusOK, page)
	}
	last := max(1, (total+size-1)/size)
	link := func(n int) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("page[number]", strconv.Itoa(n))
		v.Set("page[size]", strconv.Itoa(size))
		return s.URL() + r.URL.Path + "?" + v.Encode()
	}
	links := map[string]any{"first": link(1), "last": link(last), "self": link(number)}
	if number < last {
		links["next"] = link(number + 1)
	}
	if number > 1 {
		links["prev"] = link(min(number-1, last))
	}
	return simhttp.JSON(http.StatusOK, map[string]any{
		"data": page,
		"meta": map[string]any{
			"current_page": number,
			"per_page":     size,
			"total":        total,
			"last_page":    last,
		},
		"links": links,
	})
}

func boolFilter(v string) (value, set bool) {
	switch v {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// JSON of the objects. Maps keep the code short; encoding/json sorts their keys.

func (s *Server) yearJSON(y *yearRec) map[string]any {
	return map[string]any{
		"id":         y.id,
		"name":       y.name,
		"date_start": y.start.Format(dateLayout),
		"date_end":   y.end.Format(dateLayout),
		"is_current": y.id == s.data.current,
	}
}

func orNull(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func idName(id int, name string) map[string]any {
	return map[string]any{"id": id, "name": name}
}

// studentJSON follows the document's "Students: Get Student" sample.
func studentJSON(st *studentRec) map[string]any {
	var form any
	if st.Form != "" {
		form = idName(formID(st.Form), st.Form)
	}
	return map[string]any{
		"id":                              st.id,
		"access_status":                   "invited",
		"multi_realm":                     false,
		"academic_house":                  nil,
		"boarding_type":                   nil,
		"boarding_house":                  nil,
		"country_of_birth":                nil,
		"date_of_birth":                   orNull(st.DateOfBirth),
		"deleted_at":                      nil,
		"ethnicity":                       nil,
		"enrolment_status":                st.EnrolmentStatus,
		"external_id":                     orNull(st.ExternalID),
		"faith":                           nil,
		"first_name":                      st.FirstName,
		"gender":                          idName(genderID(st.Gender), st.Gender),
		"has_global_note":                 false,
		"form":                            form,
		"language_first":                  nil,
		"language_second":                 nil,
		"last_login":                      nil,
		"last_name":                       st.LastName,
		"learning_support_record_summary": []any{},
		"middle_name":                     orNull(st.MiddleName),
		"name_in_local_language":          nil,
		"national_identity":               nil,
		"nationalities":                   []any{},
		"person_type":                     "student",
		"preferred_name":                  orNull(st.PreferredName),
		"primary_email":                   orNull(st.Email),
		"profile_image":                   nil,
		"tags":                            []any{},
		"medical_condition_severity":      []any{},
	}
}

// staffJSON follows the document's "Staff: Get One Staff" sample.
func (s *Server) staffJSON(m *staffRec) map[string]any {
	roles := []any{idName(roleSupport, "Support Staff")}
	departments := []any{}
	if m.Teacher {
		roles = []any{idName(roleTeacher, "Teacher")}
		d := subjects[m.subject].dept
		departments = append(departments, idName(deptID(d), d))
	}
	var title any
	if m.Title != "" {
		title = idName(titleID(m.Title), m.Title)
	}
	return map[string]any{
		"access_status":   "active",
		"multi_realm":     false,
		"academic_houses": []any{},
		"boarding_houses": []any{},
		"departments":     departments,
		"email":           orNull(m.Email),
		"external_id":     orNull(m.ExternalID),
		"first_name":      m.FirstName,
		"forms":           []any{},
		"gender":          nil,
		"id":              m.id,
		"images":          []any{},
		"job_title":       orNull(m.JobTitle),
		"last_name":       m.LastName,
		"middle_name":     orNull(m.MiddleName),
		"person_type":     "staff",
		"preferred_name":  orNull(m.PreferredName),
		"profile_image":   nil,
		"roles":           roles,
		"rooms":           []any{},
		"sections":        []any{idName(sectionSenior, "Senior School")},
		"status":          m.Status,
		"title":           title,
	}
}

// staffRefJSON is a member of staff inside a subject set's "staff" (collapsed in the
// document): the id and the name.
func staffRefJSON(m *staffRec) map[string]any {
	return map[string]any{
		"id":             m.id,
		"first_name":     m.FirstName,
		"last_name":      m.LastName,
		"preferred_name": orNull(m.PreferredName),
		"email":          orNull(m.Email),
	}
}

func roomJSON(id int) map[string]any {
	return map[string]any{"id": id, "room_code": "R" + strconv.Itoa(id)}
}

func subjectJSON(i int) map[string]any {
	return map[string]any{"id": subjects[i].id, "name": subjects[i].name, "code": subjects[i].code}
}

// setJSON follows the document's "Subject Sets: Get one in an Academic Year" sample.
func (s *Server) setJSON(set *setRec) map[string]any {
	y := s.data.years[set.year]
	staff := []any{}
	for _, id := range set.staff {
		staff = append(staff, staffRefJSON(s.data.staff[id]))
	}
	return map[string]any{
		"id":                   set.id,
		"academic_year":        idName(y.id, y.name),
		"code":                 set.code,
		"max_students":         set.maxStudents,
		"name":                 set.name,
		"rooms":                []any{roomJSON(set.room)},
		"short_description":    orNull(set.short),
		"staff":                staff,
		"staff_report_writers": []any{},
		"student_count":        len(set.students),
		"timetable_code":       set.code,
		"credit_score":         0,
		"date_start":           y.start.Format(dateLayout),
		"date_end":             y.end.Format(dateLayout),
		"qualification":        nil,
		"section":              idName(sectionSenior, "Senior School"),
		"subject":              subjectJSON(set.subject),
		"year_group":           idName(set.yearGroup, "Year "+strconv.Itoa(set.yearGroup)),
	}
}

// calendarJSON is one entry of a staff calendar. The document collapses them
// ({"calendar":[{}]}); the simulator's entry is
//
//	{"id":900123,"type":"lesson","date":"2026-03-02",
//	 "start":"2026-03-02T09:00:00Z","end":"2026-03-02T09:55:00Z",
//	 "time_from":"09:00:00","time_to":"09:55:00",
//	 "subject_set":{"id":5001,"name":"Maths 9B","code":"MA9B","academic_year_id":2},
//	 "subject":{"id":31,"name":"Maths","code":"MA"},
//	 "room":{"id":12,"room_code":"R12"},"staff":[{"id":201}]}
//
// start and end are RFC 3339 with the school's offset; date, time_from and time_to are
// its wall clock. A non-lesson entry has "type":"event", a "title" and null subject_set,
// subject and room. A lesson keeps its id when moved.
func (s *Server) calendarJSON(o occurrence, set *setRec) map[string]any {
	e := map[string]any{
		"id":          o.id,
		"type":        "event",
		"title":       "Staff briefing",
		"date":        o.start.Format(dateLayout),
		"start":       o.start.Format(time.RFC3339),
		"end":         o.end.Format(time.RFC3339),
		"time_from":   o.start.Format(time.TimeOnly),
		"time_to":     o.end.Format(time.TimeOnly),
		"subject_set": nil,
		"subject":     nil,
		"room":        nil,
		"staff":       []any{},
	}
	if set == nil {
		return e
	}
	staff := []any{}
	for _, id := range set.staff {
		staff = append(staff, map[string]any{"id": id})
	}
	e["type"] = "lesson"
	e["title"] = set.name
	e["subject_set"] = map[string]any{"id": set.id, "name": set.name, "code": set.code, "academic_year_id": set.year}
	e["subject"] = subjectJSON(set.subject)
	e["room"] = roomJSON(set.room)
	e["staff"] = staff
	return e
}
