package desired

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/events"
)

// same must say what comparing the states' JSON (the contract) says, but
// for the two differences it documents.
func TestSameAgreesWithTheJSONContract(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	user := events.UserState{ExtUserID: "u", Email: "a@b.example", FirstName: "A", LastName: "B", Roles: []string{"instructor"}}
	class := events.ClassState{ExtClassID: "c", Name: "N", Description: "D", Host: events.Person{ExtPersonID: "p", Email: "h@b.example", FirstName: "H", LastName: "S"}}
	enr := events.EnrollmentState{ExtClassID: "c", Person: events.Person{ExtPersonID: "p", Email: "s@b.example", FirstName: "S", LastName: "T"}, Role: events.RoleStudent}
	sched := events.ScheduleState{ExtClassID: "c", WindowStart: at, WindowEnd: at.Add(24 * time.Hour), Timezone: "Europe/London",
		Sessions: []events.Session{{Start: at.Add(time.Hour), End: at.Add(2 * time.Hour)}}}
	variants := []events.KeyedState{user, class, enr, sched}
	mutate := []func(events.KeyedState) events.KeyedState{
		func(s events.KeyedState) events.KeyedState {
			u := s.(events.UserState)
			u.Email = "x@b.example"
			return u
		},
		func(s events.KeyedState) events.KeyedState { u := s.(events.UserState); u.FirstName = "X"; return u },
		func(s events.KeyedState) events.KeyedState {
			u := s.(events.UserState)
			u.Roles = append(u.Roles, "admin")
			return u
		},
		func(s events.KeyedState) events.KeyedState { c := s.(events.ClassState); c.Name = "X"; return c },
		func(s events.KeyedState) events.KeyedState {
			c := s.(events.ClassState)
			c.Host.Email = "x@b.example"
			return c
		},
		func(s events.KeyedState) events.KeyedState { c := s.(events.ClassState); c.Timezone = "UTC"; return c },
		func(s events.KeyedState) events.KeyedState {
			e := s.(events.EnrollmentState)
			e.Role = events.RoleTeacher
			return e
		},
		func(s events.KeyedState) events.KeyedState {
			e := s.(events.EnrollmentState)
			e.LastName = "X"
			return e
		},
		func(s events.KeyedState) events.KeyedState {
			e := s.(events.EnrollmentState)
			e.DisplayName = "X"
			return e
		},
		func(s events.KeyedState) events.KeyedState {
			x := s.(events.ScheduleState)
			x.Sessions = []events.Session{{Start: at.Add(3 * time.Hour), End: at.Add(4 * time.Hour)}}
			return x
		},
		func(s events.KeyedState) events.KeyedState {
			x := s.(events.ScheduleState)
			x.WindowEnd = x.WindowEnd.Add(time.Hour)
			return x
		},
		func(s events.KeyedState) events.KeyedState {
			x := s.(events.ScheduleState)
			x.Timezone = "UTC"
			return x
		},
	}
	jsonSame := func(a, b events.KeyedState) bool {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		return a.Kind() == b.Kind() && string(ja) == string(jb)
	}
	for _, a := range variants {
		for _, b := range variants {
			if got, want := same(a, b), jsonSame(a, b); got != want {
				t.Errorf("same(%T, %T) = %v, JSON says %v", a, b, got, want)
			}
		}
	}
	for i, m := range mutate {
		for _, a := range variants {
			func() {
				defer func() { _ = recover() }() // a mutation of another kind
				b := m(a)
				if got, want := same(a, b), jsonSame(a, b); got != want || got {
					t.Errorf("mutation %d of %T: same = %v, JSON says %v; want both false", i, a, got, want)
				}
			}()
		}
	}
	// The two documented differences: an empty and a missing list, and one
	// instant in two zones.
	noRoles, emptyRoles := user, user
	noRoles.Roles, emptyRoles.Roles = nil, []string{}
	if !same(noRoles, emptyRoles) {
		t.Error("nil and empty roles differ")
	}
	london := sched
	london.WindowStart = sched.WindowStart.In(time.FixedZone("BST", 3600))
	if !same(sched, london) {
		t.Error("one instant in two zones differs")
	}
}
