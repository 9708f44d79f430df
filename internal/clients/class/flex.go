package class

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Class's answers are not consistent about JSON types: class_deferred_id is a
// number in Create a Class and Get Class Info but a string in the deferred
// Create an Enrollment answer, and identifiers that look numeric (meeting_id)
// may travel either way. The decoders below accept both, so one answer's
// choice cannot fail a whole listing. Their errors never quote the value.

var (
	errNotStringOrNumber = errors.New("expected a string or a number")
	errNotInteger        = errors.New("expected an integer or a string holding one")
)

// flexString decodes a JSON string, a JSON number (kept as its literal text,
// so 7 becomes "7") or null (the empty string).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return errNotStringOrNumber
	case bytes.Equal(b, []byte("null")):
		*f = ""
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return errNotStringOrNumber
		}
		*f = flexString(n.String())
		return nil
	}
	return errNotStringOrNumber
}

// flexInt64 decodes a JSON integer, a string holding one, or null (zero).
type flexInt64 int64

func (f *flexInt64) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return errNotInteger
	}
	if s == "" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return errNotInteger
	}
	*f = flexInt64(n)
	return nil
}

// flexTime decodes an RFC 3339 timestamp ("2023-03-03T14:48:06.312Z"), Unix
// seconds, or null. A value it cannot read becomes the zero time instead of an
// error: the timestamps are informational, and one odd value must not make a
// listing of deferred classes unreadable.
type flexTime time.Time

func (f *flexTime) UnmarshalJSON(b []byte) error {
	*f = flexTime(time.Time{})
	var s flexString
	if s.UnmarshalJSON(b) != nil || s == "" {
		return nil
	}
	if t, err := time.Parse(time.RFC3339Nano, string(s)); err == nil {
		*f = flexTime(t)
		return nil
	}
	if secs, err := strconv.ParseInt(string(s), 10, 64); err == nil && secs >= 0 && secs < 1<<40 {
		*f = flexTime(time.Unix(secs, 0).UTC())
	}
	return nil
}
