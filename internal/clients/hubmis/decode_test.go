package hubmis

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// payloadStrings returns the string values and keys of at least 4 bytes in
// raw (best effort: it stops at the first syntax error), the texts an error
// must never quote.
func payloadStrings(raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var out []string
	for {
		tok, err := dec.Token()
		if err == io.EOF || err != nil {
			return out
		}
		if s, ok := tok.(string); ok && len(strings.TrimSpace(s)) >= 4 {
			out = append(out, s)
		}
	}
}

// malformedVocabulary holds the words of this package's own error texts: a
// payload string that happens to be one of them is not a leak.
const malformedVocabulary = "hubmis: malformed student staff academic year subject set calendar entry regional settings " +
	"answer to GET empty not a JSON object no id no list of records neither a JSON array nor an object " +
	"the list of records is not an array records: invalid JSON at offset truncated JSON unexpected JSON " +
	"string number bool array null a lesson without a readable start and end no timezone " +
	"timezone is not a known IANA name page repeats page[number] is ignored " +
	"/api/v1/students student: staff: academic year: subject set: calendar entry: regional settings:"

// checkMalformed fails when err does not match ErrMalformed or quotes the
// payload.
func checkMalformed(t *testing.T, raw []byte, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v does not match ErrMalformed", err)
	}
	if IsRetryable(err) {
		t.Fatalf("malformed payload is retryable: %v", err)
	}
	msg := err.Error()
	for _, s := range payloadStrings(raw) {
		if strings.Contains(msg, s) && !strings.Contains(malformedVocabulary, s) {
			t.Fatalf("error %q quotes the payload's %q", msg, s)
		}
	}
}

func TestDecodeStudentLenient(t *testing.T) {
	t.Parallel()
	// The docs' "Students: Get Student" sample, filled in, with odd types
	// and an unknown field.
	raw := `{"id":56,"access_status":"invited","multi_realm":false,"academic_house":{},"date_of_birth":"2010-08-24",
		"deleted_at":null,"enrolment_status":"current","external_id":99328,"first_name":"Miles","gender":{"id":1,"name":"Male"},
		"form":{"id":7,"name":"9B","year_group":{"id":9}},"last_name":"Whyde","middle_name":null,"preferred_name":"Milo",
		"primary_email":"user@example.com","tags":[],"year_group":9,"something_new":{"deep":[1,{"x":null}]}}`
	s, err := decodeStudent(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := Student{ID: "56", ExternalID: "99328", FirstName: "Miles", LastName: "Whyde", PreferredName: "Milo",
		Email: "user@example.com", EnrolmentStatus: "current", Form: Ref{ID: "7", Name: "9B"}, YearGroup: Ref{ID: "9"}}
	if s != want {
		t.Errorf("student = %+v\nwant      %+v", s, want)
	}
	// A membership wrapper.
	s, err = decodeStudent(json.RawMessage(`{"student":{"id":"5","first_name":"A"},"joined":"2025-09-01"}`))
	if err != nil || s.ID != "5" || s.FirstName != "A" {
		t.Errorf("wrapped student = %+v, %v", s, err)
	}
	s, err = decodeStudent(json.RawMessage(`{"id":5,"deleted_at":"2025-01-01T00:00:00Z"}`))
	if err != nil || !s.Deleted {
		t.Errorf("deleted student = %+v, %v", s, err)
	}
}

func TestDecodeStaff(t *testing.T) {
	t.Parallel()
	// The docs' "Staff: Get One Staff" sample, filled in.
	raw := `{"access_status":"invited","multi_realm":false,"academic_houses":[],"departments":[{"id":3,"name":"Drama"}],
		"email":"user@example.com","external_id":"ST5466X","first_name":"Benjamin","forms":[],"gender":{"id":1},"id":12,
		"images":[],"job_title":"Head of Drama","last_name":"Kakistos","middle_name":null,"person_type":"staff",
		"preferred_name":"Ben","roles":[{"id":2,"name":"Teacher"},"odd",{"name":"no id"}],"rooms":[],"sections":[],
		"status":"current","title":{"id":1,"name":"Mr"}}`
	s, err := decodeStaff(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "12" || s.ExternalID != "ST5466X" || s.Title != "Mr" || s.FirstName != "Benjamin" || s.LastName != "Kakistos" ||
		s.PreferredName != "Ben" || s.Email != "user@example.com" || s.JobTitle != "Head of Drama" || s.Status != "current" ||
		len(s.Roles) != 2 || s.Roles[1].ID != "odd" || !s.IsTeacher() || !s.IsCurrent() {
		t.Errorf("staff = %+v", s)
	}
	s, _ = decodeStaff(json.RawMessage(`{"id":1,"title":"Dr","status":"past"}`))
	if s.Title != "Dr" || s.IsCurrent() || s.IsTeacher() {
		t.Errorf("staff = %+v", s)
	}
}

func TestDecodeAcademicYearNames(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]AcademicYear{
		`{"id":1,"name":"2025/26","date_start":"2025-09-01","date_end":"2026-08-31","is_current":true}`: {
			ID: "1", Name: "2025/26", DateStart: "2025-09-01", DateEnd: "2026-08-31", Current: true},
		`{"id":"2","title":"Y","start_date":"2025-09-01","end_date":"2026-08-31","current":"1"}`: {
			ID: "2", Name: "Y", DateStart: "2025-09-01", DateEnd: "2026-08-31", Current: true},
		`{"id":3,"date_from":"a","date_to":"b","is_current":null,"active":false}`: {ID: "3", DateStart: "a", DateEnd: "b"},
	} {
		y, err := decodeAcademicYear(json.RawMessage(raw))
		if err != nil || y != want {
			t.Errorf("%s: %+v, %v", raw, y, err)
		}
	}
	y := AcademicYear{DateStart: "2025-09-01", DateEnd: "2026-08-31"}
	london, _ := time.LoadLocation("Europe/London")
	for day, want := range map[time.Time]bool{
		time.Date(2025, 9, 1, 0, 0, 0, 0, london):     true,
		time.Date(2026, 8, 31, 23, 59, 0, 0, london):  true,
		time.Date(2026, 9, 1, 0, 30, 0, 0, london):    false,
		time.Date(2025, 8, 31, 23, 0, 0, 0, time.UTC): false,
	} {
		if y.Contains(day) != want {
			t.Errorf("Contains(%s) = %v", day, !want)
		}
	}
	if (AcademicYear{}).Contains(time.Now()) {
		t.Errorf("a year without dates contains today")
	}
}

func TestDecodeRegionalSettings(t *testing.T) {
	t.Parallel()
	rs, err := decodeRegionalSettings([]byte(`{"data":{"regional_country_id":"34","timezone":" America/Chicago "}}`))
	if err != nil || rs.TimeZone != "America/Chicago" || rs.CountryID != "34" {
		t.Errorf("settings = %+v, %v", rs, err)
	}
	for _, raw := range []string{`{"timezone":""}`, `{"timezone":"Mars/Olympus_Mons"}`} {
		rs, err := decodeRegionalSettings([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		_, err = rs.Location()
		checkMalformed(t, []byte(raw), err)
	}
}

func TestRegionalSettingsMalformed(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) { writeJSON(w, 200, `["Europe/London"]`) })
	_, err := b.client.RegionalSettings(b.ctx)
	checkMalformed(t, []byte(`["Europe/London"]`), err)
}

func TestDecodersRejectWithoutQuoting(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		``, `null`, `"Amelia Ahmed"`, `[{"id":1}]`, `{"first_name":"Amelia","last_name":"Ahmed"}`,
		`{"id":"","email":"amelia@example.com"}`, `{"id":1,"first_name":"Amel`, `{"id":1,"first_name":Amelia}`,
		`{"id":{"nested":"Amelia"}}`,
	} {
		_, err := decodeStudent(json.RawMessage(raw))
		checkMalformed(t, []byte(raw), err)
		_, err = decodeStaff(json.RawMessage(raw))
		checkMalformed(t, []byte(raw), err)
		_, err = decodeSubjectSet(json.RawMessage(raw))
		checkMalformed(t, []byte(raw), err)
		_, err = decodeAcademicYear(json.RawMessage(raw))
		checkMalformed(t, []byte(raw), err)
	}
}

func TestParseErrorBody(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"error":"too_many_requests","message":"Too Many Requests"}`: "Too Many Requests",
		`{"error":"invalid_client"}`:                                  "invalid_client",
		`{"errors":[{"title":"Forbidden"}]}`:                          "Forbidden",
		`{"message":"No such pupil: amelia.ahmed@school.example"}`:    "No such pupil: [email]",
		`<html>amelia@example.com</html>`:                             "",
		`{"message":` + `"` + strings.Repeat("x", 400) + `"}`:         strings.Repeat("x", 300) + "…",
	} {
		if got := parseErrorBody([]byte(body)); got != want {
			t.Errorf("parseErrorBody(%.40s) = %q, want %q", body, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1615203700, 0)
	for _, tc := range []struct {
		h     map[string]string
		scale float64
		want  time.Duration
	}{
		{map[string]string{headerRetryAfterUnix: "1615203774"}, 1, 74 * time.Second},
		{map[string]string{headerRetryAfterUnix: "1615203774"}, 2, 37 * time.Second},
		{map[string]string{headerRetryAfterUnix: "1615203600"}, 1, 0},
		{map[string]string{headerRetryAfterUnix: "99999999999"}, 1, maxRetryAfter},
		{map[string]string{headerRetryAfterUnix: "soon", "Retry-After": "9"}, 1, 0},
		{map[string]string{"Retry-After": "9"}, 1, 9 * time.Second},
		{map[string]string{"Retry-After": now.Add(time.Minute).UTC().Format(http.TimeFormat)}, 1, time.Minute},
		{map[string]string{"Retry-After": "-3"}, 1, 0},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		if got := parseRetryAfter(h, now, tc.scale); got != tc.want {
			t.Errorf("%v scale %v: %s, want %s", tc.h, tc.scale, got, tc.want)
		}
	}
}
