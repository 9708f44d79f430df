package datahubsource

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/desired"
	"github.com/rollcall/rollcall/internal/events"
)

// Change is one desired state to publish, or one entity to remove.
type Change = desired.Change

// Mapper turns a tenant's roster into desired Class states.
type Mapper struct {
	Tenant string
}

const source = "datahub"

func (m Mapper) ext(kind, id string) string { return events.ExternalID(source, m.Tenant, kind, id) }

// Desired is the whole district's desired state in Class.
func (m Mapper) Desired(r *Roster) *desired.Set {
	ids := make([]string, 0, len(r.Sections))
	for id := range r.Sections {
		ids = append(ids, id)
	}
	teachers := make([]string, 0, len(r.Teachers))
	for id := range r.Teachers {
		teachers = append(teachers, id)
	}
	return m.scope(r, eventScope{sections: ids, teachers: teachers})
}

func (m Mapper) scope(r *Roster, sc eventScope) *desired.Set {
	d := desired.NewSet()
	for _, id := range sc.teachers {
		t, ok := r.Teachers[id]
		if !ok {
			continue
		}
		if u, note := m.user(t); note == "" {
			d.Add(u)
		} else {
			d.Hold(events.KindUser, m.ext("teacher", id), note)
		}
	}
	for _, id := range sc.sections {
		s, ok := r.Sections[id]
		if !ok {
			continue
		}
		m.section(r, s, d)
	}
	return d
}

func (m Mapper) user(t datahub.Teacher) (events.UserState, string) {
	u := events.UserState{ExtUserID: m.ext("teacher", t.ID), Email: t.Email, FirstName: t.Name.First, LastName: t.Name.Last, Roles: []string{"instructor"}}
	if u.Email == "" {
		return u, fmt.Sprintf("teacher %s has no email: Class users need one", t.ID)
	}
	if u.FirstName == "" && u.LastName == "" {
		return u, fmt.Sprintf("teacher %s has no name", t.ID)
	}
	return u, ""
}

func (m Mapper) person(kind, id string, name datahub.Name, email string) events.Person {
	return events.Person{ExtPersonID: m.ext(kind, id), Email: email, FirstName: name.First, LastName: name.Last}
}

// section adds a section's class and enrollments.
func (m Mapper) section(r *Roster, s datahub.Section, d *desired.Set) {
	classID := m.ext("section", s.ID)
	host, hasHost := r.Teachers[s.Teacher]
	teachers := slices.Clone(s.Teachers)
	if s.Teacher != "" && !slices.Contains(teachers, s.Teacher) {
		teachers = append(teachers, s.Teacher)
	}
	slices.Sort(teachers)
	if !hasHost || host.Email == "" {
		// Class creates a class with its host, so without a primary teacher
		// the class is neither created nor deleted: one already in Class
		// (its teacher left) stays, and its enrollments still follow the
		// section.
		d.Hold(events.KindClass, classID, fmt.Sprintf("section %s has no primary teacher with an email", s.ID))
	} else {
		d.Add(events.ClassState{
			ExtClassID:  classID,
			Name:        className(s),
			Description: classDescription(s),
			Host:        m.person("teacher", host.ID, host.Name, host.Email),
		})
	}
	for _, id := range teachers {
		t, ok := r.Teachers[id]
		if !ok {
			continue // not seen yet: its teachers.created event will add it
		}
		e := events.EnrollmentState{ExtClassID: classID, Person: m.person("teacher", id, t.Name, t.Email), Role: events.RoleTeacher}
		m.addEnrollment(d, e, "teacher", id)
	}
	for _, id := range s.Students {
		st, ok := r.Students[id]
		if !ok {
			continue
		}
		e := events.EnrollmentState{ExtClassID: classID, Person: m.person("student", id, st.Name, st.Email), Role: events.RoleStudent}
		m.addEnrollment(d, e, "student", id)
	}
}

func (m Mapper) addEnrollment(d *desired.Set, e events.EnrollmentState, kind, id string) {
	if e.FirstName == "" || e.LastName == "" {
		d.Hold(events.KindEnrollment, e.Key(), fmt.Sprintf("%s %s lacks a first or last name: Class enrollments need both", kind, id))
		return
	}
	d.AddEnrollment(e)
}

func className(s datahub.Section) string {
	for _, n := range []string{s.Name, s.CourseName, s.Subject} {
		if n != "" {
			return n
		}
	}
	return "Section " + s.ID
}

func classDescription(s datahub.Section) string {
	var parts []string
	for _, p := range []string{s.Subject, periodText(s.Period), s.Term.Name} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, " · ")
}

func periodText(p string) string {
	if p == "" {
		return ""
	}
	return "period " + p
}

// EventResult is what one event means for Class.
type EventResult struct {
	Changes []Change
	// Known is false for event types that do not affect Class; they are
	// counted and skipped.
	Known bool
	// Notes say why some states are withheld (no personal data).
	Notes []string
}

// Apply applies the event to the roster and returns the changes it causes.
// An error means the event is malformed: the roster is unchanged and the
// event is to be rejected.
func (m Mapper) Apply(r *Roster, ev datahub.Event) (EventResult, error) {
	sc, change, known, err := r.planEvent(ev)
	if err != nil || !known {
		return EventResult{Known: known}, err
	}
	before := m.scope(r, sc)
	change()
	after := m.scope(r, sc)
	return EventResult{Changes: desired.Diff(before, after), Known: true, Notes: after.Notes}, nil
}

// Resync compares the whole district before and after a full read.
func (m Mapper) Resync(before, after *Roster) EventResult {
	a := m.Desired(after)
	return EventResult{Changes: desired.Diff(m.Desired(before), a), Known: true, Notes: a.Notes}
}

// ResyncUnsettled is [Mapper.Resync] after full reads whose changes may have
// been published but were never saved (unsettled, their union): every state
// of after is published again, since such a read may have published another
// state of it, or been cut short before publishing it; and everything
// before or unsettled held that after does not is deleted.
func (m Mapper) ResyncUnsettled(before, unsettled, after *Roster) EventResult {
	a := m.Desired(after)
	changes := desired.Diff(desired.NewSet(), a)
	for _, c := range desired.Diff(m.Desired(before.Union(unsettled)), a) {
		if c.Op == events.OpDelete {
			changes = append(changes, c)
		}
	}
	return EventResult{Changes: changes, Known: true, Notes: a.Notes}
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// States lists the whole district's desired Class states, sorted by kind and
// key: what Class should hold (tests compare against it).
func (m Mapper) States(r *Roster) []events.KeyedState { return m.Desired(r).Sorted() }
