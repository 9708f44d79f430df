// Package desired holds the desired Class states a source derives from its
// roster, and turns two of them into the changes to publish. Both sources
// (the DataHub feed, the HUBmis snapshots) compute a full or scoped desired
// set and diff it against the previous one, so a change of any field, a
// removal, or an entity that is now unknown is handled the same way.
package desired

import (
	"cmp"
	"encoding/json"
	"iter"
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
	if e, ok := s.(events.EnrollmentState); ok {
		return enrollmentKey(e)
	}
	return string(s.Kind()) + "/" + s.Key()
}

// enrollmentKey is [Key] of an enrollment. Its key is itself built from
// two ids: building the whole key at once is one allocation instead of
// two.
func enrollmentKey(e events.EnrollmentState) string {
	return string(events.KindEnrollment) + "/" + e.ExtClassID + "#" + e.ExtPersonID
}

// Set is the desired states of a scope, and the keys whose state cannot be
// known now (a class without a host): those are neither upserted nor
// deleted.
//
// A Set keeps its states as lists, one per kind, in the order they were
// added, and builds a map from key to state only once something looks a
// key up: a school's set has 100k states, and a diff of two sets added in
// key order merges their lists without any map or any sort. Reading a set
// (a lookup, [Set.All], [Diff]) may reorganise it, so a Set is not safe for
// concurrent use, not even by readers alone.
type Set struct {
	Unknown map[string]bool
	// Notes say why states are unknown, without personal data.
	Notes []string
	// enrollments, a school's most numerous kind by far (25 to a class),
	// are kept as values and without their keys: 100k of them boxed into
	// interfaces, with a key each, were as many allocations and twice the
	// memory for the collector to mark and the diff to read.
	enrollments list[events.EnrollmentState]
	// others holds the states of every other kind, one list per kind.
	others []kindList
	// index is the position of every key in its kind's list, built by the
	// first lookup, kept up to date by Add, and dropped when a list is
	// sorted.
	index map[string]int
}

// list is the states of one kind, in the order they were added unless it
// was sorted since.
type list[T any] struct {
	items []T
	// unordered is set once an item came whose key was not greater than
	// the one before it: the items are then not in key order and may hold
	// a key twice, until [list.normalise] sorts them.
	unordered bool
}

// kindList is the states of one kind other than enrollments.
type kindList struct {
	kind events.Kind
	list[keyed]
}

// keyed is a state with its [Key], built once.
type keyed struct {
	key   string
	state events.KeyedState
}

func compareKeyed(a, b keyed) int { return strings.Compare(a.key, b.key) }

// compareEnrollments compares two enrollments' keys as strings.Compare of
// their [Key]s does, without building them.
func compareEnrollments(a, b events.EnrollmentState) int {
	if a.ExtClassID == b.ExtClassID {
		return strings.Compare(a.ExtPersonID, b.ExtPersonID)
	}
	// The keys share everything up to where the class ids part: a byte
	// of one of them there decides, unless one class id ends first, when
	// the '#' after it meets a byte of the other.
	n := 0
	for n < len(a.ExtClassID) && n < len(b.ExtClassID) && a.ExtClassID[n] == b.ExtClassID[n] {
		n++
	}
	na, nb := len(a.ExtClassID)+1+len(a.ExtPersonID), len(b.ExtClassID)+1+len(b.ExtPersonID)
	for i := n; i < na && i < nb; i++ {
		if x, y := joinedByte(a, i), joinedByte(b, i); x != y {
			return cmp.Compare(x, y)
		}
	}
	return cmp.Compare(na, nb)
}

// joinedByte is byte i of e.ExtClassID + "#" + e.ExtPersonID.
func joinedByte(e events.EnrollmentState, i int) byte {
	switch {
	case i < len(e.ExtClassID):
		return e.ExtClassID[i]
	case i == len(e.ExtClassID):
		return '#'
	}
	return e.ExtPersonID[i-len(e.ExtClassID)-1]
}

// add appends x, or replaces the last item if it has x's key, and says
// where x is now.
func (l *list[T]) add(x T, compare func(a, b T) int) (at int, appended bool) {
	if n := len(l.items); n > 0 {
		switch c := compare(l.items[n-1], x); {
		case c == 0:
			l.items[n-1] = x
			return n - 1, false
		case c > 0:
			l.unordered = true
		}
	}
	l.items = append(l.items, x)
	return len(l.items) - 1, true
}

// normalise sorts an unordered list by key, keeping of a key added twice
// the later item, as [Set.Add] promises, and reports whether it moved
// anything. A list added in key order is left as it is.
func (l *list[T]) normalise(compare func(a, b T) int) bool {
	if !l.unordered {
		return false
	}
	// Stable, so of two items of a key the later added stays later.
	slices.SortStableFunc(l.items, compare)
	kept := l.items[:0]
	for i, x := range l.items {
		if i+1 < len(l.items) && compare(x, l.items[i+1]) == 0 {
			continue
		}
		kept = append(kept, x)
	}
	clear(l.items[len(kept):])
	l.items, l.unordered = kept, false
	return true
}

// NewSet returns an empty set.
func NewSet() *Set { return NewSetSized(0) }

// NewSetSized returns an empty set with room for about n enrollments, so a
// large school's set is not copied as it grows.
func NewSetSized(n int) *Set {
	return &Set{Unknown: map[string]bool{}, enrollments: list[events.EnrollmentState]{items: make([]events.EnrollmentState, 0, n)}}
}

// Add adds a state, replacing any of the same key. Adding each kind's
// states in key order lets [Diff] merge them as they are; any order is
// correct.
func (d *Set) Add(s events.KeyedState) {
	if e, ok := s.(events.EnrollmentState); ok {
		d.AddEnrollment(e)
		return
	}
	k := Key(s)
	l := d.kindList(s.Kind())
	if d.index != nil {
		if at, ok := d.index[k]; ok {
			l.items[at].state = s
			return
		}
	}
	if at, appended := l.add(keyed{key: k, state: s}, compareKeyed); appended && d.index != nil {
		d.index[k] = at
	}
}

// AddEnrollment is [Set.Add] of an enrollment, without boxing it.
func (d *Set) AddEnrollment(e events.EnrollmentState) {
	if d.index != nil {
		k := enrollmentKey(e)
		if at, ok := d.index[k]; ok {
			d.enrollments.items[at] = e
			return
		}
		at, _ := d.enrollments.add(e, compareEnrollments)
		d.index[k] = at
		return
	}
	d.enrollments.add(e, compareEnrollments)
}

// kindList is d's list of kind, added if new. A set has a handful of
// kinds, so a scan beats a map.
func (d *Set) kindList(kind events.Kind) *kindList {
	for i := range d.others {
		if d.others[i].kind == kind {
			return &d.others[i]
		}
	}
	d.others = append(d.others, kindList{kind: kind})
	return &d.others[len(d.others)-1]
}

// find is d's list of kind, nil if none.
func (d *Set) find(kind events.Kind) *kindList {
	for i := range d.others {
		if d.others[i].kind == kind {
			return &d.others[i]
		}
	}
	return nil
}

// inKeyOrder reports whether every kind was added in key order since the
// set was last normalised, so a diff merges it as it is.
func (d *Set) inKeyOrder() bool {
	if d.enrollments.unordered {
		return false
	}
	for _, l := range d.others {
		if l.unordered {
			return false
		}
	}
	return true
}

// normalise puts every list in key order, each key once. A set added in
// key order is left as it is; a kind added in any other order is sorted,
// n log n, and the index, which held positions, is built again when next
// needed.
func (d *Set) normalise() {
	moved := d.enrollments.normalise(compareEnrollments)
	for i := range d.others {
		if d.others[i].normalise(compareKeyed) {
			moved = true
		}
	}
	if moved {
		d.index = nil
	}
}

// Get is the state of key ("<kind>/<key>", as [Key] builds it). The first
// lookup in a set indexes it.
func (d *Set) Get(key string) (events.KeyedState, bool) {
	if d.index == nil {
		d.buildIndex()
	}
	at, ok := d.index[key]
	if !ok {
		return nil, false
	}
	kind, _, _ := strings.Cut(key, "/")
	if events.Kind(kind) == events.KindEnrollment {
		return d.enrollments.items[at], true
	}
	return d.find(events.Kind(kind)).items[at].state, true
}

func (d *Set) buildIndex() {
	d.normalise()
	n := len(d.enrollments.items)
	for _, l := range d.others {
		n += len(l.items)
	}
	d.index = make(map[string]int, n)
	for at, e := range d.enrollments.items {
		d.index[enrollmentKey(e)] = at
	}
	for _, l := range d.others {
		for at, x := range l.items {
			d.index[x.key] = at
		}
	}
}

// Has reports whether the set holds a state of key ("<kind>/<key>").
func (d *Set) Has(key string) bool {
	_, ok := d.Get(key)
	return ok
}

// Len is the number of states in the set.
func (d *Set) Len() int {
	d.normalise()
	n := len(d.enrollments.items)
	for _, l := range d.others {
		n += len(l.items)
	}
	return n
}

// Count is the number of states of one kind in the set.
func (d *Set) Count(kind events.Kind) int {
	d.normalise()
	if kind == events.KindEnrollment {
		return len(d.enrollments.items)
	}
	if l := d.find(kind); l != nil {
		return len(l.items)
	}
	return 0
}

// All yields the states by [Key], in key order. The set must not be added
// to while All runs.
func (d *Set) All() iter.Seq2[string, events.KeyedState] {
	return func(yield func(string, events.KeyedState) bool) {
		d.normalise()
		// The kinds in the order of their keys: "<kind>/", no kind holding
		// a '/'.
		kinds := make([]events.Kind, 0, len(d.others)+1)
		for _, l := range d.others {
			kinds = append(kinds, l.kind)
		}
		if len(d.enrollments.items) > 0 {
			kinds = append(kinds, events.KindEnrollment)
		}
		slices.SortFunc(kinds, func(a, b events.Kind) int { return strings.Compare(string(a)+"/", string(b)+"/") })
		for _, kind := range kinds {
			if kind == events.KindEnrollment {
				for _, e := range d.enrollments.items {
					if !yield(enrollmentKey(e), e) {
						return
					}
				}
				continue
			}
			for _, x := range d.find(kind).items {
				if !yield(x.key, x.state) {
					return
				}
			}
		}
	}
}

// Enrollments yields the enrollments in key order, without building their
// keys or boxing them as [Set.All] does. The set must not be added to
// while Enrollments runs.
func (d *Set) Enrollments() iter.Seq[events.EnrollmentState] {
	return func(yield func(events.EnrollmentState) bool) {
		d.normalise()
		for _, e := range d.enrollments.items {
			if !yield(e) {
				return
			}
		}
	}
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
	out := make([]events.KeyedState, 0, d.Len())
	for _, s := range d.All() {
		out = append(out, s)
	}
	return out
}

// Diff lists what turns before into after: upserts of new or changed states,
// deletions of states gone (unless now unknown), in a deterministic order so
// a re-run gives the same message ids: users, classes, enrollments,
// schedules; deletions in the reverse order (enrollments before their
// class); then by key.
//
// Per kind, Diff merges the two sets' states in key order: a set added in
// key order (as the HUBmis mapping adds) is merged as it is, without a
// lookup, which at 100k entities would be a cache miss each; any other is
// sorted first.
func Diff(before, after *Set) []Change {
	before.normalise()
	after.normalise()
	out := merge(nil, before.enrollments.items, after.enrollments.items, after.Unknown, compareEnrollments,
		func(a, b events.EnrollmentState) bool { return a == b },
		func(e events.EnrollmentState) events.KeyedState { return e }, enrollmentKey)
	var none []keyed
	for _, l := range after.others {
		from := none
		if b := before.find(l.kind); b != nil {
			from = b.items
		}
		out = mergeKeyed(out, from, l.items, after.Unknown)
	}
	for _, l := range before.others {
		if after.find(l.kind) == nil {
			out = mergeKeyed(out, l.items, none, after.Unknown)
		}
	}
	Sort(out)
	return out
}

func mergeKeyed(out []Change, before, after []keyed, unknown map[string]bool) []Change {
	return merge(out, before, after, unknown, compareKeyed,
		func(a, b keyed) bool { return same(a.state, b.state) },
		func(x keyed) events.KeyedState { return x.state },
		func(x keyed) string { return x.key })
}

// merge appends the changes from before's states of one kind to after's,
// both in key order, each key once.
func merge[T any](out []Change, before, after []T, unknown map[string]bool,
	compare func(a, b T) int, same func(a, b T) bool, state func(T) events.KeyedState, key func(T) string) []Change {
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		c := -1 // only before is left
		if i == len(before) {
			c = 1
		} else if j < len(after) {
			c = compare(before[i], after[j])
		}
		switch {
		case c < 0:
			if len(unknown) == 0 || !unknown[key(before[i])] {
				out = append(out, Change{Op: events.OpDelete, State: state(before[i])})
			}
			i++
		case c > 0:
			out = append(out, Change{Op: events.OpUpsert, State: state(after[j])})
			j++
		default:
			if !same(before[i], after[j]) {
				out = append(out, Change{Op: events.OpUpsert, State: state(after[j])})
			}
			i, j = i+1, j+1
		}
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
