package datahub

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/jsonx"
)

// Event is one event of DataHub's feed, in Clever's shape:
//
//	{"id": "...", "created": "2015-07-27T19:38:24.919Z", "type": "sections.updated",
//	 "data": {"object": {...}, "previous_attributes": {...}}}
//
// Object is the object's state after the event (for a *.deleted event, its
// last full state; for some updates, only part of it). PreviousAttributes
// holds, for an update, the changed fields' previous values; for
// sections.updated its "students" is the whole previous array.
type Event struct {
	// ID is the event's id, the feed's ordering key together with Created.
	ID string
	// Created is when the event happened; the zero time when DataHub left it
	// out.
	Created time.Time
	// Type is "<resource>.<action>", e.g. "sections.updated".
	Type string
	// Object is data.object, nil when missing or null.
	Object json.RawMessage
	// PreviousAttributes is data.previous_attributes, nil when missing or
	// null.
	PreviousAttributes json.RawMessage
	// Raw is the whole event as received, for dead letters.
	Raw json.RawMessage
}

// Resource returns the part of Type before its last dot, e.g. "sections".
func (e Event) Resource() string {
	if i := strings.LastIndexByte(e.Type, '.'); i >= 0 {
		return e.Type[:i]
	}
	return e.Type
}

// Action returns the part of Type after its last dot: "created", "updated",
// "deleted" or whatever DataHub adds later.
func (e Event) Action() string {
	if i := strings.LastIndexByte(e.Type, '.'); i >= 0 {
		return e.Type[i+1:]
	}
	return ""
}

// DecodeEvent decodes one event (the event itself, not the {"data": event,
// "uri": ...} wrapper of a list). It requires a JSON object with a non-empty
// id, a type of the form "<resource>.<action>", a created time that is
// missing, empty or RFC 3339, a data that is missing, null or an object, and
// in it an object and previous_attributes that are each missing, null or an
// object. Unknown fields and unknown types are accepted: what to do with a
// type is the poller's decision.
//
// An error matches [ErrMalformed] and holds no value of the payload.
func DecodeEvent(raw []byte) (Event, error) {
	m, err := object(raw, "event")
	if err != nil {
		return Event{}, err
	}
	ev := Event{ID: jsonx.String(m["id"]), Raw: bytes.Clone(bytes.TrimSpace(raw))}
	if ev.ID == "" {
		return Event{}, malformed("event", "no id")
	}
	if err := json.Unmarshal(m["type"], &ev.Type); err != nil || ev.Type == "" {
		return Event{}, malformed("event", "no type")
	}
	if i := strings.LastIndexByte(ev.Type, '.'); i <= 0 || i == len(ev.Type)-1 {
		return Event{}, malformed("event", "type is not <resource>.<action>")
	}
	var ok bool
	if ev.Created, ok = parseTime(m["created"]); !ok {
		return Event{}, malformed("event", "created is not an RFC 3339 time")
	}
	data := m["data"]
	if jsonx.IsNull(data) {
		return ev, nil
	}
	if !jsonx.IsObject(data) {
		return Event{}, malformed("event", "data is not an object")
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(data, &d); err != nil {
		return Event{}, malformed("event", "data: %s", jsonx.Problem(err))
	}
	if ev.Object, err = optionalObject(d["object"]); err != nil {
		return Event{}, malformed("event", "data.object is not an object")
	}
	if ev.PreviousAttributes, err = optionalObject(d["previous_attributes"]); err != nil {
		return Event{}, malformed("event", "data.previous_attributes is not an object")
	}
	return ev, nil
}

// errNotObject is the cause optionalObject reports; callers word their own
// error.
var errNotObject = malformed("value", "not an object")

// optionalObject returns a copy of raw when it is an object, nil when it is
// missing or null.
func optionalObject(raw json.RawMessage) (json.RawMessage, error) {
	if jsonx.IsNull(raw) {
		return nil, nil
	}
	if !jsonx.IsObject(raw) {
		return nil, errNotObject
	}
	return bytes.Clone(bytes.TrimSpace(raw)), nil
}

// Page is one page of a list of DataHub.
type Page[T any] struct {
	// Items are the page's records that decoded, in the page's order.
	Items []T
	// Malformed are the page's records that did not decode, in the page's
	// order. They are not an error of the call: one bad record must not stop
	// a feed; the poller dead-letters them and moves on.
	Malformed []Malformed
	// Next is the uri of the page's NEXT link, opaque (e.g.
	// "/v1/events?search_token=..."), "" when it has none. An empty page may
	// still have one.
	Next string
	// Current is paging.current, the page's number (0 when absent).
	Current int
	// Total is paging.total, the number of pages (0 when absent).
	Total int
	// Count is paging.count, the number of records (0 when absent).
	Count int
}

// Len returns the number of records on the page, decoded or not.
func (p Page[T]) Len() int { return len(p.Items) + len(p.Malformed) }

// Malformed is a record of a page that did not decode.
type Malformed struct {
	// Index is the record's position in the page's data array, so that the
	// caller can put it back in order among [Page.Items].
	Index int
	// ID is the record's id when it could be read, else "".
	ID string
	// Raw is the record as received (with its list wrapper when it had one
	// that could not be taken off).
	Raw json.RawMessage
	// Err says what was wrong; it matches [ErrMalformed] and holds no value of
	// the payload.
	Err error
}

// lastID returns the id of the last record of an events page, reading it from
// a malformed record when that is the last one and its id could be read.
func lastID(p Page[Event]) string {
	if n := len(p.Malformed); n > 0 && p.Malformed[n-1].Index == p.Len()-1 && p.Malformed[n-1].ID != "" {
		return p.Malformed[n-1].ID
	}
	if n := len(p.Items); n > 0 {
		return p.Items[n-1].ID
	}
	if n := len(p.Malformed); n > 0 {
		return p.Malformed[n-1].ID
	}
	return ""
}
