package desired

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/internal/events"
)

// referenceDiff is Diff as it was before the merge: every state looked up
// in the other set's map, then the changes sorted by a comparison that
// builds both keys. Diff must give exactly what it gives.
func referenceDiff(before, after *Set) []Change {
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

// randomSet adds random states in key order (so Diff merges), in key
// order with a repeat now and then (a replaced state), or in any order
// (so Diff looks up), and holds some keys.
func randomSet(r *rand.Rand) *Set {
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
	for _, s := range states {
		d.Add(s)
	}
	for range r.IntN(4) {
		s := randomState(r)
		d.Hold(s.Kind(), s.Key(), "")
	}
	return d
}

func TestDiffAgreesWithTheReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	merged := 0
	for i := range 20000 {
		before, after := randomSet(r), randomSet(r)
		if before.inKeyOrder() && after.inKeyOrder() {
			merged++
		}
		got, want := Diff(before, after), referenceDiff(before, after)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: Diff =\n%s\nthe reference =\n%s", i, changesText(got), changesText(want))
		}
	}
	// Both ways of diffing must have been tried often.
	if merged < 2000 || merged > 18000 {
		t.Errorf("%d of 20000 cases merged", merged)
	}
}

func changesText(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "\t%s %s %+v\n", c.Op, c.Key(), c.State)
	}
	return b.String()
}

// Add keeps the last state of a key, as the map it fills does, and builds
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
	for k, s := range d.States {
		if want := string(s.Kind()) + "/" + s.Key(); k != want || Key(s) != want {
			t.Errorf("key %q, Key %q, want %q", k, Key(s), want)
		}
	}
	if got := d.States["enrollment/c#p"]; !reflect.DeepEqual(got, second) {
		t.Errorf("enrollment/c#p = %+v, want the one added last", got)
	}
	if !d.inKeyOrder() {
		t.Error("a set added to in key order cannot be merged")
	}
	if len(Diff(d, d)) != 0 {
		t.Error("a set diffed with itself has changes")
	}
}
