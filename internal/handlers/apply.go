package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/events"
)

// ClassAPI is what the worker needs of a tenant's Class; *class.Client
// implements it.
type ClassAPI interface {
	GetUser(ctx context.Context, ref class.UserRef) (class.User, error)
	PutUser(ctx context.Context, req class.PutUserRequest) (class.User, bool, error)
	DeleteUser(ctx context.Context, ref class.UserRef) error

	CreateClass(ctx context.Context, req class.CreateClassRequest) (class.CreateClassResult, error)
	GetClass(ctx context.Context, ref class.ClassRef) (class.ClassInfo, error)
	GetDeferredClass(ctx context.Context, ref class.ClassRef) (class.DeferredClass, error)
	UpdateClass(ctx context.Context, req class.UpdateClassRequest) error
	DeleteClass(ctx context.Context, ref class.ClassRef) error

	ListEnrollments(ctx context.Context, ref class.ClassRef) ([]class.Enrollment, error)
	CreateEnrollment(ctx context.Context, req class.EnrollmentRequest) (class.Enrollment, error)
	UpdateEnrollment(ctx context.Context, req class.EnrollmentRequest) (class.Enrollment, error)
	DeleteEnrollment(ctx context.Context, ref class.EnrollmentRef) error

	ListClassDates(ctx context.Context, classID string) ([]class.ClassDate, error)
	AddClassDate(ctx context.Context, req class.AddClassDateRequest) (string, error)
	RemoveClassDate(ctx context.Context, scheduleID string) error
}

var _ ClassAPI = (*class.Client)(nil)

// ErrDependencyMissing means what the message needs in Class (its class) is
// not there yet: the class's own message may still be on its way, so the
// message is retried with backoff up to the maximum age.
var ErrDependencyMissing = errors.New("class does not exist in Class yet")

// ErrConflict means Class holds something this system must not overwrite.
var ErrConflict = errors.New("conflict with an entity not created by this system")

// defaultRoles are a user's roles when the source names none: users in Class
// are the staff who teach.
var defaultRoles = []string{"instructor"}

// Applier applies desired states of one tenant to its Class, following
// Class's own rules (see the mapping in DESIGN.md). Every method is safe to
// repeat: it reads what Class has and changes only what differs.
type Applier struct {
	API      ClassAPI
	Tenant   string
	Timezone string             // the tenant's; a state's own time zone wins
	ClassIDs jetstream.KeyValue // ext_class_id → class_id cache

	// enrollmentLists shares the reads of a class's enrollments between
	// its enrollments applied at the same time.
	enrollmentLists sharedRead[[]class.Enrollment]
}

// Apply applies one message.
func (a *Applier) Apply(ctx context.Context, m events.Message) error {
	return a.apply(ctx, m, false)
}

// apply applies one message; firstAttempt says that no attempt to apply its
// key came before this one, by any worker: there is no earlier effect of it
// in Class that a read sent before this call could miss.
func (a *Applier) apply(ctx context.Context, m events.Message, firstAttempt bool) error {
	switch m.Kind {
	case events.KindUser:
		s, err := m.User()
		if err != nil {
			return err
		}
		if m.Op == events.OpDelete {
			return ignoreNotFound(a.API.DeleteUser(ctx, class.UserRef{ExtUserID: s.ExtUserID}))
		}
		return a.upsertUser(ctx, s)
	case events.KindClass:
		s, err := m.Class()
		if err != nil {
			return err
		}
		if m.Op == events.OpDelete {
			return a.deleteClass(ctx, s.ExtClassID)
		}
		return a.upsertClass(ctx, s)
	case events.KindEnrollment:
		s, err := m.Enrollment()
		if err != nil {
			return err
		}
		if m.Op == events.OpDelete {
			// The class gone or the person not enrolled: either way done.
			return ignoreNotFound(a.API.DeleteEnrollment(ctx, class.EnrollmentRef{ExtClassID: s.ExtClassID, ExtPersonID: s.ExtPersonID}))
		}
		return a.upsertEnrollment(ctx, s, firstAttempt)
	case events.KindSchedule:
		s, err := m.Schedule()
		if err != nil {
			return err
		}
		if m.Op == events.OpDelete {
			s.Sessions = nil
		}
		return a.reconcileSchedule(ctx, s, m.Op == events.OpDelete)
	}
	return fmt.Errorf("%w: unknown kind %q", events.ErrInvalid, m.Kind)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, class.ErrNotFound) {
		return nil
	}
	return err
}

func fullName(first, last string) string { return strings.TrimSpace(first + " " + last) }

// upsertUser finds the user by external id, then by email (someone may have
// created them by hand), and creates or updates them. Roles are merged,
// never removed: an admin who also teaches stays an admin.
func (a *Applier) upsertUser(ctx context.Context, s events.UserState) error {
	want := s.Roles
	if len(want) == 0 {
		want = defaultRoles
	}
	name := fullName(s.FirstName, s.LastName)
	u, err := a.API.GetUser(ctx, class.UserRef{ExtUserID: s.ExtUserID})
	if errors.Is(err, class.ErrNotFound) {
		u, err = a.API.GetUser(ctx, class.UserRef{Email: s.Email})
		if errors.Is(err, class.ErrNotFound) {
			_, _, err = a.API.PutUser(ctx, class.PutUserRequest{
				IdentifiedBy: "ext_user_id", ExtUserID: s.ExtUserID, Email: s.Email, UserName: name, Roles: want,
			})
			return err
		}
		if err == nil && u.ExtUserID != "" && u.ExtUserID != s.ExtUserID {
			return fmt.Errorf("%w: the Class user with this email (id %d) is linked to external id %q", ErrConflict, u.ID, u.ExtUserID)
		}
	}
	if err != nil {
		return err
	}
	roles := mergeRoles(u.Roles, want)
	if strings.EqualFold(u.Email, s.Email) && u.UserName == name && u.ExtUserID == s.ExtUserID && len(roles) == len(u.Roles) {
		return nil
	}
	_, _, err = a.API.PutUser(ctx, class.PutUserRequest{
		IdentifiedBy: "id", ID: u.ID, ExtUserID: s.ExtUserID, Email: s.Email, UserName: name, Roles: roles,
	})
	return err
}

func mergeRoles(have, want []string) []string {
	out := slices.Clone(have)
	for _, r := range want {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func (a *Applier) timezone(own string) (string, error) {
	if own != "" {
		return own, nil
	}
	if a.Timezone != "" {
		return a.Timezone, nil
	}
	return "", fmt.Errorf("%w: no time zone: set tenants[].class.timezone", events.ErrInvalid)
}

// upsertClass creates the class with its host; if it exists, it updates the
// only fields Class lets change (the host is fixed at creation).
func (a *Applier) upsertClass(ctx context.Context, s events.ClassState) error {
	tz, err := a.timezone(s.Timezone)
	if err != nil {
		return err
	}
	res, err := a.API.CreateClass(ctx, class.CreateClassRequest{
		Email:            s.Host.Email,
		FirstName:        s.Host.FirstName,
		LastName:         s.Host.LastName,
		Timezone:         tz,
		ExtClassID:       s.ExtClassID,
		ClassName:        s.Name,
		ClassDescription: s.Description,
	})
	if err == nil {
		if res.ClassID != "" {
			a.cacheClassID(ctx, s.ExtClassID, res.ClassID)
		}
		return nil
	}
	if !errors.Is(err, class.ErrExists) {
		return err
	}
	return a.API.UpdateClass(ctx, class.UpdateClassRequest{
		Ref:              class.ClassRef{ExtClassID: s.ExtClassID},
		ClassName:        &s.Name,
		ClassDescription: &s.Description,
	})
}

func (a *Applier) deleteClass(ctx context.Context, extClassID string) error {
	err := a.API.DeleteClass(ctx, class.ClassRef{ExtClassID: extClassID})
	if errors.Is(err, class.ErrNotFound) {
		// A deferred class may only be addressable by its deferred id.
		var d class.DeferredClass
		d, err = a.API.GetDeferredClass(ctx, class.ClassRef{ExtClassID: extClassID})
		if err == nil {
			err = a.API.DeleteClass(ctx, class.ClassRef{ClassDeferredID: d.ClassDeferredID})
		}
		err = ignoreNotFound(err)
	}
	if err != nil {
		return err
	}
	if a.ClassIDs != nil {
		_ = a.ClassIDs.Delete(ctx, events.ClassIDKey(a.Tenant, extClassID))
	}
	return nil
}

// upsertEnrollment reads the class's enrollments and posts or puts only what
// differs. A POST is never repeated blindly: Class would enroll the person
// twice, so a retry after a failed POST reads again first. The read may be
// shared with other enrollments of the class; it is one sent after this call
// began, unless this is the key's first attempt (see [sharedRead]).
func (a *Applier) upsertEnrollment(ctx context.Context, s events.EnrollmentState, firstAttempt bool) error {
	ref := class.ClassRef{ExtClassID: s.ExtClassID}
	list, err := a.enrollmentLists.Do(ctx, s.ExtClassID, firstAttempt, func(ctx context.Context) ([]class.Enrollment, error) {
		return a.API.ListEnrollments(ctx, ref)
	})
	if errors.Is(err, class.ErrNotFound) {
		return fmt.Errorf("%w: enrollment needs class %s", ErrDependencyMissing, s.ExtClassID)
	}
	if err != nil {
		return err
	}
	found, byEmail := findEnrollment(list, s)
	if found == nil {
		_, err := a.API.CreateEnrollment(ctx, class.EnrollmentRequest{
			ExtClassID: s.ExtClassID, ExtPersonID: s.ExtPersonID, Email: s.Email,
			FirstName: s.FirstName, LastName: s.LastName, Role: s.Role, DisplayName: s.DisplayName,
		})
		if errors.Is(err, class.ErrNotFound) {
			return fmt.Errorf("%w: enrollment needs class %s", ErrDependencyMissing, s.ExtClassID)
		}
		return err
	}
	same := found.FirstName == s.FirstName && found.LastName == s.LastName && found.Role == s.Role
	if !byEmail {
		same = same && strings.EqualFold(found.Email, s.Email)
	}
	if same {
		return nil
	}
	req := class.EnrollmentRequest{
		ExtClassID: s.ExtClassID, StudentID: found.StudentID, Email: s.Email,
		FirstName: s.FirstName, LastName: s.LastName, Role: s.Role, DisplayName: s.DisplayName,
	}
	if !byEmail {
		req.ExtPersonID = s.ExtPersonID
	}
	_, err = a.API.UpdateEnrollment(ctx, req)
	if errors.Is(err, class.ErrNotFound) {
		// Removed since the read, with its class or alone: read again later.
		return fmt.Errorf("%w: enrollment in class %s vanished while updating it", ErrDependencyMissing, s.ExtClassID)
	}
	return err
}

// findEnrollment finds the person's enrollment by external id, or by email
// among enrollments without one: the class's host, whom Class enrolled when
// the class was created. Those are never given an external id, so a later
// delete by external id leaves the host in place.
func findEnrollment(list []class.Enrollment, s events.EnrollmentState) (e *class.Enrollment, byEmail bool) {
	for i := range list {
		if list[i].ExtPersonID == s.ExtPersonID {
			return &list[i], false
		}
	}
	if s.Email == "" {
		return nil, false
	}
	for i := range list {
		if list[i].ExtPersonID == "" && strings.EqualFold(list[i].Email, s.Email) {
			return &list[i], true
		}
	}
	return nil, false
}

// classID resolves an ext_class_id to Class's class_id: from the cache, then
// the regular classes, then the deferred ones.
func (a *Applier) classID(ctx context.Context, extClassID string, fresh bool) (string, error) {
	key := events.ClassIDKey(a.Tenant, extClassID)
	if !fresh && a.ClassIDs != nil {
		if e, err := a.ClassIDs.Get(ctx, key); err == nil {
			return string(e.Value()), nil
		}
	}
	info, err := a.API.GetClass(ctx, class.ClassRef{ExtClassID: extClassID})
	id := info.ClassID
	if errors.Is(err, class.ErrNotFound) {
		var d class.DeferredClass
		d, err = a.API.GetDeferredClass(ctx, class.ClassRef{ExtClassID: extClassID})
		id = d.ClassID
	}
	if errors.Is(err, class.ErrNotFound) {
		return "", fmt.Errorf("%w: schedule needs class %s", ErrDependencyMissing, extClassID)
	}
	if err != nil {
		return "", err
	}
	a.cacheClassID(ctx, extClassID, id)
	return id, nil
}

func (a *Applier) cacheClassID(ctx context.Context, extClassID, classID string) {
	if a.ClassIDs == nil || classID == "" {
		return
	}
	// A failed cache write only costs a lookup next time.
	_, _ = a.ClassIDs.Put(ctx, events.ClassIDKey(a.Tenant, extClassID), []byte(classID))
}

type dateSpan struct{ start, end int64 }

// reconcileSchedule makes the class's dates inside the window exactly the
// desired ones, counting equal dates as a multiset, and leaves every date
// outside the window alone.
func (a *Applier) reconcileSchedule(ctx context.Context, s events.ScheduleState, deleting bool) error {
	classID, err := a.classID(ctx, s.ExtClassID, false)
	if deleting && errors.Is(err, ErrDependencyMissing) {
		return nil
	}
	if err != nil {
		return err
	}
	have, err := a.API.ListClassDates(ctx, classID)
	if errors.Is(err, class.ErrNotFound) {
		// The cached id may name a class deleted and created again.
		if classID, err = a.classID(ctx, s.ExtClassID, true); err == nil {
			have, err = a.API.ListClassDates(ctx, classID)
		}
	}
	if deleting && (errors.Is(err, class.ErrNotFound) || errors.Is(err, ErrDependencyMissing)) {
		return nil
	}
	if errors.Is(err, class.ErrNotFound) {
		return fmt.Errorf("%w: schedule needs class %s", ErrDependencyMissing, s.ExtClassID)
	}
	if err != nil {
		return err
	}
	want := map[dateSpan]int{}
	for _, ses := range s.Sessions {
		want[dateSpan{ses.Start.Unix(), ses.End.Unix()}]++
	}
	windowStart, windowEnd := s.WindowStart.Unix(), s.WindowEnd.Unix()
	for _, d := range have {
		if d.StartTime < windowStart || d.StartTime >= windowEnd {
			continue
		}
		span := dateSpan{d.StartTime, d.EndTime}
		if want[span] > 0 {
			want[span]--
			continue
		}
		if err := ignoreNotFound(a.API.RemoveClassDate(ctx, d.ScheduleID)); err != nil {
			return err
		}
	}
	if len(want) == 0 {
		return nil
	}
	tz, err := a.timezone(s.Timezone)
	if err != nil {
		return err
	}
	// Posted in time order, so a partial failure leaves a prefix in place.
	var missing []dateSpan
	for span, n := range want {
		for range n {
			missing = append(missing, span)
		}
	}
	slices.SortFunc(missing, func(x, y dateSpan) int {
		return cmp.Or(cmp.Compare(x.start, y.start), cmp.Compare(x.end, y.end))
	})
	for _, span := range missing {
		_, err := a.API.AddClassDate(ctx, class.AddClassDateRequest{ClassID: classID, StartTime: span.start, EndTime: span.end, Timezone: tz})
		if errors.Is(err, class.ErrNotFound) {
			// The class went away (or was created again) since it was read.
			if a.ClassIDs != nil {
				_ = a.ClassIDs.Delete(ctx, events.ClassIDKey(a.Tenant, s.ExtClassID))
			}
			return fmt.Errorf("%w: schedule needs class %s", ErrDependencyMissing, s.ExtClassID)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
