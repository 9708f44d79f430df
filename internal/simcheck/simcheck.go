// Package simcheck says whether the Class simulator holds what a simulated
// source determines: it reads the source simulator's own state (datahubtest,
// hubmistest), maps it with the source's own mapper (datahubsource.Mapper,
// hubmissource.Mapper) to the desired Class state, and compares that with
// classtest's state, entity by entity. The demo uses it to decide its exit
// status; it is the approach of the chaos suite's check, made importable.
//
// What is compared, by key:
//
//   - "user <ext_user_id>": email, name ("First Last"), roles;
//   - "class <ext_class_id>": name and description;
//   - "enrollment <ext_class_id>#<ext_person_id>": email, first_name,
//     last_name and role;
//   - "dates <ext_class_id>": the class's dates (start-end, Unix seconds)
//     inside the window of its desired schedule, as their count and their
//     times; a class without one must have none.
//
// A difference names the key and the fields that differ, and quotes only
// the values that are short and hold no personal data (roles, a count):
// the demo prints differences to a terminal, and the rest are emails and
// names of pupils and staff (a class's name may hold a teacher's).
//
// Class enrolls a class's host itself, without an external id, and keeps
// that host when the primary teacher changes, so the host's own enrollment
// is not compared, and neither is the host. Entities the mapper holds as
// unknown (a section without a primary teacher, a set whose members were
// never read) are left out on both sides: the system neither creates nor
// deletes them.
package simcheck

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/desired"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/hubmissource"
)

// View is what Class holds (or must hold) for one tenant: each entity's
// compared fields, by key.
type View map[string]Fields

// Fields are an entity's compared fields, in an order fixed by its kind.
type Fields []Field

// Field is one compared field of an entity.
type Field struct {
	Name, Value string
	// Show says the value is short and holds no personal data, so a
	// difference may quote it.
	Show bool
}

func userFields(email, name string, roles []string) Fields {
	roles = slices.Clone(roles)
	slices.Sort(roles)
	return Fields{{Name: "email", Value: email}, {Name: "name", Value: name}, {Name: "roles", Value: strings.Join(roles, ","), Show: true}}
}

func classFields(name, description string) Fields {
	return Fields{{Name: "name", Value: name}, {Name: "description", Value: description}}
}

func enrollmentFields(email, first, last, role string) Fields {
	return Fields{{Name: "email", Value: email}, {Name: "first_name", Value: first}, {Name: "last_name", Value: last},
		{Name: "role", Value: role, Show: true}}
}

// datesFields are a class's dates, each "start-end" in Unix seconds. The
// times are no one's personal data, but a fortnight of them makes a line
// too long to read: their count is what a difference shows.
func datesFields(dates []string) Fields {
	sort.Strings(dates)
	return Fields{{Name: "count", Value: strconv.Itoa(len(dates)), Show: true}, {Name: "times", Value: strings.Join(dates, ",")}}
}

// Counts are the entities of one tenant that Class holds.
type Counts struct {
	Users, Classes, Enrollments, Dates int
}

// DataHubDesired is the desired Class state of a DataHub tenant's district
// as the simulator has it now, read through the client's own decoders.
func DataHubDesired(hub *datahubtest.Server, tenant string) (*desired.Set, error) {
	var teachers []datahub.Teacher
	for _, x := range hub.Teachers() {
		v, err := convert(x, datahub.DecodeTeacher)
		if err != nil {
			return nil, fmt.Errorf("teacher %s: %w", x.ID, err)
		}
		teachers = append(teachers, v)
	}
	var students []datahub.Student
	for _, x := range hub.Students() {
		v, err := convert(x, datahub.DecodeStudent)
		if err != nil {
			return nil, fmt.Errorf("student %s: %w", x.ID, err)
		}
		students = append(students, v)
	}
	var sections []datahub.Section
	for _, x := range hub.Sections() {
		v, err := convert(x, datahub.DecodeSection)
		if err != nil {
			return nil, fmt.Errorf("section %s: %w", x.ID, err)
		}
		sections = append(sections, v)
	}
	r := datahubsource.RosterOf(teachers, students, sections)
	return datahubsource.Mapper{Tenant: tenant}.Desired(r), nil
}

func convert[T any](v any, decode func(json.RawMessage) (T, error)) (T, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(raw)
}

// HUBmisDesired is the desired Class state of a HUBmis tenant's school as
// the simulator has it now: a snapshot with every part read at now (the
// current year's sets with their members, every teaching calendar over the
// lesson window from the start of now's UTC day, as the poller reads them),
// mapped by hubmissource.Mapper. tz is the tenant's configured time zone
// (empty: the school's); window is the tenant's lesson_window.
func HUBmisDesired(mis *hubmistest.Server, tenant, tz string, window time.Duration, now time.Time) *desired.Set {
	now = now.UTC()
	snap := hubmissource.NewSnapshot()
	snap.ID, snap.Taken, snap.Timezone = "simcheck", now, mis.Timezone()
	snap.WindowStart = now.Truncate(24 * time.Hour)
	snap.AcademicYearID = mis.CurrentAcademicYear().ID
	person := func(id, first, preferred, last, email string) hubmissource.Person {
		if preferred != "" {
			first = preferred
		}
		return hubmissource.Person{ID: id, FirstName: first, LastName: last, Email: email}
	}
	for _, s := range mis.Students() {
		snap.Students[s.ID] = person(s.ID, s.FirstName, s.PreferredName, s.LastName, s.Email)
	}
	for _, s := range mis.Staff() {
		// The client's TeachingStaff: a teaching role and a current status.
		if s.Teacher && (s.Status == "" || strings.EqualFold(s.Status, "current")) {
			snap.Staff[s.ID] = person(s.ID, s.FirstName, s.PreferredName, s.LastName, s.Email)
		}
	}
	to := snap.WindowStart.Add(window)
	lessons := map[string][]hubmissource.Lesson{} // by staff id
	for _, set := range mis.Sets() {
		if set.AcademicYearID != snap.AcademicYearID {
			continue
		}
		desc := set.ShortDescription
		if desc == "" {
			desc = set.Subject
		}
		staff := slices.Sorted(slices.Values(set.StaffIDs))
		students := slices.Sorted(slices.Values(set.StudentIDs))
		snap.Sets[set.ID] = hubmissource.Set{ID: set.ID, Name: set.Name, Description: desc,
			StudentCount: len(students), StaffIDs: staff, StudentIDs: students, MembersRead: now}
		for _, l := range mis.LessonsBetween(set.ID, snap.WindowStart, to) {
			for _, sid := range staff {
				lessons[sid] = append(lessons[sid], hubmissource.Lesson{SetID: set.ID, Start: l.Start.UTC(), End: l.End.UTC()})
			}
		}
	}
	for _, set := range snap.Sets {
		for _, sid := range set.StaffIDs {
			if _, ok := snap.Staff[sid]; ok {
				snap.Calendars[sid] = hubmissource.Calendar{From: snap.WindowStart, To: to, Read: now, Lessons: lessons[sid]}
			}
		}
	}
	return hubmissource.Mapper{Tenant: tenant, Timezone: tz}.Desired(snap)
}

// Got is what Class holds of the entities whose external ids start with
// prefix ("<source>:<tenant>:"), with each class's host email.
func Got(st classtest.State, prefix string) (view View, hosts map[string]string) {
	view, hosts = View{}, map[string]string{}
	for _, u := range st.Users {
		if !strings.HasPrefix(u.ExtUserID, prefix) {
			continue
		}
		view["user "+u.ExtUserID] = userFields(u.Email, u.UserName, u.Roles)
	}
	for _, c := range st.Classes {
		if !strings.HasPrefix(c.ExtClassID, prefix) {
			continue
		}
		view["class "+c.ExtClassID] = classFields(c.Name, c.Description)
		hosts[c.ExtClassID] = c.HostEmail
		for _, e := range c.Enrollments {
			if e.ExtPersonID == "" {
				continue // the host, enrolled by Class itself
			}
			view["enrollment "+events.EnrollmentKey(c.ExtClassID, e.ExtPersonID)] = enrollmentFields(e.Email, e.FirstName, e.LastName, e.Role)
		}
		if len(c.Dates) > 0 {
			dates := make([]string, 0, len(c.Dates))
			for _, d := range c.Dates {
				dates = append(dates, fmt.Sprintf("%d-%d", d.Start, d.End))
			}
			view["dates "+c.ExtClassID] = datesFields(dates)
		}
	}
	return view, hosts
}

// Want is the view the desired states give, with Class's hosts (from
// [Got]) to leave their own enrollments out. Keys in skip ("user <ext>",
// ...) are left out too: records Class refused, dead-lettered on purpose.
func Want(d *desired.Set, hosts map[string]string, skip map[string]bool) View {
	v := View{}
	for _, s := range d.Sorted() {
		switch s := s.(type) {
		case events.UserState:
			v["user "+s.ExtUserID] = userFields(s.Email, s.FirstName+" "+s.LastName, s.Roles)
		case events.ClassState:
			v["class "+s.ExtClassID] = classFields(s.Name, s.Description)
		case events.EnrollmentState:
			if s.Role == events.RoleTeacher && hosts[s.ExtClassID] == s.Email {
				continue
			}
			v["enrollment "+s.Key()] = enrollmentFields(s.Email, s.FirstName, s.LastName, s.Role)
		case events.ScheduleState:
			if len(s.Sessions) == 0 {
				continue
			}
			dates := make([]string, 0, len(s.Sessions))
			for _, x := range s.Sessions {
				dates = append(dates, fmt.Sprintf("%d-%d", x.Start.Unix(), x.End.Unix()))
			}
			v["dates "+s.ExtClassID] = datesFields(dates)
		}
	}
	for k := range skip {
		delete(v, k)
	}
	return v
}

// Compare lists how Class differs from the desired states of the tenant
// whose external ids start with prefix, sorted; none means equal. Entities
// the desired set holds as unknown and keys in skip are not compared.
func Compare(d *desired.Set, st classtest.State, prefix string, skip map[string]bool) []string {
	got, hosts := Got(st, prefix)
	want := Want(d, hosts, skip)
	// A schedule covers its window only: dates before it (yesterday's,
	// once the day has turned) are left alone, so they are not compared.
	for _, s := range d.All() {
		sch, ok := s.(events.ScheduleState)
		if !ok {
			continue
		}
		key := "dates " + sch.ExtClassID
		delete(got, key)
		for _, c := range st.Classes {
			if c.ExtClassID != sch.ExtClassID {
				continue
			}
			var dates []string
			for _, x := range c.Dates {
				if x.Start >= sch.WindowStart.Unix() && x.Start < sch.WindowEnd.Unix() {
					dates = append(dates, fmt.Sprintf("%d-%d", x.Start, x.End))
				}
			}
			if len(dates) > 0 {
				got[key] = datesFields(dates)
			}
		}
	}
	for k := range skip {
		delete(got, k)
	}
	for unknown := range d.Unknown {
		kind, key, _ := strings.Cut(unknown, "/")
		if class, ok := strings.CutSuffix(key, "#*"); ok && kind == string(events.KindEnrollment) {
			// A set whose members are unknown: its enrollments are not compared.
			for k := range maps.Keys(got) {
				if strings.HasPrefix(k, "enrollment "+class+"#") {
					delete(got, k)
				}
			}
			for k := range maps.Keys(want) {
				if strings.HasPrefix(k, "enrollment "+class+"#") {
					delete(want, k)
				}
			}
			continue
		}
		name := kind
		if kind == string(events.KindSchedule) {
			name = "dates"
		}
		delete(got, name+" "+key)
		delete(want, name+" "+key)
	}
	return Difference(want, got)
}

// Difference lists how got differs from want, sorted: "<key> missing",
// "<key> unexpected", or "<key> differs: " and the fields that differ, e.g.
// `user datahub:t:student:7 differs: email; roles "instructor", want
// "student"`. Only a field marked [Field.Show] has its values quoted.
func Difference(want, got View) []string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			out = append(out, k+" missing")
		} else if !slices.Equal(g, w) {
			out = append(out, k+" differs: "+fieldsDiffering(g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, k+" unexpected")
		}
	}
	sort.Strings(out)
	return out
}

// fieldsDiffering names the fields of got that differ from want's, "; "
// between them. Both come from the same constructor, so field i is the same
// field on both sides.
func fieldsDiffering(got, want Fields) string {
	var parts []string
	for i := range max(len(got), len(want)) {
		var g, w Field
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		switch {
		case g == w:
		case g.Show && w.Show && g.Name == w.Name:
			parts = append(parts, fmt.Sprintf("%s %q, want %q", w.Name, g.Value, w.Value))
		default:
			parts = append(parts, cmp.Or(w.Name, g.Name))
		}
	}
	return strings.Join(parts, "; ")
}

// Count counts what Class holds of the entities whose external ids start
// with prefix: users, classes, enrollments (hosts included) and dates.
func Count(st classtest.State, prefix string) Counts {
	var c Counts
	for _, u := range st.Users {
		if strings.HasPrefix(u.ExtUserID, prefix) {
			c.Users++
		}
	}
	for _, cl := range st.Classes {
		if strings.HasPrefix(cl.ExtClassID, prefix) {
			c.Classes++
			c.Enrollments += len(cl.Enrollments)
			c.Dates += len(cl.Dates)
		}
	}
	return c
}
