// Package desired holds the desired Class states a source derives from its
// roster, and turns two of them into the changes to publish. Both sources
// (the DataHub feed, the HUBmis snapshots) compute a full or scoped desired
// set and diff it against the previous one, so a change of any field, a
// removal, or an entity that is now unknown is handled the same way.
package desired

import (
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
func Key(s events.KeyedState) string { return string(s.Kind()) + "/" + s.Key() }

// Set is the desired states of a scope, and the keys whose state cannot be
// known now (a class without a host): those are neither upserted nor
// deleted.
type Set struct {
	States  map[string]events.KeyedState
	Unknown map[string]bool
	// Notes say why states are unknown, without personal data.
	Notes []string
}

// NewSet returns an empty set.
func NewSet() *Set { return NewSetSized(0) }

// NewSetSized returns an empty set with room for about n states, so a large
// school's set is not rehashed as it grows.
func NewSetSized(n int) *Set {
	return &Set{States: make(map[string]events.KeyedState, n), Unknown: map[string]bool{}}
}

// Add adds a state.
func (d *Set) Add(s events.KeyedState) { d.States[Key(s)] = s }

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
	Sort(out)
	return out
}

var rank = map[events.Kind]int{events.KindUser: 0, events.KindClass: 1, events.KindEnrollment: 2, events.KindSchedule: 3}

// Sort orders changes as [Diff] does.
func Sort(cs []Change) {
	slices.SortFunc(cs, func(a, b Change) int {
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
		return strings.Compare(a.Key(), b.Key())
	})
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
