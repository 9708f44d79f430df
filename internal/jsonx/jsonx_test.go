package jsonx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
)

func TestIsObjectAndIsNull(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string][2]bool{ // {IsObject, IsNull}
		``:          {false, true},
		`null`:      {false, true},
		` null `:    {false, true},
		`{}`:        {true, false},
		` {"a":1}`:  {true, false},
		`[]`:        {false, false},
		`"{"`:       {false, false},
		`0`:         {false, false},
		`nullified`: {false, false},
	} {
		if got := [2]bool{IsObject(json.RawMessage(raw)), IsNull(json.RawMessage(raw))}; got != want {
			t.Errorf("%q: IsObject, IsNull = %v, want %v", raw, got, want)
		}
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		`"Amelia"`:    "Amelia",
		` "\u00e9" `:  "é",
		`39`:          "39",
		`-1.5e3`:      "-1.5e3",
		`true`:        "true",
		`false`:       "false",
		`null`:        "",
		``:            "",
		`{"id":1}`:    "",
		`["a"]`:       "",
		`"unclosed`:   "",
		`12abc`:       "",
		`truthy`:      "",
		`-`:           "",
		`"  spaced "`: "  spaced ",
	} {
		if got := String(json.RawMessage(raw)); got != want {
			t.Errorf("String(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestInt(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]int{
		`12`:         12,
		`"12"`:       12,
		`12.9`:       12,
		`"3.0"`:      3,
		`0`:          0,
		`-3`:         0,
		`"-3"`:       0,
		`-3.5`:       0,
		`1e3`:        1000,
		`1e12`:       0,
		`"twelve"`:   0,
		`null`:       0,
		`true`:       0,
		`{"n":1}`:    0,
		`2147483647`: 2147483647,
	} {
		if got := Int(json.RawMessage(raw)); got != want {
			t.Errorf("Int(%q) = %d, want %d", raw, got, want)
		}
	}
}

func TestFields(t *testing.T) {
	t.Parallel()
	m := Fields(json.RawMessage(` {"id": 7, "name": "Green House"}`))
	if String(m["id"]) != "7" || String(m["name"]) != "Green House" {
		t.Errorf("Fields = %v", m)
	}
	if m := Fields(json.RawMessage(`{}`)); m == nil || len(m) != 0 {
		t.Errorf("Fields({}) = %#v, want an empty map", m)
	}
	for _, raw := range []string{``, `null`, `[{"id":1}]`, `"x"`, `{"id":`} {
		if m := Fields(json.RawMessage(raw)); m != nil {
			t.Errorf("Fields(%q) = %v, want nil", raw, m)
		}
	}
}

func TestArray(t *testing.T) {
	t.Parallel()
	elems, ok := Array(json.RawMessage(` [1, "a", {"id": 2}] `))
	if !ok || len(elems) != 3 || String(elems[1]) != "a" || !IsObject(elems[2]) {
		t.Errorf("Array = %q, %v", elems, ok)
	}
	if elems, ok := Array(json.RawMessage(`[]`)); !ok || elems == nil || len(elems) != 0 {
		t.Errorf("Array([]) = %#v, %v; want empty, not nil", elems, ok)
	}
	for _, raw := range []string{``, `null`, `{"a":[]}`, `[1,`, `"[]"`} {
		if elems, ok := Array(json.RawMessage(raw)); ok || elems != nil {
			t.Errorf("Array(%q) = %q, %v", raw, elems, ok)
		}
	}
}

func TestObject(t *testing.T) {
	t.Parallel()
	m, err := Object(json.RawMessage(` {"id":"s1"} `))
	if err != nil || String(m["id"]) != "s1" {
		t.Fatalf("Object = %v, %v", m, err)
	}
	for raw, want := range map[string]string{
		``:                                   "empty",
		`   `:                                "empty",
		`null`:                               "not a JSON object",
		`["Amelia Ahmed"]`:                   "not a JSON object",
		`"Amelia Ahmed"`:                     "not a JSON object",
		`{"first_name":"Amel`:                "invalid JSON at offset 19",
		`{"first_name":Amelia}`:              "invalid JSON at offset 15",
		`{"first_name":"Amelia"} "trailing"`: "invalid JSON at offset 25",
	} {
		_, err := Object(json.RawMessage(raw))
		if err == nil || err.Error() != want {
			t.Errorf("Object(%q) error = %v, want %q", raw, err, want)
		}
	}
}

func TestProblemQuotesNothing(t *testing.T) {
	t.Parallel()
	const secret = "Amelia"
	for _, tc := range []struct {
		raw  string
		into any
		want string
	}{
		{`{"Amelia": x}`, &map[string]any{}, "invalid JSON at offset 12"},
		{`{"name": 5}`, &struct{ Name string }{}, "unexpected JSON number at offset 10"},
		{`{"Amelia": "x"}`, &map[string]int{}, "unexpected JSON string at offset 14"},
		{`["Amelia"]`, &map[string]string{}, "unexpected JSON array at offset 1"},
		{`{"Amelia": 1`, &map[string]any{}, "invalid JSON at offset 12"},
	} {
		err := json.Unmarshal([]byte(tc.raw), tc.into)
		if err == nil {
			t.Fatalf("%s decoded", tc.raw)
		}
		got := Problem(err)
		if got != tc.want || strings.Contains(got, secret) {
			t.Errorf("Problem(%v) = %q, want %q", err, got, tc.want)
		}
	}
	// A json.Decoder reading a stream that ends early.
	if got := Problem(fmt.Errorf("reading: %w", io.ErrUnexpectedEOF)); got != "truncated JSON" {
		t.Errorf("Problem(unexpected EOF) = %q", got)
	}
	if got := Problem(errors.New("Amelia")); got != "invalid JSON" {
		t.Errorf("Problem(other) = %q", got)
	}
}

var objectErrorText = regexp.MustCompile(`^(empty|not a JSON object|truncated JSON|invalid JSON( at offset \d+)?|unexpected JSON (string|number|bool|array|object|null) at offset \d+)$`)

func FuzzObject(f *testing.F) {
	for _, s := range []string{`{"id":1}`, `null`, `[1]`, `{"a":`, `{"a":"Amelia"`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Object(raw)
		if err == nil {
			if m == nil || !IsObject(raw) {
				t.Fatalf("Object(%q) = %v without an error", raw, m)
			}
			return
		}
		// The error's text comes from a small vocabulary and never quotes
		// the payload.
		if !objectErrorText.MatchString(err.Error()) {
			t.Fatalf("Object(%q) error %q", raw, err)
		}
	})
}
