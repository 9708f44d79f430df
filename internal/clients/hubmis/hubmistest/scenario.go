package hubmistest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenario functions change the school as its staff's edits in HUBmis would; the API
// answers the new state at once. HUBmis has no event feed, so nothing else records a
// change: a client finds it by reading again. Calling one with an id the simulator does
// not know panics: that is a bug in the calling test.

// setsPerStudent is how many sets a student of [Server.Populate] is in, on average.
const setsPerStudent = 4

// Populate builds a school in one call: staff, then students, then subject sets of the
// current academic year. About one member of staff in eight is support staff (when there
// are at least four); the others teach. Each set has a subject, a year group and a name
// such as "Maths 9B"; one teacher (round robin over the teachers made here, or over the
// existing ones when none are), and a second one for about a quarter of the sets;
// about students*4/sets members (±20 %), drawn from the students of its year group made
// here (or from all of them, or the existing ones, when too few); and
// lessonsPerSetPerWeek distinct weekly slots, Monday to Friday, periods of 55 minutes
// from 09:00. Names, sizes and slots are drawn from a generator seeded by
// [Options.Seed], ids are sequential (students from 1001, staff from 201, sets from
// 5001), so one seed gives one school. Calling it again adds another batch.
func (s *Server) Populate(students, staff, sets, lessonsPerSetPerWeek int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rng := s.popRNG
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	yearStart := s.data.years[s.data.current].start

	var teacherIDs, studentIDs []int
	for i := range staff {
		teacher := staff < 4 || i%8 != 7
		subj := rng.IntN(len(subjects))
		job := "Teacher of " + subjects[subj].name
		if !teacher {
			job = pick(supportRoles)
		}
		m := s.addStaffLocked(Staff{
			Title: pick(staffTitles), FirstName: pick(firstNames), MiddleName: pick(middleNames),
			LastName: pick(lastNames), JobTitle: job, Teacher: teacher,
		}, subj)
		if teacher {
			teacherIDs = append(teacherIDs, m.id)
		}
	}
	for range students {
		yg := 7 + rng.IntN(7)
		// UK year groups: year 7 are born September to August, 12 to 11 years before
		// the academic year starts.
		born := time.Date(yearStart.Year()-yg-5, time.September, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(365))
		gender := "Female"
		if rng.IntN(2) == 0 {
			gender = "Male"
		}
		st := s.addStudentLocked(Student{
			FirstName: pick(firstNames), MiddleName: pick(middleNames), LastName: pick(lastNames),
			DateOfBirth: born.Format(dateLayout), Gender: gender,
			Form: strconv.Itoa(yg) + string(rune('A'+rng.IntN(3))), YearGroup: yg,
		})
		studentIDs = append(studentIDs, st.id)
	}
	if len(teacherIDs) == 0 {
		for _, id := range sortedIDs(s.data.staff) {
			if s.data.staff[id].Teacher && s.data.staff[id].Status == "current" {
				teacherIDs = append(teacherIDs, id)
			}
		}
	}
	if len(studentIDs) == 0 {
		for _, id := range sortedIDs(s.data.students) {
			if s.data.students[id].EnrolmentStatus == EnrolmentCurrent {
				studentIDs = append(studentIDs, id)
			}
		}
	}

	for i := range sets {
		subj, yg := rng.IntN(len(subjects)), 7+rng.IntN(7)
		set := s.newSetLocked(s.data.current, subj, yg)
		if n := len(teacherIDs); n > 0 {
			set.staff = []int{teacherIDs[i%n]}
			if n > 1 && rng.Float64() < 0.25 {
				set.staff = append(set.staff, teacherIDs[(i+1+rng.IntN(n-1))%n])
			}
		}
		if n := len(studentIDs); n > 0 {
			base := float64(n) * setsPerStudent / float64(sets)
			size := min(n, max(1, int(math.Round(base*(0.8+0.4*rng.Float64())))))
			var cands []int
			for _, id := range studentIDs {
				if s.data.students[id].YearGroup == yg {
					cands = append(cands, id)
				}
			}
			if len(cands) < size {
				cands = studentIDs
			}
			for _, j := range rng.Perm(len(cands))[:size] {
				set.students = append(set.students, cands[j])
			}
			set.maxStudents = max(set.maxStudents, size)
		}
		grid := len(periods) * 5
		for _, k := range rng.Perm(grid)[:min(max(0, lessonsPerSetPerWeek), grid)] {
			p := periods[k%len(periods)]
			set.slots = append(set.slots, Slot{Weekday: time.Monday + time.Weekday(k/len(periods)), Start: p.start, Length: p.length})
		}
		sortSlots(set.slots)
		set.room = 1 + rng.IntN(40)
	}
}

func sortSlots(slots []Slot) {
	slices.SortFunc(slots, func(a, b Slot) int {
		return cmp.Or(cmp.Compare(a.Weekday, b.Weekday), cmp.Compare(a.Start, b.Start))
	})
}

// newSetLocked creates an empty set of a year, subject and year group, named with the
// next free letter ("Maths 9A", "Maths 9B", ...).
func (s *Server) newSetLocked(year, subj, yg int) *setRec {
	letter := 0
	for _, o := range s.data.sets {
		if o.year == year && o.subject == subj && o.yearGroup == yg {
			letter++
		}
	}
	l := string(rune('A' + letter%26))
	set := &setRec{
		id: s.data.nextSet, year: year, subject: subj, yearGroup: yg,
		name:        fmt.Sprintf("%s %d%s", subjects[subj].name, yg, l),
		code:        fmt.Sprintf("%s%d%s", subjects[subj].code, yg, l),
		short:       fmt.Sprintf("%s class year %d group %s", subjects[subj].name, yg, l),
		maxStudents: 30,
		room:        1,
	}
	s.data.nextSet++
	s.data.sets[set.id] = set
	return set
}

func (s *Server) addStaffLocked(m Staff, subj int) *staffRec {
	id := s.data.nextStaff
	s.data.nextStaff++
	m.ID = strconv.Itoa(id)
	m.ExternalID = cmp.Or(m.ExternalID, fmt.Sprintf("ST%05d", id))
	m.Email = cmp.Or(m.Email, emailOf(m.FirstName, m.LastName, id, "staff.example.org"))
	m.Status = cmp.Or(m.Status, "current")
	rec := &staffRec{Staff: m, id: id, subject: subj}
	s.data.staff[id] = rec
	return rec
}

func (s *Server) addStudentLocked(st Student) *studentRec {
	id := s.data.nextStudent
	s.data.nextStudent++
	st.ID = strconv.Itoa(id)
	st.ExternalID = cmp.Or(st.ExternalID, fmt.Sprintf("MX%05d", id))
	st.Email = cmp.Or(st.Email, emailOf(st.FirstName, st.LastName, id, "students.example.org"))
	st.EnrolmentStatus = cmp.Or(st.EnrolmentStatus, EnrolmentCurrent)
	st.Gender = cmp.Or(st.Gender, "Female")
	if st.YearGroup == 0 && st.Form != "" {
		st.YearGroup = formID(st.Form) / 10
	}
	rec := &studentRec{Student: st, id: id}
	s.data.students[id] = rec
	return rec
}

func emailOf(first, last string, id int, domain string) string {
	return strings.ToLower(first+"."+last) + strconv.Itoa(id) + "@" + domain
}

// AddStudent adds a student and returns it as stored. The ID is always generated; an
// empty EnrolmentStatus is current, and empty ExternalID and Email are generated.
func (s *Server) AddStudent(st Student) Student {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addStudentLocked(st).Student
}

// AddStaff adds a member of staff and returns it as stored. The ID is always generated;
// empty Status is "current", and empty ExternalID and Email are generated.
func (s *Server) AddStaff(m Staff) Staff {
	s.mu.Lock()
	defer s.mu.Unlock()
	subj := 0
	for i, sub := range subjects {
		if strings.HasSuffix(m.JobTitle, sub.name) {
			subj = i
		}
	}
	return s.addStaffLocked(m, subj).Staff
}

// AddSet adds a subject set and returns it as stored. The ID is always generated; an
// empty AcademicYearID is the current year; Subject is one of the simulator's subjects by
// name (Maths, English, Biology, Chemistry, Physics, History, Geography, French, Spanish,
// Art, Music, Computing; Maths when unknown), and SubjectCode follows it; a zero
// YearGroup is 7; empty Name, Code and ShortDescription are generated; Room is "R<n>"
// (R1 when empty). StaffIDs and StudentIDs must exist.
func (s *Server) AddSet(in Set) Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	year := s.data.current
	if in.AcademicYearID != "" {
		year = s.yearLocked("AddSet", in.AcademicYearID).id
	}
	subj := max(0, slices.IndexFunc(subjects, func(x subjectInfo) bool { return x.name == in.Subject }))
	set := s.newSetLocked(year, subj, cmp.Or(in.YearGroup, 7))
	set.name = cmp.Or(in.Name, set.name)
	set.code = cmp.Or(in.Code, set.code)
	set.short = cmp.Or(in.ShortDescription, set.short)
	set.maxStudents = cmp.Or(in.MaxStudents, set.maxStudents)
	if n, err := strconv.Atoi(strings.TrimPrefix(in.Room, "R")); err == nil && n > 0 {
		set.room = n
	}
	for _, id := range in.StaffIDs {
		set.staff = append(set.staff, s.staffLocked("AddSet", id).id)
	}
	for _, id := range in.StudentIDs {
		set.students = append(set.students, s.studentLocked("AddSet", id).id)
	}
	set.slots = slices.Clone(in.Slots)
	sortSlots(set.slots)
	return s.setOut(set)
}

// JoinSet adds a student to a set, reporting whether it changed anything (false when
// the student is in it already).
func (s *Server) JoinSet(setID, studentID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.setLocked("JoinSet", setID)
	st := s.studentLocked("JoinSet", studentID)
	if slices.Contains(set.students, st.id) {
		return false
	}
	set.students = append(set.students, st.id)
	return true
}

// LeaveSet removes a student from a set, reporting whether it changed anything.
func (s *Server) LeaveSet(setID, studentID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.setLocked("LeaveSet", setID)
	st := s.studentLocked("LeaveSet", studentID)
	n := len(set.students)
	set.students = slices.DeleteFunc(set.students, func(id int) bool { return id == st.id })
	return len(set.students) != n
}

// SetStaff replaces the staff of a set, the first being its main teacher, as when a set's
// teacher changes. The set's lessons move with it to the new teachers' calendars.
func (s *Server) SetStaff(setID string, staffIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.setLocked("SetStaff", setID)
	var ids []int
	for _, id := range staffIDs {
		m := s.staffLocked("SetStaff", id)
		if !slices.Contains(ids, m.id) {
			ids = append(ids, m.id)
		}
	}
	set.staff = ids
}

// RenameSet changes a set's name.
func (s *Server) RenameSet(setID, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLocked("RenameSet", setID).name = name
}

// DeleteSet removes a set: it is gone from the lists, its own paths answer 404, and its
// lessons from every calendar.
func (s *Server) DeleteSet(setID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data.sets, s.setLocked("DeleteSet", setID).id)
}

// StudentLeaves makes a student leave the school: the enrolment status becomes past, so
// the student is gone from filter[enrolmentStatus]=current and from every set (but still
// in the unfiltered list and at its own path, as a past student).
func (s *Server) StudentLeaves(studentID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.studentLocked("StudentLeaves", studentID)
	st.EnrolmentStatus = EnrolmentPast
	for _, set := range s.data.sets {
		set.students = slices.DeleteFunc(set.students, func(id int) bool { return id == st.id })
	}
}

// NewAcademicYear rolls the school over to a new academic year starting on start's date
// (in the school's time zone; a zero start is the day after the current year ends) and
// lasting a year. The current year now ends the day before, if it ended later. Every set
// of the old current year is copied into the new year under a new id, with its name,
// members, staff and weekly slots (not its moved or added lessons), as HUBmis's rollover
// replaces every subject set id; the old sets stay in the old year, with lessons until it
// ends. It returns the new year, which is now current.
func (s *Server) NewAcademicYear(start time.Time) AcademicYear {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.data.years[s.data.current]
	if start.IsZero() {
		start = old.end.AddDate(0, 0, 1)
	}
	start = start.In(s.loc)
	start = time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, s.loc)
	if dayBefore := start.AddDate(0, 0, -1); old.end.After(dayBefore) {
		old.end = dayBefore
	}
	y := s.data.addYear(start)
	s.data.current = y.id
	for _, id := range sortedIDs(s.data.sets) {
		o := s.data.sets[id]
		if o.year != old.id {
			continue
		}
		n := &setRec{
			id: s.data.nextSet, year: y.id, code: o.code, name: o.name, short: o.short,
			subject: o.subject, yearGroup: o.yearGroup, maxStudents: o.maxStudents, room: o.room,
			staff: slices.Clone(o.staff), students: slices.Clone(o.students), slots: slices.Clone(o.slots),
		}
		s.data.nextSet++
		s.data.sets[n.id] = n
	}
	return s.yearOut(y)
}

// AcademicYears returns the school's academic years in id order.
func (s *Server) AcademicYears() []AcademicYear {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AcademicYear
	for _, id := range sortedIDs(s.data.years) {
		out = append(out, s.yearOut(s.data.years[id]))
	}
	return out
}

// CurrentAcademicYear returns the year the school is in.
func (s *Server) CurrentAcademicYear() AcademicYear {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.yearOut(s.data.years[s.data.current])
}

// Students returns the current students (enrolment status current) in id order.
func (s *Server) Students() []Student {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Student
	for _, id := range sortedIDs(s.data.students) {
		if st := s.data.students[id]; st.EnrolmentStatus == EnrolmentCurrent {
			out = append(out, st.Student)
		}
	}
	return out
}

// Staff returns every member of staff in id order.
func (s *Server) Staff() []Staff {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Staff
	for _, id := range sortedIDs(s.data.staff) {
		out = append(out, s.data.staff[id].Staff)
	}
	return out
}

// Sets returns the subject sets of every academic year in id order (filter on
// AcademicYearID for one year's).
func (s *Server) Sets() []Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Set
	for _, id := range sortedIDs(s.data.sets) {
		out = append(out, s.setOut(s.data.sets[id]))
	}
	return out
}

func (s *Server) yearOut(y *yearRec) AcademicYear {
	return AcademicYear{
		ID: strconv.Itoa(y.id), Name: y.name,
		DateStart: y.start.Format(dateLayout), DateEnd: y.end.Format(dateLayout),
		Current: y.id == s.data.current,
	}
}

func itoaAll(ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.Itoa(id)
	}
	return out
}

func (s *Server) setOut(set *setRec) Set {
	return Set{
		ID: strconv.Itoa(set.id), AcademicYearID: strconv.Itoa(set.year),
		Code: set.code, Name: set.name, ShortDescription: set.short,
		Subject: subjects[set.subject].name, SubjectCode: subjects[set.subject].code,
		YearGroup: set.yearGroup, MaxStudents: set.maxStudents, Room: "R" + strconv.Itoa(set.room),
		StaffIDs: itoaAll(set.staff), StudentIDs: itoaAll(set.students), Slots: slices.Clone(set.slots),
	}
}

// Lookups that panic on an unknown id; s.mu must be held.

func (s *Server) setLocked(op, id string) *setRec {
	set, ok := s.data.sets[atoi(id)]
	if !ok {
		panic("hubmistest: " + op + ": unknown set " + id)
	}
	return set
}

func (s *Server) studentLocked(op, id string) *studentRec {
	st, ok := s.data.students[atoi(id)]
	if !ok {
		panic("hubmistest: " + op + ": unknown student " + id)
	}
	return st
}

func (s *Server) staffLocked(op, id string) *staffRec {
	m, ok := s.data.staff[atoi(id)]
	if !ok {
		panic("hubmistest: " + op + ": unknown staff " + id)
	}
	return m
}

func (s *Server) yearLocked(op, id string) *yearRec {
	y, ok := s.data.years[atoi(id)]
	if !ok {
		panic("hubmistest: " + op + ": unknown academic year " + id)
	}
	return y
}
