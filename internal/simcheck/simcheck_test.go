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
