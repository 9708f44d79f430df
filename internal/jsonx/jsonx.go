// Package jsonx reads fields of upstream JSON leniently: the rostering APIs
// disagree with their own docs about types (an id that is a number here and
// a string there, a count given as "12"), and one odd field must not stop a
// tenant's sync. The helpers work on json.RawMessage, so a decoder reads the
// fields it knows from a map[string]json.RawMessage and ignores the rest.
//
// Errors of this package describe what was wrong without quoting the
// payload, which may hold a pupil's name.
package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// IsObject reports whether raw holds a JSON object.
func IsObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

// IsNull reports whether raw is missing or JSON null.
func IsNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// String returns a JSON string's value, a number's or a boolean's text
// (39 → "39"), and "" for anything else: null, objects and arrays.
func String(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return ""
	}
	switch c := t[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(t, &s) != nil {
			return ""
		}
		return s
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		if json.Unmarshal(t, &n) != nil {
			return ""
		}
		return n.String()
	case string(t) == "true" || string(t) == "false":
		return string(t)
	}
	return ""
}

// Int reads a count or a page number given as a JSON number (integer or not,
// a fraction is dropped) or a numeric string; anything else, and anything
// negative, is 0.
func Int(raw json.RawMessage) int {
	s := String(raw)
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1<<31 {
		return int(f)
	}
	return 0
}

// Fields returns the members of a JSON object, or nil when raw is not one.
func Fields(raw json.RawMessage) map[string]json.RawMessage {
	if !IsObject(raw) {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// Array returns the elements of a JSON array (empty, not nil, for []); ok is
// false when raw is not an array.
func Array(raw json.RawMessage) (elems []json.RawMessage, ok bool) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '[' {
		return nil, false
	}
	if json.Unmarshal(t, &elems) != nil {
		return nil, false
	}
	return elems, true
}

// Object decodes raw as a JSON object; anything else, null included, is an
// error whose text is "empty", "not a JSON object" or a [Problem], for the
// caller to put in its own error.
func Object(raw json.RawMessage) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, errors.New("empty")
	}
	if trimmed[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return nil, errors.New(Problem(err))
	}
	return m, nil
}

// Problem describes a json.Unmarshal error without quoting the payload: the
// standard library's syntax errors quote the offending character, and its
// type errors name the field.
func Problem(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("unexpected JSON %s at offset %d", kind(te.Value), te.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated JSON"
	}
	return "invalid JSON"
}

// kind keeps only the kind of value a json.UnmarshalTypeError names
// ("string", "number", ...); for a number it names the value itself.
func kind(v string) string {
	switch v {
	case "string", "bool", "array", "object", "null":
		return v
	}
	return "number"
}
