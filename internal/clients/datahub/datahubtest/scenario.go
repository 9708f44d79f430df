package datahubtest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenario functions change the roster as a district's edits would and append the
// matching Clever-style event, returning its id. Every object event carries the object's
// full state after the change (before it, for a deletion). Calling one with an id the
// simulator does not know panics: that is a bug in the calling test. Ids an object refers
// to (a section's students and teachers) are not checked, so a test can build dangling
// references on purpose.

// AddTeacher stores a teacher and appends a teachers.created event. An empty ID is
// generated; an empty District defaults to the first district ([Server.DistrictID]) and
// an empty School to the district's first school; zero Created is now and zero
// LastModified is Created. It returns the teacher as stored and the event id.
func (s *Server) AddTeacher(t Teacher) (Teacher, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	if t.ID == "" {
		t.ID = s.newIDLocked()
	} else if s.data.teachers[t.ID] != nil {
		panic("datahubtest: AddTeacher: id " + t.ID + " exists")
	}
	t.School, t.District = s.data.place(t.School, t.District)
	t.Created, t.LastModified = s.stampLocked(t.Created, t.LastModified)
	s.data.teachers[t.ID] = &t
	return t, s.appendEventLocked("teachers.created", t, nil)
}

// AddStudent stores a student and appends a students.created event, filling defaults as
// [Server.AddTeacher] does.
func (s *Server) AddStudent(st Student) (Student, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	if st.ID == "" {
		st.ID = s.newIDLocked()
	} else if s.data.students[st.ID] != nil {
		panic("datahubtest: AddStudent: id " + st.ID + " exists")
	}
	st.School, st.District = s.data.place(st.School, st.District)
	st.Created, st.LastModified = s.stampLocked(st.Created, st.LastModified)
	s.data.students[st.ID] = &st
	return st, s.appendEventLocked("students.created", st, nil)
}

// AddSection stores a section and appends a sections.created event, filling defaults as
// [Server.AddTeacher] does. A primary Teacher missing from Teachers is put first in it.
func (s *Server) AddSection(sec Section) (Section, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	if sec.ID == "" {
		sec.ID = s.newIDLocked()
	} else if s.data.sections[sec.ID] != nil {
		panic("datahubtest: AddSection: id " + sec.ID + " exists")
	}
	sec = sec.clone()
	if sec.Teacher != "" && !slices.Contains(sec.Teachers, sec.Teacher) {
		sec.Teachers = slices.Insert(sec.Teachers, 0, sec.Teacher)
	}
	sec.School, sec.District = s.data.place(sec.School, sec.District)
	sec.Created, sec.LastModified = s.stampLocked(sec.Created, sec.LastModified)
	stored := sec.clone()
	s.data.sections[sec.ID] = &stored
	return sec, s.appendEventLocked("sections.created", sec, nil)
}

// Enroll adds a student to a section and appends a sections.updated event whose
// previous_attributes.students is the whole previous array, as Clever's are. Enrolling a
// student already in the section changes nothing and returns "".
func (s *Server) Enroll(sectionID, studentID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	sec := s.sectionLocked("Enroll", sectionID)
	if slices.Contains(sec.Students, studentID) {
		return ""
	}
	prev := slices.Clone(sec.Students)
	sec.Students = append(sec.Students, studentID)
	return s.sectionUpdatedLocked(sec, map[string]any{"students": orEmpty(prev)})
}

// Unenroll removes a student from a section and appends a sections.updated event as
// [Server.Enroll] does. Unenrolling a student not in the section returns "".
func (s *Server) Unenroll(sectionID, studentID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	sec := s.sectionLocked("Unenroll", sectionID)
	if !slices.Contains(sec.Students, studentID) {
		return ""
	}
	prev := slices.Clone(sec.Students)
	sec.Students = slices.DeleteFunc(slices.Clone(sec.Students), func(id string) bool { return id == studentID })
	return s.sectionUpdatedLocked(sec, map[string]any{"students": prev})
}

// SetSectionTeacher makes teacherID the section's primary teacher: the new teacher joins
// teachers[] (if not in it), the old primary leaves it, and a sections.updated event
// carries previous_attributes {"teacher", "teachers"}. Setting the current primary
// returns "".
func (s *Server) SetSectionTeacher(sectionID, teacherID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	sec := s.sectionLocked("SetSectionTeacher", sectionID)
	if sec.Teacher == teacherID {
		return ""
	}
	old, prev := sec.Teacher, orEmpty(slices.Clone(sec.Teachers))
	teachers := slices.DeleteFunc(slices.Clone(sec.Teachers), func(id string) bool { return id == old })
	if !slices.Contains(teachers, teacherID) {
		teachers = append(teachers, teacherID)
	}
	sec.Teacher, sec.Teachers = teacherID, teachers
	return s.sectionUpdatedLocked(sec, map[string]any{"teacher": old, "teachers": prev})
}

// UpdateSection changes a section's name and subject (an empty argument leaves that
// field as it is) and appends a sections.updated event whose previous_attributes holds
// only the fields that changed. With nothing changed it returns "".
func (s *Server) UpdateSection(sectionID string, name, subject string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	sec := s.sectionLocked("UpdateSection", sectionID)
	prev := map[string]any{}
	if name != "" && name != sec.Name {
		prev["name"] = sec.Name
		sec.Name = name
	}
	if subject != "" && subject != sec.Subject {
		prev["subject"] = sec.Subject
		sec.Subject = subject
	}
	if len(prev) == 0 {
		return ""
	}
	return s.sectionUpdatedLocked(sec, prev)
}

// RenameStudent changes a student's first and last name (the middle name stays) and
// appends a students.updated event with previous_attributes {"name": <the old name>}.
func (s *Server) RenameStudent(studentID string, first, last string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	st, ok := s.data.students[studentID]
	if !ok {
		panic("datahubtest: RenameStudent: unknown student " + studentID)
	}
	prev := st.Name
	st.Name.First, st.Name.Last = first, last
	st.LastModified = normTime(s.now())
	return s.appendEventLocked("students.updated", *st, map[string]any{"name": prev})
}

// DeleteSection removes a section and appends a sections.deleted event carrying its last
// full state.
func (s *Server) DeleteSection(sectionID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	sec := s.sectionLocked("DeleteSection", sectionID)
	delete(s.data.sections, sectionID)
	return s.appendEventLocked("sections.deleted", sec.clone(), nil)
}

// RemoveTeacher removes a teacher and appends a teachers.deleted event carrying the
// teacher's last full state. It also takes the teacher out of every section's teachers[]
// (a section whose primary it was gets the first remaining teacher, or none) WITHOUT
// sections.updated events, as Clever does: a client learns of it from the deletion alone,
// or from the sections' current state.
func (s *Server) RemoveTeacher(teacherID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	t, ok := s.data.teachers[teacherID]
	if !ok {
		panic("datahubtest: RemoveTeacher: unknown teacher " + teacherID)
	}
	delete(s.data.teachers, teacherID)
	now := normTime(s.now())
	for _, sec := range s.data.sections {
		if !teaches(sec, teacherID) {
			continue
		}
		sec.Teachers = slices.DeleteFunc(slices.Clone(sec.Teachers), func(id string) bool { return id == teacherID })
		if sec.Teacher == teacherID {
			sec.Teacher = ""
			if len(sec.Teachers) > 0 {
				sec.Teacher = sec.Teachers[0]
			}
		}
		sec.LastModified = now
	}
	return s.appendEventLocked("teachers.deleted", *t, nil)
}

// AddEvent appends any event to the feed without changing the roster: types a client
// must skip ("contacts.created", "district_admins.updated"), partial or malformed
// objects, events for objects that do not exist. object and previous are encoded as JSON
// (a json.RawMessage is taken as it is and must be valid JSON); a nil previous leaves
// previous_attributes out.
func (s *Server) AddEvent(typ string, object, previous any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	return s.appendEventLocked(typ, object, previous)
}

// Events returns a copy of the feed as it is served now: events older than the horizon
// are not in it.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	out := make([]Event, 0, len(s.data.events))
	for _, e := range s.data.events {
		ev := e.ev
		ev.Data = slices.Clone(ev.Data)
		out = append(out, ev)
	}
	return out
}

// Teachers, Students and Sections return copies of the current roster in id order, for
// building expectations.
func (s *Server) Teachers() []Teacher {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Teacher, 0, len(s.data.teachers))
	for _, t := range s.data.teachers {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Teacher) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Students returns a copy of the students in id order.
func (s *Server) Students() []Student {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Student, 0, len(s.data.students))
	for _, st := range s.data.students {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b Student) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Sections returns a copy of the sections in id order.
func (s *Server) Sections() []Section {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Section, 0, len(s.data.sections))
	for _, sec := range s.data.sections {
		out = append(out, sec.clone())
	}
	slices.SortFunc(out, func(a, b Section) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// newIDLocked returns a new id; s.mu must be held.
func (s *Server) newIDLocked() string { return s.ids.next(s.now()) }

// stampLocked fills zero creation and modification times; s.mu must be held.
func (s *Server) stampLocked(created, modified time.Time) (time.Time, time.Time) {
	created = normTime(created)
	if created.IsZero() {
		created = normTime(s.now())
	}
	modified = normTime(modified)
	if modified.IsZero() {
		modified = created
	}
	return created, modified
}

func (s *Server) sectionLocked(op, id string) *Section {
	sec, ok := s.data.sections[id]
	if !ok {
		panic("datahubtest: " + op + ": unknown section " + id)
	}
	return sec
}

// sectionUpdatedLocked stamps a changed section and appends its sections.updated event.
func (s *Server) sectionUpdatedLocked(sec *Section, prev map[string]any) string {
	sec.LastModified = normTime(s.now())
	return s.appendEventLocked("sections.updated", sec.clone(), prev)
}

// appendEventLocked appends an event at the head of the feed; s.mu must be held.
func (s *Server) appendEventLocked(typ string, object, previous any) string {
	obj := mustJSON("object", object)
	data := eventData{Object: obj}
	if previous != nil {
		if prev := mustJSON("previous_attributes", previous); string(prev) != "null" {
			data.Previous = prev
		}
	}
	rec := eventRec{ev: Event{
		ID:      s.newIDLocked(),
		Created: normTime(s.now()),
		Type:    typ,
		Data:    mustJSON("data", data),
	}}
	// What the per-entity feeds filter on; an object without these (or not an object at
	// all) is simply in no per-entity feed. One that names no district belongs to the
	// first, as objects added without one do, so with one district its feed is the
	// whole feed.
	var ref struct {
		ID       any `json:"id"`
		School   any `json:"school"`
		District any `json:"district"`
	}
	if json.Unmarshal(obj, &ref) == nil {
		rec.objectID, _ = ref.ID.(string)
		rec.school, _ = ref.School.(string)
		rec.district, _ = ref.District.(string)
	}
	rec.district = cmp.Or(rec.district, s.data.districts[0].ID)
	s.data.events = append(s.data.events, rec)
	return rec.ev.ID
}

func mustJSON(what string, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("datahubtest: event %s is not JSON: %v", what, err))
	}
	return b
}

// pruneLocked drops events older than the horizon from the head of the feed; s.mu must
// be held. The feed is in creation order, so the old events are a prefix of it.
func (s *Server) pruneLocked() {
	cutoff := s.now().Add(-s.horizon)
	n := 0
	for n < len(s.data.events) && s.data.events[n].ev.Created.Before(cutoff) {
		n++
	}
	if n == 0 {
		return
	}
	s.data.pruned = s.data.events[n-1].ev.ID
	s.data.events = slices.Clone(s.data.events[n:])
}

// Populate builds the first district's data in one call: teachers, then students, then
// sections, each with its created event. The i-th teacher, student and section made here
// belongs to school i mod [Options.Schools], in [Server.SchoolIDs] order. Each section gets one
// primary teacher (round robin over the teachers made here, or over the existing ones
// when none are) and perSection distinct students drawn from the students made here (or
// the existing ones); with more than one school both are taken from the section's school,
// or from every school when it has none. Names, grades and subjects are drawn from a
// generator seeded by [Options.Seed], so one seed gives one district; ids and times
// follow [Options.Now]. Calling it again adds another batch.
func (s *Server) Populate(teachers, students, sections, perSection int) {
	s.PopulateDistrict(s.DistrictID(), teachers, students, sections, perSection)
}

// PopulateDistrict is [Server.Populate] for the district with the id (see
// [Server.AddDistrict]): the objects are spread over its schools, and a section's
// teacher and students are drawn from those made here, or from the district's existing
// ones. It panics when the district does not exist.
func (s *Server) PopulateDistrict(districtID string, teachers, students, sections, perSection int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	if _, ok := s.data.district(districtID); !ok {
		panic("datahubtest: PopulateDistrict: unknown district " + districtID)
	}
	rng := s.popRNG
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	pickSubject := func() subject { return subjects[rng.IntN(len(subjects))] }
	now := normTime(s.now())
	schools := s.data.schoolsOf(districtID)
	schoolOf := func(i int) string { return schools[i%len(schools)].ID }

	var teacherIDs, studentIDs []string
	for i := range teachers {
		s.data.seq++
		n := s.data.seq
		name := Name{First: pick(firstNames), Middle: pick(middleInitials), Last: pick(lastNames)}
		t := &Teacher{
			ID: s.newIDLocked(), SISID: "T" + strconv.Itoa(n), TeacherNumber: strconv.Itoa(1000 + n),
			Email: email(name, n), Title: pickSubject().title, School: schoolOf(i),
			District: districtID, Name: name, Created: now, LastModified: now,
		}
		s.data.teachers[t.ID] = t
		teacherIDs = append(teacherIDs, t.ID)
		s.appendEventLocked("teachers.created", *t, nil)
	}
	for i := range students {
		s.data.seq++
		n := s.data.seq
		name := Name{First: pick(firstNames), Middle: pick(middleInitials), Last: pick(lastNames)}
		st := &Student{
			ID: s.newIDLocked(), SISID: "S" + strconv.Itoa(n), StudentNumber: strconv.Itoa(100000 + n),
			Email: email(name, n), Grade: pick(grades), School: schoolOf(i),
			District: districtID, Name: name, Created: now, LastModified: now,
		}
		s.data.students[st.ID] = st
		studentIDs = append(studentIDs, st.ID)
		s.appendEventLocked("students.created", *st, nil)
	}
	if len(teacherIDs) == 0 {
		teacherIDs = sortedKeys(s.data.teachers, func(t *Teacher) bool { return t.District == districtID })
	}
	if len(studentIDs) == 0 {
		studentIDs = sortedKeys(s.data.students, func(st *Student) bool { return st.District == districtID })
	}
	// The section's pools: those of its school, in the order above, or all of them when
	// the school has none or there is one school (which keeps one school's data as it
	// was before there were several).
	poolOf := func(ids []string, school func(string) string) map[string][]string {
		by := map[string][]string{}
		if len(schools) == 1 {
			return by
		}
		for _, id := range ids {
			by[school(id)] = append(by[school(id)], id)
		}
		return by
	}
	teachersBy := poolOf(teacherIDs, func(id string) string { return s.data.teachers[id].School })
	studentsBy := poolOf(studentIDs, func(id string) string { return s.data.students[id].School })
	for i := range sections {
		s.data.seq++
		n := s.data.seq
		subj, grade := pickSubject(), pick(grades)
		period := strconv.Itoa(1 + rng.IntN(8))
		sec := &Section{
			ID:   s.newIDLocked(),
			Name: fmt.Sprintf("%s %s - Period %s", subj.course, grade, period), SISID: "C" + strconv.Itoa(n),
			School: schoolOf(i), District: districtID,
			CourseName: subj.course + " " + grade, CourseNumber: strconv.Itoa(200 + rng.IntN(700)),
			SectionNumber: strconv.Itoa(n), Period: period, Grade: grade, Subject: subj.subject,
			Teachers: []string{}, Students: []string{},
			Term:    Term{Name: "2025-2026", StartDate: "2025-08-18", EndDate: "2026-06-05"},
			Created: now, LastModified: now,
		}
		// k counts the sections of this school made here.
		tpool, k := teacherIDs, i/len(schools)
		if p := teachersBy[sec.School]; len(p) > 0 {
			tpool = p
		}
		spool := studentIDs
		if p := studentsBy[sec.School]; len(p) > 0 {
			spool = p
		}
		if len(tpool) > 0 {
			sec.Teacher = tpool[k%len(tpool)]
			sec.Teachers = []string{sec.Teacher}
		}
		for _, j := range rng.Perm(len(spool))[:min(perSection, len(spool))] {
			sec.Students = append(sec.Students, spool[j])
		}
		s.data.sections[sec.ID] = sec
		s.appendEventLocked("sections.created", sec.clone(), nil)
	}
}

// subject is a DataHub subject with a course and a teacher's title to go with it.
type subject struct{ subject, course, title string }

// sortedKeys returns the keys of the values keep keeps, in order.
func sortedKeys[V any](m map[string]V, keep func(V) bool) []string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if keep(v) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func email(n Name, seq int) string {
	return strings.ToLower(n.First+"."+n.Last) + strconv.Itoa(seq) + "@example.org"
}

var (
	firstNames = []string{
		"Ava", "Ben", "Chloe", "Diego", "Emma", "Finn", "Grace", "Hugo", "Isla", "Jack",
		"Kai", "Lena", "Mia", "Noah", "Olivia", "Priya", "Quinn", "Ravi", "Sofia", "Theo",
		"Uma", "Victor", "Wren", "Yusuf", "Zoe",
	}
	middleInitials = []string{"A", "B", "C", "D", "E", "J", "L", "M", "R", "S"}
	lastNames      = []string{
		"Adams", "Brown", "Chen", "Davis", "Evans", "Garcia", "Hughes", "Ito", "Johnson",
		"Khan", "Lopez", "Martin", "Nguyen", "Okafor", "Patel", "Quintero", "Rossi",
		"Smith", "Taylor", "Umar", "Vance", "Walsh", "Xu", "Young", "Zimmer",
	}
	grades   = []string{"6", "7", "8", "9", "10", "11", "12"}
	subjects = []subject{
		{"math", "Algebra", "Math Teacher"},
		{"english/language arts", "English", "English Teacher"},
		{"science", "Biology", "Science Teacher"},
		{"social studies", "World History", "History Teacher"},
		{"language", "Spanish", "Spanish Teacher"},
		{"arts and music", "Art", "Art Teacher"},
		{"PE and health", "Physical Education", "PE Teacher"},
		{"technology and engineering", "Computer Science", "Technology Teacher"},
	}
)
