package class

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
)

// simBundle is a client talking to a fresh simulator.
type simBundle struct {
	sim    *classtest.Server
	client *Client
	ctx    context.Context
}

// setupSim starts a simulator with one key ("k") holding scopes (all when none)
// and a client using that key.
func setupSim(t *testing.T, scopes ...string) *simBundle {
	t.Helper()
	sim := classtest.New(classtest.Options{Seed: 1})
	t.Cleanup(sim.Close)
	sim.AddKey("k", scopes...)
	c, err := New(sim.URL(), "k")
	if err != nil {
		t.Fatal(err)
	}
	return &simBundle{sim: sim, client: c, ctx: t.Context()}
}

func simCreate(ext string) CreateClassRequest {
	return CreateClassRequest{
		Email: "anne.malley@demo.com", FirstName: "Anne", LastName: "Malley", Timezone: "America/Los_Angeles",
		ExtClassID: ext, ClassName: "Demo Class", ClassDescription: "A demonstration of Class",
	}
}

func TestRoundTripClass(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	res, err := b.client.CreateClass(b.ctx, simCreate("demo-1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Deferred || res.MeetingID == "" || res.InviteLink == "" {
		t.Errorf("result = %+v", res)
	}
	if _, err := b.client.CreateClass(b.ctx, simCreate("demo-1")); !errors.Is(err, ErrExists) {
		t.Errorf("second create err = %v, want ErrExists", err)
	}

	ci, err := b.client.GetClass(b.ctx, ClassRef{ExtClassID: "demo-1"})
	if err != nil {
		t.Fatal(err)
	}
	if ci.ClassID == "" || ci.MeetingID != res.MeetingID || ci.ClassName != "Demo Class" {
		t.Errorf("class = %+v", ci)
	}
	if id, deferred, err := b.client.ResolveClassID(b.ctx, "demo-1"); err != nil || id != ci.ClassID || deferred {
		t.Errorf("ResolveClassID = %q, %v, %v", id, deferred, err)
	}
	if _, _, err := b.client.ResolveClassID(b.ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ResolveClassID of a missing class err = %v, want ErrNotFound", err)
	}

	name, desc := "Demo class extended", "Updated description text"
	if err := b.client.UpdateClass(b.ctx, UpdateClassRequest{Ref: ClassRef{ClassID: ci.ClassID}, ClassName: &name, ClassDescription: &desc}); err != nil {
		t.Fatal(err)
	}
	got, err := b.client.GetClass(b.ctx, ClassRef{ClassID: ci.ClassID})
	if err != nil || got.ClassName != name || got.ClassDescription != desc {
		t.Errorf("after update = %+v, %v", got, err)
	}
	list, err := b.client.ListClasses(b.ctx)
	if err != nil || len(list) != 1 || list[0].ClassID != ci.ClassID {
		t.Errorf("ListClasses = %+v, %v", list, err)
	}

	if err := b.client.DeleteClass(b.ctx, ClassRef{ExtClassID: "demo-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.GetClass(b.ctx, ClassRef{ExtClassID: "demo-1"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete err = %v, want ErrNotFound", err)
	}
	if err := b.client.DeleteClass(b.ctx, ClassRef{ExtClassID: "demo-1"}); !errors.Is(err, ErrNotFound) || IsRetryable(err) {
		t.Errorf("second delete err = %v, want ErrNotFound", err)
	}
}

func TestRoundTripDeferredClass(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	b.sim.SetDeferClasses(true)
	res, err := b.client.CreateClass(b.ctx, simCreate("demo-2"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Deferred || res.ClassID == "" || res.ClassDeferredID == "" || res.ExtID != "demo-2" {
		t.Fatalf("result = %+v", res)
	}

	// The worker's resolution of ext_class_id → class_id: regular first, then deferred.
	if _, err := b.client.GetClass(b.ctx, ClassRef{ExtClassID: "demo-2"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetClass of a deferred class err = %v, want ErrNotFound", err)
	}
	if id, deferred, err := b.client.ResolveClassID(b.ctx, "demo-2"); err != nil || id != res.ClassID || !deferred {
		t.Errorf("ResolveClassID = %q, %v, %v", id, deferred, err)
	}
	d, err := b.client.GetDeferredClass(b.ctx, ClassRef{ExtClassID: "demo-2"})
	if err != nil || d.ClassID != res.ClassID || d.ClassDeferredID != res.ClassDeferredID || d.CreatedAt.IsZero() {
		t.Errorf("GetDeferredClass = %+v, %v", d, err)
	}
	if d, err := b.client.GetDeferredClass(b.ctx, ClassRef{ClassDeferredID: res.ClassDeferredID}); err != nil || d.ClassID != res.ClassID {
		t.Errorf("GetDeferredClass by deferred id = %+v, %v", d, err)
	}
	list, err := b.client.ListDeferredClasses(b.ctx)
	if err != nil || len(list) != 1 {
		t.Errorf("ListDeferredClasses = %+v, %v", list, err)
	}

	// The deferred update answers an array.
	name := "Renamed"
	if err := b.client.UpdateClass(b.ctx, UpdateClassRequest{Ref: ClassRef{ClassDeferredID: res.ClassDeferredID}, ClassName: &name}); err != nil {
		t.Fatal(err)
	}
	if d, _ := b.client.GetDeferredClass(b.ctx, ClassRef{ClassID: res.ClassID}); d.ClassName != name {
		t.Errorf("after update = %+v", d)
	}

	// Enrollments and schedules address a deferred class as any other.
	e, err := b.client.CreateEnrollment(b.ctx, EnrollmentRequest{ExtClassID: "demo-2", ExtPersonID: "f.beck",
		Email: "francisco.beck@demo.com", FirstName: "Francisco", LastName: "Beck", Role: "student"})
	if err != nil || e.ExtPersonID != "f.beck" || e.Email != "francisco.beck@demo.com" || e.Role != "student" {
		t.Errorf("CreateEnrollment on deferred = %+v, %v", e, err)
	}
	if _, err := b.client.AddClassDate(b.ctx, AddClassDateRequest{ClassID: res.ClassID, StartTime: 1654787671, EndTime: 1654874071, Timezone: "America/Los_Angeles"}); err != nil {
		t.Errorf("AddClassDate on deferred: %v", err)
	}

	if err := b.client.DeleteClass(b.ctx, ClassRef{ClassDeferredID: res.ClassDeferredID}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.GetDeferredClass(b.ctx, ClassRef{ExtClassID: "demo-2"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete err = %v, want ErrNotFound", err)
	}
}

func TestRoundTripUsers(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	u, created, err := b.client.PutUser(b.ctx, PutUserRequest{IdentifiedBy: "ext_user_id", ExtUserID: "datahub:t1:teacher:42",
		Email: "mail@mail.com", UserName: "Bob Smith", Roles: []string{"instructor"}})
	if err != nil || !created || u.ID == 0 {
		t.Fatalf("PutUser = %+v, %v, %v", u, created, err)
	}
	u2, created, err := b.client.PutUser(b.ctx, PutUserRequest{IdentifiedBy: "id", ID: u.ID, ExtUserID: u.ExtUserID,
		Email: u.Email, UserName: "Robert Smith", Roles: []string{"instructor", "admin"}})
	if err != nil || created || u2.ID != u.ID || u2.UserName != "Robert Smith" {
		t.Fatalf("second PutUser = %+v, %v, %v", u2, created, err)
	}
	for _, ref := range []UserRef{{ID: u.ID}, {ExtUserID: "datahub:t1:teacher:42"}, {Email: "MAIL@mail.com"}} {
		got, err := b.client.GetUser(b.ctx, ref)
		if err != nil || got.ID != u.ID || !slices.Contains(got.Roles, "admin") {
			t.Errorf("GetUser(%+v) = %+v, %v", ref, got, err)
		}
	}
	users, p, err := b.client.ListUsers(b.ctx, 1, 10)
	if err != nil || len(users) != 1 || p.TotalRecords != 1 {
		t.Errorf("ListUsers = %+v, %+v, %v", users, p, err)
	}
	_, _, err = b.client.PutUser(b.ctx, PutUserRequest{IdentifiedBy: "email", Email: "not-an-email", UserName: "X"})
	if !errors.Is(err, ErrValidation) || IsRetryable(err) {
		t.Errorf("bad email err = %v, want ErrValidation", err)
	}
	if err := b.client.DeleteUser(b.ctx, UserRef{ExtUserID: "datahub:t1:teacher:42"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.GetUser(b.ctx, UserRef{ID: u.ID}); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete err = %v, want ErrNotFound", err)
	}
}

func TestRoundTripEnrollments(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	if _, err := b.client.CreateClass(b.ctx, simCreate("demo-3")); err != nil {
		t.Fatal(err)
	}
	class := ClassRef{ExtClassID: "demo-3"}
	e, err := b.client.CreateEnrollment(b.ctx, EnrollmentRequest{ExtClassID: "demo-3", ExtPersonID: "f.beck",
		Email: "francisco.beck@demo.com", FirstName: "Francisco", LastName: "Beck", Role: "student", DisplayName: "Francisco Beck"})
	if err != nil || e.StudentID == "" || e.MeetingID == "" || e.ExtPersonID != "f.beck" {
		t.Fatalf("CreateEnrollment = %+v, %v", e, err)
	}
	list, err := b.client.ListEnrollments(b.ctx, class)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for _, x := range list {
		roles[x.Email] = x.Role
	}
	if roles["anne.malley@demo.com"] != "teacher" || roles["francisco.beck@demo.com"] != "student" {
		t.Errorf("enrollments = %+v", list)
	}

	up, err := b.client.UpdateEnrollment(b.ctx, EnrollmentRequest{ExtClassID: "demo-3", ExtPersonID: "f.beck",
		FirstName: "Frank", LastName: "Beck", Role: "assistant"})
	if err != nil || up.FirstName != "Frank" || up.Role != "assistant" || up.StudentID != e.StudentID {
		t.Errorf("UpdateEnrollment = %+v, %v", up, err)
	}

	if err := b.client.DeleteEnrollment(b.ctx, EnrollmentRef{ExtClassID: "demo-3", ExtPersonID: "f.beck"}); err != nil {
		t.Fatal(err)
	}
	list, err = b.client.ListEnrollments(b.ctx, class)
	if err != nil || len(list) != 1 || list[0].Role != "teacher" {
		t.Errorf("after delete = %+v, %v", list, err)
	}
	if err := b.client.DeleteEnrollment(b.ctx, EnrollmentRef{ExtClassID: "demo-3", ExtPersonID: "f.beck"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete err = %v, want ErrNotFound", err)
	}
	if _, err := b.client.ListEnrollments(b.ctx, ClassRef{ExtClassID: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("enrollments of a missing class err = %v, want ErrNotFound", err)
	}
}

func TestRoundTripSchedules(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	if _, err := b.client.CreateClass(b.ctx, simCreate("demo-4")); err != nil {
		t.Fatal(err)
	}
	ci, err := b.client.GetClass(b.ctx, ClassRef{ExtClassID: "demo-4"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 9, 7, 9, 0, 0, 0, time.UTC).Unix()
	var ids []string
	for i := range 2 {
		id, err := b.client.AddClassDate(b.ctx, AddClassDateRequest{ClassID: ci.ClassID, StartTime: start + int64(i)*86400,
			EndTime: start + int64(i)*86400 + 3600, Timezone: "Europe/London"})
		if err != nil || id == "" {
			t.Fatalf("AddClassDate = %q, %v", id, err)
		}
		ids = append(ids, id)
	}
	dates, err := b.client.ListClassDates(b.ctx, ci.ClassID)
	if err != nil || len(dates) != 2 || dates[0].ScheduleID != ids[0] || dates[1].StartTime != start+86400 || dates[0].ClassID != ci.ClassID {
		t.Fatalf("ListClassDates = %+v, %v", dates, err)
	}
	if err := b.client.RemoveClassDate(b.ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	dates, err = b.client.ListClassDates(b.ctx, ci.ClassID)
	if err != nil || len(dates) != 1 || dates[0].ScheduleID != ids[1] {
		t.Errorf("after remove = %+v, %v", dates, err)
	}
	_, err = b.client.AddClassDate(b.ctx, AddClassDateRequest{ClassID: ci.ClassID, StartTime: start, EndTime: start + 60, Timezone: "Mars/Olympus"})
	if !errors.Is(err, ErrValidation) {
		t.Errorf("bad time zone err = %v, want ErrValidation", err)
	}
}

func TestRoundTripAuth(t *testing.T) {
	t.Parallel()
	b := setupSim(t, classtest.ScopeClassRead)
	_, err := b.client.CreateClass(b.ctx, simCreate("demo-5"))
	if !IsAuth(err) || !errors.Is(err, ErrForbidden) || errors.Is(err, ErrUnauthorized) || IsRetryable(err) {
		t.Errorf("missing scope err = %v, want ErrForbidden and IsAuth", err)
	}
	if _, err := b.client.ListClasses(b.ctx); err != nil {
		t.Errorf("ListClasses with class:read: %v", err)
	}
	b.sim.RevokeKey("k")
	_, err = b.client.ListClasses(b.ctx)
	if !IsAuth(err) || !errors.Is(err, ErrUnauthorized) || IsRetryable(err) {
		t.Errorf("revoked key err = %v, want ErrUnauthorized and IsAuth", err)
	}
}

func TestRoundTripFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults classtest.Faults
		status int
		after  time.Duration
	}{
		{"503", classtest.Faults{Rate503: 1, RetryAfter: 3 * time.Second}, 503, 3 * time.Second},
		{"429", classtest.Faults{Rate429: 1}, 429, classtest.RetryAfterDefault},
		{"500", classtest.Faults{Rate500: 1}, 500, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupSim(t)
			b.sim.SetFaults(tc.faults)
			_, err := b.client.GetUser(b.ctx, UserRef{Email: "pupil@example.com"})
			if !IsRetryable(err) || IsAuth(err) {
				t.Fatalf("err = %v, want retryable", err)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tc.status {
				t.Fatalf("err = %#v, want status %d", err, tc.status)
			}
			d, ok := RetryAfter(err)
			if ok != (tc.after > 0) || d != tc.after {
				t.Errorf("RetryAfter = %v, %v; want %v", d, ok, tc.after)
			}
			assertNoPII(t, err)
		})
	}
}

func TestRoundTripAfterEffect(t *testing.T) {
	t.Parallel()
	// A create that happened but answered 500: retryable, and the retry finds
	// the class already there.
	b := setupSim(t)
	b.sim.SetFaults(classtest.Faults{AfterEffectRate: 1})
	_, err := b.client.CreateClass(b.ctx, simCreate("demo-6"))
	if !IsRetryable(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	b.sim.SetFaults(classtest.Faults{})
	if _, err := b.client.CreateClass(b.ctx, simCreate("demo-6")); !errors.Is(err, ErrExists) {
		t.Errorf("retry err = %v, want ErrExists", err)
	}
}

func TestRoundTripLatencyTimeout(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	b.sim.SetFaults(classtest.Faults{Latency: time.Second})
	c, err := New(b.sim.URL(), "k", WithHTTPClient(&http.Client{Timeout: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetUser(b.ctx, UserRef{Email: "pupil@example.com"})
	if !IsRetryable(err) {
		t.Errorf("err = %v, want retryable", err)
	}
	assertNoPII(t, err)
}
