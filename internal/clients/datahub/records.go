package datahub

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/jsonx"
)

// Name is a person's name as DataHub gives it.
type Name struct {
	First  string `json:"first,omitempty"`
	Middle string `json:"middle,omitempty"`
	Last   string `json:"last,omitempty"`
}

// Teacher is a DataHub teacher. Its json tags are DataHub's field names.
type Teacher struct {
	ID            string    `json:"id"`
	SISID         string    `json:"sis_id,omitempty"`
	TeacherNumber string    `json:"teacher_number,omitempty"`
	Email         string    `json:"email,omitempty"`
	Title         string    `json:"title,omitempty"`
	School        string    `json:"school,omitempty"`
	District      string    `json:"district,omitempty"`
	Name          Name      `json:"name"`
	Created       time.Time `json:"created,omitzero"`
	LastModified  time.Time `json:"last_modified,omitzero"`
}

// Student is a DataHub student. Its json tags are DataHub's field names.
type Student struct {
	ID            string    `json:"id"`
	SISID         string    `json:"sis_id,omitempty"`
	StudentNumber string    `json:"student_number,omitempty"`
	Email         string    `json:"email,omitempty"`
	Grade         string    `json:"grade,omitempty"`
	School        string    `json:"school,omitempty"`
	District      string    `json:"district,omitempty"`
	Name          Name      `json:"name"`
	Created       time.Time `json:"created,omitzero"`
	LastModified  time.Time `json:"last_modified,omitzero"`
}

// Term is the term of a [Section]. Its dates are kept as DataHub wrote them
// (usually "2006-01-02").
type Term struct {
	Name      string `json:"name,omitempty"`
	StartDate string `json:"start_date,omitempty"`
	EndDate   string `json:"end_date,omitempty"`
}

// Section is a DataHub section (a class). Teacher is the primary teacher's
// id, Teachers and Students hold ids. Its json tags are DataHub's field names.
type Section struct {
	ID            string    `json:"id"`
	Name          string    `json:"name,omitempty"`
	SISID         string    `json:"sis_id,omitempty"`
	School        string    `json:"school,omitempty"`
	District      string    `json:"district,omitempty"`
	CourseName    string    `json:"course_name,omitempty"`
	CourseNumber  string    `json:"course_number,omitempty"`
	SectionNumber string    `json:"section_number,omitempty"`
	Period        string    `json:"period,omitempty"`
	Grade         string    `json:"grade,omitempty"`
	Subject       string    `json:"subject,omitempty"`
	Teacher       string    `json:"teacher,omitempty"`
	Teachers      []string  `json:"teachers"`
	Students      []string  `json:"students"`
	Term          Term      `json:"term"`
	Created       time.Time `json:"created,omitzero"`
	LastModified  time.Time `json:"last_modified,omitzero"`
}

// The record decoders are lenient about everything but the shape: a record
// must be a JSON object with a non-empty "id" (string or number). Past that,
// DataHub's copies of Clever's schema disagree on details, and one odd field
// must not stop a tenant's sync:
//
//   - a string field given as a number or a boolean is kept as its JSON text
//     (sis_id 39 → "39", grade 5 → "5"); null, objects and arrays give "";
//   - a reference (school, district, teacher, and the elements of teachers
//     and students) may also be an object with an "id" (an expanded record);
//   - a time that is missing, empty or unparseable gives the zero time;
//   - unknown fields are ignored.
//
// A decoded record cannot tell a missing field from an empty one. Events may
// carry partial objects: merge the raw [Event.Object] into the known state
// before decoding it, rather than overwriting the state with a decoded value.

// DecodeTeacher decodes one teacher object. An error matches [ErrMalformed]
// and holds no value of the payload.
func DecodeTeacher(raw json.RawMessage) (Teacher, error) {
	m, err := recordObject(raw, "teacher")
	if err != nil {
		return Teacher{}, err
	}
	return Teacher{
		ID:            jsonx.String(m["id"]),
		SISID:         jsonx.String(m["sis_id"]),
		TeacherNumber: jsonx.String(m["teacher_number"]),
		Email:         jsonx.String(m["email"]),
		Title:         jsonx.String(m["title"]),
		School:        ref(m["school"]),
		District:      ref(m["district"]),
		Name:          name(m["name"]),
		Created:       lenientTime(m["created"]),
		LastModified:  lenientTime(m["last_modified"]),
	}, nil
}

// DecodeStudent decodes one student object. An error matches [ErrMalformed]
// and holds no value of the payload.
func DecodeStudent(raw json.RawMessage) (Student, error) {
	m, err := recordObject(raw, "student")
	if err != nil {
		return Student{}, err
	}
	return Student{
		ID:            jsonx.String(m["id"]),
		SISID:         jsonx.String(m["sis_id"]),
		StudentNumber: jsonx.String(m["student_number"]),
		Email:         jsonx.String(m["email"]),
		Grade:         jsonx.String(m["grade"]),
		School:        ref(m["school"]),
		District:      ref(m["district"]),
		Name:          name(m["name"]),
		Created:       lenientTime(m["created"]),
		LastModified:  lenientTime(m["last_modified"]),
	}, nil
}

// DecodeSection decodes one section object. An error matches [ErrMalformed]
// and holds no value of the payload. Teachers and Students are nil when the
// field is missing or null, and empty (not nil) when it is [].
func DecodeSection(raw json.RawMessage) (Section, error) {
	m, err := recordObject(raw, "section")
	if err != nil {
		return Section{}, err
	}
	return Section{
		ID:            jsonx.String(m["id"]),
		Name:          jsonx.String(m["name"]),
		SISID:         jsonx.String(m["sis_id"]),
		School:        ref(m["school"]),
		District:      ref(m["district"]),
		CourseName:    jsonx.String(m["course_name"]),
		CourseNumber:  jsonx.String(m["course_number"]),
		SectionNumber: jsonx.String(m["section_number"]),
		Period:        jsonx.String(m["period"]),
		Grade:         jsonx.String(m["grade"]),
		Subject:       jsonx.String(m["subject"]),
		Teacher:       ref(m["teacher"]),
		Teachers:      refs(m["teachers"]),
		Students:      refs(m["students"]),
		Term:          term(m["term"]),
		Created:       lenientTime(m["created"]),
		LastModified:  lenientTime(m["last_modified"]),
	}, nil
}

// recordObject decodes raw as a JSON object with a non-empty id.
func recordObject(raw json.RawMessage, kind string) (map[string]json.RawMessage, error) {
	m, err := object(raw, kind)
	if err != nil {
		return nil, err
	}
	if jsonx.String(m["id"]) == "" {
		return nil, malformed(kind, "no id")
	}
	return m, nil
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

// ref returns the id a reference holds: the reference itself when it is a
// string or a number, the "id" of an object.
func ref(raw json.RawMessage) string {
	if jsonx.IsObject(raw) {
		return jsonx.String(jsonx.Fields(raw)["id"])
	}
	return jsonx.String(raw)
}

// refs returns the ids of an array of references, skipping elements that
// hold none; nil when raw is not an array.
func refs(raw json.RawMessage) []string {
	elems, ok := jsonx.Array(raw)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		if id := ref(e); id != "" {
			out = append(out, id)
		}
	}
	return out
}

func name(raw json.RawMessage) Name {
	m := jsonx.Fields(raw)
	return Name{First: jsonx.String(m["first"]), Middle: jsonx.String(m["middle"]), Last: jsonx.String(m["last"])}
}

func term(raw json.RawMessage) Term {
	m := jsonx.Fields(raw)
	return Term{Name: jsonx.String(m["name"]), StartDate: jsonx.String(m["start_date"]), EndDate: jsonx.String(m["end_date"])}
}

// timeLayouts are the shapes of time DataHub's copies of Clever's schema
// use: RFC 3339 with or without fractions, and the same without a zone (read
// as UTC).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// parseTime reads a JSON string holding a time. ok is true for a missing,
// null or empty value (the zero time) and for a time in one of timeLayouts.
func parseTime(raw json.RawMessage) (t time.Time, ok bool) {
	if jsonx.IsNull(raw) {
		return time.Time{}, true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return time.Time{}, false
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, true
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// lenientTime is parseTime for informative fields: anything unreadable is the
// zero time.
func lenientTime(raw json.RawMessage) time.Time {
	t, _ := parseTime(raw)
	return t
}
