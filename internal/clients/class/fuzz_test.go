package class

import (
	"encoding/json"
	"strings"
	"testing"
)

// Seeds from the examples of apis/class-api.txt.
const (
	docDeferredClass = `{
    "class_deferred_id": 100,
    "class_id": "01cceb4b-afce-4703-a842-6b41fad111b5",
    "ext_class_id": "demo-1",
    "email": "anne.malley@demo.com",
    "class_name": "Demo Class",
    "class_description": "A demonstration of Class",
    "created_at": "2023-03-03T14:48:06.312Z",
    "updated_at": "2023-03-03T14:48:06.312Z"
  }`
	docCreateClass         = `{"meeting_id": "92117646134", "invite_link": "https://mydemo.class.com/class.html?class_uuid=01cceb4b-afce-4703-a842-6b41fad111b5"}`
	docCreateClassDeferred = `{"class_deferred_id": 7, "class_id": "a1cceb4b-afce-4703-a842-6b41fad111b5", "ext_id": "demo-1"}`
	docUsersPaginated      = `{"data": [{"id": 1, "ext_user_id": null, "email": "john@mail.com", "user_name": "John Smith", "roles": ["instructor"], "is_zoom_configured": true}],
   "pagination": {"total_records": 100, "current_page": 1, "total_pages": 5, "next_page": 2, "prev_page": null}}`
	docUsersBare          = `[{"id": 2, "ext_user_id": "555", "email": "jane@mail.com", "user_name": "Jane Smith", "roles": ["instructor"], "is_zoom_configured": false}]`
	docEnrollment         = `{"student_id": "abcc140a-3462-4950-9ab7-c826fbf2376f", "meeting_id": "95556910000", "first_name": "Francisco", "last_name": "Beck", "user_name": "Francisco Beck", "role": "student", "email": "francisco.beck@demo.com", "ext_person_id": "f.beck"}`
	docDeferredEnrollment = `{
  "id": 8,
  "class_deferred_id": "7",
  "email_user": "francisco.beck@demo.com",
  "enroll_params": {
    "pod": {"name": "pod-3", "region": "us-east-1", "account": "mydemo", "environment": "dev", "databaseName": "customer_mydemo"},
    "class": {"ext_id": "074c697e-e20b-4da8-9361-1b707137d6e3"}
  },
  "user": {"role": "student", "email": "francisco.beck@demo.com", "last_name": "Beck", "user_name": "Francicso Beck", "first_name": "Francisco", "ext_person_id": "f.beck"},
  "created_at": "2022-04-06T03:20:18.145Z",
  "updated_at": "2022-04-06T03:20:18.142Z",
  "role": "student"
}`
	docClassDates = `[{"schedule_id": "080911e5-1770-4db2-95bf-f11659dd480d", "class_id": "01cceb4b-afce-4703-a842-6b41fad00000", "start_time": 1628859600, "end_time": 1628920800}]`
	docExists     = `{"error": "Class exists for external class ID provided: 074c697e-e20b-4da8-9361-1b707137d6e3."}`
	docValidation = `{"error": "Request failed validation", "data": {"email": ["The email format is invalid."]}}`
	docForbidden  = `{"error": "Api key scope class:write required"}`
)

func FuzzDecodeDeferredClass(f *testing.F) {
	for _, s := range []string{docDeferredClass, "[" + docDeferredClass + "]", deferredListNumbers,
		strings.Replace(docDeferredClass, "100", `"100"`, 1), `{"class_deferred_id": 1e3}`, `{"class_deferred_id": null}`,
		`{"created_at": 17}`, `{"class_deferred_id": true}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := decodeOneOrMany[DeferredClass](request{method: "GET", path: pathClasses}, response{status: 200, body: b})
		if err != nil {
			if IsRetryable(err) {
				t.Fatalf("decode error is retryable: %v", err)
			}
			return
		}
		// Whatever decodes survives a round trip through the public type,
		// as the worker's KV cache does.
		for _, d := range list {
			enc, err := json.Marshal(d)
			if err != nil {
				continue // a time outside what JSON can hold
			}
			var back DeferredClass
			if err := json.Unmarshal(enc, &back); err != nil {
				t.Fatalf("round trip of %+v: %v", d, err)
			}
			if back.ClassDeferredID != d.ClassDeferredID || back.ClassID != d.ClassID || !back.CreatedAt.Equal(d.CreatedAt) {
				t.Fatalf("round trip changed %+v into %+v", d, back)
			}
		}
	})
}

func FuzzDecodeCreateClass(f *testing.F) {
	for _, s := range []string{docCreateClass, docCreateClassDeferred, `{"class_deferred_id": "7", "class_id": "x", "ext_class_id": "demo-1"}`, `[]`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := decodeOneOrMany[CreateClassResult](request{method: "POST", path: pathClasses}, response{status: 201, body: b})
		if err != nil {
			return
		}
		for _, r := range list {
			if r.Deferred != (r.ClassDeferredID != "") {
				t.Fatalf("Deferred disagrees with ClassDeferredID: %+v", r)
			}
		}
	})
}

func FuzzDecodeUsers(f *testing.F) {
	for _, s := range []string{docUsersPaginated, docUsersBare, `{"data": null}`, `{"id": "12"}`, `[{"id": 1.5}]`, `[{"ext_user_id": 555}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		users, p, err := decodeUserPage(request{method: "GET", path: pathUsers}, response{status: 200, body: b})
		if err != nil {
			return
		}
		if s := strings.TrimSpace(string(b)); strings.HasPrefix(s, "[") || strings.HasPrefix(s, "null") {
			if want := singlePage(len(users)); p.TotalRecords != want.TotalRecords || p.TotalPages != 1 || p.NextPage != nil {
				t.Fatalf("a bare array is one page: got %+v for %d users", p, len(users))
			}
		}
	})
}

func FuzzDecodeEnrollment(f *testing.F) {
	for _, s := range []string{docEnrollment, docDeferredEnrollment, `{"user": null}`, `{"user": {"email": 5}}`, `{"student_id": 12, "meeting_id": 8456209194}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeOneOrMany[Enrollment](request{method: "POST", path: pathEnrollments}, response{status: 200, body: b})
	})
}

func FuzzDecodeClassDates(f *testing.F) {
	for _, s := range []string{docClassDates, `[{"schedule_id": 5, "start_time": "12"}]`, `[{"start_time": "x"}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeOneOrMany[ClassDate](request{method: "GET", path: pathSchedules}, response{status: 200, body: b})
	})
}

func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{docExists, docValidation, docForbidden, `{"error": "user a@b.c not found"}`,
		`{"message": "Internal server error"}`, `{"error": {"code": 5}}`, `{"data": {"email": "x@y.z is taken"}}`, `<html>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, fields := parseErrorBody(b)
		texts := []string{msg}
		for _, msgs := range fields {
			texts = append(texts, msgs...)
		}
		for _, s := range texts {
			if strings.Contains(s, "@") {
				t.Fatalf("email-shaped text survived redaction: %q", s)
			}
		}
		e := &APIError{Method: "GET", Path: "/p", Status: 400, Message: msg, Fields: fields}
		_ = e.Error()
		if e.Is(ErrExists) && e.Is(ErrValidation) {
			t.Fatalf("both exists and validation: %q", msg)
		}
	})
}

func FuzzFlexString(f *testing.F) {
	for _, s := range []string{`7`, `"7"`, `-1.5e3`, `null`, `""`, `"\u00e9"`, `true`, `{}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return // encoding/json never hands an Unmarshaler invalid JSON
		}
		var got flexString
		err := got.UnmarshalJSON(b)
		// With json.Number, a number beyond float64's range (2e400) is
		// still a number, whose text flexString keeps; a plain Unmarshal
		// into any fails on it and left the oracle thinking it was null.
		var raw any
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		_ = d.Decode(&raw)
		if _, ok := raw.(json.Number); ok {
			raw = 0.0 // a number; its value does not matter here
		}
		switch v := raw.(type) {
		case string:
			if err != nil || string(got) != v {
				t.Fatalf("string %q decoded as %q, %v", v, got, err)
			}
		case float64:
			if err != nil || string(got) != strings.TrimSpace(string(b)) {
				t.Fatalf("number %q decoded as %q, %v", b, got, err)
			}
		case nil:
			if err != nil || got != "" {
				t.Fatalf("null decoded as %q, %v", got, err)
			}
		default:
			if err == nil {
				t.Fatalf("flexString accepted %T", raw)
			}
			if strings.Contains(err.Error(), string(b)) && len(b) > 2 {
				t.Fatalf("error %q quotes the value", err)
			}
		}
	})
}
