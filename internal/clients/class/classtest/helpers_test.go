package classtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testKey = "test-key"

var httpClient = &http.Client{Timeout: 5 * time.Second}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// harness is one simulator with a full-scope key, closed when the test ends.
type harness struct {
	t   *testing.T
	srv *Server
	key string
}

func setup(t *testing.T) *harness {
	t.Helper()
	s := New(Options{Seed: 7})
	t.Cleanup(s.Close)
	s.AddKey(testKey)
	return &harness{t: t, srv: s, key: testKey}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends method path with body (a string is sent as is, anything else as JSON) and the
// harness key.
func (h *harness) do(method, path string, body any) response {
	h.t.Helper()
	return h.doKey(h.key, method, path, body)
}

func (h *harness) doKey(key, method, path string, body any) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.srv.URL()+path, rd)
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails the test unless the answer has the status.
func (r response) want(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// decode decodes the answer into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// wantJSON fails the test unless the answer's body equals the JSON document want.
func (r response) wantJSON(t *testing.T, status int, want string) {
	t.Helper()
	r.want(t, status)
	var got, exp any
	r.decode(t, &got)
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("body = %s, want %s", r.body, want)
	}
}

// wantKeys fails the test unless a JSON object has exactly these keys.
func wantKeys(t *testing.T, obj map[string]any, keys ...string) {
	t.Helper()
	if len(obj) != len(keys) {
		t.Errorf("object has %d keys, want %d (%v): %v", len(obj), len(keys), keys, obj)
	}
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("key %q missing from %v", k, obj)
		}
	}
}

// docClass is the body of the API's Create a Class example.
func docClass() map[string]any {
	return map[string]any{
		"email":             "anne.malley@demo.com",
		"first_name":        "Anne",
		"last_name":         "Malley",
		"timezone":          "America/Los_Angeles",
		"ext_class_id":      "demo-1",
		"class_name":        "Demo Class",
		"class_description": "A demonstration of Class",
		"meeting_passcode":  "a1demo",
		"session_times":     []any{map[string]any{"start_time": 1631810954, "end_time": 1631814554}},
		"settings":          map[string]any{"waiting_room": false, "join_before_host": true, "jbh_time": 0},
	}
}

// docEnrollment is the body of the API's Create an Enrollment example, in class ext.
func docEnrollment(ext string) map[string]any {
	return map[string]any{
		"email":         "francisco.beck@demo.com",
		"ext_class_id":  ext,
		"ext_person_id": "f.beck",
		"first_name":    "Francisco",
		"last_name":     "Beck",
		"role":          "student",
		"display_name":  "Francisco Beck",
	}
}

// createDocClass creates the example class and returns its class_id.
func (h *harness) createDocClass() string {
	h.t.Helper()
	h.do("POST", "/api/v1/classes", docClass()).want(h.t, http.StatusCreated)
	c, ok := h.srv.FindClass("demo-1")
	if !ok {
		h.t.Fatal("class demo-1 not stored")
	}
	return c.ClassID
}
