// Package hubmissource is the HUBmis source of the poller. HUBmis has no
// event feed and a hard rate limit, so the source takes snapshots of a
// school within a request budget (planner.go), maps each to the desired
// Class state and diffs it against the last committed one (this file, pure),
// and publishes the difference (source.go).
package hubmissource

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/desired"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/valve"
)

// Person is a student or a member of staff.
type Person struct {
	ID        string `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email,omitempty"`
}

// Lesson is one timetabled lesson of a set, as a staff calendar lists it.
type Lesson struct {
	SetID string    `json:"set_id"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Calendar is one member of staff's timetable over [From, To), read at Read.
type Calendar struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Read    time.Time `json:"read"`
	Lessons []Lesson  `json:"lessons"`
}

// Set is a subject set: a Class class.
type Set struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// StudentCount and StaffIDs come with the list of sets, so a change of
	// either is seen every cycle at no extra cost; the members themselves
	// cost a request per set.
	StudentCount int      `json:"student_count"`
	StaffIDs     []string `json:"staff_ids"`
	StudentIDs   []string `json:"student_ids"`
	// MembersRead is when StudentIDs were read; zero if never.
	MembersRead time.Time `json:"members_read,omitzero"`
}

// Snapshot is what the source knows of a school at one time. Parts not
// re-read in a cycle are carried over from the previous snapshot with their
// read times, so a snapshot is always complete and says how old each part is.
type Snapshot struct {
	ID             string    `json:"id"`
	Taken          time.Time `json:"taken"`
	AcademicYearID string    `json:"academic_year_id"`
	// YearEnd is when the academic year ends: after a rollover, last year's
	// classes stay until then.
	YearEnd  time.Time         `json:"year_end,omitzero"`
	Timezone string            `json:"timezone"`
	Staff    map[string]Person `json:"staff"`
	Students map[string]Person `json:"students"`
	Sets     map[string]Set    `json:"sets"`
	// Calendars per staff id: lessons are only reachable through them.
	Calendars map[string]Calendar `json:"calendars"`
	// WindowStart is where this snapshot's schedules start (the start of
	// its day): dates before it are never touched.
	WindowStart time.Time `json:"window_start"`
	// Pending holds, per "<kind>/<key>", the deletions waiting out the grace
	// policy: the message and the consecutive snapshots the entity has been
	// missing from.
	Pending map[string]PendingDelete `json:"pending,omitempty"`
	// Outbox is what this snapshot's cycle publishes, saved with it before
	// it is published: a poller that dies in between publishes it at its
	// next cycle (the same message ids, so the stream drops what it has).
	// Saved first, the snapshot is the base of the next diff whatever
	// happened, so an entity this cycle adds and the next one no longer
	// finds is deleted, not left behind in Class.
	Outbox []valve.Held `json:"outbox,omitempty"`
	// Retired are last year's sets kept until the old year ends.
	Retired   map[string]Set `json:"retired,omitempty"`
	RetiredAt time.Time      `json:"retired_until,omitzero"`
	// ended are the ids of sets whose academic year ended since the last
	// snapshot: their deletions are the rollover, not an accident, and do
	// not count against the safety valve.
	ended map[string]bool
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{Staff: map[string]Person{}, Students: map[string]Person{}, Sets: map[string]Set{},
		Calendars: map[string]Calendar{}, Pending: map[string]PendingDelete{}}
}

// Oldest is the read time of the oldest data the snapshot holds (set
// members and staff calendars): the staleness a cycle reports.
func (s *Snapshot) Oldest() time.Time {
	var oldest time.Time
	older := func(t time.Time) {
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	for _, set := range s.Sets {
		older(set.MembersRead)
	}
	for _, c := range s.Calendars {
		older(c.Read)
	}
	if oldest.IsZero() {
		return s.Taken
	}
	return oldest
}

// PendingDelete is a deletion waiting for the entity to stay missing.
type PendingDelete struct {
	Missing int        `json:"missing"`
	Msg     valve.Held `json:"msg"`
}

// Mapper maps a snapshot to the desired Class state of one tenant.
type Mapper struct {
	Tenant string
	// Timezone is the tenant's configured zone; the school's is used when empty.
	Timezone string
}

const source = "hubmis"

func (m Mapper) ext(kind, id string) string { return events.ExternalID(source, m.Tenant, kind, id) }

// externalIDs builds a mapping's external ids ([events.ExternalID]) into
// shared buffers, many ids to an allocation: a school's mapping builds one
// per enrollment, 100k, and one allocation each is as many objects to
// allocate and for the collector to mark.
type externalIDs struct {
	tenant string
	// buf is a pointer, so a copied externalIDs does not trip the
	// Builder's copy check.
	buf *strings.Builder
}

// externalIDChunk is the most bytes of ids that share an allocation.
const externalIDChunk = 16 << 10

// id is [events.ExternalID] of this source and tenant.
func (x *externalIDs) id(kind, id string) string {
	n := len(source) + len(x.tenant) + len(kind) + len(id) + 3
	if x.buf == nil || x.buf.Cap()-x.buf.Len() < n {
		// The ids in the old buffer keep it.
		x.buf = &strings.Builder{}
		x.buf.Grow(max(n, externalIDChunk))
	}
	start := x.buf.Len()
	x.buf.WriteString(source)
	x.buf.WriteByte(':')
	x.buf.WriteString(x.tenant)
	x.buf.WriteByte(':')
	x.buf.WriteString(kind)
	x.buf.WriteByte(':')
	x.buf.WriteString(id)
	// The Builder only ever appends, so an id taken from it never changes.
	return x.buf.String()[start:]
}

// Desired is the school's desired Class state: teaching staff as users,
// sets as classes hosted by their first member of staff, members as
// enrollments, and lessons inside the window as the class's schedule.
func (m Mapper) Desired(s *Snapshot) *desired.Set {
	size := len(s.Staff) + len(s.Retired)
	for _, set := range s.Sets {
		size += 2 + len(set.StudentIDs) + len(set.StaffIDs) // class, schedule, enrollments
	}
	d := desired.NewSetSized(size)
	tz := m.Timezone
	if tz == "" {
		tz = s.Timezone
	}
	teaching := map[string]bool{}
	ids := &externalIDs{tenant: m.Tenant}
	sets := s.Sets
	if len(s.Retired) > 0 {
		sets = maps.Clone(s.Sets)
		maps.Copy(sets, s.Retired)
	}
	// A set's enrollments are added in key order (sets in id order, each
	// set's members sorted), so the desired set is in key order per kind
	// and the diff merges two sets instead of looking up every entity.
	var enrollments []events.EnrollmentState
	for _, id := range slices.Sorted(maps.Keys(sets)) {
		set := sets[id]
		enrollments = enrollments[:0]
		classID := ids.id("set", id)
		var host *Person
		for _, sid := range set.StaffIDs {
			if p, ok := s.Staff[sid]; ok && p.Email != "" {
				host = &p
				break
			}
		}
		if host == nil {
			d.Hold(events.KindClass, classID, fmt.Sprintf("set %s has no member of staff with an email", id))
		} else {
			d.Add(events.ClassState{
				ExtClassID: classID, Name: set.Name, Description: set.Description, Timezone: tz,
				Host: events.Person{ExtPersonID: ids.id("staff", host.ID), Email: host.Email, FirstName: host.FirstName, LastName: host.LastName},
			})
		}
		for _, sid := range set.StaffIDs {
			p, ok := s.Staff[sid]
			if !ok {
				continue
			}
			teaching[sid] = true
			enrollments = m.enroll(enrollments, d, classID, ids.id("staff", p.ID), "staff", p, events.RoleTeacher)
		}
		if set.MembersRead.IsZero() {
			// Never read (the budget ran out): nothing is known of its
			// members, so nothing is deleted either.
			addSorted(d, enrollments)
			d.Hold(events.KindEnrollment, classID+"#*", "")
			continue
		}
		for _, pid := range set.StudentIDs {
			if p, ok := s.Students[pid]; ok {
				enrollments = m.enroll(enrollments, d, classID, ids.id("student", p.ID), "student", p, events.RoleStudent)
			}
		}
		addSorted(d, enrollments)
		if st, ok := s.schedule(set, classID, tz); ok {
			d.Add(st)
		} else {
			// No calendar of its staff read yet: its dates are unknown, not
			// gone.
			d.Hold(events.KindSchedule, classID, "")
		}
	}
	for _, id := range slices.Sorted(maps.Keys(teaching)) {
		p := s.Staff[id]
		if p.Email == "" || (p.FirstName == "" && p.LastName == "") {
			d.Hold(events.KindUser, m.ext("staff", id), fmt.Sprintf("staff %s lacks an email or a name", id))
			continue
		}
		d.Add(events.UserState{ExtUserID: m.ext("staff", id), Email: p.Email, FirstName: p.FirstName, LastName: p.LastName, Roles: []string{"instructor"}})
	}
	return d
}

// schedule is a set's lessons from its staff's calendars, over the part of
// the window every one of those calendars covers (a calendar read days ago
// says nothing of the days after it). The same lesson on two teachers'
// calendars is one date.
func (s *Snapshot) schedule(set Set, classID, tz string) (events.ScheduleState, bool) {
	var end time.Time
	var cals []Calendar
	for _, sid := range set.StaffIDs {
		c, ok := s.Calendars[sid]
		if !ok {
			continue
		}
		cals = append(cals, c)
		if end.IsZero() || c.To.Before(end) {
			end = c.To
		}
	}
	if len(cals) == 0 || s.WindowStart.IsZero() || !s.WindowStart.Before(end) {
		return events.ScheduleState{}, false
	}
	st := events.ScheduleState{ExtClassID: classID, WindowStart: s.WindowStart, WindowEnd: end, Timezone: tz}
	seen := map[[2]int64]bool{}
	for _, c := range cals {
		for _, l := range c.Lessons {
			k := [2]int64{l.Start.Unix(), l.End.Unix()}
			if l.SetID != set.ID || seen[k] || l.Start.Before(st.WindowStart) || !l.Start.Before(end) || !l.Start.Before(l.End) {
				continue
			}
			seen[k] = true
			st.Sessions = append(st.Sessions, events.Session{Start: l.Start, End: l.End})
		}
	}
	slices.SortFunc(st.Sessions, func(a, b events.Session) int { return a.Start.Compare(b.Start) })
	return st, true
}

// enroll appends p's enrollment in the class to enrollments, or holds it
// in d if Class could not take it. personID is p's external id.
func (m Mapper) enroll(enrollments []events.EnrollmentState, d *desired.Set, classID, personID, kind string, p Person, role string) []events.EnrollmentState {
	e := events.EnrollmentState{ExtClassID: classID, Role: role,
		Person: events.Person{ExtPersonID: personID, Email: p.Email, FirstName: p.FirstName, LastName: p.LastName}}
	if e.FirstName == "" || e.LastName == "" {
		d.Hold(events.KindEnrollment, e.Key(), fmt.Sprintf("%s %s lacks a first or last name", kind, p.ID))
		return enrollments
	}
	return append(enrollments, e)
}

// addSorted adds one class's enrollments to d in key order: the key is the
// class id and the person's, so by person. A person listed twice is added
// twice, the later replacing the earlier, as before the sort.
func addSorted(d *desired.Set, enrollments []events.EnrollmentState) {
	slices.SortStableFunc(enrollments, func(a, b events.EnrollmentState) int {
		return strings.Compare(a.ExtPersonID, b.ExtPersonID)
	})
	for _, e := range enrollments {
		d.AddEnrollment(e)
	}
}

// Diff is what turns the previous snapshot's desired state into the next's,
// with a set whose members were never read holding its enrollments.
func (m Mapper) Diff(prev, next *Snapshot) []desired.Change {
	_, _, changes := m.diff(prev, next)
	return changes
}

// diff also returns the two desired sets, which publishing needs again.
func (m Mapper) diff(prev, next *Snapshot) (before, after *desired.Set, changes []desired.Change) {
	before, after = m.Desired(prev), m.Desired(next)
	// "enrollment/<class>#*" in Unknown holds every enrollment of that class.
	held := map[string]bool{}
	for k := range after.Unknown {
		if class, ok := strings.CutSuffix(k, "#*"); ok {
			if class, ok := strings.CutPrefix(class, string(events.KindEnrollment)+"/"); ok {
				held[class] = true
			}
		}
	}
	if len(held) > 0 {
		for e := range before.Enrollments() {
			if held[e.ExtClassID] {
				after.Unknown[desired.Key(e)] = true
			}
		}
	}
	return before, after, desired.Diff(before, after)
}
