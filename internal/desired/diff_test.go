package desired

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/internal/events"
)

// referenceDiff is Diff as it was before the merge, on plain maps of the
// states by key: every state looked up in the other map, then the changes
// sorted by a comparison that builds both keys. Diff must give exactly what
// it gives.
func referenceDiff(before, after map[string]events.KeyedState, unknown map[string]bool) []Change {
	var out []Change
	for k, s := range after {
		if old, ok := before[k]; ok && same(old, s) {
			continue
		}
		out = append(out, Change{Op: events.OpUpsert, State: s})
	}
	for k, s := range before {
		if _, ok := after[k]; ok || unknown[k] {
			continue
		}
		out = append(out, Change{Op: events.OpDelete, State: s})
	}
	slices.SortFunc(out, func(a, b Change) int {
		ra, rb := rank[a.State.Kind()], rank[b.State.Kind()]
		if a.Op == events.OpDelete {
			ra = 10 - ra
		}
		if b.Op == events.OpDelete {
			rb = 10 - rb
		}
		if ra != rb {
			return ra - rb
		}
		return strings.Compare(string(a.State.Kind())+"/"+a.State.Key(), string(b.State.Kind())+"/"+b.State.Key())
	})
	return out
}

// noteState is a kind Diff knows nothing of: it ranks with users and is
// compared through its JSON.
type noteState struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

func (noteState) Kind() events.Kind { return "note" }
func (n noteState) Key() string     { return n.ID }

// randomState is a state of a random kind whose key and fields come from
// small ranges, so two sets share most keys and differ in some fields.
func randomState(r *rand.Rand) events.KeyedState {
	// Ids with '!' and ' ' sort before '#', so an enrollment's key order
	// is not always its class's order followed by its person's.
	ids := []string{"a", "a!", "a b", "b", "b0", "c", "ca", "d"}
	id := func() string { return "t:" + ids[r.IntN(len(ids))] }
	field := func() string { return []string{"x", "y"}[r.IntN(2)] }
	switch r.IntN(5) {
	case 0:
		return events.UserState{ExtUserID: id(), Email: field(), FirstName: field(), LastName: "L", Roles: []string{"instructor"}}
	case 1:
		return events.ClassState{ExtClassID: id(), Name: field(), Host: events.Person{ExtPersonID: id(), Email: field()}}
	case 2, 3:
		return events.EnrollmentState{ExtClassID: id(), Role: events.RoleStudent,
			Person: events.Person{ExtPersonID: id(), FirstName: field(), LastName: field()}}
	default:
		return noteState{ID: id(), Text: field()}
	}
}

// randomSet adds random states in key order (so Diff merges them as they
// are), in key order with a repeat now and then (a replaced state), or in
// any order (so Diff sorts them), and holds some keys. Between two runs of
// adds it may look a key up, count or diff the set, so later adds find it
// indexed or normalised. It returns the set and the map of the states by
// key that the same adds make.
func randomSet(r *rand.Rand) (*Set, map[string]events.KeyedState) {
	states := make([]events.KeyedState, r.IntN(40))
	for i := range states {
		states[i] = randomState(r)
	}
	switch r.IntN(3) {
	case 0:
		slices.SortFunc(states, func(a, b events.KeyedState) int { return strings.Compare(Key(a), Key(b)) })
		states = slices.CompactFunc(states, func(a, b events.KeyedState) bool { return Key(a) == Key(b) })
	case 1:
		slices.SortStableFunc(states, func(a, b events.KeyedState) int { return strings.Compare(Key(a), Key(b)) })
	}
	d := NewSetSized(r.IntN(len(states) + 1))
	model := map[string]events.KeyedState{}
	pause := r.IntN(len(states) + 1)
	for i, s := range states {
		if i == pause {
			switch r.IntN(4) {
			case 0:
				d.Get(Key(randomState(r)))
			case 1:
				d.Len()
			case 2:
				Diff(d, NewSet())
			}
		}
		d.Add(s)
		model[Key(s)] = s
	}
	for range r.IntN(4) {
		s := randomState(r)
		d.Hold(s.Kind(), s.Key(), "")
	}
	return d, model
}

func TestDiffAgreesWithTheReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	merged := 0
	for i := range 20000 {
		before, beforeModel := randomSet(r)
		after, afterModel := randomSet(r)
		if before.inKeyOrder() && after.inKeyOrder() {
			merged++
		}
		got, want := Diff(before, after), referenceDiff(beforeModel, afterModel, after.Unknown)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: Diff =\n%s\nthe reference =\n%s", i, changesText(got), changesText(want))
		}
		checkSet(t, before, beforeModel, r)
		checkSet(t, after, afterModel, r)
	}
	// Both ways of diffing (as added, sorted first) must have been tried
	// often.
	if merged < 2000 || merged > 18000 {
		t.Errorf("%d of 20000 cases merged as added", merged)
	}
}

// A set read before it is diffed (looked up, listed, counted) gives the
// same diff as one diffed at once, and the same reads after.
func TestReadsAgreeWithTheReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		before, beforeModel := randomSet(r)
		after, afterModel := randomSet(r)
		checkSet(t, before, beforeModel, r)
		checkSet(t, after, afterModel, r)
		got, want := Diff(before, after), referenceDiff(beforeModel, afterModel, after.Unknown)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: Diff =\n%s\nthe reference =\n%s", i, changesText(got), changesText(want))
		}
	}
}

// checkSet compares every read of d with the map of its states by key.
func checkSet(t *testing.T, d *Set, model map[string]events.KeyedState, r *rand.Rand) {
	t.Helper()
	// Lookups first in one set in two, so All and Len also meet an
	// indexed set.
	lookups := func() {
		for k, s := range model {
			if got, ok := d.Get(k); !ok || !reflect.DeepEqual(got, s) {
				t.Fatalf("Get(%q) = %+v, %v; want %+v", k, got, ok, s)
			}
		}
		for range 3 {
			if k := Key(randomState(r)); d.Has(k) != (model[k] != nil) {
				t.Fatalf("Has(%q) = %v; the set holds %v", k, d.Has(k), model[k])
			}
		}
	}
	first := r.IntN(2) == 0
	if first {
		lookups()
	}
	if d.Len() != len(model) {
		t.Fatalf("Len = %d, want %d", d.Len(), len(model))
	}
	counts := map[events.Kind]int{}
	for _, s := range model {
		counts[s.Kind()]++
	}
	for _, kind := range []events.Kind{events.KindUser, events.KindClass, events.KindEnrollment, events.KindSchedule, "note", "none"} {
		if d.Count(kind) != counts[kind] {
			t.Fatalf("Count(%s) = %d, want %d", kind, d.Count(kind), counts[kind])
		}
	}
	keys := slices.Sorted(maps.Keys(model))
	var listed []string
	for k, s := range d.All() {
		if !reflect.DeepEqual(s, model[k]) {
			t.Fatalf("All yields %q: %+v, want %+v", k, s, model[k])
		}
		listed = append(listed, k)
	}
	if !slices.Equal(listed, keys) {
		t.Fatalf("All yields the keys\n%q\nwant\n%q", listed, keys)
	}
	sorted := d.Sorted()
	if len(sorted) != len(keys) {
		t.Fatalf("Sorted lists %d states, want %d", len(sorted), len(keys))
	}
	for i, s := range sorted {
		if Key(s) != keys[i] {
			t.Fatalf("Sorted[%d] is %q, want %q", i, Key(s), keys[i])
		}
	}
	if !first {
		lookups()
	}
}

// compareEnrollments orders enrollments as their keys do, also when one
// class id is a prefix of the other or holds bytes that sort around '#'.
func TestCompareEnrollmentsAgreesWithTheKeys(t *testing.T) {
	ids := []string{"", "a", "a#", "a#b", "a!", "a b", "ab", "a$", "b", "#", "##"}
	for _, c1 := range ids {
		for _, p1 := range ids {
			for _, c2 := range ids {
				for _, p2 := range ids {
					a := events.EnrollmentState{ExtClassID: c1, Person: events.Person{ExtPersonID: p1}}
					b := events.EnrollmentState{ExtClassID: c2, Person: events.Person{ExtPersonID: p2}}
					if got, want := compareEnrollments(a, b), strings.Compare(Key(a), Key(b)); got != want {
						t.Errorf("compareEnrollments(%q, %q) = %d, want %d", Key(a), Key(b), got, want)
					}
				}
			}
		}
	}
}

func changesText(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "\t%s %s %+v\n", c.Op, c.Key(), c.State)
	}
	return b.String()
}

// Add keeps the last state of a key, and builds
// the same keys as [Key] and as the states' own Key methods.
func TestAddKeysAndReplaces(t *testing.T) {
	d := NewSet()
	first := events.EnrollmentState{ExtClassID: "c", Person: events.Person{ExtPersonID: "p", FirstName: "A"}}
	second := first
	second.FirstName = "B"
	d.Add(first)
	d.Add(second)
	d.Add(events.UserState{ExtUserID: "u"})
	d.Add(noteState{ID: "n"})
	for k, s := range d.All() {
		if want := string(s.Kind()) + "/" + s.Key(); k != want || Key(s) != want {
			t.Errorf("key %q, Key %q, want %q", k, Key(s), want)
		}
	}
	if got, _ := d.Get("enrollment/c#p"); !reflect.DeepEqual(got, second) {
		t.Errorf("enrollment/c#p = %+v, want the one added last", got)
	}
	if !d.inKeyOrder() {
		t.Error("a set added to in key order cannot be merged")
	}
	if len(Diff(d, d)) != 0 {
		t.Error("a set diffed with itself has changes")
	}
}
