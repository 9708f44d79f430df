package class

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/httpx"
)

const testKey = "secret-key"

// recorded is what a test server saw of one request.
type recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// wireBundle is a client wired to a scripted server.
type wireBundle struct {
	client *Client
	server *httptest.Server

	mu   sync.Mutex
	reqs []recorded
}

func (b *wireBundle) last(t *testing.T) recorded {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.reqs) == 0 {
		t.Fatal("server saw no request")
	}
	return b.reqs[len(b.reqs)-1]
}

// setupWire starts a server answering every request with status and body (and
// extra headers), and a client pointed at it.
func setupWire(t *testing.T, status int, body string, header ...string) *wireBundle {
	t.Helper()
	return setupHandler(t, func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func setupHandler(t *testing.T, h http.HandlerFunc, opts ...Option) *wireBundle {
	t.Helper()
	b := &wireBundle{}
	b.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		b.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(b.server.Close)
	c, err := New(b.server.URL, testKey, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b.client = c
	return b
}

func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("request body\n got %s\nwant %s", gb, wb)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, base, key string
		wantErr         bool
	}{
		{"ok", "https://x.class.com", "k", false},
		{"trailing slash", "https://x.class.com/", "k", false},
		{"empty base", "", "k", true},
		{"no scheme", "x.class.com", "k", true},
		{"ftp", "ftp://x.class.com", "k", true},
		{"query", "https://x.class.com?a=b", "k", true},
		{"credentials", "https://u:p@x.class.com", "k", true},
		{"unparsable", "https://x.class.com/%zz", "k", true},
		{"empty key", "https://x.class.com", "", true},
	} {
		_, err := New(tc.base, tc.key)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: New(%q) error = %v, want error %v", tc.name, tc.base, err, tc.wantErr)
		}
		if err != nil && tc.key != "" && strings.Contains(err.Error(), tc.key+"@") {
			t.Errorf("%s: error holds the key", tc.name)
		}
	}
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	var gotPath string
	b := setupHandler(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		_, _ = io.WriteString(w, `{"schedule_id":"s1"}`)
	}, WithUserAgent("rollcall-test/9"))
	// A base URL with a path keeps it in front of /api/v1.
	c, err := New(b.server.URL+"/tenant/", testKey, WithUserAgent("rollcall-test/9"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.AddClassDate(context.Background(), AddClassDateRequest{ClassID: "c1", StartTime: 10, EndTime: 20, Timezone: "Europe/London"})
	if err != nil || id != "s1" {
		t.Fatalf("AddClassDate = %q, %v", id, err)
	}
	if gotPath != "/tenant/api/v1/schedules" {
		t.Errorf("path = %q", gotPath)
	}
	r := b.last(t)
	if r.Method != http.MethodPost {
		t.Errorf("method = %s", r.Method)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+testKey {
		t.Errorf("Authorization = %q", got)
	}
	if got := r.Header.Get("User-Agent"); got != "rollcall-test/9" {
		t.Errorf("User-Agent = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	jsonEqual(t, r.Body, `{"class_id":"c1","start_time":10,"end_time":20,"timezone":"Europe/London"}`)
}

func TestGetUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const jane = `[{"id":2,"ext_user_id":"555","email":"jane@mail.com","user_name":"jane Smith","roles":["instructor"],"is_zoom_configured":false}]`

	t.Run("by email", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 200, jane)
		u, err := b.client.GetUser(ctx, UserRef{Email: "Jane@mail.com"})
		if err != nil {
			t.Fatal(err)
		}
		want := User{ID: 2, ExtUserID: "555", Email: "jane@mail.com", UserName: "jane Smith", Roles: []string{"instructor"}}
		if u.ID != want.ID || u.ExtUserID != want.ExtUserID || u.Email != want.Email || len(u.Roles) != 1 {
			t.Errorf("user = %+v", u)
		}
		if r := b.last(t); r.Method != "GET" || r.Path != "/api/v1/users" || r.RawQuery != "email=Jane%40mail.com" {
			t.Errorf("request = %s %s?%s", r.Method, r.Path, r.RawQuery)
		}
	})
	t.Run("by id, null ext_user_id", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 200, `[{"id":1,"ext_user_id":null,"email":"john@mail.com","user_name":"John Smith","roles":["instructor"],"is_zoom_configured":true}]`)
		u, err := b.client.GetUser(ctx, UserRef{ID: 1})
		if err != nil || u.ExtUserID != "" || !u.IsZoomConfigured {
			t.Fatalf("GetUser = %+v, %v", u, err)
		}
		if r := b.last(t); r.RawQuery != "id=1" {
			t.Errorf("query = %q", r.RawQuery)
		}
	})
	t.Run("empty array", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 200, `[]`)
		_, err := b.client.GetUser(ctx, UserRef{ExtUserID: "x"})
		if !errors.Is(err, ErrNotFound) || IsRetryable(err) {
			t.Errorf("err = %v, want ErrNotFound, not retryable", err)
		}
	})
	t.Run("404", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 404, `{"error":"user not found"}`)
		_, err := b.client.GetUser(ctx, UserRef{ExtUserID: "x"})
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 404 || ae.Message != "user not found" {
			t.Errorf("err = %#v", err)
		}
	})
	t.Run("filter ignored", func(t *testing.T) {
		t.Parallel()
		// A server that lists everyone must not yield someone else.
		b := setupWire(t, 200, jane)
		if _, err := b.client.GetUser(ctx, UserRef{ExtUserID: "556"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("refs", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 200, jane)
		for _, ref := range []UserRef{{}, {ID: 1, Email: "a@b.c"}} {
			if _, err := b.client.GetUser(ctx, ref); !errors.Is(err, ErrValidation) {
				t.Errorf("GetUser(%+v) err = %v, want ErrValidation", ref, err)
			}
		}
	})
}

func TestListUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("paginated", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 200, `{
		   "data": [
		      {"id": 1, "ext_user_id": null, "email": "john@mail.com", "user_name": "John Smith", "roles": ["instructor"], "is_zoom_configured": true},
		      {"id": 2, "ext_user_id": "555", "email": "jane@mail.com", "user_name": "Jane Smith", "roles": ["instructor"], "is_zoom_configured": false}
		   ],
		   "pagination": {"total_records": 100, "current_page": 1, "total_pages": 5, "next_page": 2, "prev_page": null}
		}`)
		users, p, err := b.client.ListUsers(ctx, 1, 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 2 || users[1].ExtUserID != "555" {
			t.Errorf("users = %+v", users)
		}
		if p.TotalRecords != 100 || p.CurrentPage != 1 || p.TotalPages != 5 || p.NextPage == nil || *p.NextPage != 2 || p.PrevPage != nil {
			t.Errorf("pagination = %+v", p)
		}
		if r := b.last(t); r.RawQuery != "limit=20&page=1" {
			t.Errorf("query = %q", r.RawQuery)
		}
	})
	t.Run("bare array", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 200, `[{"id":1,"email":"john@mail.com"},{"id":2,"email":"jane@mail.com"}]`)
		users, p, err := b.client.ListUsers(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 2 || p.TotalRecords != 2 || p.TotalPages != 1 || p.NextPage != nil {
			t.Errorf("users = %+v, pagination = %+v", users, p)
		}
		if r := b.last(t); r.RawQuery != "" {
			t.Errorf("query = %q", r.RawQuery)
		}
	})
}

func TestPutUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const answer = `{"id":2,"ext_user_id":"888","email":"mail@mail.com","user_name":"Bob Smith","roles":["instructor","admin"],"is_zoom_configured":false}`
	for _, status := range []int{200, 201} {
		b := setupWire(t, status, answer)
		u, created, err := b.client.PutUser(ctx, PutUserRequest{IdentifiedBy: "ext_user_id", ExtUserID: "888", Email: "mail@mail.com", UserName: "Bob Smith", Roles: []string{"admin", "instructor"}})
		if err != nil {
			t.Fatal(err)
		}
		if created != (status == 201) || u.ID != 2 {
			t.Errorf("status %d: created = %v, user = %+v", status, created, u)
		}
		r := b.last(t)
		if r.Method != http.MethodPut || r.Path != "/api/v1/users" {
			t.Errorf("request = %s %s", r.Method, r.Path)
		}
		jsonEqual(t, r.Body, `{"identified_by":"ext_user_id","ext_user_id":"888","email":"mail@mail.com","user_name":"Bob Smith","roles":["admin","instructor"]}`)
	}
	b := setupWire(t, 200, answer)
	for _, req := range []PutUserRequest{{}, {IdentifiedBy: "id"}, {IdentifiedBy: "email", ExtUserID: "1"}, {IdentifiedBy: "name", UserName: "x"}} {
		if _, _, err := b.client.PutUser(ctx, req); !errors.Is(err, ErrValidation) {
			t.Errorf("PutUser(%+v) err = %v, want ErrValidation", req, err)
		}
	}
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	b := setupWire(t, 200, `{"id":2,"ext_user_id":"888"}`)
	if err := b.client.DeleteUser(context.Background(), UserRef{ExtUserID: "888"}); err != nil {
		t.Fatal(err)
	}
	if r := b.last(t); r.Method != http.MethodDelete || r.RawQuery != "ext_user_id=888" {
		t.Errorf("request = %s ?%s", r.Method, r.RawQuery)
	}
}

func validCreate() CreateClassRequest {
	f, tr, zero := false, true, 0
	return CreateClassRequest{
		Email: "anne.malley@demo.com", FirstName: "Anne", LastName: "Malley", Timezone: "America/Los_Angeles",
		ExtClassID: "demo-1", ClassName: "Demo Class", ClassDescription: "A demonstration of Class", MeetingPasscode: "a1demo",
		SessionTimes:          []SessionTime{{StartTime: 1631810954, EndTime: 1631814554}},
		Settings:              &ClassSettings{WaitingRoom: &f, JoinBeforeHost: &tr, JBHTime: &zero},
		AdditionalInstructors: []string{"james.lloyd@demo.com", "chaya.meyer@demo.com"},
	}
}

func TestCreateClass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("immediate", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 201, `{"meeting_id":"92117646134","invite_link":"https://mydemo.class.com/class.html?class_uuid=01cceb4b-afce-4703-a842-6b41fad111b5"}`)
		res, err := b.client.CreateClass(ctx, validCreate())
		if err != nil {
			t.Fatal(err)
		}
		if res.Deferred || res.MeetingID != "92117646134" || res.ClassID != "" || !strings.HasPrefix(res.InviteLink, "https://") {
			t.Errorf("result = %+v", res)
		}
		jsonEqual(t, b.last(t).Body, `{
		  "email": "anne.malley@demo.com", "first_name": "Anne", "last_name": "Malley",
		  "timezone": "America/Los_Angeles", "ext_class_id": "demo-1", "class_name": "Demo Class",
		  "class_description": "A demonstration of Class", "meeting_passcode": "a1demo",
		  "session_times": [{"start_time": 1631810954, "end_time": 1631814554}],
		  "settings": {"waiting_room": false, "join_before_host": true, "jbh_time": 0},
		  "additional_instructors": [{"email": "james.lloyd@demo.com"}, {"email": "chaya.meyer@demo.com"}]
		}`)
	})
	for name, id := range map[string]string{"deferred number": `7`, "deferred string": `"7"`} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupWire(t, 201, `{"class_deferred_id": `+id+`, "class_id": "a1cceb4b-afce-4703-a842-6b41fad111b5", "ext_id": "demo-1"}`)
			res, err := b.client.CreateClass(ctx, validCreate())
			if err != nil {
				t.Fatal(err)
			}
			want := CreateClassResult{Deferred: true, ClassDeferredID: "7", ClassID: "a1cceb4b-afce-4703-a842-6b41fad111b5", ExtID: "demo-1"}
			if res != want {
				t.Errorf("result = %+v, want %+v", res, want)
			}
		})
	}
	t.Run("exists", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 400, `{"error": "Class exists for external class ID provided: 074c697e-e20b-4da8-9361-1b707137d6e3."}`)
		_, err := b.client.CreateClass(ctx, validCreate())
		if !errors.Is(err, ErrExists) || errors.Is(err, ErrValidation) || IsRetryable(err) || IsAuth(err) {
			t.Errorf("err = %v: want ErrExists only", err)
		}
	})
	t.Run("validation", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 400, `{"error": "Request failed validation", "data": {"email": ["The email format is invalid."]}}`)
		_, err := b.client.CreateClass(ctx, validCreate())
		if !errors.Is(err, ErrValidation) || errors.Is(err, ErrExists) || IsRetryable(err) {
			t.Errorf("err = %v: want ErrValidation only", err)
		}
		const want = `class: POST /api/v1/classes: 400 Request failed validation (email: The email format is invalid.)`
		if err.Error() != want {
			t.Errorf("text\n got %s\nwant %s", err, want)
		}
		var ae *APIError
		if !errors.As(err, &ae) || len(ae.Fields["email"]) != 1 {
			t.Errorf("fields = %+v", ae)
		}
	})
	t.Run("missing fields", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 201, `{}`)
		req := validCreate()
		req.Timezone, req.ClassName = "", " "
		_, err := b.client.CreateClass(ctx, req)
		if !errors.Is(err, ErrValidation) || !strings.Contains(err.Error(), "ClassName, Timezone") {
			t.Errorf("err = %v", err)
		}
	})
}

const deferredListNumbers = `[
  {"class_deferred_id": 100, "class_id": "01cceb4b-afce-4703-a842-6b41fad111b5", "ext_class_id": "demo-1", "email": "anne.malley@demo.com",
   "class_name": "Demo Class", "class_description": "A demonstration of Class", "created_at": "2023-03-03T14:48:06.312Z", "updated_at": "2023-03-03T14:48:06.312Z"},
  {"class_deferred_id": "101", "class_id": "fd856d46-fd2f-4e2f-bfb6-132f741c0bf4", "ext_class_id": "demo-2", "email": "james.lloyd@demo.com",
   "class_name": "Another Demo Class", "class_description": "Another demonstration of Class", "created_at": null, "updated_at": "yesterday"}
]`

func TestDeferredClasses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupWire(t, 200, deferredListNumbers)
	list, err := b.client.ListDeferredClasses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := b.last(t); r.RawQuery != "deferred=true" {
		t.Errorf("query = %q", r.RawQuery)
	}
	if len(list) != 2 || list[0].ClassDeferredID != "100" || list[1].ClassDeferredID != "101" {
		t.Fatalf("list = %+v", list)
	}
	if want := time.Date(2023, 3, 3, 14, 48, 6, 312e6, time.UTC); !list[0].CreatedAt.Equal(want) {
		t.Errorf("created_at = %v", list[0].CreatedAt)
	}
	if !list[1].CreatedAt.IsZero() || !list[1].UpdatedAt.IsZero() {
		t.Errorf("odd timestamps should decode as zero: %+v", list[1])
	}

	d, err := b.client.GetDeferredClass(ctx, ClassRef{ExtClassID: "demo-2"})
	if err != nil || d.ClassID != "fd856d46-fd2f-4e2f-bfb6-132f741c0bf4" {
		t.Errorf("GetDeferredClass = %+v, %v", d, err)
	}
	if r := b.last(t); r.RawQuery != "deferred=true&ext_class_id=demo-2" {
		t.Errorf("query = %q", r.RawQuery)
	}
	d, err = b.client.GetDeferredClass(ctx, ClassRef{ClassDeferredID: "100"})
	if err != nil || d.ExtClassID != "demo-1" {
		t.Errorf("GetDeferredClass by deferred id = %+v, %v", d, err)
	}
	if r := b.last(t); r.RawQuery != "deferred=true" {
		t.Errorf("query = %q", r.RawQuery)
	}
	if _, err := b.client.GetDeferredClass(ctx, ClassRef{ClassDeferredID: "102"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
}

func TestGetClass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupWire(t, 200, `[{"class_id":"01cceb4b-afce-4703-a842-6b41fad111b5","ext_class_id":"demo-1","class_name":"Demo Class",
	  "class_description":"A demonstration of Class","meeting_id":92117646134,"host":"Anne Malley",
	  "invite_link":"https://mydemo.class.com/class.html?class_uuid=01cceb4b-afce-4703-a842-6b41fad111b5","password":"a1demo"}]`)
	ci, err := b.client.GetClass(ctx, ClassRef{ClassID: "01cceb4b-afce-4703-a842-6b41fad111b5"})
	if err != nil {
		t.Fatal(err)
	}
	if ci.MeetingID != "92117646134" || ci.ExtClassID != "demo-1" || ci.Password != "a1demo" {
		t.Errorf("class = %+v", ci)
	}
	if r := b.last(t); r.RawQuery != "class_id=01cceb4b-afce-4703-a842-6b41fad111b5" {
		t.Errorf("query = %q", r.RawQuery)
	}
	if _, err := b.client.GetClass(ctx, ClassRef{ExtClassID: "demo-9"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
	for _, ref := range []ClassRef{{}, {ClassDeferredID: "7"}, {ClassID: "a", ExtClassID: "b"}} {
		if _, err := b.client.GetClass(ctx, ref); !errors.Is(err, ErrValidation) {
			t.Errorf("GetClass(%+v) err = %v, want ErrValidation", ref, err)
		}
	}
	list, err := b.client.ListClasses(ctx)
	if err != nil || len(list) != 1 {
		t.Errorf("ListClasses = %+v, %v", list, err)
	}
}

func TestUpdateClass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	name := "Demo class extended"
	for _, answer := range []string{
		`{"class_id":"01cc","ext_class_id":"demo-1","class_name":"Demo class extended"}`,
		`[{"class_deferred_id":100,"class_id":"01cc","ext_class_id":"demo-1","class_name":"Demo class extended"}]`,
	} {
		b := setupWire(t, 200, answer)
		if err := b.client.UpdateClass(ctx, UpdateClassRequest{Ref: ClassRef{ExtClassID: "demo-1"}, ClassName: &name}); err != nil {
			t.Errorf("answer %s: %v", answer, err)
		}
		r := b.last(t)
		if r.Method != http.MethodPatch || r.RawQuery != "" {
			t.Errorf("request = %s ?%s", r.Method, r.RawQuery)
		}
		jsonEqual(t, r.Body, `{"ext_class_id":"demo-1","class_name":"Demo class extended"}`)
	}
	b := setupWire(t, 200, `{}`)
	if err := b.client.UpdateClass(ctx, UpdateClassRequest{Ref: ClassRef{ExtClassID: "demo-1"}}); !errors.Is(err, ErrValidation) {
		t.Errorf("empty update err = %v, want ErrValidation", err)
	}
	if err := b.client.UpdateClass(ctx, UpdateClassRequest{Ref: ClassRef{ClassDeferredID: "100"}, ClassName: &name}); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, b.last(t).Body, `{"class_deferred_id":"100","class_name":"Demo class extended"}`)
}

func TestDeleteClass(t *testing.T) {
	t.Parallel()
	b := setupWire(t, 200, `{"message":"Success"}`)
	for ref, query := range map[ClassRef]string{
		{ClassID: "01cc"}:        "class_id=01cc",
		{ExtClassID: "demo-1"}:   "ext_class_id=demo-1",
		{ClassDeferredID: "100"}: "class_deferred_id=100",
	} {
		if err := b.client.DeleteClass(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
		if r := b.last(t); r.Method != http.MethodDelete || r.RawQuery != query {
			t.Errorf("request = %s ?%s, want ?%s", r.Method, r.RawQuery, query)
		}
	}
}

func TestEnrollments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	req := EnrollmentRequest{Email: "francisco.beck@demo.com", ExtClassID: "074c697e", ExtPersonID: "f.beck",
		FirstName: "Francisco", LastName: "Beck", Role: "student", DisplayName: "Francisco Beck"}

	t.Run("create", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 200, `{"student_id":"abcc140a-3462-4950-9ab7-c826fbf2376f","meeting_id":"95556910000","first_name":"Francisco",
		  "last_name":"Beck","user_name":"Francisco Beck","role":"student","email":"francisco.beck@demo.com","ext_person_id":"f.beck"}`)
		e, err := b.client.CreateEnrollment(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		want := Enrollment{StudentID: "abcc140a-3462-4950-9ab7-c826fbf2376f", MeetingID: "95556910000", UserName: "Francisco Beck",
			FirstName: "Francisco", LastName: "Beck", Email: "francisco.beck@demo.com", ExtPersonID: "f.beck", Role: "student"}
		if e != want {
			t.Errorf("enrollment = %+v", e)
		}
		r := b.last(t)
		if r.Method != http.MethodPost || r.Path != "/api/v1/class/enrollments" {
			t.Errorf("request = %s %s", r.Method, r.Path)
		}
		jsonEqual(t, r.Body, `{"email":"francisco.beck@demo.com","ext_class_id":"074c697e","ext_person_id":"f.beck",
		  "first_name":"Francisco","last_name":"Beck","role":"student","display_name":"Francisco Beck"}`)
	})
	t.Run("create deferred", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 200, docDeferredEnrollment)
		e, err := b.client.CreateEnrollment(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		want := Enrollment{UserName: "Francicso Beck", FirstName: "Francisco", LastName: "Beck", Email: "francisco.beck@demo.com", ExtPersonID: "f.beck", Role: "student"}
		if e != want {
			t.Errorf("enrollment = %+v, want %+v", e, want)
		}
	})
	t.Run("list update delete", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 200, `[{"student_id":"20cc","meeting_id":"8456209194","user_name":"Anne Malley","first_name":"Anne","last_name":"Malley",
		  "email":"anne.malley@demo.com","ext_person_id":"a.malley","role":"teacher"},
		  {"student_id":"abcc","meeting_id":"8456209194","user_name":"Francisco Beck","first_name":"Francisco","last_name":"Beck",
		  "email":"francisco.beck@demo.com","ext_person_id":null,"role":"student"}]`)
		list, err := b.client.ListEnrollments(ctx, ClassRef{ExtClassID: "074c697e"})
		if err != nil || len(list) != 2 || list[0].Role != "teacher" || list[1].ExtPersonID != "" {
			t.Fatalf("ListEnrollments = %+v, %v", list, err)
		}
		if r := b.last(t); r.RawQuery != "ext_class_id=074c697e" {
			t.Errorf("query = %q", r.RawQuery)
		}
		if _, err := b.client.ListEnrollments(ctx, ClassRef{ClassDeferredID: "7"}); !errors.Is(err, ErrValidation) {
			t.Errorf("err = %v, want ErrValidation", err)
		}

		// An answer shaped as a one-element array is accepted for update too.
		if _, err := b.client.UpdateEnrollment(ctx, EnrollmentRequest{ClassID: "c1", StudentID: "abcc", FirstName: "F", LastName: "B"}); err != nil {
			t.Fatal(err)
		}
		if r := b.last(t); r.Method != http.MethodPut {
			t.Errorf("method = %s", r.Method)
		}

		if err := b.client.DeleteEnrollment(ctx, EnrollmentRef{Email: "jordan.day@demo.com", ExtClassID: "074c697e"}); err != nil {
			t.Fatal(err)
		}
		r := b.last(t)
		if r.Method != http.MethodDelete || r.RawQuery != "" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request = %s ?%s %v", r.Method, r.RawQuery, r.Header)
		}
		jsonEqual(t, r.Body, `{"email":"jordan.day@demo.com","ext_class_id":"074c697e"}`)
	})
	t.Run("refs", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 200, `{}`)
		for _, ref := range []EnrollmentRef{{}, {ExtClassID: "x"}, {Email: "a@b.c"}, {ClassID: "a", ExtClassID: "b", Email: "a@b.c"}} {
			if err := b.client.DeleteEnrollment(ctx, ref); !errors.Is(err, ErrValidation) {
				t.Errorf("DeleteEnrollment(%+v) err = %v, want ErrValidation", ref, err)
			}
		}
		if _, err := b.client.CreateEnrollment(ctx, EnrollmentRequest{ExtClassID: "x", StudentID: "s"}); !errors.Is(err, ErrValidation) {
			t.Errorf("create by student id err = %v, want ErrValidation", err)
		}
	})
}

func TestSchedules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupWire(t, 200, `[{"schedule_id":"080911e5","class_id":"01cc","start_time":1628859600,"end_time":1628920800},
	  {"schedule_id":"a208762a","class_id":"01cc","start_time":"1628946000","end_time":1629007200}]`)
	dates, err := b.client.ListClassDates(ctx, "01cc")
	if err != nil {
		t.Fatal(err)
	}
	if len(dates) != 2 || dates[1] != (ClassDate{ScheduleID: "a208762a", ClassID: "01cc", StartTime: 1628946000, EndTime: 1629007200}) {
		t.Errorf("dates = %+v", dates)
	}
	if r := b.last(t); r.RawQuery != "class_id=01cc" {
		t.Errorf("query = %q", r.RawQuery)
	}
	if err := b.client.RemoveClassDate(ctx, "a208762a"); err != nil {
		t.Fatal(err)
	}
	if r := b.last(t); r.Method != http.MethodDelete || r.RawQuery != "schedule_id=a208762a" {
		t.Errorf("request = %s ?%s", r.Method, r.RawQuery)
	}
	for _, req := range []AddClassDateRequest{{}, {ClassID: "c", StartTime: 2, EndTime: 1, Timezone: "UTC"}, {ClassID: "c", StartTime: 1, EndTime: 2}} {
		if _, err := b.client.AddClassDate(ctx, req); !errors.Is(err, ErrValidation) {
			t.Errorf("AddClassDate(%+v) err = %v, want ErrValidation", req, err)
		}
	}
	// An answer without a schedule_id is useless: say so, and do not retry.
	_, err = b.client.AddClassDate(ctx, AddClassDateRequest{ClassID: "c", StartTime: 1, EndTime: 2, Timezone: "UTC"})
	if err == nil || IsRetryable(err) || !strings.Contains(err.Error(), "schedule_id") {
		t.Errorf("err = %v", err)
	}
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		status int
		body   string
		want   error
	}{
		{401, `{"error":"Unauthorized"}`, ErrUnauthorized},
		{403, `{"error":"Api key scope class:write required"}`, ErrForbidden},
	} {
		b := setupWire(t, tc.status, tc.body)
		_, err := b.client.CreateClass(ctx, validCreate())
		if !errors.Is(err, tc.want) || !IsAuth(err) || IsRetryable(err) {
			t.Errorf("%d: err = %v, want %v, IsAuth, not retryable", tc.status, err, tc.want)
		}
	}
}

func TestRetryableStatuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for status, want := range map[int]bool{400: false, 404: false, 409: false, 422: false, 429: true, 500: true, 502: true, 503: true, 504: true, 501: false} {
		b := setupWire(t, status, `{"error":"x"}`)
		_, err := b.client.ListClasses(ctx)
		if got := IsRetryable(err); got != want {
			t.Errorf("%d: IsRetryable = %v, want %v (%v)", status, got, want, err)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	t.Run("seconds on 429", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 429, `{"error":"slow down"}`, "Retry-After", "7")
		_, err := b.client.ListClasses(ctx)
		d, ok := RetryAfter(err)
		if !ok || d != 7*time.Second || !IsRetryable(err) {
			t.Errorf("RetryAfter = %v, %v; err = %v", d, ok, err)
		}
	})
	t.Run("date on 503", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 503, `<html>maintenance</html>`, "Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))
		b.client.now = func() time.Time { return now }
		_, err := b.client.ListClasses(ctx)
		d, ok := RetryAfter(err)
		if !ok || d != 90*time.Second || !IsRetryable(err) {
			t.Errorf("RetryAfter = %v, %v; err = %v", d, ok, err)
		}
		if want := "class: GET /api/v1/classes: 503 Service Unavailable"; err.Error() != want {
			t.Errorf("text = %q, want %q", err, want)
		}
	})
	t.Run("absent on 500", func(t *testing.T) {
		t.Parallel()
		b := setupWire(t, 500, `{}`, "Retry-After", "7")
		_, err := b.client.ListClasses(ctx)
		if d, ok := RetryAfter(err); ok {
			t.Errorf("RetryAfter on 500 = %v", d)
		}
	})
	t.Run("not an API error", func(t *testing.T) {
		t.Parallel()
		if _, ok := RetryAfter(errors.New("x")); ok {
			t.Error("RetryAfter of a plain error is ok")
		}
		if _, ok := RetryAfter(nil); ok {
			t.Error("RetryAfter(nil) is ok")
		}
	})
}

func TestUndecodableSuccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, body := range []string{`<html>`, `{"data": 5}`, ``, `[{"class_id": true}]`} {
		b := setupWire(t, 200, body)
		_, err := b.client.ListClasses(ctx)
		if err == nil || IsRetryable(err) || !strings.Contains(err.Error(), "undecodable") {
			t.Errorf("body %q: err = %v, want a non-retryable decode error", body, err)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := New("http://"+addr, testKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetUser(context.Background(), UserRef{Email: "pupil@example.com"})
	if err == nil || !IsRetryable(err) || IsAuth(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	if !strings.HasPrefix(err.Error(), "class: GET /api/v1/users: ") {
		t.Errorf("text = %q", err)
	}
	assertNoPII(t, err)
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	b := setupHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, WithHTTPClient(&http.Client{Timeout: 50 * time.Millisecond}))
	defer close(release)
	_, err := b.client.GetUser(context.Background(), UserRef{Email: "pupil@example.com"})
	if err == nil || !IsRetryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a retryable timeout", err)
	}
	assertNoPII(t, err)
}

func TestCallerCancellation(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	b := setupHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := b.client.ListClasses(ctx)
	if !errors.Is(err, context.Canceled) || IsRetryable(err) {
		t.Errorf("err = %v, want context.Canceled, not retryable", err)
	}
}

func TestBrokenBody(t *testing.T) {
	t.Parallel()
	// The server promises more than it sends and hangs up: a broken
	// connection, retryable, not a decode error.
	b := setupHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `[{"class_id":`)
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("no hijacker")
			return
		}
		conn, _, _ := hj.Hijack()
		conn.Close()
	})
	_, err := b.client.ListClasses(context.Background())
	if err == nil || !IsRetryable(err) {
		t.Errorf("err = %v, want retryable", err)
	}
}

func TestLargeErrorBody(t *testing.T) {
	t.Parallel()
	// A proxy's huge error page: read no more than the limit, keep the status.
	b := setupHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		chunk := strings.Repeat("x", 1<<10)
		for range 1 << 10 { // 1 MiB
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	_, err := b.client.ListClasses(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "" || !IsRetryable(err) {
		t.Errorf("err = %#v", err)
	}
}

// assertNoPII fails if err's text holds any part of the test email.
func assertNoPII(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{"pupil", "example.com", "email="} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error text %q holds %q", err, s)
		}
	}
}

func TestErrorsHoldNoPersonalData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ref := UserRef{Email: "pupil@example.com"}
	for name, h := range map[string]http.HandlerFunc{
		"500 echoing the email": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `{"error":"lookup of `+r.URL.Query().Get("email")+` failed","data":{"email":["`+r.URL.Query().Get("email")+` is odd"]}}`)
		},
		"404 echoing the email": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"error":"user <`+r.URL.Query().Get("email")+`> not found"}`)
		},
		"400 echoing the email percent-encoded": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":"no user for `+url.QueryEscape(r.URL.Query().Get("email"))+`"}`)
		},
		"plain text 503": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
			_, _ = io.WriteString(w, "down for "+r.URL.String())
		},
		"undecodable 200": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"email": pupil@example.com}`)
		},
		"redirect loop": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		},
	} {
		b := setupHandler(t, h)
		_, err := b.client.GetUser(ctx, ref)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		assertNoPII(t, err)
		if ae, ok := errors.AsType[*APIError](err); ok {
			for _, msgs := range ae.Fields {
				for _, m := range msgs {
					if strings.Contains(m, "pupil") {
						t.Errorf("%s: field message %q holds the email", name, m)
					}
				}
			}
		}
	}
}

// TestErrorsHoldNoAPIKey has Class echo the key it was sent, as some
// gateways do when they refuse it: the key never reaches an error's text.
func TestErrorsHoldNoAPIKey(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", httpx.MessageMaxLen-5)
	for _, tc := range []struct {
		status int
		body   string // %s is the key
		want   string
	}{
		{401, `{"error":"Invalid API key %s"}`, "class: GET /api/v1/classes: 401 Invalid API key [redacted]"},
		{403, `{"message":"Authorization: Bearer %s lacks scope class:read"}`,
			"class: GET /api/v1/classes: 403 Authorization: Bearer [redacted] lacks scope class:read"},
		{400, `{"error":"Request failed validation","data":{"key":["%s is not a key"]}}`,
			"class: GET /api/v1/classes: 400 Request failed validation (key: [redacted] is not a key)"},
		// Cut to MessageMaxLen in the middle of the key: no piece of it stays.
		{401, `{"error":"` + long + `%s"}`, "class: GET /api/v1/classes: 401 " + long + "[reda…"},
	} {
		b := setupHandler(t, func(w http.ResponseWriter, r *http.Request) {
			key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			_, _ = fmt.Fprintf(w, tc.body, key)
		})
		_, err := b.client.ListClasses(context.Background())
		if err == nil || err.Error() != tc.want || strings.Contains(err.Error(), testKey[:4]) {
			t.Errorf("%d %s: error %q, want %q", tc.status, tc.body, err, tc.want)
		}
		if tc.status == 401 && !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%d: %v is not ErrUnauthorized", tc.status, err)
		}
	}
}

// headerTeller is a transport that fails quoting the request's
// Authorization header, as a careless proxy or dialer might.
type headerTeller struct{}

func (headerTeller) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("proxy refused %q: %w", r.Header.Get("Authorization"), io.ErrUnexpectedEOF)
}

func TestTransportErrorHoldsNoAPIKey(t *testing.T) {
	t.Parallel()
	c, err := New("https://x.class.example", testKey, WithHTTPClient(&http.Client{Transport: headerTeller{}}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListClasses(context.Background())
	if err == nil || strings.Contains(err.Error(), testKey) || !IsRetryable(err) {
		t.Errorf("err = %v, want a retryable error without the key", err)
	}
}

func TestIsRetryableErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("x"), false},
		{"canceled", context.Canceled, false},
		{"deadline", context.DeadlineExceeded, true},
		{"eof", io.EOF, true},
		{"unexpected eof", &httpx.TransportError{Prefix: "class", Method: "GET", Path: "/", Err: io.ErrUnexpectedEOF}, true},
		{"dial", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route")}, true},
		{"validation", invalidRequest("op", "bad"), false},
		{"decode", &decodeError{method: "GET", path: "/", status: 200, err: io.ErrUnexpectedEOF}, false},
		{"not found", notFound(request{method: "GET", path: "/"}), false},
	} {
		if got := IsRetryable(tc.err); got != tc.want {
			t.Errorf("%s: IsRetryable = %v, want %v", tc.name, got, tc.want)
		}
	}
	if IsAuth(nil) || IsAuth(errors.New("x")) {
		t.Error("IsAuth of a non-auth error")
	}
}

func TestAPIErrorText(t *testing.T) {
	t.Parallel()
	e := &APIError{Method: "PUT", Path: "/api/v1/users", Status: 400, Message: "Request failed validation",
		Fields: map[string][]string{"user_name": {"Required.", "Too short."}, "email": {"Invalid."}}}
	const want = "class: PUT /api/v1/users: 400 Request failed validation (email: Invalid.; user_name: Required. Too short.)"
	if e.Error() != want {
		t.Errorf("text\n got %s\nwant %s", e, want)
	}
	if !errors.Is(e, ErrValidation) || errors.Is(e, ErrNotFound) {
		t.Error("Is mapping")
	}
	msg, fields := parseErrorBody([]byte(`{"message":"Internal server error","data":{"a":"one","b":5}}`))
	if msg != "Internal server error" || len(fields) != 1 || fields["a"][0] != "one" {
		t.Errorf("parseErrorBody = %q, %v", msg, fields)
	}
}
