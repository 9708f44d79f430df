package hubmis

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// The fuzz targets check the decoders of HUBmis's payloads: they never
// panic, every failure matches ErrMalformed without quoting the payload, and
// what they decode keeps its invariants.

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(bareArray(records(1, 2))))
	f.Add([]byte(envelope(records(1, 2), `{"current_page":1,"last_page":3,"per_page":2}`, "https://x/next")))
	f.Add([]byte(`{"data":null,"links":{"next":{"href":"x"}},"meta":{"page":{"currentPage":"2","lastPage":2.0}}}`))
	f.Add([]byte(`{"data":[{"type":"students","id":9,"attributes":{"first_name":"Ada"}}]}`))
	f.Add([]byte(`{"calendar":[{"id":1}]}`))
	f.Add([]byte(`[{"first_name":"Nameless"}]`))
	f.Add([]byte(`{"data":{"id":1}}`))
	f.Add([]byte(`[1,"two",null]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePage(body, "answer to GET /api/v1/students", []string{"data"}, decodeStudent)
		if err != nil {
			checkMalformed(t, body, err)
			return
		}
		if len(p.items)+len(p.malformed) != p.n {
			t.Fatalf("%d items + %d malformed != %d records", len(p.items), len(p.malformed), p.n)
		}
		for _, s := range p.items {
			if s.ID == "" {
				t.Fatalf("a student without id decoded")
			}
		}
		if p.firstErr != nil {
			checkMalformed(t, body, p.firstErr)
		}
		if p.perPage < 0 {
			t.Fatalf("negative per_page")
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{
		`{"id":56,"first_name":"Miles","form":{"id":7,"name":"9B"},"deleted_at":null}`,
		`{"student":{"id":"5"}}`,
		`{"id":12,"roles":[{"id":2,"name":"Teacher"},"x"],"title":{"name":"Mr"}}`,
		`{"id":25,"academic_year":{"id":2},"staff":[{"id":201},7,null],"rooms":[{"id":1,"room_code":"R1"}],"max_students":"40"}`,
		`{"id":1,"date_start":"2025-09-01","is_current":"1"}`,
		`{"id":{"x":1}}`, `{"id":-0.5e3}`, `null`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if s, err := decodeStudent(raw); err != nil {
			checkMalformed(t, raw, err)
		} else if s.ID == "" {
			t.Fatalf("student without id")
		}
		if s, err := decodeStaff(raw); err != nil {
			checkMalformed(t, raw, err)
		} else {
			if s.ID == "" {
				t.Fatalf("staff without id")
			}
			for _, r := range s.Roles {
				if r.ID == "" {
					t.Fatalf("role without id")
				}
			}
		}
		if s, err := decodeSubjectSet(raw); err != nil {
			checkMalformed(t, raw, err)
		} else if s.ID == "" || s.MaxStudents < 0 || s.StudentCount < 0 {
			t.Fatalf("subject set %+v", s)
		}
		if y, err := decodeAcademicYear(raw); err != nil {
			checkMalformed(t, raw, err)
		} else {
			_ = y.Contains(time.Now())
		}
		if rs, err := decodeRegionalSettings(raw); err != nil {
			checkMalformed(t, raw, err)
		} else if _, err := rs.Location(); err != nil {
			checkMalformed(t, raw, err)
		}
	})
}

func FuzzDecodeCalendarEntry(f *testing.F) {
	for _, s := range []string{
		`{"id":900001,"type":"lesson","date":"2026-03-30","start":"2026-03-30T09:00:00+01:00","end":"2026-03-30T09:55:00+01:00","subject_set":{"id":5001}}`,
		`{"id":2,"type":"lesson","date":"2026-03-31","time_from":"14:00:00","time_to":"14:55","subject_set":5002}`,
		`{"id":7,"type":"event","title":"Staff briefing","start":"2026-03-30T08:30:00","end":"2026-03-30T08:50:00"}`,
		`{"subject_set_id":"5","start":"2026-03-30 09:00","end":"2026-03-30 08:00"}`,
		`{"type":"lesson","subject_set":{"id":1},"start":"x"}`,
	} {
		f.Add([]byte(s))
	}
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := decodeCalendarEntry(json.RawMessage(raw), london)
		if err != nil {
			checkMalformed(t, raw, err)
			return
		}
		if e.IsLesson() && (e.Start.IsZero() || e.End.Before(e.Start)) {
			t.Fatalf("lesson without a usable interval: %+v", e)
		}
	})
}

func FuzzParseErrorBody(f *testing.F) {
	f.Add([]byte(`{"message":"No such pupil: amelia.ahmed@school.example"}`))
	f.Add([]byte(`{"errors":[{"detail":"x@y"}]}`))
	f.Add([]byte(`{"error":"invalid_client","error_description":"` + strings.Repeat("é", 200) + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		msg := parseErrorBody(body)
		if strings.Contains(msg, "@") {
			t.Fatalf("message %q holds an @", msg)
		}
		if len(msg) > 300+len("…") {
			t.Fatalf("message of %d bytes", len(msg))
		}
		ae := &APIError{Method: "GET", Path: "/api/v1/students", Status: 400, Message: msg}
		if !strings.HasPrefix(ae.Error(), "hubmis: GET /api/v1/students: 400 ") || errors.Is(ae, ErrNotFound) {
			t.Fatalf("error %q", ae)
		}
	})
}
