// Package datahubsource is the DataHub source of the poller: it follows a
// district's event feed and publishes the change messages that keep Class in
// step. The mapping from DataHub's roster to desired Class states is pure
// (this file and mapping.go); source.go does the I/O.
package datahubsource

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/rollcall/rollcall/internal/clients/datahub"
)

// Roster is the poller's projection of a district: every teacher, student
// and section it has seen, as of the last event applied. It is what lets one
// event (a student's rename, a section's deletion) turn into the messages of
// every entity it touches.
type Roster struct {
	Teachers map[string]datahub.Teacher `json:"teachers"`
	Students map[string]datahub.Student `json:"students"`
	Sections map[string]datahub.Section `json:"sections"`
}

// NewRoster returns an empty roster.
func NewRoster() *Roster {
	return &Roster{Teachers: map[string]datahub.Teacher{}, Students: map[string]datahub.Student{}, Sections: map[string]datahub.Section{}}
}

// RosterOf builds a roster from full lists.
func RosterOf(teachers []datahub.Teacher, students []datahub.Student, sections []datahub.Section) *Roster {
	r := NewRoster()
	for _, t := range teachers {
		r.Teachers[t.ID] = t
	}
	for _, s := range students {
		r.Students[s.ID] = s
	}
	for _, s := range sections {
		r.Sections[s.ID] = s
	}
	return r
}

// Clone returns a copy that shares nothing mutable with r.
func (r *Roster) Clone() *Roster {
	c := &Roster{Teachers: maps.Clone(r.Teachers), Students: maps.Clone(r.Students), Sections: maps.Clone(r.Sections)}
	for id, s := range c.Sections {
		s.Teachers, s.Students = slices.Clone(s.Teachers), slices.Clone(s.Students)
		c.Sections[id] = s
	}
	return c
}

// Union returns a roster with every record of r and of o (nil is empty); a
// section in both keeps o's record with the students and teachers of both,
// so that every enrollment either roster maps to is in the union's.
func (r *Roster) Union(o *Roster) *Roster {
	u := r.Clone()
	if o == nil {
		return u
	}
	maps.Copy(u.Teachers, o.Teachers)
	maps.Copy(u.Students, o.Students)
	for id, sec := range o.Sections {
		if have, ok := u.Sections[id]; ok {
			sec.Students = union(have.Students, sec.Students)
			sec.Teachers = union(have.Teachers, sec.Teachers)
		} else {
			sec.Students, sec.Teachers = slices.Clone(sec.Students), slices.Clone(sec.Teachers)
		}
		u.Sections[id] = sec
	}
	return u
}

// sectionsOf lists the sections a person is in (as a student, a teacher or
// the primary teacher), sorted.
func (r *Roster) sectionsOf(personID string) []string {
	var out []string
	for id, s := range r.Sections {
		if s.Teacher == personID || slices.Contains(s.Teachers, personID) || slices.Contains(s.Students, personID) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Outcome of applying one event to the roster.
type eventScope struct {
	sections []string // sections whose desired states may change
	teachers []string // teachers whose user may change
}

// errMalformed wraps why an event cannot be applied; the event is rejected.
type errMalformed struct{ reason string }

func (e *errMalformed) Error() string { return e.reason }

func malformedf(format string, args ...any) error {
	return &errMalformed{reason: fmt.Sprintf(format, args...)}
}

// planEvent reads the event against the roster and returns the scope it
// touches and the change to make, without making it, so the caller can read
// the scope's state before. known is false for a type that does not affect
// Class.
func (r *Roster) planEvent(ev datahub.Event) (scope eventScope, change func(), known bool, err error) {
	action := ev.Action()
	switch action {
	case "created", "updated", "deleted":
	default:
		return scope, nil, false, nil
	}
	resource := ev.Resource()
	switch resource {
	case "teachers", "students", "sections":
	default:
		// Districts, schools, contacts, admins, and whatever DataHub adds:
		// nothing of them reaches Class.
		return scope, nil, false, nil
	}
	id, err := objectID(ev)
	if err != nil {
		return scope, nil, true, err
	}
	switch resource {
	case "teachers":
		scope.sections = r.sectionsOf(id)
		scope.teachers = []string{id}
		if action == "deleted" {
			return scope, func() {
				delete(r.Teachers, id)
				// DataHub, like Clever, takes a departed teacher out of
				// their sections without events of its own.
				for _, sid := range scope.sections {
					s := r.Sections[sid]
					s.Teachers = slices.DeleteFunc(slices.Clone(s.Teachers), func(t string) bool { return t == id })
					if s.Teacher == id {
						s.Teacher = ""
					}
					r.Sections[sid] = s
				}
			}, true, nil
		}
		t, err := merge(r.Teachers[id], ev, datahub.DecodeTeacher)
		if err != nil {
			return scope, nil, true, err
		}
		return scope, func() { r.Teachers[id] = t }, true, nil
	case "students":
		scope.sections = r.sectionsOf(id)
		if action == "deleted" {
			return scope, func() {
				delete(r.Students, id)
				for _, sid := range scope.sections {
					s := r.Sections[sid]
					s.Students = slices.DeleteFunc(slices.Clone(s.Students), func(p string) bool { return p == id })
					r.Sections[sid] = s
				}
			}, true, nil
		}
		st, err := merge(r.Students[id], ev, datahub.DecodeStudent)
		if err != nil {
			return scope, nil, true, err
		}
		return scope, func() { r.Students[id] = st }, true, nil
	default: // sections
		scope.sections = []string{id}
		if action == "deleted" {
			return scope, func() { delete(r.Sections, id) }, true, nil
		}
		sec, err := merge(r.Sections[id], ev, datahub.DecodeSection)
		if err != nil {
			return scope, nil, true, err
		}
		return scope, func() { r.Sections[id] = sec }, true, nil
	}
}

func objectID(ev datahub.Event) (string, error) {
	if len(ev.Object) == 0 {
		return "", malformedf("%s event %s has no data.object", ev.Type, ev.ID)
	}
	var o struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(ev.Object, &o); err != nil {
		return "", malformedf("%s event %s: data.object is not an object", ev.Type, ev.ID)
	}
	var id string
	if json.Unmarshal(o.ID, &id) != nil || id == "" {
		return "", malformedf("%s event %s: data.object has no id", ev.Type, ev.ID)
	}
	return id, nil
}

// merge overlays the event's object on the known state: some updates carry
// only the changed fields, and a missing field must not erase a known one.
func merge[T any](known T, ev datahub.Event, decode func(json.RawMessage) (T, error)) (T, error) {
	base, err := json.Marshal(known)
	if err != nil {
		return known, err
	}
	fields := map[string]json.RawMessage{}
	if err := json.Unmarshal(base, &fields); err != nil {
		return known, err
	}
	var update map[string]json.RawMessage
	if err := json.Unmarshal(ev.Object, &update); err != nil {
		return known, malformedf("%s event %s: data.object is not an object", ev.Type, ev.ID)
	}
	maps.Copy(fields, update)
	mergedJSON, err := json.Marshal(fields)
	if err != nil {
		return known, err
	}
	out, err := decode(mergedJSON)
	if err != nil {
		return known, malformedf("%s event %s: %v", ev.Type, ev.ID, err)
	}
	return out, nil
}
