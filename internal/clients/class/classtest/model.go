package classtest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is a deep copy of the simulator's data, for assertions.
type State struct {
	Users   []User  // sorted by ID
	Classes []Class // regular and deferred, sorted by ExtClassID then ClassID
}

// User is a Class user (a non-learner).
type User struct {
	ID        int64
	ExtUserID string
	Email     string
	UserName  string
	Roles     []string
}

// Class is a regular or deferred class with its enrollments and dates.
type Class struct {
	ClassID     string
	ExtClassID  string
	Name        string
	Description string
	HostEmail   string
	HostName    string // "First Last", as the API's host field
	Timezone    string
	Deferred    bool
	DeferredID  int64        // 0 for a regular class
	Enrollments []Enrollment // sorted by Email
	Dates       []ClassDate  // sorted by Start, End
}

// Enrollment is one person's enrollment in a class.
type Enrollment struct {
	StudentID   string
	ExtPersonID string
	Email       string
	FirstName   string
	LastName    string
	DisplayName string
	Role        string
}

// ClassDate is one scheduled meeting date of a class (Unix seconds).
type ClassDate struct {
	ScheduleID string
	Start, End int64
}

// Duplicate is a side effect that happened twice, e.g. an enrollment posted twice.
type Duplicate struct {
	Kind   string // "class", "enrollment" or "schedule"
	Detail string // ids only, never names or emails
}

// Kinds of [Duplicate].
const (
	DuplicateClass      = "class"
	DuplicateEnrollment = "enrollment"
	DuplicateSchedule   = "schedule"
)

type userRec struct {
	id    int64
	ext   string
	email string
	name  string
	roles []string
}

type classRec struct {
	id, ext, name, desc                         string
	hostEmail, hostFirst, hostLast, hostDisplay string
	timezone, meetingID, password               string
	deferred                                    bool
	deferredID                                  int64
	created, updated                            time.Time
	enrollments                                 []*enrollRec // in insertion order
	dates                                       []*dateRec   // in insertion order
}

func (c *classRec) hostName() string { return c.hostFirst + " " + c.hostLast }

type enrollRec struct {
	studentID, extPersonID, email, first, last, display, role string
	seq                                                       int64 // the deferred answer's "id"
	created, updated                                          time.Time
}

// userName is the API's user_name: the display name, else "First Last".
func (e *enrollRec) userName() string {
	if e.display != "" {
		return e.display
	}
	return strings.TrimSpace(e.first + " " + e.last)
}

type dateRec struct {
	id         string
	start, end int64
	timezone   string
}

// store is the simulator's data; every access holds Server.mu.
type store struct {
	users      []*userRec // by id
	nextUserID int64

	classes    []*classRec // in creation order, as GET all answers
	byID       map[string]*classRec
	byExt      map[string]*classRec
	byDeferred map[int64]*classRec
	nextDefID  int64
	nextSeq    int64

	dups []Duplicate
}

func newStore() store {
	return store{
		nextUserID: 1,
		byID:       map[string]*classRec{},
		byExt:      map[string]*classRec{},
		byDeferred: map[int64]*classRec{},
		nextDefID:  1,
		nextSeq:    1,
	}
}

func (st *store) addClass(c *classRec) {
	if c.ext != "" {
		// The exists check refuses a second ext_class_id before we get here; this is the
		// invariant check that would catch a simulator bug letting one through.
		if prev := st.byExt[c.ext]; prev != nil && prev != c {
			st.dups = append(st.dups, Duplicate{Kind: DuplicateClass,
				Detail: fmt.Sprintf("ext_class_id %s: classes %s and %s", c.ext, prev.id, c.id)})
		}
		st.byExt[c.ext] = c
	}
	st.byID[c.id] = c
	if c.deferred {
		st.byDeferred[c.deferredID] = c
	}
	st.classes = append(st.classes, c)
}

func (st *store) removeClass(c *classRec) {
	delete(st.byID, c.id)
	if c.ext != "" && st.byExt[c.ext] == c {
		delete(st.byExt, c.ext)
	}
	if c.deferred {
		delete(st.byDeferred, c.deferredID)
	}
	st.classes = slices.DeleteFunc(st.classes, func(x *classRec) bool { return x == c })
}

// addDate adds a date to a class, recording a duplicate when one with the same start
// and end is already there.
func (st *store) addDate(c *classRec, d *dateRec) {
	for _, x := range c.dates {
		if x.start == d.start && x.end == d.end {
			st.dups = append(st.dups, Duplicate{Kind: DuplicateSchedule,
				Detail: fmt.Sprintf("class %s: date %d-%d as %s and %s", c.id, d.start, d.end, x.id, d.id)})
			break
		}
	}
	c.dates = append(c.dates, d)
}

// State returns a deep copy of all data.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out State
	for _, u := range s.data.users {
		out.Users = append(out.Users, u.export())
	}
	for _, c := range s.data.classes {
		out.Classes = append(out.Classes, c.export())
	}
	slices.SortFunc(out.Classes, func(a, b Class) int {
		return cmp.Or(cmp.Compare(a.ExtClassID, b.ExtClassID), cmp.Compare(a.ClassID, b.ClassID))
	})
	return out
}

// FindClass returns the class (regular or deferred) with the external id.
func (s *Server) FindClass(extClassID string) (Class, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.data.byExt[extClassID]
	if c == nil {
		return Class{}, false
	}
	return c.export(), true
}

// SeedUser stores a user directly, as if it had been created in Class's admin UI, and
// returns it with its generated ID. Roles default to instructor. It panics on an email
// already taken, which is a bug in the calling test.
func (s *Server) SeedUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Email != "" && s.data.userBy("email", u.Email) != nil {
		panic("classtest: SeedUser: email already taken")
	}
	roles := slices.Clone(u.Roles)
	if len(roles) == 0 {
		roles = []string{"instructor"}
	}
	rec := &userRec{id: s.data.nextUserID, ext: u.ExtUserID, email: u.Email, name: u.UserName, roles: roles}
	s.data.nextUserID++
	s.data.users = append(s.data.users, rec)
	return rec.export()
}

// Duplicates returns the duplicate side effects recorded so far, nil when none.
func (s *Server) Duplicates() []Duplicate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.data.dups)
}

// Reset wipes users, classes and recorded duplicates, as when a Class installation is
// wiped. Keys, faults, deferred mode and statistics stay; generated ids keep advancing.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, def, seq := s.data.nextUserID, s.data.nextDefID, s.data.nextSeq
	s.data = newStore()
	s.data.nextUserID, s.data.nextDefID, s.data.nextSeq = next, def, seq
}

func (u *userRec) export() User {
	return User{ID: u.id, ExtUserID: u.ext, Email: u.email, UserName: u.name, Roles: slices.Clone(u.roles)}
}

func (c *classRec) export() Class {
	out := Class{
		ClassID: c.id, ExtClassID: c.ext, Name: c.name, Description: c.desc,
		HostEmail: c.hostEmail, HostName: c.hostName(), Timezone: c.timezone,
		Deferred: c.deferred, DeferredID: c.deferredID,
	}
	for _, e := range c.enrollments {
		out.Enrollments = append(out.Enrollments, Enrollment{
			StudentID: e.studentID, ExtPersonID: e.extPersonID, Email: e.email,
			FirstName: e.first, LastName: e.last, DisplayName: e.display, Role: e.role,
		})
	}
	slices.SortStableFunc(out.Enrollments, func(a, b Enrollment) int {
		return cmp.Or(cmp.Compare(a.Email, b.Email), cmp.Compare(a.ExtPersonID, b.ExtPersonID))
	})
	for _, d := range c.dates {
		out.Dates = append(out.Dates, ClassDate{ScheduleID: d.id, Start: d.start, End: d.end})
	}
	slices.SortStableFunc(out.Dates, func(a, b ClassDate) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End))
	})
	return out
}
