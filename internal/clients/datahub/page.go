package datahub

import (
	"bytes"
	"cmp"
	"encoding/json"
	"strings"

	"github.com/rollcall/rollcall/internal/jsonx"
)

// decodePage decodes a list answer:
//
//	{"data": [{"data": {...}, "uri": "/v1/..."}, ...],
//	 "paging": {"current": 1, "total": 2, "count": 148},
//	 "links": [{"rel": "NEXT", "uri": "/v1/...?search_token=..."}, {"rel": "SELF", ...}]}
//
// Records may also come bare, without their {"data", "uri"} wrapper. A "data"
// that is missing or null is an empty page; paging numbers may be numbers or
// numeric strings; links may also be an object of rel → uri. A record that
// does not decode goes to Page.Malformed; only a body that is not such an
// object at all is an error (matching ErrMalformed). where names the request
// in that error.
func decodePage[T any](body []byte, where string, decode func(json.RawMessage) (T, error)) (Page[T], error) {
	top, err := object(body, where)
	if err != nil {
		return Page[T]{}, err
	}
	var p Page[T]
	if data := top["data"]; !jsonx.IsNull(data) {
		var elems []json.RawMessage
		if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '[' {
			return Page[T]{}, malformed(where, "data is not an array")
		}
		if err := json.Unmarshal(data, &elems); err != nil {
			return Page[T]{}, malformed(where, "data: %s", jsonx.Problem(err))
		}
		for i, elem := range elems {
			rec := unwrap(elem)
			v, err := decode(rec)
			if err != nil {
				p.Malformed = append(p.Malformed, Malformed{Index: i, ID: readableID(rec), Raw: bytes.Clone(elem), Err: err})
				continue
			}
			p.Items = append(p.Items, v)
		}
	}
	paging := jsonx.Fields(top["paging"])
	p.Current = jsonx.Int(paging["current"])
	p.Total = jsonx.Int(paging["total"])
	p.Count = jsonx.Int(paging["count"])
	p.Next = nextLink(top["links"])
	return p, nil
}

// unwrap takes a record out of its list wrapper {"data": {...}, "uri": ...}.
// An element that has an "id" or a "type" of its own is a bare record (an
// event has a "data" too) and is returned as it is.
func unwrap(elem json.RawMessage) json.RawMessage {
	m := jsonx.Fields(elem)
	if m == nil {
		return elem
	}
	_, hasID := m["id"]
	_, hasType := m["type"]
	if hasID || hasType || !jsonx.IsObject(m["data"]) {
		return elem
	}
	return m["data"]
}

// readableID returns the id of a record that did not decode, if it has one.
func readableID(rec json.RawMessage) string {
	return jsonx.String(jsonx.Fields(rec)["id"])
}

// nextLink returns the uri of the first link whose rel is "next" in any case
// (our copy of the docs says NEXT, client code says next). Links are
// [{"rel", "uri"}] (or "href"), or an object of rel → uri.
func nextLink(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return ""
	}
	switch t[0] {
	case '[':
		var links []map[string]json.RawMessage
		if json.Unmarshal(t, &links) != nil {
			// One odd element spoils the typed decode; fall back to one by one.
			links = nil
			var elems []json.RawMessage
			if json.Unmarshal(t, &elems) != nil {
				return ""
			}
			for _, e := range elems {
				if l := jsonx.Fields(e); l != nil {
					links = append(links, l)
				}
			}
		}
		for _, l := range links {
			if !strings.EqualFold(strings.TrimSpace(jsonx.String(l["rel"])), "next") {
				continue
			}
			if u := strings.TrimSpace(cmp.Or(jsonx.String(l["uri"]), jsonx.String(l["href"]))); u != "" {
				return u
			}
		}
	case '{':
		var links map[string]json.RawMessage
		if json.Unmarshal(t, &links) != nil {
			return ""
		}
		for rel, v := range links {
			if !strings.EqualFold(rel, "next") {
				continue
			}
			if u := strings.TrimSpace(jsonx.String(v)); u != "" {
				return u
			}
			if l := jsonx.Fields(v); l != nil {
				if u := strings.TrimSpace(cmp.Or(jsonx.String(l["uri"]), jsonx.String(l["href"]))); u != "" {
					return u
				}
			}
		}
	}
	return ""
}
