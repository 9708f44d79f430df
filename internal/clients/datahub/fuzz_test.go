package datahub

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
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

// malformedVocabulary holds the words of this package's own error texts: a
// payload string that happens to be one of them is not a leak.
const malformedVocabulary = "datahub: malformed event section teacher student: empty not a JSON object no id no type " +
	"type is not <resource>.<action> created is not an RFC 3339 time data is not an object data.object " +
	"data.previous_attributes invalid JSON at offset truncated JSON unexpected JSON string number bool array null"

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(cleverEvent))
	f.Add([]byte(`{"id":"e","type":"sections.updated","created":"2025-01-01T00:00:00Z","data":{"object":{"id":"s","students":["a"]},"previous_attributes":{"students":[]}}}`))
	f.Add([]byte(`{"id":42,"type":"district_admins.created","data":null}`))
	f.Add([]byte(`{"id":"1","type":"a.b","created":"manuel.purdy@example.com"}`))
	f.Add([]byte(`{"id":"1","type":"a.b","data":{"object":["x"]}}`))
	f.Add([]byte(`{"data":{"id":"1","type":"a.b"},"uri":"/v1.1/events/1"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"id":"1","type":"nodot"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := DecodeEvent(raw)
		if err != nil {
			checkMalformed(t, raw, err)
			return
		}
		if ev.ID == "" || ev.Resource() == "" || ev.Action() == "" || ev.Resource()+"."+ev.Action() != ev.Type {
			t.Fatalf("decoded event %+v", ev)
		}
		if !bytes.Equal(ev.Raw, bytes.TrimSpace(raw)) {
			t.Fatalf("Raw %q is not the input %q", ev.Raw, raw)
		}
		for _, part := range []json.RawMessage{ev.Object, ev.PreviousAttributes} {
			if part != nil && (!json.Valid(part) || part[0] != '{') {
				t.Fatalf("part %q is not an object", part)
			}
		}
		// The object of a decoded event decodes as a record or fails cleanly.
		if _, err := DecodeSection(ev.Object); err != nil {
			checkMalformed(t, ev.Object, err)
		}
	})
}

func FuzzDecodeSection(f *testing.F) {
	f.Add([]byte(`{"id":"sec1","name":"Algebra 1","sis_id":1203,"school":{"id":"sch1"},"teacher":"t1","teachers":["t1",{"id":"t2"},7,null],"students":["s1"],"term":{"name":"Fall","start_date":"2025-08-20"},"created":"2025-08-01T10:00:00Z","last_modified":""}`))
	f.Add([]byte(`{"id":"50c20477987eda0d3d02d30e","district":"4fd43cc56d11340000000005","school":"530e595026403103360ff9ff","sis_id":"39","email":"manuel.purdy@example.com","name":{"first":"Manuel","middle":"S","last":"Purdy"},"created":"2012-12-07T15:00:07.732Z","last_modified":"2014-02-26T21:15:01.296Z"}`))
	f.Add([]byte(`{"id":"s","students":[],"teachers":null,"created":"not a time","period":2.5,"grade":true}`))
	f.Add([]byte(`{"name":{"first":"Nameless"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"id":"s","students":"all"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		sec, err := DecodeSection(raw)
		if err != nil {
			checkMalformed(t, raw, err)
			return
		}
		if sec.ID == "" {
			t.Fatal("decoded a section without an id")
		}
		// A decoded section survives its own JSON.
		b, err := json.Marshal(sec)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeSection(b)
		if err != nil || again.ID != sec.ID || !sameSet(again.Students, sec.Students) || again.Name != sec.Name {
			t.Fatalf("round trip of %+v = %+v, %v", sec, again, err)
		}
	})
}
