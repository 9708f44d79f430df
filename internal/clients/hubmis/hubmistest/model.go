package hubmistest

import (
	"slices"
	"strconv"
	"time"
)

// dateLayout is how the document writes dates ("date_of_birth": "2010-08-24").
const dateLayout = "2006-01-02"

// Enrolment statuses of a student, as the document's filter[enrolmentStatus] names them.
const (
	EnrolmentCurrent   = "current"
	EnrolmentPast      = "past"
	EnrolmentApplicant = "applicant"
)

// AcademicYear is an academic year of the school. The document collapses its objects;
// the simulator's JSON is {"id","name","date_start","date_end","is_current"}.
type AcademicYear struct {
	// ID is the decimal form of the integer id the API serves.
	ID string
	// Name is e.g. "2025/26".
	Name string
	// DateStart and DateEnd are the first and last day, "YYYY-MM-DD", in the school's
	// time zone.
	DateStart, DateEnd string
	// Current reports whether this is the year the school is in ("is_current").
	Current bool
}

// Student is a student of the school, as the API serves it (a subset of the document's
// "Students: Get Student" fields; the others are served as null or empty).
type Student struct {
	// ID is the decimal form of the integer id the API serves.
	ID         string
	ExternalID string
	FirstName  string
	// MiddleName and PreferredName are served as null when empty.
	MiddleName    string
	LastName      string
	PreferredName string
	// Email is served as primary_email.
	Email string
	// DateOfBirth is "YYYY-MM-DD".
	DateOfBirth string
	// Gender is "Male" or "Female", served as {"id","name"}.
	Gender string
	// Form is the form group, e.g. "9B", served as {"id","name"}.
	Form string
	// YearGroup is 7 to 13; the API shows it only through the form.
	YearGroup int
	// EnrolmentStatus is [EnrolmentCurrent], [EnrolmentPast] or [EnrolmentApplicant].
	EnrolmentStatus string
}

// Staff is a member of staff, as the API serves it (a subset of the document's "Staff:
// Get One Staff" fields).
type Staff struct {
	// ID is the decimal form of the integer id the API serves.
	ID         string
	ExternalID string
	// Title is e.g. "Ms", served as {"id","name"}.
	Title     string
	FirstName string
	// MiddleName and PreferredName are served as null when empty.
	MiddleName    string
	LastName      string
	PreferredName string
	Email         string
	// JobTitle is e.g. "Teacher of Maths" or "Bursar".
	JobTitle string
	// Teacher reports whether the member has the teaching role: served as roles
	// [{"id":2,"name":"Teacher"}] (support staff have [{"id":5,"name":"Support Staff"}]).
	// The document's staff object has no other sign of teaching; which sets someone
	// teaches is in the sets' staff.
	Teacher bool
	// Status is "current".
	Status string
}

// Slot is a weekly lesson of a set: a weekday and a wall-clock time in the school's time
// zone.
type Slot struct {
	Weekday time.Weekday
	// Start is the time of day the lesson starts, e.g. 9*time.Hour+20*time.Minute.
	Start time.Duration
	// Length is how long the lesson lasts.
	Length time.Duration
}

// Set is a subject set (a teaching group) of one academic year.
type Set struct {
	// ID is the decimal form of the integer id the API serves.
	ID             string
	AcademicYearID string
	// Code is e.g. "MA9B"; Name e.g. "Maths 9B".
	Code, Name       string
	ShortDescription string
	// Subject is the subject's name, e.g. "Maths"; SubjectCode e.g. "MA".
	Subject, SubjectCode string
	// YearGroup is 7 to 13, served as {"id","name":"Year 9"}.
	YearGroup   int
	MaxStudents int
	// Room is the room code of its lessons.
	Room string
	// StaffIDs are its teachers, the first being the main one; StudentIDs its members,
	// in the order they joined.
	StaffIDs, StudentIDs []string
	// Slots are its weekly lessons. Moved, cancelled and added lessons are not here but
	// in [Server.Lessons].
	Slots []Slot
}

// Lesson is one lesson of a set, as the staff timetable calendars list it.
type Lesson struct {
	SetID string
	// Start and End are in the school's time zone.
	Start, End time.Time
}

// Internal records. Ids are the API's integers; the exported types carry them as strings.

type yearRec struct {
	id         int
	name       string
	start, end time.Time // local midnights of the first and last day
}

func (y *yearRec) contains(day time.Time) bool {
	return !day.Before(y.start) && !day.After(y.end)
}

type studentRec struct {
	Student
	id int
}

type staffRec struct {
	Staff
	id      int
	subject int // index into subjects: the department of a teacher
}

type setRec struct {
	id, year    int
	code, name  string
	short       string
	subject     int // index into subjects
	yearGroup   int
	maxStudents int
	room        int
	staff       []int
	students    []int
	slots       []Slot
	// cancelled holds the Unix starts of weekly lessons that were cancelled or moved.
	cancelled map[int64]bool
	// extras are lessons outside the weekly pattern: moved or added ones.
	extras []occurrence
}

// occurrence is one lesson of a set.
type occurrence struct {
	id         int
	start, end time.Time
	extra      bool // from setRec.extras rather than the weekly pattern
}

type store struct {
	years    map[int]*yearRec
	current  int
	students map[int]*studentRec
	staff    map[int]*staffRec
	sets     map[int]*setRec

	nextYear, nextStudent, nextStaff, nextSet, nextLesson int
}

func newStore() store {
	return store{
		years:    map[int]*yearRec{},
		students: map[int]*studentRec{},
		staff:    map[int]*staffRec{},
		sets:     map[int]*setRec{},
		// Different ranges per kind, so a test that mixes up ids fails.
		nextYear: 1, nextStudent: 1001, nextStaff: 201, nextSet: 5001, nextLesson: 900001,
	}
}

// initYears creates last year and the current one: UK academic years, 1 September to 31
// August, the current one being that of now (in the school's time zone).
func (st *store) initYears(now time.Time) {
	y := now.Year()
	if now.Month() < time.September {
		y--
	}
	loc := now.Location()
	st.addYear(time.Date(y-1, time.September, 1, 0, 0, 0, 0, loc))
	st.current = st.addYear(time.Date(y, time.September, 1, 0, 0, 0, 0, loc)).id
}

func (st *store) addYear(start time.Time) *yearRec {
	end := start.AddDate(1, 0, -1)
	y := &yearRec{
		id:    st.nextYear,
		name:  strconv.Itoa(start.Year()) + "/" + strconv.Itoa(end.Year()%100),
		start: start,
		end:   end,
	}
	st.nextYear++
	st.years[y.id] = y
	return y
}

func sortedIDs[V any](m map[int]V) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Reference data.

type subjectInfo struct {
	id               int
	name, code, dept string
}

var subjects = []subjectInfo{
	{31, "Maths", "MA", "Mathematics"},
	{32, "English", "EN", "English"},
	{33, "Biology", "BI", "Science"},
	{34, "Chemistry", "CH", "Science"},
	{35, "Physics", "PH", "Science"},
	{36, "History", "HI", "Humanities"},
	{37, "Geography", "GG", "Humanities"},
	{38, "French", "FR", "Modern Languages"},
	{39, "Spanish", "SP", "Modern Languages"},
	{40, "Art", "AR", "Creative Arts"},
	{41, "Music", "MU", "Creative Arts"},
	{42, "Computing", "CO", "Technology"},
}

func deptID(name string) int {
	for i, s := range subjects {
		if s.dept == name {
			return 11 + i
		}
	}
	return 10
}

// periods are the school day's lesson times.
var periods = []struct{ start, length time.Duration }{
	{9 * time.Hour, 55 * time.Minute},
	{10 * time.Hour, 55 * time.Minute},
	{11*time.Hour + 20*time.Minute, 55 * time.Minute},
	{12*time.Hour + 20*time.Minute, 55 * time.Minute},
	{14 * time.Hour, 55 * time.Minute},
	{15 * time.Hour, 55 * time.Minute},
}

var (
	firstNames = []string{
		"Amelia", "Ben", "Chloe", "Daniel", "Ella", "Freddie", "Grace", "Harry", "Isla", "Jack",
		"Kiran", "Lily", "Mohammed", "Noah", "Olivia", "Priya", "Rosie", "Samuel", "Tariq", "Una",
		"Vikram", "Willow", "Yasmin", "Zach",
	}
	lastNames = []string{
		"Ahmed", "Baker", "Clarke", "Davies", "Evans", "Fletcher", "Green", "Hughes", "Iqbal",
		"Jones", "Khan", "Lewis", "Morgan", "Nowak", "Owen", "Patel", "Roberts", "Singh",
		"Taylor", "Walker", "Wright", "Young",
	}
	middleNames  = []string{"", "", "", "James", "Rose", "Ali", "Mae", "John"}
	staffTitles  = []string{"Mr", "Ms", "Mrs", "Dr", "Miss"}
	supportRoles = []string{"Bursar", "Receptionist", "IT Technician", "Exams Officer", "Librarian"}
)

// Fixed ids of reference objects in the JSON.
const (
	roleTeacher   = 2
	roleSupport   = 5
	sectionSenior = 1
)

func titleID(t string) int { return 1 + slices.Index(staffTitles, t) }

func genderID(g string) int {
	if g == "Female" {
		return 2
	}
	return 1
}

// formID numbers a form group such as "9B" as 9*10+2; anything else is 0.
func formID(form string) int {
	if form == "" {
		return 0
	}
	yg, err := strconv.Atoi(form[:len(form)-1])
	letter := int(form[len(form)-1]) - 'A' + 1
	if err != nil || letter < 1 || letter > 9 {
		return 0
	}
	return yg*10 + letter
}
