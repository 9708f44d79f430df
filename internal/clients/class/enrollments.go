package class

import (
	"context"
	"encoding/json"
	"net/http"
)

// Enrollment is a person's place in a class. Pupils exist in Class only as
// enrollments.
type Enrollment struct {
	// StudentID is Class's UUID of the enrolled person; empty in the answer
	// for a deferred class, whose enrollment is made later.
	StudentID   string `json:"student_id"`
	MeetingID   string `json:"meeting_id"`
	UserName    string `json:"user_name"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	Email       string `json:"email"`
	ExtPersonID string `json:"ext_person_id"`
	// Role is student, assistant or teacher.
	Role string `json:"role"`
}

// UnmarshalJSON decodes an enrollment and also the deferred answer of Create
// an Enrollment ({"id", "class_deferred_id", "email_user", "user": {...},
// "role", ...}), whose person fields are taken from its "user" object.
func (e *Enrollment) UnmarshalJSON(b []byte) error {
	type person struct {
		UserName    string     `json:"user_name"`
		FirstName   string     `json:"first_name"`
		LastName    string     `json:"last_name"`
		Email       string     `json:"email"`
		ExtPersonID flexString `json:"ext_person_id"`
		Role        string     `json:"role"`
	}
	var w struct {
		person
		StudentID flexString `json:"student_id"`
		MeetingID flexString `json:"meeting_id"`
		EmailUser string     `json:"email_user"`
		User      *person    `json:"user"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Enrollment{
		StudentID:   string(w.StudentID),
		MeetingID:   string(w.MeetingID),
		UserName:    w.UserName,
		FirstName:   w.FirstName,
		LastName:    w.LastName,
		Email:       w.Email,
		ExtPersonID: string(w.ExtPersonID),
		Role:        w.Role,
	}
	if u := w.User; u != nil {
		fill := func(dst *string, src string) {
			if *dst == "" {
				*dst = src
			}
		}
		fill(&e.UserName, u.UserName)
		fill(&e.FirstName, u.FirstName)
		fill(&e.LastName, u.LastName)
		fill(&e.Email, u.Email)
		fill(&e.ExtPersonID, string(u.ExtPersonID))
		fill(&e.Role, u.Role)
	}
	if e.Email == "" {
		e.Email = w.EmailUser
	}
	return nil
}

// EnrollmentRequest creates or updates an enrollment. The class is named by
// exactly one of ClassID and ExtClassID; the person by ExtPersonID or Email
// (or StudentID, on update). Empty fields are not sent; Role defaults to
// student in Class.
type EnrollmentRequest struct {
	ClassID     string `json:"class_id,omitempty"`
	ExtClassID  string `json:"ext_class_id,omitempty"`
	StudentID   string `json:"student_id,omitempty"`
	ExtPersonID string `json:"ext_person_id,omitempty"`
	Email       string `json:"email,omitempty"`
	FirstName   string `json:"first_name,omitempty"`
	LastName    string `json:"last_name,omitempty"`
	Role        string `json:"role,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
}

// EnrollmentRef names one enrollment: the class by exactly one of ClassID and
// ExtClassID, the person by at least one of StudentID, ExtPersonID and Email.
type EnrollmentRef struct {
	ClassID     string `json:"class_id,omitempty"`
	ExtClassID  string `json:"ext_class_id,omitempty"`
	StudentID   string `json:"student_id,omitempty"`
	ExtPersonID string `json:"ext_person_id,omitempty"`
	Email       string `json:"email,omitempty"`
}

// check returns an error unless ref names one class and a person. Refusing a
// half-named enrollment here keeps a DELETE from ever reaching Class with a
// body it might read more broadly than meant.
func (ref EnrollmentRef) check(op string, studentIDAllowed bool) error {
	if (ref.ClassID == "") == (ref.ExtClassID == "") {
		return invalidRequest(op, "exactly one of ClassID, ExtClassID must be set")
	}
	if ref.StudentID != "" && !studentIDAllowed {
		return invalidRequest(op, "the endpoint does not take StudentID")
	}
	if ref.StudentID == "" && ref.ExtPersonID == "" && ref.Email == "" {
		return invalidRequest(op, "one of StudentID, ExtPersonID, Email must be set")
	}
	return nil
}

func (req EnrollmentRequest) ref() EnrollmentRef {
	return EnrollmentRef{ClassID: req.ClassID, ExtClassID: req.ExtClassID,
		StudentID: req.StudentID, ExtPersonID: req.ExtPersonID, Email: req.Email}
}

// CreateEnrollment enrolls a person in a class. For a deferred class Class
// answers with a pending record instead; its person fields are returned and
// StudentID and MeetingID are empty.
func (c *Client) CreateEnrollment(ctx context.Context, req EnrollmentRequest) (Enrollment, error) {
	if err := req.ref().check("CreateEnrollment", false); err != nil {
		return Enrollment{}, err
	}
	return c.sendEnrollment(ctx, http.MethodPost, req)
}

// UpdateEnrollment changes the name, email or role of an enrolled person.
func (c *Client) UpdateEnrollment(ctx context.Context, req EnrollmentRequest) (Enrollment, error) {
	if err := req.ref().check("UpdateEnrollment", true); err != nil {
		return Enrollment{}, err
	}
	return c.sendEnrollment(ctx, http.MethodPut, req)
}

func (c *Client) sendEnrollment(ctx context.Context, method string, req EnrollmentRequest) (Enrollment, error) {
	r := request{method: method, path: pathEnrollments, body: req}
	resp, err := c.do(ctx, r)
	if err != nil {
		return Enrollment{}, err
	}
	got, err := decodeOneOrMany[Enrollment](r, resp)
	if err != nil {
		return Enrollment{}, err
	}
	if len(got) == 0 {
		return Enrollment{}, &decodeError{method: r.method, path: r.path, status: resp.status, err: errEmptyAnswer}
	}
	return got[0], nil
}

// ListEnrollments returns every enrollment of the class, named by ClassID or
// ExtClassID.
func (c *Client) ListEnrollments(ctx context.Context, class ClassRef) ([]Enrollment, error) {
	if err := class.check("ListEnrollments", false); err != nil {
		return nil, err
	}
	r := request{method: http.MethodGet, path: pathEnrollments, query: class.values()}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return decodeOneOrMany[Enrollment](r, resp)
}

// DeleteEnrollment removes a person from a class. Class takes the enrollment's
// identity in a JSON body of the DELETE, not in the query.
func (c *Client) DeleteEnrollment(ctx context.Context, ref EnrollmentRef) error {
	if err := ref.check("DeleteEnrollment", true); err != nil {
		return err
	}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: pathEnrollments, body: ref})
	return err
}
