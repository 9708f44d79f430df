package simcheck

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/desired"
	"github.com/rollcall/rollcall/internal/events"
)

func TestAnEmptyClassMissesEverythingTheSourcesDetermine(t *testing.T) {
	hub := datahubtest.New(datahubtest.Options{Seed: 3})
	t.Cleanup(hub.Close)
	hub.Populate(2, 6, 2, 3)
	d, err := DataHubDesired(hub, "t1")
	if err != nil {
		t.Fatal(err)
	}
	diff := Compare(d, classtest.State{}, "datahub:t1:", nil)
	want := Want(d, nil, nil)
	if len(diff) != len(want) || len(diff) == 0 {
		t.Fatalf("%d differences for %d wanted entities", len(diff), len(want))
	}
	for _, l := range diff {
		if !strings.HasSuffix(l, " missing") {
			t.Errorf("unexpected difference %q", l)
		}
	}

	mis := hubmistest.New(hubmistest.Options{Seed: 4})
	t.Cleanup(mis.Close)
	mis.Populate(6, 2, 2, 2)
	hm := HUBmisDesired(mis, "t2", "", 14*24*time.Hour, time.Now())
	keys := slices.Collect(maps.Keys(Want(hm, nil, nil)))
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "dates hubmis:t2:set:") }) {
		t.Error("no class dates in the HUBmis school's desired state")
	}
}

func TestHeldAndSkippedEntitiesAreNotCompared(t *testing.T) {
	d := desired.NewSet()
	class := events.ExternalID("datahub", "t", "section", "s1")
	d.Add(events.EnrollmentState{ExtClassID: class, Role: events.RoleStudent,
		Person: events.Person{ExtPersonID: "datahub:t:student:p1", Email: "p1@example.org", FirstName: "P", LastName: "One"}})
	d.Add(events.UserState{ExtUserID: "datahub:t:teacher:bad", Email: "bad email", FirstName: "B", LastName: "Ad", Roles: []string{"instructor"}})
	d.Hold(events.KindClass, class, "no primary teacher")
	st := classtest.State{Classes: []classtest.Class{{ExtClassID: class, Name: "Anything", HostEmail: "h@example.org",
		Enrollments: []classtest.Enrollment{{ExtPersonID: "datahub:t:student:p1", Email: "p1@example.org", FirstName: "P", LastName: "One", Role: "student"}}}}}
	if diff := Compare(d, st, "datahub:t:", map[string]bool{"user datahub:t:teacher:bad": true}); len(diff) > 0 {
		t.Errorf("differences: %v", diff)
	}
	st.Classes[0].Enrollments = nil
	if diff := Compare(d, st, "datahub:t:", map[string]bool{"user datahub:t:teacher:bad": true}); len(diff) != 1 || !strings.Contains(diff[0], "missing") {
		t.Errorf("a missing enrollment of a held class: %v", diff)
	}
}

// TestDifferencesNameFieldsNotValues: the demo prints differences to its
// terminal when a stage times out, so a line names the entity and the
// fields that differ, never an email or a name.
func TestDifferencesNameFieldsNotValues(t *testing.T) {
	class := events.ExternalID("datahub", "t", "section", "s1")
	pupil := events.Person{ExtPersonID: "datahub:t:student:p1", Email: "zoe.bronte@school.example", FirstName: "Zoë", LastName: "Brontë"}
	window := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	d := desired.NewSet()
	d.Add(events.UserState{ExtUserID: pupil.ExtPersonID, Email: pupil.Email, FirstName: pupil.FirstName, LastName: pupil.LastName, Roles: []string{"student"}})
	d.Add(events.ClassState{ExtClassID: class, Name: "Maths with Ms Austen", Description: "7A"})
	d.Add(events.EnrollmentState{ExtClassID: class, Role: events.RoleStudent, Person: pupil})
	d.Add(events.ScheduleState{ExtClassID: class, WindowStart: window, WindowEnd: window.Add(7 * 24 * time.Hour),
		Sessions: []events.Session{{Start: window.Add(9 * time.Hour), End: window.Add(10 * time.Hour)}, {Start: window.Add(33 * time.Hour), End: window.Add(34 * time.Hour)}}})
	st := classtest.State{
		Users: []classtest.User{{ExtUserID: pupil.ExtPersonID, Email: "zoe.b@school.example", UserName: "Zoë Bronté", Roles: []string{"instructor"}}},
		Classes: []classtest.Class{{ExtClassID: class, Name: "Maths with Mrs Austen", Description: "7A", HostEmail: "jane.austen@school.example",
			Enrollments: []classtest.Enrollment{{ExtPersonID: pupil.ExtPersonID, Email: pupil.Email, FirstName: "Zoe", LastName: pupil.LastName, Role: "student"}},
			Dates:       []classtest.ClassDate{{Start: window.Add(9 * time.Hour).Unix(), End: window.Add(10 * time.Hour).Unix()}}}},
	}
	diff := Compare(d, st, "datahub:t:", nil)
	want := []string{
		"class " + class + " differs: name",
		"dates " + class + ` differs: count "1", want "2"; times`,
		"enrollment " + class + "#" + pupil.ExtPersonID + " differs: first_name",
		"user " + pupil.ExtPersonID + ` differs: email; name; roles "instructor", want "student"`,
	}
	if !slices.Equal(diff, want) {
		t.Errorf("differences\n got %q\nwant %q", diff, want)
	}
	for _, l := range diff {
		for _, leak := range []string{"zoe", "Zo", "Bront", "school.example", "Austen"} {
			if strings.Contains(l, leak) {
				t.Errorf("difference %q holds %q", l, leak)
			}
		}
	}
}
