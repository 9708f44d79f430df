package events

import (
	"slices"
	"time"
)

// KeyedState is the desired state of one entity of one kind.
type KeyedState interface {
	Kind() Kind
	Key() string
}

// Person is someone as Class's enrollments know them. ExtPersonID is the
// identity; email and names are data that may change.
type Person struct {
	ExtPersonID string `json:"ext_person_id"`
	Email       string `json:"email,omitempty"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
}

// UserState is a Class user: staff who teach (Class users are non-learners).
type UserState struct {
	ExtUserID string `json:"ext_user_id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	// Roles the source grants; the worker merges them with the roles the user
	// already has in Class and never removes one. Empty means instructor.
	Roles []string `json:"roles,omitempty"`
}

// Kind implements [KeyedState].
func (UserState) Kind() Kind { return KindUser }

// Key implements [KeyedState]: the external user id.
func (s UserState) Key() string { return s.ExtUserID }

func (s UserState) check(op Op) error {
	if s.ExtUserID == "" {
		return invalidf("user state: ext_user_id is required")
	}
	if op == OpDelete {
		return nil
	}
	if s.Email == "" {
		return invalidf("user state: email is required")
	}
	if s.FirstName == "" && s.LastName == "" {
		return invalidf("user state: a first or last name is required")
	}
	for _, r := range s.Roles {
		if !slices.Contains([]string{"admin", "instructor", "instructional-designer"}, r) {
			return invalidf("user state: unknown role %q", r)
		}
	}
	return nil
}

// ClassState is a Class class: a DataHub section or a HUBmis subject set.
type ClassState struct {
	ExtClassID  string `json:"ext_class_id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Host is the primary teacher when the class is created. Class cannot
	// change a class's host afterwards, so a later change of primary teacher
	// arrives as enrollment messages instead.
	Host Person `json:"host"`
	// Timezone overrides the tenant's configured time zone.
	Timezone string `json:"timezone,omitempty"`
}

// Kind implements [KeyedState].
func (ClassState) Kind() Kind { return KindClass }

// Key implements [KeyedState]: the external class id.
func (s ClassState) Key() string { return s.ExtClassID }

func (s ClassState) check(op Op) error {
	if s.ExtClassID == "" {
		return invalidf("class state: ext_class_id is required")
	}
	if op == OpDelete {
		return nil
	}
	if s.Name == "" {
		return invalidf("class state: name is required")
	}
	if s.Host.Email == "" {
		return invalidf("class state: host.email is required (Class creates a class with its host)")
	}
	return nil
}

// Enrollment roles in Class.
const (
	RoleStudent   = "student"
	RoleTeacher   = "teacher"
	RoleAssistant = "assistant"
)

// EnrollmentState is one person's enrollment in one class.
type EnrollmentState struct {
	ExtClassID string `json:"ext_class_id"`
	Person
	Role        string `json:"role"`
	DisplayName string `json:"display_name,omitempty"`
}

// Kind implements [KeyedState].
func (EnrollmentState) Kind() Kind { return KindEnrollment }

// Key implements [KeyedState]: see [EnrollmentKey].
func (s EnrollmentState) Key() string { return EnrollmentKey(s.ExtClassID, s.ExtPersonID) }

// EnrollmentKey is the key of a person's enrollment in a class.
func EnrollmentKey(extClassID, extPersonID string) string {
	return extClassID + "#" + extPersonID
}

func (s EnrollmentState) check(op Op) error {
	if s.ExtClassID == "" || s.ExtPersonID == "" {
		return invalidf("enrollment state: ext_class_id and ext_person_id are required")
	}
	if op == OpDelete {
		return nil
	}
	if s.FirstName == "" || s.LastName == "" {
		return invalidf("enrollment state: first_name and last_name are required")
	}
	switch s.Role {
	case RoleStudent, RoleTeacher, RoleAssistant:
	default:
		return invalidf("enrollment state: role %q is not student, teacher or assistant", s.Role)
	}
	return nil
}

// Session is one class date.
type Session struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// ScheduleState is a class's dates inside a window. The worker reconciles
// Class's dates inside [WindowStart, WindowEnd) to exactly Sessions and never
// touches a date outside it, so a schedule message cannot rewrite history.
type ScheduleState struct {
	ExtClassID  string    `json:"ext_class_id"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Timezone    string    `json:"timezone,omitempty"`
	Sessions    []Session `json:"sessions"`
}

// Kind implements [KeyedState].
func (ScheduleState) Kind() Kind { return KindSchedule }

// Key implements [KeyedState]: a class has one schedule, keyed by the class.
func (s ScheduleState) Key() string { return s.ExtClassID }

// InWindow reports whether a date starting at t belongs to the window.
func (s ScheduleState) InWindow(t time.Time) bool {
	return !t.Before(s.WindowStart) && t.Before(s.WindowEnd)
}

func (s ScheduleState) check(Op) error {
	if s.ExtClassID == "" {
		return invalidf("schedule state: ext_class_id is required")
	}
	if !s.WindowStart.Before(s.WindowEnd) {
		return invalidf("schedule state: window_start must be before window_end")
	}
	for i, ses := range s.Sessions {
		if !ses.Start.Before(ses.End) {
			return invalidf("schedule state: sessions[%d] ends before it starts", i)
		}
		if !s.InWindow(ses.Start) {
			return invalidf("schedule state: sessions[%d] starts outside the window", i)
		}
	}
	return nil
}
