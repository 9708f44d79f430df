// Package desired holds the desired Class states a source derives from its
// roster, and turns two of them into the changes to publish. Both sources
// (the DataHub feed, the HUBmis snapshots) compute a full or scoped desired
// set and diff it against the previous one, so a change of any field, a
// removal, or an entity that is now unknown is handled the same way.
package desired

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"

	"github.com/rollcall/rollcall/internal/events"
)

// Change is one desired state to publish, or one entity to remove.
type Change struct {
	Op    events.Op
	State events.KeyedState
}

// Key identifies a change's entity among all kinds: "<kind>/<key>".
func (c Change) Key() string { return Key(c.State) }

// Key identifies a state among all kinds: "<kind>/<key>".
func Key(s events.KeyedState) string {
	// An enrollment's key is itself built from two ids: building the whole
	// key at once is one allocation instead of two, once per enrollment of
	// a school.
	if e, ok := s.(events.EnrollmentState); ok {
		return string(events.KindEnrollment) + "/" + e.ExtClassID + "#" + e.ExtPersonID
	}
	return string(s.Kind()) + "/" + s.Key()
}

// Set is the desired states of a scope, and the keys whose state cannot be
// known now (a class without a host): those are neither upserted nor
// deleted.
type Set struct {
	// States are the desired states by [Key]. Read them freely, but add
	// them only with [Set.Add]: [Diff] relies on the lists Add keeps.
	States  map[string]events.KeyedState
	Unknown map[string]bool
	// Notes say why states are unknown, without personal data.
	Notes []string
	// added holds the states of States again, in the order Add added them,
	// and kinds says whether each kind came in key order. When both sets of
	// a diff came so, Diff merges their lists front to back instead of
	// looking every entity up in the other set's map: at 100k entities each
	// lookup is a cache miss, which made the diff grow faster than the
	// school.
	added []entry
	kinds []kindOrder
	// keys holds the bytes of the keys Add builds, many keys to an
	// allocation: a school's set has 100k keys, and one allocation each
	// is as many objects to allocate and for the collector to mark. A
	// pointer, so a copied Set does not trip the Builder's copy check.
	keys *strings.Builder
}

// keyChunkMax is the most bytes of keys that share an allocation.
const keyChunkMax = 16 << 10

// entry is a state with its key in [Set.States], built once, and the
// index in [Set.added] of the next state of its kind (-1 for none): a
// merge of one kind steps from one to the next without reading the other
// kinds' states between them.
type entry struct {
	key   string
	state events.KeyedState
	next  int
}

// kindOrder is what Add has seen of one kind.
type kindOrder struct {
	kind events.Kind
	// first and last are the indexes in added of the kind's first and last
	// state.
	first, last int
	// unordered is set once a key came that was not greater than the one
	// before it: the kind can then not be merged.
	unordered bool
}

// NewSet returns an empty set.
func NewSet() *Set { return NewSetSized(0) }

// NewSetSized returns an empty set with room for about n states, so a large
// school's set is not rehashed as it grows.
func NewSetSized(n int) *Set {
	return &Set{States: make(map[string]events.KeyedState, n), Unknown: map[string]bool{}, added: make([]entry, 0, n)}
}

// Add adds a state, replacing any of the same key. Adding each kind's
// states in key order lets [Diff] merge instead of look up; any order is
// correct.
func (d *Set) Add(s events.KeyedState) {
	k := d.key(s)
	d.States[k] = s
	o := d.kindOrder(s.Kind())
	i := len(d.added)
	if o.last < 0 {
		o.first = i
	} else {
		last := &d.added[o.last]
		switch {
		case k == last.key:
			last.state = s
			return
		case k < last.key:
			o.unordered = true
		}
		last.next = i
	}
	o.last = i
	d.added = append(d.added, entry{key: k, state: s, next: -1})
}

// key is [Key] of s, its bytes in d.keys.
func (d *Set) key(s events.KeyedState) string {
	kind := string(s.Kind())
	e, enrollment := s.(events.EnrollmentState)
	var key string
	n := len(kind) + 1
	if enrollment {
		n += len(e.ExtClassID) + 1 + len(e.ExtPersonID)
	} else {
		key = s.Key()
		n += len(key)
	}
	if d.keys == nil || d.keys.Cap()-d.keys.Len() < n {
		// A new buffer, twice the last up to keyChunkMax, so a small set
		// takes little. The keys in the old one keep it.
		size := 512
		if d.keys != nil {
			size = min(2*d.keys.Cap(), keyChunkMax)
		}
		d.keys = &strings.Builder{}
		d.keys.Grow(max(n, size))
	}
	start := d.keys.Len()
	d.keys.WriteString(kind)
	d.keys.WriteByte('/')
	if enrollment {
		d.keys.WriteString(e.ExtClassID)
		d.keys.WriteByte('#')
		d.keys.WriteString(e.ExtPersonID)
	} else {
		d.keys.WriteString(key)
	}
	// The Builder only ever appends, so a key taken from it never changes.
	return d.keys.String()[start:]
}

// kindOrder is what d knows of kind, added if new. A set has a handful of
// kinds, so a scan beats a map.
func (d *Set) kindOrder(kind events.Kind) *kindOrder {
	for i := range d.kinds {
		if d.kinds[i].kind == kind {
			return &d.kinds[i]
		}
	}
	d.kinds = append(d.kinds, kindOrder{kind: kind, first: -1, last: -1})
	return &d.kinds[len(d.kinds)-1]
}

// inKeyOrder reports whether every kind was added in key order and added
// holds exactly what States holds (so States was only added to by Add).
func (d *Set) inKeyOrder() bool {
	for _, o := range d.kinds {
		if o.unordered {
			return false
		}
	}
	return len(d.added) == len(d.States)
}

// Hold marks a key as unknown now, with a note (may be empty).
func (d *Set) Hold(kind events.Kind, key, note string) {
	d.Unknown[string(kind)+"/"+key] = true
	if note != "" {
		d.Notes = append(d.Notes, note)
	}
}

// Sorted lists the states by kind and key.
func (d *Set) Sorted() []events.KeyedState {
	out := make([]events.KeyedState, 0, len(d.States))
	for _, s := range d.States {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b events.KeyedState) int { return strings.Compare(Key(a), Key(b)) })
	return out
}

// Diff lists what turns before into after: upserts of new or changed states,
// deletions of states gone (unless now unknown), in a deterministic order so
// a re-run gives the same message ids: users, classes, enrollments,
// schedules; deletions in the reverse order (enrollments before their
// class); then by key.
func Diff(before, after *Set) []Change {
	var out []Change
	if before.inKeyOrder() && after.inKeyOrder() {
		out = mergeDiff(before, after)
	} else {
		out = lookupDiff(before, after)
	}
	Sort(out)
	return out
}

// mergeDiff is Diff of two sets whose kinds each came in key order: per
// kind, a merge of the two sets' states, read in the order they were added.
func mergeDiff(before, after *Set) []Change {
	var out []Change
	first := func(d *Set, kind events.Kind) int {
		for _, o := range d.kinds {
			if o.kind == kind {
				return o.first
			}
		}
		return -1
	}
	for _, o := range after.kinds {
		out = mergeKind(out, before.added, first(before, o.kind), after.added, o.first, after.Unknown)
	}
	for _, o := range before.kinds {
		if first(after, o.kind) < 0 {
			out = mergeKind(out, before.added, o.first, nil, -1, after.Unknown)
		}
	}
	return out
}

// mergeKind appends the changes from before's states of one kind, the
// first at index i, to after's, the first at index j (-1 for none).
func mergeKind(out []Change, before []entry, i int, after []entry, j int, unknown map[string]bool) []Change {
	for i >= 0 || j >= 0 {
		c := -1 // only before is left
		if i < 0 {
			c = 1
		} else if j >= 0 {
			c = strings.Compare(before[i].key, after[j].key)
		}
		switch {
		case c < 0:
			if !unknown[before[i].key] {
				out = append(out, Change{Op: events.OpDelete, State: before[i].state})
			}
			i = before[i].next
		case c > 0:
			out = append(out, Change{Op: events.OpUpsert, State: after[j].state})
			j = after[j].next
		default:
			if !same(before[i].state, after[j].state) {
				out = append(out, Change{Op: events.OpUpsert, State: after[j].state})
			}
			i, j = before[i].next, after[j].next
		}
	}
	return out
}

// lookupDiff is Diff of any two sets: every state looked up in the other
// set's map.
func lookupDiff(before, after *Set) []Change {
	var out []Change
	for k, s := range after.States {
		if old, ok := before.States[k]; ok && same(old, s) {
			continue
		}
		out = append(out, Change{Op: events.OpUpsert, State: s})
	}
	for k, s := range before.States {
		if _, ok := after.States[k]; ok || after.Unknown[k] {
			continue
		}
		out = append(out, Change{Op: events.OpDelete, State: s})
	}
	return out
}

var rank = map[events.Kind]int{events.KindUser: 0, events.KindClass: 1, events.KindEnrollment: 2, events.KindSchedule: 3}

// Sort orders changes as [Diff] does.
func Sort(cs []Change) {
	// Each change's rank and key are worked out once, not once per
	// comparison: a first snapshot upserts every entity of a school.
	type sortKey struct {
		rank int
		key  string
		c    Change
	}
	keyed := make([]sortKey, len(cs))
	for i, c := range cs {
		r := rank[c.State.Kind()]
		if c.Op == events.OpDelete {
			r = 10 - r
		}
		keyed[i] = sortKey{rank: r, key: c.Key(), c: c}
	}
	slices.SortFunc(keyed, func(a, b sortKey) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), strings.Compare(a.key, b.key))
	})
	for i := range keyed {
		cs[i] = keyed[i].c
	}
}

// same compares two states by value, field by field: what their JSON (the
// contract) would say, without encoding it, since a diff of a large school
// compares every entity. Times compare as instants; an empty and a missing
// list are the same.
func same(a, b events.KeyedState) bool {
	switch x := a.(type) {
	case events.UserState:
		y, ok := b.(events.UserState)
		return ok && x.ExtUserID == y.ExtUserID && x.Email == y.Email && x.FirstName == y.FirstName &&
			x.LastName == y.LastName && slices.Equal(x.Roles, y.Roles)
	case events.ClassState:
		y, ok := b.(events.ClassState)
		return ok && x == y
	case events.EnrollmentState:
		y, ok := b.(events.EnrollmentState)
		return ok && x == y
	case events.ScheduleState:
		y, ok := b.(events.ScheduleState)
		return ok && x.ExtClassID == y.ExtClassID && x.Timezone == y.Timezone &&
			x.WindowStart.Equal(y.WindowStart) && x.WindowEnd.Equal(y.WindowEnd) &&
			slices.EqualFunc(x.Sessions, y.Sessions, func(p, q events.Session) bool {
				return p.Start.Equal(q.Start) && p.End.Equal(q.End)
			})
	}
	// A kind this function does not know: compare the contract itself.
	if a.Kind() != b.Kind() {
		return false
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
