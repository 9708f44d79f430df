package hubmis

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/jsonx"
)

// Ref is another HUBmis object as a record embeds it: HUBmis writes
// {"id": 9, "name": "Green House"}, some with a "code" (subjects) or a
// "room_code" (rooms).
type Ref struct {
	ID   string
	Name string
	Code string
}

// AcademicYear is one of the school's academic years. The docs collapse the
// object ("Academic Years: Get list"); the fields read are "id", "name", the
// first and last day ("date_start"/"date_end", or "start_date"/"end_date",
// "date_from"/"date_to") and whether it is the school's current year
// ("is_current", "current", "is_active" or "active").
type AcademicYear struct {
	ID   string
	Name string
	// DateStart and DateEnd are the first and last day, "2006-01-02", as
	// HUBmis wrote them; "" when it did not say.
	DateStart, DateEnd string
	// Current reports whether HUBmis marks this as the school's current
	// year.
	Current bool
}

// Contains reports whether day (its calendar date, in its own location) is
// within the year's first and last day. False when either is unknown.
func (y AcademicYear) Contains(day time.Time) bool {
	start, err1 := time.Parse(time.DateOnly, y.DateStart)
	end, err2 := time.Parse(time.DateOnly, y.DateEnd)
	if err1 != nil || err2 != nil {
		return false
	}
	d := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	return !d.Before(start) && !d.After(end)
}

// Student is a HUBmis student, as "Students: Get List" and a subject set's
// students give it. Only what rostering needs is decoded: date of birth,
// gender, ethnicity, faith, medical and other fields of the record are
// dropped on purpose.
type Student struct {
	ID         string
	ExternalID string
	FirstName  string
	MiddleName string
	LastName   string
	// PreferredName is "" when HUBmis has none (null).
	PreferredName string
	// Email is "primary_email".
	Email string
	// EnrolmentStatus is "current", "past" or "applicant".
	EnrolmentStatus string
	// Form is the form (registration) group.
	Form Ref
	// YearGroup is set when the record names one ("year_group").
	YearGroup Ref
	// Deleted reports a non-null "deleted_at".
	Deleted bool
}

// Staff is a HUBmis member of staff, as "Staff: Get List" and a subject
// set's staff give it.
type Staff struct {
	ID         string
	ExternalID string
	// Title is the title's name, e.g. "Ms".
	Title         string
	FirstName     string
	MiddleName    string
	LastName      string
	PreferredName string
	Email         string
	JobTitle      string
	// Status is e.g. "current".
	Status string
	// Roles are the member's roles, e.g. {"2", "Teacher", ""}.
	Roles []Ref
}

// IsTeacher reports whether one of the member's roles is a teaching one (its
// name holds "teach", in any case). The docs' staff object has no other sign
// of teaching; who teaches which set is in the sets' staff.
func (s Staff) IsTeacher() bool {
	for _, r := range s.Roles {
		if strings.Contains(strings.ToLower(r.Name), "teach") {
			return true
		}
	}
	return false
}

// IsCurrent reports whether the member is current staff: Status "current",
// or no status at all.
func (s Staff) IsCurrent() bool {
	return s.Status == "" || strings.EqualFold(s.Status, "current")
}

// SubjectSet is a subject set (a teaching group) of one academic year, as
// "Subject Sets: Get one in an Academic Year" gives it.
type SubjectSet struct {
	ID string
	// AcademicYearID is the id of "academic_year"; "" when absent.
	AcademicYearID   string
	Code             string
	Name             string
	ShortDescription string
	TimetableCode    string
	Subject          Ref
	YearGroup        Ref
	Section          Ref
	// Rooms are the set's rooms; a room's Code is its "room_code".
	Rooms        []Ref
	MaxStudents  int
	StudentCount int
	// DateStart and DateEnd are "2006-01-02" as HUBmis wrote them.
	DateStart, DateEnd string
	// StaffIDs are the ids in the set's "staff", in HUBmis's order; nil
	// when the set carries none. [Client.SetStaff] gives the full records.
	StaffIDs []string
}

// CalendarEntry is one entry of a staff member's timetable calendar. The
// docs collapse the entry ({"calendar": [{}]}); what is read:
//
//   - "id", "type" ("lesson", "event", ...) and "title";
//   - "subject_set" (a Ref, or a bare id), "subject" and "room";
//   - the start and end: "start"/"end" as RFC 3339, or a wall clock
//     ("start"/"end" without an offset, or "date" with "time_from"/"time_to"
//     or "start_time"/"end_time") read in the location the caller gives.
type CalendarEntry struct {
	ID    string
	Type  string
	Title string
	// SubjectSet is the set the lesson is of; its ID is "" for entries that
	// are not lessons (a briefing, a duty).
	SubjectSet Ref
	Subject    Ref
	Room       Ref
	// Date is the entry's day, "2006-01-02", in the school's time zone.
	Date string
	// Start and End are the lesson's times; zero when the entry gave none
	// that could be read.
	Start, End time.Time
}

// IsLesson reports whether the entry is a lesson of a subject set: it names
// a set, and its type, if any, is "lesson".
func (e CalendarEntry) IsLesson() bool {
	return e.SubjectSet.ID != "" && (e.Type == "" || strings.EqualFold(e.Type, "lesson"))
}

// RegionalSettings are the school's "School regional default settings".
type RegionalSettings struct {
	// CountryID is "regional_country_id".
	CountryID string
	// WeekStart is "start_day_week", e.g. "monday".
	WeekStart string
	// TimeZone is "timezone", an IANA name such as "Europe/London".
	TimeZone string
}

// Location loads TimeZone. The error matches [ErrMalformed] when the name is
// empty or unknown.
func (r RegionalSettings) Location() (*time.Location, error) {
	if r.TimeZone == "" {
		return nil, malformed("regional settings", "no timezone")
	}
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil {
		return nil, malformed("regional settings", "timezone is not a known IANA name")
	}
	return loc, nil
}

// The decoders are lenient about everything but the shape: a record must be
// a JSON object with a non-empty "id" (string or number). Past that, one odd
// field must not stop a tenant's snapshot:
//
//   - a string field given as a number or a boolean is kept as its JSON text
//     (external_id 39 → "39"); null, objects and arrays give "";
//   - a reference may be an object with an "id" or the bare id;
//   - unknown fields are ignored.
//
// Errors match ErrMalformed and hold no value of the payload.

func decodeAcademicYear(raw json.RawMessage) (AcademicYear, error) {
	m, err := recordObject(raw, "academic year", "")
	if err != nil {
		return AcademicYear{}, err
	}
	return AcademicYear{
		ID:        jsonx.String(m["id"]),
		Name:      first(m, "name", "title", "description"),
		DateStart: first(m, "date_start", "start_date", "date_from", "starts_on"),
		DateEnd:   first(m, "date_end", "end_date", "date_to", "ends_on"),
		Current:   flag(m, "is_current", "current", "is_active", "active"),
	}, nil
}

func decodeStudent(raw json.RawMessage) (Student, error) {
	m, err := recordObject(raw, "student", "student")
	if err != nil {
		return Student{}, err
	}
	return Student{
		ID:              jsonx.String(m["id"]),
		ExternalID:      jsonx.String(m["external_id"]),
		FirstName:       jsonx.String(m["first_name"]),
		MiddleName:      jsonx.String(m["middle_name"]),
		LastName:        jsonx.String(m["last_name"]),
		PreferredName:   jsonx.String(m["preferred_name"]),
		Email:           first(m, "primary_email", "email"),
		EnrolmentStatus: jsonx.String(m["enrolment_status"]),
		Form:            ref(m["form"]),
		YearGroup:       ref(m["year_group"]),
		Deleted:         !jsonx.IsNull(m["deleted_at"]),
	}, nil
}

func decodeStaff(raw json.RawMessage) (Staff, error) {
	m, err := recordObject(raw, "staff", "staff")
	if err != nil {
		return Staff{}, err
	}
	return Staff{
		ID:            jsonx.String(m["id"]),
		ExternalID:    jsonx.String(m["external_id"]),
		Title:         nameOf(m["title"]),
		FirstName:     jsonx.String(m["first_name"]),
		MiddleName:    jsonx.String(m["middle_name"]),
		LastName:      jsonx.String(m["last_name"]),
		PreferredName: jsonx.String(m["preferred_name"]),
		Email:         first(m, "email", "primary_email"),
		JobTitle:      jsonx.String(m["job_title"]),
		Status:        jsonx.String(m["status"]),
		Roles:         refList(m["roles"]),
	}, nil
}

func decodeSubjectSet(raw json.RawMessage) (SubjectSet, error) {
	m, err := recordObject(raw, "subject set", "")
	if err != nil {
		return SubjectSet{}, err
	}
	var staffIDs []string
	if refs := refList(m["staff"]); refs != nil {
		staffIDs = make([]string, 0, len(refs))
		for _, r := range refs {
			staffIDs = append(staffIDs, r.ID)
		}
	}
	year := ref(m["academic_year"]).ID
	if year == "" {
		year = jsonx.String(m["academic_year_id"])
	}
	return SubjectSet{
		ID:               jsonx.String(m["id"]),
		AcademicYearID:   year,
		Code:             jsonx.String(m["code"]),
		Name:             jsonx.String(m["name"]),
		ShortDescription: jsonx.String(m["short_description"]),
		TimetableCode:    jsonx.String(m["timetable_code"]),
		Subject:          ref(m["subject"]),
		YearGroup:        ref(m["year_group"]),
		Section:          ref(m["section"]),
		Rooms:            refList(m["rooms"]),
		MaxStudents:      jsonx.Int(m["max_students"]),
		StudentCount:     jsonx.Int(m["student_count"]),
		DateStart:        first(m, "date_start", "start_date"),
		DateEnd:          first(m, "date_end", "end_date"),
		StaffIDs:         staffIDs,
	}, nil
}

// decodeCalendarEntry decodes one calendar entry; wall-clock times are read
// in loc.
func decodeCalendarEntry(raw json.RawMessage, loc *time.Location) (CalendarEntry, error) {
	m, err := object(raw, "calendar entry")
	if err != nil {
		return CalendarEntry{}, err
	}
	e := CalendarEntry{
		ID:         jsonx.String(m["id"]),
		Type:       jsonx.String(m["type"]),
		Title:      first(m, "title", "name"),
		SubjectSet: ref(m["subject_set"]),
		Subject:    ref(m["subject"]),
		Room:       ref(m["room"]),
		Date:       first(m, "date"),
	}
	if e.SubjectSet.ID == "" {
		e.SubjectSet.ID = jsonx.String(m["subject_set_id"])
	}
	e.Start = entryTime(m, loc, e.Date, []string{"start", "start_at", "starts_at", "datetime_from"}, []string{"time_from", "start_time"})
	e.End = entryTime(m, loc, e.Date, []string{"end", "end_at", "ends_at", "datetime_to"}, []string{"time_to", "end_time"})
	if e.Date == "" && !e.Start.IsZero() {
		e.Date = e.Start.In(loc).Format(time.DateOnly)
	}
	if e.IsLesson() && (e.Start.IsZero() || e.End.IsZero() || e.End.Before(e.Start)) {
		// A lesson without a usable time cannot be scheduled; dropping it
		// would read as a cancellation.
		return CalendarEntry{}, malformed("calendar entry", "a lesson without a readable start and end")
	}
	return e, nil
}

// entryTime reads an entry's start or end: a full time in one of stamps, or
// date plus a wall clock in one of clocks, in loc.
func entryTime(m map[string]json.RawMessage, loc *time.Location, date string, stamps, clocks []string) time.Time {
	if s := first(m, stamps...); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
		for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"} {
			if t, err := time.ParseInLocation(layout, s, loc); err == nil {
				return t
			}
		}
	}
	if date == "" {
		return time.Time{}
	}
	if s := first(m, clocks...); s != "" {
		for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04"} {
			if t, err := time.ParseInLocation(layout, date+" "+s, loc); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

func decodeRegionalSettings(raw json.RawMessage) (RegionalSettings, error) {
	m, err := object(raw, "regional settings")
	if err != nil {
		return RegionalSettings{}, err
	}
	if inner := jsonx.Fields(m["data"]); inner != nil && jsonx.IsNull(m["timezone"]) {
		m = inner // a JSON:API-style {"data": {...}}
	}
	return RegionalSettings{
		CountryID: jsonx.String(m["regional_country_id"]),
		WeekStart: jsonx.String(m["start_day_week"]),
		TimeZone:  strings.TrimSpace(first(m, "timezone", "time_zone")),
	}, nil
}

// recordObject decodes raw as a JSON object with a non-empty id. A record
// without an id of its own that wraps one under wrapper (a membership
// {"student": {...}, ...}) gives the wrapped record.
func recordObject(raw json.RawMessage, kind, wrapper string) (map[string]json.RawMessage, error) {
	m, err := object(raw, kind)
	if err != nil {
		return nil, err
	}
	if jsonx.String(m["id"]) != "" {
		return m, nil
	}
	if wrapper != "" {
		if inner := jsonx.Fields(m[wrapper]); inner != nil && jsonx.String(inner["id"]) != "" {
			return inner, nil
		}
	}
	return nil, malformed(kind, "no id")
}

// object decodes raw as a JSON object; anything else (null included) is
// malformed.
func object(raw json.RawMessage, kind string) (map[string]json.RawMessage, error) {
	m, err := jsonx.Object(raw)
	if err != nil {
		return nil, malformed(kind, "%v", err)
	}
	return m, nil
}

// first returns the first non-empty str of keys.
func first(m map[string]json.RawMessage, keys ...string) string {
	for _, k := range keys {
		if s := jsonx.String(m[k]); s != "" {
			return s
		}
	}
	return ""
}

// flag reads the first of keys that is present as a boolean: true, or the
// text "true" or "1", or the number 1.
func flag(m map[string]json.RawMessage, keys ...string) bool {
	for _, k := range keys {
		if jsonx.IsNull(m[k]) {
			continue
		}
		switch strings.ToLower(jsonx.String(m[k])) {
		case "true", "1":
			return true
		}
		return false
	}
	return false
}

// ref reads a reference: an object with an "id" (and a "name" or "title",
// a "code" or "room_code"), or a bare id.
func ref(raw json.RawMessage) Ref {
	if m := jsonx.Fields(raw); m != nil {
		return Ref{
			ID:   jsonx.String(m["id"]),
			Name: first(m, "name", "title"),
			Code: first(m, "code", "room_code"),
		}
	}
	return Ref{ID: jsonx.String(raw)}
}

// nameOf reads a name given as a Ref ({"id","name"}) or as a string.
func nameOf(raw json.RawMessage) string {
	if jsonx.IsObject(raw) {
		return ref(raw).Name
	}
	return jsonx.String(raw)
}

// refList reads an array of references, skipping elements without an id;
// nil when raw is not an array.
func refList(raw json.RawMessage) []Ref {
	elems, ok := jsonx.Array(raw)
	if !ok {
		return nil
	}
	out := make([]Ref, 0, len(elems))
	for _, e := range elems {
		if r := ref(e); r.ID != "" {
			out = append(out, r)
		}
	}
	return out
}
