package classtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestEnrollmentsLifecycle(t *testing.T) {
	t.Parallel()
	h := setup(t)
	id := h.createDocClass()

	// The host is enrolled as a teacher when the class is created.
	var list []map[string]any
	h.do("GET", "/api/v1/class/enrollments?ext_class_id=demo-1", nil).want(t, http.StatusOK).decode(t, &list)
	if len(list) != 1 || list[0]["email"] != "anne.malley@demo.com" || list[0]["role"] != "teacher" ||
		list[0]["user_name"] != "Anne Malley" || list[0]["ext_person_id"] != nil {
		t.Fatalf("enrollments of a new class = %v, want the host as teacher", list)
	}

	var created map[string]any
	h.do("POST", "/api/v1/class/enrollments", docEnrollment("demo-1")).want(t, http.StatusOK).decode(t, &created)
	wantKeys(t, created, "student_id", "meeting_id", "first_name", "last_name", "user_name", "role", "email", "ext_person_id")
	if sid, _ := created["student_id"].(string); !uuidRE.MatchString(sid) {
		t.Errorf("student_id = %v", created["student_id"])
	}
	if created["user_name"] != "Francisco Beck" || created["role"] != "student" || created["ext_person_id"] != "f.beck" ||
		created["meeting_id"] != list[0]["meeting_id"] {
		t.Errorf("POST answer = %v", created)
	}

	h.do("GET", "/api/v1/class/enrollments?class_id="+id, nil).want(t, http.StatusOK).decode(t, &list)
	if len(list) != 2 || list[1]["student_id"] != created["student_id"] {
		t.Fatalf("enrollments = %v, want host and Francisco", list)
	}

	// PUT by ext_person_id; role omitted defaults to student as documented.
	var updated map[string]any
	h.do("PUT", "/api/v1/class/enrollments", map[string]any{
		"ext_class_id": "demo-1", "ext_person_id": "f.beck", "email": "kayla.becker@demo.com",
		"first_name": "Kayla", "last_name": "Becker", "display_name": "Kayla Becker", "role": "assistant",
	}).want(t, http.StatusOK).decode(t, &updated)
	if updated["student_id"] != created["student_id"] || updated["first_name"] != "Kayla" || updated["email"] != "kayla.becker@demo.com" ||
		updated["role"] != "assistant" || updated["user_name"] != "Kayla Becker" {
		t.Errorf("PUT answer = %v", updated)
	}
	// The person is found by student_id, else ext_person_id, else email: with an
	// ext_person_id no enrollment has yet, the email is not consulted.
	host := map[string]any{
		"class_id": id, "email": "ANNE.MALLEY@demo.com", "ext_person_id": "a.malley",
		"first_name": "Anne", "last_name": "Malley", "role": "teacher",
	}
	h.do("PUT", "/api/v1/class/enrollments", host).wantJSON(t, http.StatusNotFound, `{"error":"enrollment a.malley not found"}`)
	// By student_id, the host enrolled at creation is given its ext_person_id.
	host["student_id"], host["email"] = list[0]["student_id"], "anne.malley@demo.com"
	h.do("PUT", "/api/v1/class/enrollments", host).want(t, http.StatusOK)
	h.do("PUT", "/api/v1/class/enrollments", map[string]any{
		"ext_class_id": "demo-1", "ext_person_id": "nobody", "first_name": "N", "last_name": "O",
	}).wantJSON(t, http.StatusNotFound, `{"error":"enrollment nobody not found"}`)

	c, _ := h.srv.FindClass("demo-1")
	want := []Enrollment{
		{StudentID: list[0]["student_id"].(string), ExtPersonID: "a.malley", Email: "anne.malley@demo.com",
			FirstName: "Anne", LastName: "Malley", Role: "teacher"},
		{StudentID: created["student_id"].(string), ExtPersonID: "f.beck", Email: "kayla.becker@demo.com",
			FirstName: "Kayla", LastName: "Becker", DisplayName: "Kayla Becker", Role: "assistant"},
	}
	if len(c.Enrollments) != 2 || c.Enrollments[0] != want[0] || c.Enrollments[1] != want[1] {
		t.Errorf("stored enrollments = %+v, want %+v", c.Enrollments, want)
	}

	h.do("DELETE", "/api/v1/class/enrollments", map[string]any{"email": "kayla.becker@demo.com", "ext_class_id": "demo-1"}).
		wantJSON(t, http.StatusOK, `{"message":"Success"}`)
	h.do("DELETE", "/api/v1/class/enrollments", map[string]any{"email": "kayla.becker@demo.com", "ext_class_id": "demo-1"}).
		wantJSON(t, http.StatusNotFound, `{"error":"enrollment not found"}`)
	if c, _ := h.srv.FindClass("demo-1"); len(c.Enrollments) != 1 || c.Enrollments[0].ExtPersonID != "a.malley" {
		t.Errorf("enrollments after DELETE = %+v", c.Enrollments)
	}

	// The role defaults to student on PUT too, as documented: omitting it demotes.
	var demoted map[string]any
	h.do("PUT", "/api/v1/class/enrollments", map[string]any{
		"ext_class_id": "demo-1", "ext_person_id": "a.malley", "first_name": "Anne", "last_name": "Malley",
	}).want(t, http.StatusOK).decode(t, &demoted)
	if demoted["role"] != "student" || demoted["email"] != "anne.malley@demo.com" {
		t.Errorf("PUT without role = %v, want role student and the email kept", demoted)
	}
}

func TestLaunchLink(t *testing.T) {
	t.Parallel()
	h := setup(t)
	id := h.createDocClass()
	h.do("POST", "/api/v1/class/enrollments", docEnrollment("demo-1")).want(t, http.StatusOK)

	var got map[string]string
	h.do("GET", "/api/v1/class/enrollments/launch?ext_class_id=demo-1&ext_person_id=f.beck", nil).
		want(t, http.StatusOK).decode(t, &got)
	if !strings.Contains(got["launch_url"], "class_uuid="+id) || strings.Contains(got["launch_url"], "francisco") {
		t.Errorf("launch_url = %q, want the class and no personal data", got["launch_url"])
	}
	h.do("GET", "/api/v1/class/enrollments/launch?ext_class_id=demo-1&email="+url.QueryEscape("x@demo.com"), nil).
		want(t, http.StatusNotFound)
}

func TestEnrollmentErrors(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.createDocClass()

	h.do("POST", "/api/v1/class/enrollments", docEnrollment("no-such-class")).
		wantJSON(t, http.StatusNotFound, `{"error":"class no-such-class not found"}`)
	bad := docEnrollment("demo-1")
	bad["email"] = "francisco beck@demo.com"
	h.do("POST", "/api/v1/class/enrollments", bad).
		wantJSON(t, http.StatusBadRequest, `{"error":"Request failed validation","data":{"email":["The email format is invalid."]}}`)
	bad = docEnrollment("demo-1")
	bad["role"] = "principal"
	delete(bad, "last_name")
	h.do("POST", "/api/v1/class/enrollments", bad).wantJSON(t, http.StatusBadRequest,
		`{"error":"Request failed validation","data":{"role":["The selected role is invalid."],"last_name":["The last name field is required."]}}`)
	bad = docEnrollment("demo-1")
	delete(bad, "email")
	delete(bad, "ext_person_id")
	h.do("POST", "/api/v1/class/enrollments", bad).want(t, http.StatusBadRequest)
	bad = docEnrollment("")
	h.do("POST", "/api/v1/class/enrollments", bad).want(t, http.StatusBadRequest)
	if c, _ := h.srv.FindClass("demo-1"); len(c.Enrollments) != 1 {
		t.Errorf("refused POSTs stored enrollments: %+v", c.Enrollments)
	}
}

func TestDuplicateEnrollmentsAreAddedAndRecorded(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.createDocClass()

	h.do("POST", "/api/v1/class/enrollments", docEnrollment("demo-1")).want(t, http.StatusOK)
	if d := h.srv.Duplicates(); d != nil {
		t.Fatalf("duplicates after one POST = %v", d)
	}
	h.do("POST", "/api/v1/class/enrollments", docEnrollment("demo-1")).want(t, http.StatusOK)
	// The host, enrolled without ext_person_id at creation, posted again by email.
	h.do("POST", "/api/v1/class/enrollments", map[string]any{
		"ext_class_id": "demo-1", "email": "Anne.Malley@demo.com", "ext_person_id": "a.malley",
		"first_name": "Anne", "last_name": "Malley", "role": "teacher",
	}).want(t, http.StatusOK)
	// A different person sharing nothing is not a duplicate.
	other := docEnrollment("demo-1")
	other["ext_person_id"], other["email"] = "k.becker", "kayla.becker@demo.com"
	h.do("POST", "/api/v1/class/enrollments", other).want(t, http.StatusOK)

	dups := h.srv.Duplicates()
	if len(dups) != 2 || dups[0].Kind != DuplicateEnrollment || dups[1].Kind != DuplicateEnrollment {
		t.Fatalf("duplicates = %v, want two enrollment duplicates", dups)
	}
	for _, d := range dups {
		if strings.Contains(d.Detail, "@") {
			t.Errorf("duplicate detail %q holds an email", d.Detail)
		}
	}
	if c, _ := h.srv.FindClass("demo-1"); len(c.Enrollments) != 5 {
		t.Errorf("%d enrollments stored, want 5 (duplicates are added, as the real service does)", len(c.Enrollments))
	}
	// DELETE removes every enrollment of the person.
	h.do("DELETE", "/api/v1/class/enrollments", map[string]any{"ext_person_id": "f.beck", "ext_class_id": "demo-1"}).
		want(t, http.StatusOK)
	if c, _ := h.srv.FindClass("demo-1"); len(c.Enrollments) != 3 {
		t.Errorf("%d enrollments after DELETE, want 3", len(c.Enrollments))
	}
}
