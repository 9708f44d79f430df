package hubmis

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/rollcall/rollcall/internal/jsonx"
)

// more is what a page says about the next one.
type more int

const (
	moreUnknown more = iota // a bare array, or a document without links or meta
	moreYes
	moreNo
)

// page is one decoded list answer.
type page[T any] struct {
	items     []T
	malformed []int // indexes of records that did not decode
	firstErr  error // the first of their errors
	n         int   // records on the page, malformed ones included
	more      more
	perPage   int      // the page size meta reports; 0 when it says none
	digest    [32]byte // of the records' raw bytes, to catch a server that ignores page[number]
}

// decodePage decodes a list answer in either of the shapes HUBmis's
// JSON:API-style query syntax allows:
//
//	[{...}, {...}]
//	{"data": [{...}], "meta": {"current_page": 1, "last_page": 3, "per_page": 100, "total": 250},
//	 "links": {"next": "https://.../students?page[number]=2", ...}}
//
// listKeys names the members that may hold the records in the second shape,
// in order ("data" for lists; "calendar" first for a timetable calendar). A
// member that is missing or null is an empty page. A record that is a JSON:API
// resource object ({"id", "type", "attributes": {...}}) is flattened to its
// attributes plus its id. A record that does not decode is counted in
// malformed; only a body that is neither shape is an error (matching
// ErrMalformed). where names the request in that error.
func decodePage[T any](body []byte, where string, listKeys []string, decode func(json.RawMessage) (T, error)) (page[T], error) {
	var p page[T]
	t := bytes.TrimSpace(body)
	var data json.RawMessage
	switch {
	case len(t) == 0:
		return p, malformed(where, "empty")
	case t[0] == '[':
		data = t
	case t[0] == '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(t, &top); err != nil {
			return p, malformed(where, "%s", jsonx.Problem(err))
		}
		found := false
		for _, k := range listKeys {
			if v, ok := top[k]; ok {
				data, found = v, true
				break
			}
		}
		if !found {
			return p, malformed(where, "no list of records")
		}
		p.more, p.perPage = pagingHints(top["links"], top["meta"])
	default:
		return p, malformed(where, "neither a JSON array nor an object")
	}
	if jsonx.IsNull(data) {
		return p, nil
	}
	if d := bytes.TrimSpace(data); len(d) == 0 || d[0] != '[' {
		return p, malformed(where, "the list of records is not an array")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return p, malformed(where, "records: %s", jsonx.Problem(err))
	}
	p.n = len(elems)
	p.digest = sha256.Sum256(data)
	for i, elem := range elems {
		v, err := decode(flattenResource(elem))
		if err != nil {
			p.malformed = append(p.malformed, i)
			if p.firstErr == nil {
				p.firstErr = err
			}
			continue
		}
		p.items = append(p.items, v)
	}
	return p, nil
}

// pagingHints reads what links and meta say about the next page, and meta's
// page size. links.next decides when links has a "next" member (a non-empty
// string or {"href"} means more, null or "" means none); else meta's
// current and last page numbers (top-level, or under meta.page or
// meta.pagination; snake_case or camelCase); else a links object without
// "next" means none (JSON:API leaves out the links that do not exist); else
// it is unknown.
func pagingHints(links, meta json.RawMessage) (more, int) {
	m := moreUnknown
	hasLinks := jsonx.IsObject(links)
	if hasLinks {
		var l map[string]json.RawMessage
		if json.Unmarshal(links, &l) == nil {
			if next, ok := l["next"]; ok {
				m = moreNo
				if href := linkHref(next); href != "" {
					m = moreYes
				}
			}
		}
	}
	perPage := 0
	if top := jsonx.Fields(meta); top != nil {
		for _, mm := range []map[string]json.RawMessage{top, jsonx.Fields(top["page"]), jsonx.Fields(top["pagination"])} {
			if mm == nil {
				continue
			}
			cur := firstInt(mm, "current_page", "currentPage", "current", "number")
			last := firstInt(mm, "last_page", "lastPage", "total_pages", "totalPages")
			if m == moreUnknown && cur > 0 && last > 0 {
				m = moreNo
				if cur < last {
					m = moreYes
				}
			}
			if perPage == 0 {
				perPage = firstInt(mm, "per_page", "perPage", "size")
			}
		}
	}
	if m == moreUnknown && hasLinks {
		m = moreNo
	}
	return m, perPage
}

// linkHref reads a JSON:API link: a string, or an object with an href.
func linkHref(raw json.RawMessage) string {
	if jsonx.IsObject(raw) {
		return jsonx.String(jsonx.Fields(raw)["href"])
	}
	return jsonx.String(raw)
}

func firstInt(m map[string]json.RawMessage, keys ...string) int {
	for _, k := range keys {
		if n := jsonx.Int(m[k]); n > 0 {
			return n
		}
	}
	return 0
}

// flattenResource turns a JSON:API resource object {"id", "type",
// "attributes": {...}} into its attributes with the id added; anything else
// is returned as it is.
func flattenResource(elem json.RawMessage) json.RawMessage {
	m := jsonx.Fields(elem)
	if m == nil || !jsonx.IsObject(m["attributes"]) {
		return elem
	}
	if _, ok := m["id"]; !ok {
		return elem
	}
	attrs := jsonx.Fields(m["attributes"])
	if attrs == nil {
		return elem
	}
	attrs["id"] = m["id"]
	out, err := json.Marshal(attrs)
	if err != nil {
		return elem
	}
	return out
}

// listSpec is one list endpoint.
type listSpec struct {
	path     string     // from the const block, placeholders replaced
	query    url.Values // filters; page parameters are added
	paged    bool       // the docs list page[number] and page[size] for it
	listKeys []string   // where the records are in a JSON:API-style document
	kind     string     // for errors: "students", ...
}

// maxPages bounds one list: 10,000 pages are a million records at the
// default page size, far beyond any school; a server whose paging never ends
// must not keep the poller reading.
const maxPages = 10000

// listAll reads every page of a list and decodes its records; one record
// that does not decode fails the whole list, since a snapshot missing a
// record would read as its deletion.
//
// A paged endpoint is asked for page[number]=1,2,... with page[size]; an
// unpaged one once without them, and with them (from page 2) only if its
// answer says there is more. Paging ends when links.next is missing or null
// (a document with links), or meta's current page is its last (a document
// with meta); failing both, when a page holds fewer records than asked (or
// more: the server does not page). An empty page always ends it. The next
// link itself is never followed: page numbers are computed, so that no URL
// of an answer receives the token. A page identical to the one before fails
// the list with ErrMalformed: the server ignores page[number], and reading
// on would never end.
func listAll[T any](ctx context.Context, c *Client, s listSpec, decode func(json.RawMessage) (T, error)) ([]T, error) {
	var all []T
	var prev [32]byte
	for n := 1; ; n++ {
		if n > maxPages {
			return nil, malformed("paging of GET "+s.path, "more than %d pages", maxPages)
		}
		q := url.Values{}
		for k, v := range s.query {
			q[k] = v
		}
		if s.paged || n > 1 {
			q.Set("page[number]", strconv.Itoa(n))
			q.Set("page[size]", strconv.Itoa(c.pageSize))
		}
		body, err := c.get(ctx, s.path, q)
		if err != nil {
			return nil, err
		}
		where := "answer to GET " + s.path
		p, err := decodePage(body, where, cmpListKeys(s.listKeys), decode)
		if err != nil {
			return nil, err
		}
		if len(p.malformed) > 0 {
			return nil, fmt.Errorf("hubmis: GET %s: %d of %d %s malformed, the first at index %d of page %d: %w",
				s.path, len(p.malformed), p.n, s.kind, p.malformed[0], n, p.firstErr)
		}
		if n > 1 && p.n > 0 && p.digest == prev {
			return nil, malformed(where, "page %d repeats page %d: page[number] is ignored", n, n-1)
		}
		prev = p.digest
		all = append(all, p.items...)
		if p.n == 0 || !nextPage(p.more, p.n, p.perPage, c.pageSize, s.paged || n > 1) {
			return all, nil
		}
	}
}

// nextPage decides whether to ask for another page after one of n records.
func nextPage(m more, n, perPage, asked int, sentPaging bool) bool {
	switch m {
	case moreYes:
		return true
	case moreNo:
		return false
	}
	if !sentPaging {
		return false // the whole list, unpaged
	}
	size := asked
	if perPage > 0 {
		size = perPage
	}
	return n == size
}

func cmpListKeys(keys []string) []string {
	if len(keys) == 0 {
		return []string{"data"}
	}
	return keys
}
