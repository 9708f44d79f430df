package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/events"
)

// PlannedChange is one write the worker would make in Class. It names the
// fields that differ, never their values: a dry run's output may be pasted
// into a ticket.
type PlannedChange struct {
	Kind   events.Kind `json:"kind"`
	Key    string      `json:"key"`
	Action string      `json:"action"`
	Fields []string    `json:"fields,omitempty"`
	Detail string      `json:"detail,omitempty"`
}

func (c PlannedChange) String() string {
	s := fmt.Sprintf("%s %s: %s", c.Kind, c.Key, c.Action)
	if len(c.Fields) > 0 {
		s += " (" + strings.Join(c.Fields, ", ") + ")"
	}
	if c.Detail != "" {
		s += " " + c.Detail
	}
	return s
}

// DryRun works out what applying messages would change in a tenant's Class
// without changing anything: it runs the worker's own [Applier] against a
// Class whose reads are real and whose writes are only written down. So a
// dry run and a real run cannot disagree about what differs. Writes it
// planned are remembered for the rest of the run (a class it would create
// has its host enrolled and no dates), so plan classes before their
// enrollments and schedules. Not safe for concurrent use.
type DryRun struct {
	api      ClassAPI
	applier  *Applier
	entity   PlannedChange
	planned  []PlannedChange
	created  map[string]class.CreateClassRequest // ext_class_id of classes it would create
	deleted  map[string]bool                     // ext_class_id of classes it would delete
	users    map[int64]class.User
	classes  map[string]class.ClassInfo
	enrolled map[string][]class.Enrollment
	dates    map[string]class.ClassDate
}

// NewDryRun returns a dry run over a tenant's Class.
func NewDryRun(api ClassAPI, tenant, timezone string) *DryRun {
	d := &DryRun{
		api: api, created: map[string]class.CreateClassRequest{}, deleted: map[string]bool{},
		users: map[int64]class.User{}, classes: map[string]class.ClassInfo{},
		enrolled: map[string][]class.Enrollment{}, dates: map[string]class.ClassDate{},
	}
	d.applier = &Applier{API: dryRunAPI{d}, Tenant: tenant, Timezone: timezone}
	return d
}

// Plan returns the writes applying m would make; none means Class already
// has m's state. An error is what the worker would meet (a class still
// missing, a conflict, Class failing to answer).
func (d *DryRun) Plan(ctx context.Context, m events.Message) ([]PlannedChange, error) {
	d.entity = PlannedChange{Kind: m.Kind, Key: m.Key}
	d.planned = nil
	err := d.applier.Apply(ctx, m)
	return d.planned, err
}

func (d *DryRun) plan(action string, fields []string, detail string) {
	c := d.entity
	c.Action, c.Fields, c.Detail = action, fields, detail
	d.planned = append(d.planned, c)
}

// dryRunAPI is the Class a [DryRun] applies to.
type dryRunAPI struct{ d *DryRun }

var _ ClassAPI = dryRunAPI{}

const newClassIDPrefix = "(new)"

func (a dryRunAPI) GetUser(ctx context.Context, ref class.UserRef) (class.User, error) {
	u, err := a.d.api.GetUser(ctx, ref)
	if err == nil {
		a.d.users[u.ID] = u
	}
	return u, err
}

func (a dryRunAPI) PutUser(_ context.Context, req class.PutUserRequest) (class.User, bool, error) {
	if req.IdentifiedBy != "id" {
		a.d.plan("create user", nil, "")
		return class.User{ExtUserID: req.ExtUserID}, true, nil
	}
	have := a.d.users[req.ID]
	var fields []string
	if !strings.EqualFold(have.Email, req.Email) {
		fields = append(fields, "email")
	}
	if have.UserName != req.UserName {
		fields = append(fields, "user_name")
	}
	if have.ExtUserID != req.ExtUserID {
		fields = append(fields, "ext_user_id")
	}
	if !slices.Equal(have.Roles, req.Roles) {
		fields = append(fields, "roles")
	}
	a.d.plan("update user", fields, "")
	return have, false, nil
}

func (a dryRunAPI) DeleteUser(ctx context.Context, ref class.UserRef) error {
	if _, err := a.GetUser(ctx, ref); err != nil {
		return err
	}
	a.d.plan("delete user", nil, "")
	return nil
}

func (a dryRunAPI) CreateClass(ctx context.Context, req class.CreateClassRequest) (class.CreateClassResult, error) {
	ref := class.ClassRef{ExtClassID: req.ExtClassID}
	_, err := a.GetClass(ctx, ref)
	if errors.Is(err, class.ErrNotFound) {
		_, err = a.GetDeferredClass(ctx, ref)
	}
	switch {
	case err == nil:
		return class.CreateClassResult{}, class.ErrExists
	case !errors.Is(err, class.ErrNotFound):
		return class.CreateClassResult{}, err
	}
	a.d.created[req.ExtClassID] = req
	a.d.plan("create class", nil, "")
	return class.CreateClassResult{ClassID: newClassIDPrefix + req.ExtClassID}, nil
}

func (a dryRunAPI) GetClass(ctx context.Context, ref class.ClassRef) (class.ClassInfo, error) {
	if req, ok := a.d.created[ref.ExtClassID]; ok && ref.ExtClassID != "" {
		return class.ClassInfo{ClassID: newClassIDPrefix + ref.ExtClassID, ExtClassID: ref.ExtClassID,
			ClassName: req.ClassName, ClassDescription: req.ClassDescription}, nil
	}
	info, err := a.d.api.GetClass(ctx, ref)
	if err == nil && ref.ExtClassID != "" {
		a.d.classes[ref.ExtClassID] = info
	}
	return info, err
}

func (a dryRunAPI) GetDeferredClass(ctx context.Context, ref class.ClassRef) (class.DeferredClass, error) {
	dc, err := a.d.api.GetDeferredClass(ctx, ref)
	if err == nil && ref.ExtClassID != "" {
		a.d.classes[ref.ExtClassID] = class.ClassInfo{ClassID: dc.ClassID, ExtClassID: dc.ExtClassID,
			ClassName: dc.ClassName, ClassDescription: dc.ClassDescription}
	}
	return dc, err
}

func (a dryRunAPI) UpdateClass(ctx context.Context, req class.UpdateClassRequest) error {
	have, ok := a.d.classes[req.Ref.ExtClassID]
	if !ok {
		var err error
		if have, err = a.GetClass(ctx, req.Ref); err != nil {
			return err
		}
	}
	var fields []string
	if req.ClassName != nil && *req.ClassName != have.ClassName {
		fields = append(fields, "class_name")
	}
	if req.ClassDescription != nil && *req.ClassDescription != have.ClassDescription {
		fields = append(fields, "class_description")
	}
	if len(fields) > 0 {
		a.d.plan("update class", fields, "")
	}
	return nil
}

func (a dryRunAPI) DeleteClass(ctx context.Context, ref class.ClassRef) error {
	if ref.ExtClassID != "" {
		if _, err := a.GetClass(ctx, ref); err != nil {
			return err
		}
		a.d.deleted[ref.ExtClassID] = true
	}
	a.d.plan("delete class", nil, "")
	return nil
}

func (a dryRunAPI) ListEnrollments(ctx context.Context, ref class.ClassRef) ([]class.Enrollment, error) {
	if req, ok := a.d.created[ref.ExtClassID]; ok {
		// Class enrolls a new class's host as its teacher.
		return []class.Enrollment{{Email: req.Email, FirstName: req.FirstName, LastName: req.LastName, Role: events.RoleTeacher}}, nil
	}
	if a.d.deleted[ref.ExtClassID] {
		return nil, class.ErrNotFound
	}
	list, err := a.d.api.ListEnrollments(ctx, ref)
	if err == nil {
		a.d.enrolled[ref.ExtClassID] = list
	}
	return list, err
}

func (a dryRunAPI) CreateEnrollment(_ context.Context, req class.EnrollmentRequest) (class.Enrollment, error) {
	a.d.plan("create enrollment", nil, "role "+req.Role)
	return class.Enrollment{ExtPersonID: req.ExtPersonID, Role: req.Role}, nil
}

func (a dryRunAPI) UpdateEnrollment(_ context.Context, req class.EnrollmentRequest) (class.Enrollment, error) {
	var have class.Enrollment
	for _, e := range a.d.enrolled[req.ExtClassID] {
		if e.StudentID == req.StudentID {
			have = e
		}
	}
	var fields []string
	if have.FirstName != req.FirstName {
		fields = append(fields, "first_name")
	}
	if have.LastName != req.LastName {
		fields = append(fields, "last_name")
	}
	if have.Role != req.Role {
		fields = append(fields, "role")
	}
	if req.ExtPersonID != "" && !strings.EqualFold(have.Email, req.Email) {
		fields = append(fields, "email")
	}
	a.d.plan("update enrollment", fields, "")
	return have, nil
}

func (a dryRunAPI) DeleteEnrollment(ctx context.Context, ref class.EnrollmentRef) error {
	list, err := a.ListEnrollments(ctx, class.ClassRef{ExtClassID: ref.ExtClassID})
	if err != nil {
		return err
	}
	for _, e := range list {
		if e.ExtPersonID != "" && e.ExtPersonID == ref.ExtPersonID {
			a.d.plan("delete enrollment", nil, "")
			return nil
		}
	}
	return class.ErrNotFound
}

func (a dryRunAPI) ListClassDates(ctx context.Context, classID string) ([]class.ClassDate, error) {
	if strings.HasPrefix(classID, newClassIDPrefix) {
		return nil, nil
	}
	list, err := a.d.api.ListClassDates(ctx, classID)
	for _, cd := range list {
		a.d.dates[cd.ScheduleID] = cd
	}
	return list, err
}

func (a dryRunAPI) AddClassDate(_ context.Context, req class.AddClassDateRequest) (string, error) {
	a.d.plan("add class date", nil, dateSpanText(req.StartTime, req.EndTime))
	return "", nil
}

func (a dryRunAPI) RemoveClassDate(_ context.Context, scheduleID string) error {
	cd := a.d.dates[scheduleID]
	a.d.plan("remove class date", nil, dateSpanText(cd.StartTime, cd.EndTime))
	return nil
}

func dateSpanText(start, end int64) string {
	return time.Unix(start, 0).UTC().Format(time.RFC3339) + "–" + time.Unix(end, 0).UTC().Format("15:04Z")
}
