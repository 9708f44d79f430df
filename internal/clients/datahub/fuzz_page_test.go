package datahub

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeEventsPage decodes an answer of the event feed as the client
// does: a page body whose records are events. Whatever the body, it either
// fails with ErrMalformed quoting nothing of it, or every record lands in
// Items or Malformed exactly once, in order, and the NEXT link is trimmed.
func FuzzDecodeEventsPage(f *testing.F) {
	f.Add([]byte(`{"data":[{"data":` + cleverEvent + `,"uri":"/v1.1/events/55b688b1cd921d4a081c4ec3"}],` +
		`"paging":{"current":1,"total":1,"count":1},"links":[{"rel":"NEXT","uri":"/v1/events?search_token=2.2.1.FORWARD.55b688b1cd921d4a081c4ec3"}]}`))
	f.Add([]byte(`{"data":[],"links":[{"rel":"next","uri":"/v1/events?search_token=x"}]}`))
	f.Add([]byte(`{"data":[{"id":"e1","type":"sections.updated","data":"not an object"},{"data":{"id":"e2"},"uri":"/v1/events/e2"},7,null],"paging":{"total":"3"}}`))
	f.Add([]byte(`{"data":null,"links":{"NEXT":{"href":" /v1/n "}}}`))
	f.Add([]byte(`{"data":{}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePage(body, "events page", decodeEvent)
		if err != nil {
			checkMalformed(t, body, err)
			return
		}
		var elems []json.RawMessage
		top := map[string]json.RawMessage{}
		_ = json.Unmarshal(body, &top)
		_ = json.Unmarshal(top["data"], &elems)
		if p.Len() != len(elems) {
			t.Fatalf("page of %d records decoded as %d items and %d malformed", len(elems), len(p.Items), len(p.Malformed))
		}
		prev := -1
		for _, m := range p.Malformed {
			if m.Index <= prev || m.Index >= len(elems) {
				t.Fatalf("malformed indexes out of order: %+v", p.Malformed)
			}
			prev = m.Index
			checkMalformed(t, m.Raw, m.Err)
		}
		for _, ev := range p.Items {
			if ev.ID == "" || ev.Resource()+"."+ev.Action() != ev.Type {
				t.Fatalf("decoded event %+v", ev)
			}
		}
		if p.Next != strings.TrimSpace(p.Next) {
			t.Fatalf("NEXT %q not trimmed", p.Next)
		}
		// What the poller keeps as its cursor is read without panicking.
		_ = lastID(p)
	})
}

// FuzzDecodePerson decodes teachers and students, the records of the
// roster lists and of teachers.* and students.* events: a decoded record has
// an id and survives its own JSON.
func FuzzDecodePerson(f *testing.F) {
	f.Add([]byte(`{"id":"50c20477987eda0d3d02d30e","district":"4fd43cc56d11340000000005","school":"530e595026403103360ff9ff","sis_id":"39","email":"manuel.purdy@example.com","name":{"first":"Manuel","middle":"S","last":"Purdy"},"created":"2012-12-07T15:00:07.732Z","last_modified":"2014-02-26T21:15:01.296Z"}`))
	f.Add([]byte(`{"id":"s1","student_number":12,"grade":9,"name":"Just A String","email":null}`))
	f.Add([]byte(`{"id":"t1","teacher_number":"7","title":["x"],"school":{"id":"sch"}}`))
	f.Add([]byte(`{"id":""}`))
	f.Add([]byte(`"id"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if tch, err := DecodeTeacher(raw); err != nil {
			checkMalformed(t, raw, err)
		} else {
			if tch.ID == "" {
				t.Fatal("decoded a teacher without an id")
			}
			b, err := json.Marshal(tch)
			if err != nil {
				t.Fatal(err)
			}
			again, err := DecodeTeacher(b)
			if err != nil || again.ID != tch.ID || again.Email != tch.Email || again.Name != tch.Name {
				t.Fatalf("round trip of %+v = %+v, %v", tch, again, err)
			}
		}
		if st, err := DecodeStudent(raw); err != nil {
			checkMalformed(t, raw, err)
		} else {
			if st.ID == "" {
				t.Fatal("decoded a student without an id")
			}
			b, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			again, err := DecodeStudent(b)
			if err != nil || again.ID != st.ID || again.Email != st.Email || again.Name != st.Name {
				t.Fatalf("round trip of %+v = %+v, %v", st, again, err)
			}
		}
	})
}
