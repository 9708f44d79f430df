package datahub

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeCleverEvent(t *testing.T) {
	t.Parallel()
	ev, err := DecodeEvent([]byte(cleverEvent))
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "55b688b1cd921d4a081c4ec3" || ev.Type != "teachers.deleted" ||
		ev.Resource() != "teachers" || ev.Action() != "deleted" {
		t.Errorf("event = %+v", ev)
	}
	if want := time.Date(2015, 7, 27, 19, 38, 24, 919e6, time.UTC); !ev.Created.Equal(want) {
		t.Errorf("created = %v", ev.Created)
	}
	if string(ev.Raw) != cleverEvent || ev.PreviousAttributes != nil {
		t.Errorf("raw %q, previous %q", ev.Raw, ev.PreviousAttributes)
	}
	tch, err := DecodeTeacher(ev.Object)
	if err != nil {
		t.Fatal(err)
	}
	want := Teacher{
		ID: "50c20477987eda0d3d02d30e", SISID: "39", Email: "manuel.purdy@example.com",
		School: "530e595026403103360ff9ff", District: "4fd43cc56d11340000000005",
		Name:         Name{First: "Manuel", Middle: "S", Last: "Purdy"},
		Created:      time.Date(2012, 12, 7, 15, 0, 7, 732e6, time.UTC),
		LastModified: time.Date(2014, 2, 26, 21, 15, 1, 296e6, time.UTC),
	}
	if tch != want {
		t.Errorf("teacher =\n%+v, want\n%+v", tch, want)
	}
}

func TestDecodeSectionFields(t *testing.T) {
	t.Parallel()
	raw := `{"id":"sec1","name":"Algebra 1","sis_id":1203,"school":{"id":"sch1","name":"x"},"district":"d1",
		"course_name":"Algebra","course_number":"MA-1","section_number":"3","period":2,"grade":9,
		"subject":"math","teacher":"t1","teachers":["t1",{"id":"t2"},7,null,""],"students":["s1","s2"],
		"term":{"name":"Fall","start_date":"2025-08-20","end_date":"2025-12-19"},
		"created":"2025-08-01T10:00:00Z","last_modified":"","unknown":{"nested":[1,2]}}`
	s, err := DecodeSection(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := Section{
		ID: "sec1", Name: "Algebra 1", SISID: "1203", School: "sch1", District: "d1",
		CourseName: "Algebra", CourseNumber: "MA-1", SectionNumber: "3", Period: "2", Grade: "9",
		Subject: "math", Teacher: "t1", Teachers: []string{"t1", "t2", "7"}, Students: []string{"s1", "s2"},
		Term:    Term{Name: "Fall", StartDate: "2025-08-20", EndDate: "2025-12-19"},
		Created: time.Date(2025, 8, 1, 10, 0, 0, 0, time.UTC),
	}
	if !sectionsEqual(s, want) {
		t.Errorf("section =\n%+v, want\n%+v", s, want)
	}

	// Missing fields: nil arrays, zero times; [] is empty, not nil.
	s, err = DecodeSection(json.RawMessage(`{"id":"sec2","students":[],"teachers":null,"created":"not a time"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Teachers != nil || s.Students == nil || len(s.Students) != 0 || !s.Created.IsZero() {
		t.Errorf("sparse section = %+v", s)
	}
}

func sectionsEqual(a, b Section) bool {
	return reflect.DeepEqual(a, b)
}

func TestDecodeRecordTimes(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]time.Time{
		`"2014-02-26T21:15:01.296Z"`:  time.Date(2014, 2, 26, 21, 15, 1, 296e6, time.UTC),
		`"2014-02-26T22:15:01+01:00"`: time.Date(2014, 2, 26, 21, 15, 1, 0, time.UTC),
		`"2014-02-26T21:15:01"`:       time.Date(2014, 2, 26, 21, 15, 1, 0, time.UTC),
		`"2014-02-26"`:                time.Date(2014, 2, 26, 0, 0, 0, 0, time.UTC),
		`""`:                          {},
		`null`:                        {},
		`12345`:                       {},
		`"yesterday"`:                 {},
	} {
		s, err := DecodeStudent(json.RawMessage(`{"id":"s","created":` + raw + `}`))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if !s.Created.Equal(want) {
			t.Errorf("created %s = %v, want %v", raw, s.Created, want)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	pii := "manuel.purdy@example.com"
	events := []string{
		``, `null`, `[]`, `"x"`, `{`, `{"id":"1"}`, `{"type":"a.b"}`,
		`{"id":"` + pii + `","type":"nodot"}`,
		`{"id":"1","type":".updated"}`, `{"id":"1","type":"sections."}`, `{"id":"1","type":7}`,
		`{"id":"1","type":"a.b","created":"` + pii + `"}`,
		`{"id":"1","type":"a.b","data":"` + pii + `"}`,
		`{"id":"1","type":"a.b","data":{"object":["` + pii + `"]}}`,
		`{"id":"1","type":"a.b","data":{"object":{},"previous_attributes":"` + pii + `"}}`,
		`{"id":"1","type":"a.b","data":{"object":{"` + pii + `":}}}`,
	}
	for _, raw := range events {
		_, err := DecodeEvent([]byte(raw))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeEvent(%s) err = %v, want ErrMalformed", raw, err)
			continue
		}
		if strings.Contains(err.Error(), "manuel") || strings.Contains(err.Error(), "@") {
			t.Errorf("error %q quotes the payload", err)
		}
		if IsRetryable(err) {
			t.Errorf("malformed event is retryable: %v", err)
		}
	}
	for _, raw := range []string{``, `null`, `[]`, `{}`, `{"id":""}`, `{"id":null}`, `{"name":{"first":"Manuel"}}`} {
		if _, err := DecodeSection(json.RawMessage(raw)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeSection(%s) err = %v, want ErrMalformed", raw, err)
		} else if strings.Contains(err.Error(), "Manuel") {
			t.Errorf("error %q quotes the payload", err)
		}
	}
}

func TestDecodeEventOptionalParts(t *testing.T) {
	t.Parallel()
	ev, err := DecodeEvent([]byte(`{"id":42,"type":"district_admins.created","data":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "42" || !ev.Created.IsZero() || ev.Object != nil || ev.Resource() != "district_admins" {
		t.Errorf("event = %+v", ev)
	}
	ev, err = DecodeEvent([]byte(`{"id":"e","type":"sections.updated","created":"","data":{"object":{"id":"s"},"previous_attributes":{"students":["a"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.Object) != `{"id":"s"}` || string(ev.PreviousAttributes) != `{"students":["a"]}` {
		t.Errorf("event = %+v", ev)
	}
	if got := (Event{Type: "nodot"}); got.Resource() != "nodot" || got.Action() != "" {
		t.Errorf("Resource/Action of a type without a dot: %q %q", got.Resource(), got.Action())
	}
}

// TestRecordJSONRoundTrip: the json tags are DataHub's names, so a record
// marshalled by this package decodes to itself (the poller merges partial
// objects into known state this way).
func TestRecordJSONRoundTrip(t *testing.T) {
	t.Parallel()
	sec := Section{ID: "s", Name: "n", Teacher: "t", Teachers: []string{"t"}, Students: []string{"a", "b"},
		Term: Term{Name: "Fall"}, Created: time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC)}
	b, err := json.Marshal(sec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSection(b)
	if err != nil || !sectionsEqual(got, sec) {
		t.Errorf("round trip = %+v, %v (json %s)", got, err, b)
	}
}

func TestDecodePageShapes(t *testing.T) {
	t.Parallel()
	body := `{"data":[{"data":{"id":"a"},"uri":"/v1/teachers/a"},{"id":"b","name":{"first":"B"}},
		{"data":{"name":{"first":"NoID"}},"uri":"/v1/teachers/c"},"junk"],
		"paging":{"current":"2","total":3.0,"count":"148"},
		"links":[{"rel":"SELF","uri":"/v1/teachers"},7,{"rel":"next","uri":" /v1/teachers?search_token=x "}]}`
	p, err := decodePage([]byte(body), "test", DecodeTeacher)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 2 || p.Items[0].ID != "a" || p.Items[1].ID != "b" || p.Items[1].Name.First != "B" {
		t.Errorf("items = %+v", p.Items)
	}
	if len(p.Malformed) != 2 || p.Malformed[0].Index != 2 || p.Malformed[1].Index != 3 || p.Len() != 4 {
		t.Errorf("malformed = %+v", p.Malformed)
	}
	if p.Current != 2 || p.Total != 3 || p.Count != 148 || p.Next != "/v1/teachers?search_token=x" {
		t.Errorf("paging = %d %d %d %q", p.Current, p.Total, p.Count, p.Next)
	}

	for _, links := range []string{`{"next":"/v1/n"}`, `{"NEXT":{"href":"/v1/n"}}`, `[{"rel":"Next","href":"/v1/n"}]`} {
		p, err := decodePage([]byte(`{"data":null,"links":`+links+`}`), "test", DecodeTeacher)
		if err != nil || p.Next != "/v1/n" || p.Len() != 0 {
			t.Errorf("links %s: next %q, %v", links, p.Next, err)
		}
	}
	for _, bad := range []string{`[]`, `{"data":{}}`, `{"data":"x"}`, `<html>`} {
		if _, err := decodePage([]byte(bad), "test", DecodeTeacher); !errors.Is(err, ErrMalformed) {
			t.Errorf("page %s err = %v", bad, err)
		}
	}
}
