package classtest

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/simhttp"
)

// enrollmentJSON is the regular enrollment shape of POST, GET and PUT answers.
type enrollmentJSON struct {
	StudentID   string  `json:"student_id"`
	MeetingID   *string `json:"meeting_id"`
	FirstName   string  `json:"first_name"`
	LastName    string  `json:"last_name"`
	UserName    string  `json:"user_name"`
	Role        string  `json:"role"`
	Email       *string `json:"email"`
	ExtPersonID *string `json:"ext_person_id"`
}

func enrollmentOut(c *classRec, e *enrollRec) enrollmentJSON {
	return enrollmentJSON{
		StudentID: e.studentID, MeetingID: nullable(c.meetingID), FirstName: e.first, LastName: e.last,
		UserName: e.userName(), Role: e.role, Email: nullable(e.email), ExtPersonID: nullable(e.extPersonID),
	}
}

// deferredEnrollmentOut is the deferred answer of Create an Enrollment.
func deferredEnrollmentOut(c *classRec, e *enrollRec) any {
	type pod struct {
		Name         string `json:"name"`
		Region       string `json:"region"`
		Account      string `json:"account"`
		Environment  string `json:"environment"`
		DatabaseName string `json:"databaseName"`
	}
	type user struct {
		Role        string  `json:"role"`
		Email       *string `json:"email"`
		LastName    string  `json:"last_name"`
		UserName    string  `json:"user_name"`
		FirstName   string  `json:"first_name"`
		ExtPersonID *string `json:"ext_person_id"`
	}
	type classRef struct {
		ExtID *string `json:"ext_id"`
	}
	type params struct {
		Pod   pod      `json:"pod"`
		Class classRef `json:"class"`
	}
	return struct {
		ID              int64   `json:"id"`
		ClassDeferredID string  `json:"class_deferred_id"` // a string here, a number elsewhere, as documented
		EmailUser       *string `json:"email_user"`
		EnrollParams    params  `json:"enroll_params"`
		User            user    `json:"user"`
		CreatedAt       string  `json:"created_at"`
		UpdatedAt       string  `json:"updated_at"`
		Role            string  `json:"role"`
	}{
		ID:              e.seq,
		ClassDeferredID: strconv.FormatInt(c.deferredID, 10),
		EmailUser:       nullable(e.email),
		EnrollParams: params{
			Pod:   pod{Name: "pod-1", Region: "us-east-1", Account: "classtest", Environment: "test", DatabaseName: "customer_classtest"},
			Class: classRef{ExtID: nullable(c.ext)},
		},
		User: user{Role: e.role, Email: nullable(e.email), LastName: e.last, UserName: e.userName(),
			FirstName: e.first, ExtPersonID: nullable(e.extPersonID)},
		CreatedAt: apiTime(e.created),
		UpdatedAt: apiTime(e.updated),
		Role:      e.role,
	}
}

// enroll appends an enrollment, giving it its generated ids; s.mu must be held.
func (s *Server) enroll(c *classRec, e *enrollRec) {
	e.studentID = s.newUUID()
	e.seq = s.data.nextSeq
	s.data.nextSeq++
	now := time.Now()
	e.created, e.updated = now, now
	c.enrollments = append(c.enrollments, e)
}

// enrollmentClass finds the class of an enrollment request by class_id or ext_class_id
// (regular or deferred). With both given, both must name the same class.
func (s *Server) enrollmentClass(classID, extClassID string) (*classRec, *simhttp.Reply) {
	if classID == "" && extClassID == "" {
		fe := fieldErrors{}
		fe.add("class_id", "The class id field is required when ext class id is not present.")
		r := fe.reply()
		return nil, &r
	}
	var c *classRec
	if classID != "" {
		c = s.data.byID[classID]
		if c == nil {
			r := classNotFound(classID)
			return nil, &r
		}
		if extClassID != "" && c.ext != extClassID {
			r := classNotFound(extClassID)
			return nil, &r
		}
		return c, nil
	}
	c = s.data.byExt[extClassID]
	if c == nil {
		r := classNotFound(extClassID)
		return nil, &r
	}
	return c, nil
}

var enrollmentRoles = []string{"student", "assistant", "teacher"}

type enrollmentBody struct {
	ClassID     string `json:"class_id"`
	ExtClassID  string `json:"ext_class_id"`
	StudentID   string `json:"student_id"`
	ExtPersonID string `json:"ext_person_id"`
	Email       string `json:"email"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	Role        string `json:"role"`
	DisplayName string `json:"display_name"`
}

// validate checks a POST or PUT body; withStudentID says whether student_id identifies
// the person (PUT) besides ext_person_id and email.
func (b *enrollmentBody) validate(withStudentID bool) fieldErrors {
	fe := fieldErrors{}
	if b.FirstName == "" {
		fe.required("first_name")
	}
	if b.LastName == "" {
		fe.required("last_name")
	}
	if b.ExtPersonID == "" && b.Email == "" && (!withStudentID || b.StudentID == "") {
		fe.add("email", "The email field is required when ext person id is not present.")
	}
	fe.checkEmail("email", b.Email)
	if b.Role != "" && !slices.Contains(enrollmentRoles, b.Role) {
		fe.add("role", "The selected role is invalid.")
	}
	return fe
}

// postEnrollment serves Create an Enrollment. Like the real service it always adds a
// new enrollment; one that repeats a person already enrolled is recorded as a Duplicate.
func (s *Server) postEnrollment(_ *http.Request, body []byte) simhttp.Reply {
	var b enrollmentBody
	if rep := decodeBody(body, &b); rep != nil {
		return *rep
	}
	b.StudentID = "" // not an input of POST
	if fe := b.validate(false); len(fe) > 0 {
		return fe.reply()
	}
	c, rep := s.enrollmentClass(b.ClassID, b.ExtClassID)
	if rep != nil {
		return *rep
	}
	e := &enrollRec{extPersonID: b.ExtPersonID, email: b.Email, first: b.FirstName, last: b.LastName,
		display: b.DisplayName, role: cmp.Or(b.Role, "student")}
	if prev := samePerson(c, e); prev != nil {
		s.data.dups = append(s.data.dups, Duplicate{Kind: DuplicateEnrollment,
			Detail: fmt.Sprintf("class %s: person of enrollment %s enrolled again", c.id, prev.studentID)})
	}
	s.enroll(c, e)
	if c.deferred {
		return simhttp.JSON(http.StatusOK, deferredEnrollmentOut(c, e))
	}
	return simhttp.JSON(http.StatusOK, enrollmentOut(c, e))
}

// samePerson returns an enrollment of c that is the same person as e: the same
// ext_person_id, or the same email (case-insensitive) where one of the two has no
// ext_person_id, which is how the host enrolled at creation is posted a second time.
func samePerson(c *classRec, e *enrollRec) *enrollRec {
	for _, x := range c.enrollments {
		if e.extPersonID != "" && x.extPersonID == e.extPersonID {
			return x
		}
		if e.email != "" && strings.EqualFold(x.email, e.email) && (e.extPersonID == "" || x.extPersonID == "") {
			return x
		}
	}
	return nil
}

// matchPerson returns the predicate selecting the enrollments a PUT or DELETE names:
// by student_id, else ext_person_id, else email.
func matchPerson(studentID, extPersonID, email string) func(*enrollRec) bool {
	switch {
	case studentID != "":
		return func(e *enrollRec) bool { return e.studentID == studentID }
	case extPersonID != "":
		return func(e *enrollRec) bool { return e.extPersonID == extPersonID }
	default:
		return func(e *enrollRec) bool { return strings.EqualFold(e.email, email) }
	}
}

// enrollmentNotFound names the enrollment by its ids only, never by email.
func enrollmentNotFound(studentID, extPersonID string) simhttp.Reply {
	if id := cmp.Or(studentID, extPersonID); id != "" {
		return errReply(http.StatusNotFound, "enrollment "+id+" not found")
	}
	return errReply(http.StatusNotFound, "enrollment not found")
}

// getEnrollments serves Get Enrollments, in enrollment order.
func (s *Server) getEnrollments(r *http.Request, _ []byte) simhttp.Reply {
	q := r.URL.Query()
	c, rep := s.enrollmentClass(q.Get("class_id"), q.Get("ext_class_id"))
	if rep != nil {
		return *rep
	}
	out := make([]enrollmentJSON, 0, len(c.enrollments))
	for _, e := range c.enrollments {
		out = append(out, enrollmentOut(c, e))
	}
	return simhttp.JSON(http.StatusOK, out)
}

// putEnrollment serves Update an Enrollment. The role defaults to student when not
// given, as documented, so an update that omits it demotes a teacher.
func (s *Server) putEnrollment(_ *http.Request, body []byte) simhttp.Reply {
	var b enrollmentBody
	if rep := decodeBody(body, &b); rep != nil {
		return *rep
	}
	if fe := b.validate(true); len(fe) > 0 {
		return fe.reply()
	}
	c, rep := s.enrollmentClass(b.ClassID, b.ExtClassID)
	if rep != nil {
		return *rep
	}
	i := slices.IndexFunc(c.enrollments, matchPerson(b.StudentID, b.ExtPersonID, b.Email))
	if i < 0 {
		return enrollmentNotFound(b.StudentID, b.ExtPersonID)
	}
	e := c.enrollments[i]
	e.first, e.last = b.FirstName, b.LastName
	e.role = cmp.Or(b.Role, "student")
	if b.DisplayName != "" {
		e.display = b.DisplayName
	}
	if b.Email != "" {
		e.email = b.Email
	}
	if b.ExtPersonID != "" {
		e.extPersonID = b.ExtPersonID
	}
	e.updated = time.Now()
	return simhttp.JSON(http.StatusOK, enrollmentOut(c, e))
}

// deleteEnrollment serves Remove an Enrollment: every enrollment of the person goes.
func (s *Server) deleteEnrollment(_ *http.Request, body []byte) simhttp.Reply {
	var b enrollmentBody
	if rep := decodeBody(body, &b); rep != nil {
		return *rep
	}
	fe := fieldErrors{}
	if b.StudentID == "" && b.ExtPersonID == "" && b.Email == "" {
		fe.add("email", "The email field is required when student id and ext person id are not present.")
	}
	fe.checkEmail("email", b.Email)
	if len(fe) > 0 {
		return fe.reply()
	}
	c, rep := s.enrollmentClass(b.ClassID, b.ExtClassID)
	if rep != nil {
		return *rep
	}
	n := len(c.enrollments)
	c.enrollments = slices.DeleteFunc(c.enrollments, matchPerson(b.StudentID, b.ExtPersonID, b.Email))
	if len(c.enrollments) == n {
		return enrollmentNotFound(b.StudentID, b.ExtPersonID)
	}
	return successReply()
}

// getLaunch serves Get a Launch Link for one enrolled person.
func (s *Server) getLaunch(r *http.Request, _ []byte) simhttp.Reply {
	q := r.URL.Query()
	kind, id, rep := pickOne(map[string]string{"class_id": q.Get("class_id"), "ext_class_id": q.Get("ext_class_id")},
		true, "class_id", "ext_class_id")
	if rep != nil {
		return *rep
	}
	_, _, rep = pickOne(map[string]string{"email": q.Get("email"), "ext_person_id": q.Get("ext_person_id")},
		true, "email", "ext_person_id")
	if rep != nil {
		return *rep
	}
	c := s.findClass(kind, id)
	if c == nil {
		return classNotFound(id)
	}
	i := slices.IndexFunc(c.enrollments, matchPerson("", q.Get("ext_person_id"), q.Get("email")))
	if i < 0 {
		return enrollmentNotFound("", q.Get("ext_person_id"))
	}
	e := c.enrollments[i]
	v := url.Values{"class_uuid": {c.id}, "student_id": {e.studentID}, "code": {s.newUUID()}}
	return simhttp.JSON(http.StatusOK, map[string]string{"launch_url": s.URL() + "/class.html?" + v.Encode()})
}
