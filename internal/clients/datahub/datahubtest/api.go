package datahubtest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/rollcall/rollcall/internal/simhttp"
)

// request is what an endpoint needs of an HTTP request.
type request struct {
	id    string     // the {id} segment, if the route has one
	path  string     // the path relative to ServicesRoot, e.g. /v1/teachers/abc/sections
	query url.Values // the query, access_token included
}

// apiRoute is one endpoint of the services API.
type apiRoute struct {
	pattern string // e.g. /datahub/services/v1/teachers/{id}/sections
	h       func(s *Server, q request) simhttp.Reply
}

var (
	// apiRoutes maps "teachers", "teachers/{id}" and "teachers/{id}/sections" to their
	// endpoints. Filled by init, because single-entity answers read it for their links.
	apiRoutes = map[string]*apiRoute{}
	// related lists the sub-resources of each resource, for the links of single entities.
	related = map[string][]string{}
)

func init() {
	add := func(key string, h func(s *Server, q request) simhttp.Reply) {
		apiRoutes[key] = &apiRoute{pattern: apiPrefix + key, h: h}
		if res, sub, ok := strings.Cut(key, "/{id}/"); ok {
			related[res] = append(related[res], sub)
		}
	}

	add("districts", func(s *Server, q request) simhttp.Reply {
		items := make([]item, 0, len(s.data.districts))
		for _, d := range s.data.districts {
			items = append(items, item{d.ID, d})
		}
		return s.listReply(q, "districts", items)
	})
	add("districts/{id}", func(s *Server, q request) simhttp.Reply {
		return s.districtReply(q.id)
	})
	add("districts/{id}/schools", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.district(q.id); !ok {
			return notFound()
		}
		return s.listReply(q, "schools", s.schoolItems(func(sc *school) bool { return sc.District == q.id }))
	})
	add("districts/{id}/teachers", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.district(q.id); !ok {
			return notFound()
		}
		return s.listReply(q, "teachers", s.teacherItems(func(t *Teacher) bool { return t.District == q.id }))
	})
	add("districts/{id}/students", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.district(q.id); !ok {
			return notFound()
		}
		return s.listReply(q, "students", s.studentItems(func(st *Student) bool { return st.District == q.id }))
	})
	add("districts/{id}/sections", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.district(q.id); !ok {
			return notFound()
		}
		return s.listReply(q, "sections", s.sectionItems(func(sec *Section) bool { return sec.District == q.id }))
	})
	add("districts/{id}/admins", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.district(q.id); !ok {
			return notFound()
		}
		return s.listReply(q, "district_admins", nil)
	})
	add("districts/{id}/events", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.district(q.id); !ok {
			return notFound()
		}
		// Paged, anchored and linked as /v1/events is; its NEXT links lead back here.
		return s.feedReply(q, func(e *eventRec) bool { return e.district == q.id })
	})

	add("teachers", func(s *Server, q request) simhttp.Reply {
		return s.listReply(q, "teachers", s.teacherItems(nil))
	})
	add("teachers/{id}", func(s *Server, q request) simhttp.Reply {
		t, ok := s.data.teachers[q.id]
		if !ok {
			return notFound()
		}
		return s.single("teachers", t.ID, *t)
	})
	add("teachers/{id}/events", func(s *Server, q request) simhttp.Reply {
		return s.feedReply(q, func(e *eventRec) bool { return e.objectID == q.id })
	})
	add("teachers/{id}/sections", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.teachers[q.id]; !ok {
			return notFound()
		}
		return s.listReply(q, "sections", s.sectionItems(func(sec *Section) bool { return teaches(sec, q.id) }))
	})
	add("teachers/{id}/school", func(s *Server, q request) simhttp.Reply {
		t, ok := s.data.teachers[q.id]
		if !ok {
			return notFound()
		}
		return s.schoolReply(t.School)
	})
	add("teachers/{id}/district", func(s *Server, q request) simhttp.Reply {
		t, ok := s.data.teachers[q.id]
		if !ok {
			return notFound()
		}
		return s.districtReply(t.District)
	})
	add("teachers/{id}/students", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.teachers[q.id]; !ok {
			return notFound()
		}
		ids := map[string]bool{}
		for _, sec := range s.data.sections {
			if teaches(sec, q.id) {
				for _, id := range sec.Students {
					ids[id] = true
				}
			}
		}
		return s.listReply(q, "students", s.studentItems(func(st *Student) bool { return ids[st.ID] }))
	})

	add("students", func(s *Server, q request) simhttp.Reply {
		return s.listReply(q, "students", s.studentItems(nil))
	})
	add("students/{id}", func(s *Server, q request) simhttp.Reply {
		st, ok := s.data.students[q.id]
		if !ok {
			return notFound()
		}
		return s.single("students", st.ID, *st)
	})
	add("students/{id}/events", func(s *Server, q request) simhttp.Reply {
		return s.feedReply(q, func(e *eventRec) bool { return e.objectID == q.id })
	})
	add("students/{id}/sections", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.students[q.id]; !ok {
			return notFound()
		}
		return s.listReply(q, "sections", s.sectionItems(func(sec *Section) bool { return slices.Contains(sec.Students, q.id) }))
	})
	add("students/{id}/school", func(s *Server, q request) simhttp.Reply {
		st, ok := s.data.students[q.id]
		if !ok {
			return notFound()
		}
		return s.schoolReply(st.School)
	})
	add("students/{id}/district", func(s *Server, q request) simhttp.Reply {
		st, ok := s.data.students[q.id]
		if !ok {
			return notFound()
		}
		return s.districtReply(st.District)
	})
	add("students/{id}/teachers", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.students[q.id]; !ok {
			return notFound()
		}
		ids := map[string]bool{}
		for _, sec := range s.data.sections {
			if slices.Contains(sec.Students, q.id) {
				for _, id := range sec.Teachers {
					ids[id] = true
				}
				ids[sec.Teacher] = true
			}
		}
		return s.listReply(q, "teachers", s.teacherItems(func(t *Teacher) bool { return ids[t.ID] }))
	})
	add("students/{id}/contacts", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.students[q.id]; !ok {
			return notFound()
		}
		return s.listReply(q, "contacts", nil)
	})

	add("sections", func(s *Server, q request) simhttp.Reply {
		return s.listReply(q, "sections", s.sectionItems(nil))
	})
	add("sections/{id}", func(s *Server, q request) simhttp.Reply {
		sec, ok := s.data.sections[q.id]
		if !ok {
			return notFound()
		}
		return s.single("sections", sec.ID, sec.clone())
	})
	add("sections/{id}/events", func(s *Server, q request) simhttp.Reply {
		return s.feedReply(q, func(e *eventRec) bool { return e.objectID == q.id })
	})
	add("sections/{id}/school", func(s *Server, q request) simhttp.Reply {
		sec, ok := s.data.sections[q.id]
		if !ok {
			return notFound()
		}
		return s.schoolReply(sec.School)
	})
	add("sections/{id}/district", func(s *Server, q request) simhttp.Reply {
		sec, ok := s.data.sections[q.id]
		if !ok {
			return notFound()
		}
		return s.districtReply(sec.District)
	})
	add("sections/{id}/students", func(s *Server, q request) simhttp.Reply {
		sec, ok := s.data.sections[q.id]
		if !ok {
			return notFound()
		}
		return s.listReply(q, "students", s.studentItems(func(st *Student) bool { return slices.Contains(sec.Students, st.ID) }))
	})
	add("sections/{id}/teachers", func(s *Server, q request) simhttp.Reply {
		sec, ok := s.data.sections[q.id]
		if !ok {
			return notFound()
		}
		return s.listReply(q, "teachers", s.teacherItems(func(t *Teacher) bool { return teaches(sec, t.ID) }))
	})
	add("sections/{id}/teacher", func(s *Server, q request) simhttp.Reply {
		sec, ok := s.data.sections[q.id]
		if !ok {
			return notFound()
		}
		t, ok := s.data.teachers[sec.Teacher]
		if !ok {
			return notFound()
		}
		return s.single("teachers", t.ID, *t)
	})

	add("schools", func(s *Server, q request) simhttp.Reply {
		return s.listReply(q, "schools", s.schoolItems(nil))
	})
	add("schools/{id}", func(s *Server, q request) simhttp.Reply {
		return s.schoolReply(q.id)
	})
	add("schools/{id}/events", func(s *Server, q request) simhttp.Reply {
		return s.feedReply(q, func(e *eventRec) bool { return e.objectID == q.id || e.school == q.id })
	})
	add("schools/{id}/teachers", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.school(q.id); !ok {
			return notFound()
		}
		return s.listReply(q, "teachers", s.teacherItems(func(t *Teacher) bool { return t.School == q.id }))
	})
	add("schools/{id}/students", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.school(q.id); !ok {
			return notFound()
		}
		return s.listReply(q, "students", s.studentItems(func(st *Student) bool { return st.School == q.id }))
	})
	add("schools/{id}/sections", func(s *Server, q request) simhttp.Reply {
		if _, ok := s.data.school(q.id); !ok {
			return notFound()
		}
		return s.listReply(q, "sections", s.sectionItems(func(sec *Section) bool { return sec.School == q.id }))
	})
	add("schools/{id}/district", func(s *Server, q request) simhttp.Reply {
		sc, ok := s.data.school(q.id)
		if !ok {
			return notFound()
		}
		return s.districtReply(sc.District)
	})

	// The simulator has no contacts and no admins: their lists are empty and every id is
	// unknown.
	for _, key := range []string{"contacts", "district_admins", "school_admins"} {
		add(key, func(s *Server, q request) simhttp.Reply { return s.listReply(q, key, nil) })
	}
	for _, key := range []string{
		"contacts/{id}", "contacts/{id}/student", "contacts/{id}/district",
		"district_admins/{id}", "school_admins/{id}", "school_admins/{id}/schools",
	} {
		add(key, func(*Server, request) simhttp.Reply { return notFound() })
	}

	add("events", func(s *Server, q request) simhttp.Reply {
		return s.feedReply(q, nil)
	})
	add("events/{id}", func(s *Server, q request) simhttp.Reply {
		i, ok := s.data.findEvent(q.id)
		if !ok {
			return notFound()
		}
		return s.single("events", q.id, s.data.events[i].ev)
	})

	for _, subs := range related {
		slices.Sort(subs)
	}
}

// route finds the endpoint of a path under the services API and the {id} in it.
func route(path string) (*apiRoute, string) {
	rest, ok := strings.CutPrefix(path, apiPrefix)
	if !ok {
		return nil, ""
	}
	segs := strings.Split(rest, "/")
	if slices.Contains(segs, "") {
		return nil, ""
	}
	var key, id string
	switch len(segs) {
	case 1:
		key = segs[0]
	case 2:
		key, id = segs[0]+"/{id}", segs[1]
	case 3:
		key, id = segs[0]+"/{id}/"+segs[2], segs[1]
	default:
		return nil, ""
	}
	return apiRoutes[key], id
}

func notFound() simhttp.Reply { return errReply(http.StatusNotFound, "not found") }

func teaches(sec *Section, teacherID string) bool {
	return sec.Teacher == teacherID || slices.Contains(sec.Teachers, teacherID)
}

// item is one record of a list: its id and the value written as its data.
type item struct {
	id  string
	obj any
}

func (s *Server) teacherItems(keep func(*Teacher) bool) []item {
	var out []item
	for _, t := range s.data.teachers {
		if keep == nil || keep(t) {
			out = append(out, item{t.ID, *t})
		}
	}
	return out
}

func (s *Server) studentItems(keep func(*Student) bool) []item {
	var out []item
	for _, st := range s.data.students {
		if keep == nil || keep(st) {
			out = append(out, item{st.ID, *st})
		}
	}
	return out
}

func (s *Server) sectionItems(keep func(*Section) bool) []item {
	var out []item
	for _, sec := range s.data.sections {
		if keep == nil || keep(sec) {
			out = append(out, item{sec.ID, sec.clone()})
		}
	}
	return out
}

func (s *Server) schoolReply(id string) simhttp.Reply {
	sc, ok := s.data.school(id)
	if !ok {
		return notFound()
	}
	return s.single("schools", id, *sc)
}

func (s *Server) schoolItems(keep func(*school) bool) []item {
	out := make([]item, 0, len(s.data.schools))
	for i := range s.data.schools {
		if sc := &s.data.schools[i]; keep == nil || keep(sc) {
			out = append(out, item{sc.ID, *sc})
		}
	}
	return out
}

func (s *Server) districtReply(id string) simhttp.Reply {
	d, ok := s.data.district(id)
	if !ok {
		return notFound()
	}
	return s.single("districts", id, *d)
}

// link is one member of an answer's links.
type link struct {
	Rel string `json:"rel"`
	URI string `json:"uri"`
}

type singleBody struct {
	Data  any    `json:"data"`
	Links []link `json:"links"`
}

// single answers the document's single-entity shape: the entity, a self link and one
// link per related list or entity.
func (s *Server) single(res, id string, obj any) simhttp.Reply {
	self := "/v1/" + res + "/" + url.PathEscape(id)
	links := []link{{Rel: "self", URI: self}}
	for _, sub := range related[res] {
		links = append(links, link{Rel: sub, URI: self + "/" + sub})
	}
	return simhttp.JSON(http.StatusOK, singleBody{Data: obj, Links: links})
}

type listEntry struct {
	Data any    `json:"data"`
	URI  string `json:"uri"`
}

type paging struct {
	Current int `json:"current"`
	Total   int `json:"total"`
	Count   int `json:"count"`
}

type listBody struct {
	Data   []listEntry `json:"data"`
	Paging paging      `json:"paging"`
	Links  []link      `json:"links"`
}

// searchToken is the simulator's reading of DataHub's opaque paging token,
// 2.<page>.<count>.FORWARD.<last id>: the page it leads to, the record count when it was
// made, and the id to continue after.
type searchToken struct {
	page, count int
	last        string
}

func (t searchToken) String() string {
	return "2." + strconv.Itoa(t.page) + "." + strconv.Itoa(t.count) + ".FORWARD." + t.last
}

// parseSearchToken reads a token, or a whole NEXT uri holding one (the document calls
// search_token "the value of the uri element" of the NEXT link).
func parseSearchToken(raw string) (searchToken, bool) {
	if _, qs, ok := strings.Cut(raw, "?"); ok {
		v, err := url.ParseQuery(qs)
		if err != nil {
			return searchToken{}, false
		}
		raw = v.Get("search_token")
	}
	parts := strings.SplitN(raw, ".", 5)
	if len(parts) != 5 || parts[0] != "2" || parts[3] != "FORWARD" || parts[4] == "" {
		return searchToken{}, false
	}
	page, err := strconv.Atoi(parts[1])
	if err != nil || page < 1 {
		return searchToken{}, false
	}
	count, err := strconv.Atoi(parts[2])
	if err != nil || count < 0 {
		return searchToken{}, false
	}
	return searchToken{page: page, count: count, last: parts[4]}, true
}

// pageParams are a list request's paging parameters.
type pageParams struct {
	limit, page int
	token       *searchToken // when given, page is ignored
}

func parsePage(q url.Values) (pageParams, *simhttp.Reply) {
	p := pageParams{limit: LimitDefault, page: 1}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			rep := errReply(http.StatusBadRequest, "invalid limit")
			return p, &rep
		}
		p.limit = min(n, LimitMax)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			rep := errReply(http.StatusBadRequest, "invalid page")
			return p, &rep
		}
		p.page = n
	}
	if v := q.Get("search_token"); v != "" {
		t, ok := parseSearchToken(v)
		if !ok {
			rep := invalidToken()
			return p, &rep
		}
		p.token = &t
	}
	return p, nil
}

func invalidToken() simhttp.Reply { return errReply(http.StatusBadRequest, "invalid search_token") }

// offset is where page starts in count records, without overflowing on huge pages.
func offset(page, limit, count int) int {
	if page-1 > count/limit {
		return count
	}
	return min((page-1)*limit, count)
}

// after is the index of the first of the sorted ids greater than id.
func after[T any](sorted []T, id string, idOf func(T) string) int {
	i, found := slices.BinarySearchFunc(sorted, id, func(x T, id string) int { return strings.Compare(idOf(x), id) })
	if found {
		i++
	}
	return i
}

// listReply answers one page of a resource list. A search_token continues after its last
// id, which need not exist any more (a record deleted between pages).
func (s *Server) listReply(q request, res string, items []item) simhttp.Reply {
	p, bad := parsePage(q.query)
	if bad != nil {
		return *bad
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.id, b.id) })
	count := len(items)
	start, current := offset(p.page, p.limit, count), p.page
	if p.token != nil {
		start = after(items, p.token.last, func(it item) string { return it.id })
		current = p.token.page
	}
	end := min(start+p.limit, count)
	page := items[start:end]

	var next *searchToken
	if end < count {
		next = &searchToken{page: current + 1, count: count, last: page[len(page)-1].id}
	}
	entries := make([]listEntry, 0, len(page))
	for _, it := range page {
		entries = append(entries, listEntry{Data: it.obj, URI: "/v1/" + res + "/" + url.PathEscape(it.id)})
	}
	return s.pageReply(q, entries, p.limit, current, count, next)
}

// feedReply answers one page of the event feed, or of the events the filter keeps. A
// search_token must continue after a retained event or a watermark (see
// validAnchorLocked); the answer always has a NEXT link.
func (s *Server) feedReply(q request, keep func(*eventRec) bool) simhttp.Reply {
	p, bad := parsePage(q.query)
	if bad != nil {
		return *bad
	}
	var evs []*eventRec
	for i := range s.data.events {
		if e := &s.data.events[i]; keep == nil || keep(e) {
			evs = append(evs, e)
		}
	}
	count := len(evs)
	start, current := offset(p.page, p.limit, count), p.page
	if p.token != nil {
		if !s.validAnchorLocked(p.token.last) {
			return invalidToken()
		}
		start = after(evs, p.token.last, func(e *eventRec) string { return e.ev.ID })
		current = p.token.page
	}
	end := min(start+p.limit, count)
	page := evs[start:end]

	var next searchToken
	switch {
	case len(page) > 0:
		next = searchToken{page: current + 1, count: count, last: page[len(page)-1].ev.ID}
	case p.token != nil:
		// Nothing new: the same token again, so a poller can keep asking.
		next = *p.token
	case count > 0:
		// A page past the end: what comes next follows the newest event.
		next = searchToken{page: current, count: count, last: evs[count-1].ev.ID}
	default:
		// No event to continue after: anchor at the newest id issued so far, which every
		// later event follows.
		wm := s.ids.last
		s.data.watermarks[wm] = true
		next = searchToken{page: current, count: count, last: wm}
	}
	entries := make([]listEntry, 0, len(page))
	for _, e := range page {
		entries = append(entries, listEntry{Data: e.ev, URI: "/v1/events/" + url.PathEscape(e.ev.ID)})
	}
	return s.pageReply(q, entries, p.limit, current, count, &next)
}

// validAnchorLocked reports whether a search_token of the feed may continue after id: id
// is an event still in the feed, or a watermark no dropped event follows. So a poller
// whose cursor fell behind the horizon, or that sends an id the feed never had, is
// refused and resynchronises, rather than silently missing events. s.mu must be held.
func (s *Server) validAnchorLocked(id string) bool {
	if _, ok := s.data.findEvent(id); ok {
		return true
	}
	return s.data.watermarks[id] && id >= s.data.pruned
}

func (s *Server) pageReply(q request, entries []listEntry, limit, current, count int, next *searchToken) simhttp.Reply {
	var links []link
	if next != nil {
		v := url.Values{"search_token": {next.String()}}
		if limit != LimitDefault {
			v.Set("limit", strconv.Itoa(limit))
		}
		links = append(links, link{Rel: "NEXT", URI: q.path + "?" + v.Encode()})
	}
	links = append(links, link{Rel: "SELF", URI: selfURI(q)})
	return simhttp.JSON(http.StatusOK, listBody{
		Data:   entries,
		Paging: paging{Current: current, Total: max(1, (count+limit-1)/limit), Count: count},
		Links:  links,
	})
}

// selfURI is the request's relative uri without the access_token, which must never be
// echoed.
func selfURI(q request) string {
	v := url.Values{}
	for k, vs := range q.query {
		if k != "access_token" {
			v[k] = vs
		}
	}
	if len(v) == 0 {
		return q.path
	}
	return q.path + "?" + v.Encode()
}
