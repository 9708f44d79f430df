package hubmissource

import (
	"fmt"
	"time"
)

// SyntheticSchool builds a snapshot with sets×(perSet+1) enrollments, sets
// classes and staff users, for the diff benchmark; changed of the sets get a
// new member and a new name, as a busy day would.
func SyntheticSchool(sets, perSet, staff, changed int, at time.Time) *Snapshot {
	s := NewSnapshot()
	s.Taken, s.WindowStart, s.Timezone, s.AcademicYearID = at, at.Truncate(24*time.Hour), "Europe/London", "2026"
	for i := range staff {
		id := fmt.Sprintf("st%d", i)
		s.Staff[id] = Person{ID: id, FirstName: "Staff", LastName: fmt.Sprintf("S%d", i), Email: fmt.Sprintf("staff%d@school.example.org", i)}
	}
	students := sets * perSet / 4
	for i := range students {
		id := fmt.Sprintf("p%d", i)
		s.Students[id] = Person{ID: id, FirstName: "Pupil", LastName: fmt.Sprintf("P%d", i), Email: fmt.Sprintf("pupil%d@school.example.org", i)}
	}
	for i := range sets {
		id := fmt.Sprintf("set%d", i)
		set := Set{ID: id, Name: fmt.Sprintf("Set %d", i), StaffIDs: []string{fmt.Sprintf("st%d", i%staff)}, MembersRead: at}
		for k := range perSet {
			set.StudentIDs = append(set.StudentIDs, fmt.Sprintf("p%d", (i*perSet/4+k)%students))
		}
		if i < changed {
			set.Name += " (renamed)"
			set.StudentIDs = append(set.StudentIDs, fmt.Sprintf("p%d", (i*perSet/4+perSet)%students))
		}
		set.StudentCount = len(set.StudentIDs)
		s.Sets[id] = set
	}
	return s
}
