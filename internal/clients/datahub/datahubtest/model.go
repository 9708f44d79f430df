package datahubtest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// timeLayout is how DataHub (like Clever) writes times: UTC with milliseconds, e.g.
// 2015-07-27T19:38:24.919Z. It is RFC 3339, so time.Time decodes it as it is.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// normTime is how the simulator stores times: UTC, whole milliseconds, no monotonic
// reading, so a value survives a JSON round trip unchanged.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// Name is a person's name as DataHub writes it.
type Name struct {
	First  string `json:"first"`
	Middle string `json:"middle,omitempty"`
	Last   string `json:"last"`
}

// Teacher is a DataHub teacher. Empty optional fields are left out of its JSON, as Clever
// does.
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

// MarshalJSON writes the teacher with times in DataHub's millisecond format.
func (t Teacher) MarshalJSON() ([]byte, error) {
	type plain Teacher // without this method
	return json.Marshal(struct {
		plain
		Created      string `json:"created,omitempty"`
		LastModified string `json:"last_modified,omitempty"`
	}{plain(t), fmtTime(t.Created), fmtTime(t.LastModified)})
}

// Student is a DataHub student.
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

// MarshalJSON writes the student with times in DataHub's millisecond format.
func (st Student) MarshalJSON() ([]byte, error) {
	type plain Student
	return json.Marshal(struct {
		plain
		Created      string `json:"created,omitempty"`
		LastModified string `json:"last_modified,omitempty"`
	}{plain(st), fmtTime(st.Created), fmtTime(st.LastModified)})
}

// Term is the term of a section; dates are as the source writes them (YYYY-MM-DD).
type Term struct {
	Name      string `json:"name,omitempty"`
	StartDate string `json:"start_date,omitempty"`
	EndDate   string `json:"end_date,omitempty"`
}

// Section is a DataHub section (a class). Teacher is the primary teacher; Teachers and
// Students hold ids and are always written as arrays, empty or not.
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
	Term          Term      `json:"term,omitzero"`
	Created       time.Time `json:"created,omitzero"`
	LastModified  time.Time `json:"last_modified,omitzero"`
}

// MarshalJSON writes the section with times in DataHub's millisecond format and nil
// slices as [].
func (sec Section) MarshalJSON() ([]byte, error) {
	type plain Section
	p := plain(sec)
	p.Teachers = orEmpty(p.Teachers)
	p.Students = orEmpty(p.Students)
	return json.Marshal(struct {
		plain
		Created      string `json:"created,omitempty"`
		LastModified string `json:"last_modified,omitempty"`
	}{p, fmtTime(sec.Created), fmtTime(sec.LastModified)})
}

func (sec Section) clone() Section {
	sec.Teachers = orEmpty(slices.Clone(sec.Teachers))
	sec.Students = orEmpty(slices.Clone(sec.Students))
	return sec
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Event is one entry of the event feed, in Clever's shape:
// {"id","created","type","data":{"object":{...},"previous_attributes":{...}}}.
type Event struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Type    string    `json:"type"`
	// Data is {"object": ..., "previous_attributes": ...}; previous_attributes is left out
	// of created and deleted events.
	Data json.RawMessage `json:"data"`
}

// MarshalJSON writes the event with its time in DataHub's millisecond format.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	return json.Marshal(struct {
		plain
		Created string `json:"created"`
	}{plain(e), fmtTime(e.Created)})
}

// eventData is the data member of an event.
type eventData struct {
	Object   json.RawMessage `json:"object"`
	Previous json.RawMessage `json:"previous_attributes,omitempty"`
}

// eventRec is an event of the feed with what the per-entity and district feeds filter
// on.
type eventRec struct {
	ev       Event
	objectID string // data.object.id, when there is one
	school   string // data.object.school
	district string // data.object.district, or the first district's when it names none
}

// district and school are served as DataHub writes them. New makes one district with
// [Options.Schools] schools, and [Server.AddDistrict] another with one school, all
// without events.
type district struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type school struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	District     string `json:"district"`
	SISID        string `json:"sis_id"`
	SchoolNumber string `json:"school_number"`
	LowGrade     string `json:"low_grade"`
	HighGrade    string `json:"high_grade"`
	Created      string `json:"created"`
	LastModified string `json:"last_modified"`
}

// store is the simulator's data; every access holds Server.mu.
type store struct {
	// districts are in creation order; never empty. The first is the default of objects
	// and events that name none.
	districts []district
	schools   []school // in creation order, which is id order; never empty

	teachers map[string]*Teacher
	students map[string]*Student
	sections map[string]*Section

	// events is the retained feed, in id order, which is creation order.
	events []eventRec
	// pruned is the greatest id dropped from the feed by the horizon, "" while none was.
	pruned string
	// watermarks are anchors of search_tokens handed out for empty feeds: ids that are no
	// event but are valid to continue after (see Server.validAnchorLocked).
	watermarks map[string]bool

	// seq numbers sis_id, teacher_number and student_number of generated objects.
	seq int
}

func newStore() store {
	return store{
		teachers:   map[string]*Teacher{},
		students:   map[string]*Student{},
		sections:   map[string]*Section{},
		watermarks: map[string]bool{},
	}
}

// district returns the district with the id.
func (st *store) district(id string) (*district, bool) {
	for i := range st.districts {
		if st.districts[i].ID == id {
			return &st.districts[i], true
		}
	}
	return nil, false
}

// schoolsOf returns the schools of a district, in creation order.
func (st *store) schoolsOf(districtID string) []school {
	var out []school
	for _, sc := range st.schools {
		if sc.District == districtID {
			out = append(out, sc)
		}
	}
	return out
}

// place fills an object's empty district and school: the first district, and
// the district's first school (the simulator's first school when the district is
// unknown, so a test can build dangling references on purpose).
func (st *store) place(schoolID, districtID string) (string, string) {
	districtID = cmp.Or(districtID, st.districts[0].ID)
	if schoolID == "" {
		schoolID = st.schools[0].ID
		if own := st.schoolsOf(districtID); len(own) > 0 {
			schoolID = own[0].ID
		}
	}
	return schoolID, districtID
}

// school returns the school with the id.
func (st *store) school(id string) (*school, bool) {
	for i := range st.schools {
		if st.schools[i].ID == id {
			return &st.schools[i], true
		}
	}
	return nil, false
}

// findEvent returns the index of the retained event with the id.
func (st *store) findEvent(id string) (int, bool) {
	return slices.BinarySearchFunc(st.events, id, func(e eventRec, id string) int {
		return strings.Compare(e.ev.ID, id)
	})
}

// idGen makes 24-hex-digit ids shaped like MongoDB ObjectIds (4 bytes of Unix seconds,
// 5 bytes fixed per server, 3 bytes of counter). The seconds never go back and the
// counter never wraps, so the string order of ids is their creation order, as it is for
// Clever's ids, and a search_token can continue "after" an id by comparing strings.
type idGen struct {
	machine uint64 // 40 bits
	lastTS  int64
	seq     uint32
	last    string
}

func (g *idGen) next(now time.Time) string {
	ts := max(now.Unix(), g.lastTS, 0)
	if g.seq >= 0xffffff {
		// Out of counter within these ids' format: move to the next second, which keeps
		// the order. Sixteen million objects per server is beyond any test.
		ts++
		g.seq = 0
	}
	g.lastTS = ts
	g.seq++
	g.last = fmt.Sprintf("%08x%010x%06x", uint32(ts), g.machine&0xffffffffff, g.seq)
	return g.last
}
