package class

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ClassRef names one class by exactly one of its identifiers.
type ClassRef struct {
	// ClassID is Class's UUID of the class.
	ClassID string
	// ExtClassID is the organisation's identifier, given at creation.
	ExtClassID string
	// ClassDeferredID is Class's identifier of a deferred class record.
	ClassDeferredID string
}

// count returns how many identifiers r sets.
func (r ClassRef) count() int {
	n := 0
	for _, s := range []string{r.ClassID, r.ExtClassID, r.ClassDeferredID} {
		if s != "" {
			n++
		}
	}
	return n
}

// values returns r's identifier as query parameters (or body fields) named as
// Class names them.
func (r ClassRef) values() url.Values {
	q := url.Values{}
	switch {
	case r.ClassID != "":
		q.Set("class_id", r.ClassID)
	case r.ExtClassID != "":
		q.Set("ext_class_id", r.ExtClassID)
	case r.ClassDeferredID != "":
		q.Set("class_deferred_id", r.ClassDeferredID)
	}
	return q
}

// check returns an error unless r sets exactly one identifier, and
// ClassDeferredID only where the endpoint accepts it.
func (r ClassRef) check(op string, deferredIDAllowed bool) error {
	if n := r.count(); n != 1 {
		return invalidRequest(op, "exactly one of ClassID, ExtClassID, ClassDeferredID must be set, got %d", n)
	}
	if r.ClassDeferredID != "" && !deferredIDAllowed {
		return invalidRequest(op, "the endpoint does not take ClassDeferredID")
	}
	return nil
}

// SessionTime is one session of a class, in Unix seconds.
type SessionTime struct {
	StartTime int64 `json:"start_time"`
	EndTime   int64 `json:"end_time"`
}

// ClassSettings are the meeting settings of a new class; nil fields are left
// to Class's defaults.
type ClassSettings struct {
	WaitingRoom    *bool `json:"waiting_room,omitempty"`
	JoinBeforeHost *bool `json:"join_before_host,omitempty"`
	// JBHTime is the minutes before the start at which participants may join: 0, 5 or 10.
	JBHTime *int `json:"jbh_time,omitempty"`
}

// CreateClassRequest creates a class. Email, FirstName and LastName name the
// host (instructor), who cannot be changed later; ClassName and Timezone are
// required too.
type CreateClassRequest struct {
	Email            string
	FirstName        string
	LastName         string
	DisplayName      string
	Timezone         string
	ExtClassID       string
	ClassName        string
	ClassDescription string
	MeetingPasscode  string
	// TemplateID is sent when non-zero.
	TemplateID   int
	SessionTimes []SessionTime
	Settings     *ClassSettings
	// AdditionalInstructors are the emails of further instructors.
	AdditionalInstructors []string
}

type createClassBody struct {
	Email                 string          `json:"email"`
	FirstName             string          `json:"first_name"`
	LastName              string          `json:"last_name"`
	DisplayName           string          `json:"display_name,omitempty"`
	Timezone              string          `json:"timezone"`
	ExtClassID            string          `json:"ext_class_id,omitempty"`
	ClassName             string          `json:"class_name"`
	ClassDescription      string          `json:"class_description,omitempty"`
	MeetingPasscode       string          `json:"meeting_passcode,omitempty"`
	TemplateID            int             `json:"template_id,omitempty"`
	SessionTimes          []SessionTime   `json:"session_times,omitempty"`
	Settings              *ClassSettings  `json:"settings,omitempty"`
	AdditionalInstructors []instructorRef `json:"additional_instructors,omitempty"`
}

type instructorRef struct {
	Email string `json:"email"`
}

// CreateClassResult is Class's answer to Create a Class, which comes in two
// shapes. The immediate one carries MeetingID and InviteLink and (in the
// documented answer) no ClassID. The deferred one (Deferred true) carries
// ClassDeferredID, ClassID and ExtID; the meeting is made later, and the class
// is addressed as any other meanwhile.
type CreateClassResult struct {
	MeetingID       string
	InviteLink      string
	Deferred        bool
	ClassDeferredID string
	// ClassID is empty when Class did not send one, as in the documented
	// immediate answer: resolve it with [Client.GetClass] by ExtClassID.
	ClassID string
	// ExtID is the class's ext_class_id as Class echoes it.
	ExtID string
}

// UnmarshalJSON decodes both shapes, with class_deferred_id as a number or a
// string.
func (r *CreateClassResult) UnmarshalJSON(b []byte) error {
	var w struct {
		MeetingID       flexString `json:"meeting_id"`
		InviteLink      string     `json:"invite_link"`
		ClassDeferredID flexString `json:"class_deferred_id"`
		ClassID         flexString `json:"class_id"`
		ExtID           flexString `json:"ext_id"`
		ExtClassID      flexString `json:"ext_class_id"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = CreateClassResult{
		MeetingID:       string(w.MeetingID),
		InviteLink:      w.InviteLink,
		Deferred:        w.ClassDeferredID != "",
		ClassDeferredID: string(w.ClassDeferredID),
		ClassID:         string(w.ClassID),
		ExtID:           string(w.ExtID),
	}
	if r.ExtID == "" {
		r.ExtID = string(w.ExtClassID)
	}
	return nil
}

// ClassInfo describes a (non-deferred) class.
type ClassInfo struct {
	ClassID          string `json:"class_id"`
	ExtClassID       string `json:"ext_class_id"`
	ClassName        string `json:"class_name"`
	ClassDescription string `json:"class_description"`
	MeetingID        string `json:"meeting_id"`
	// Host is the host's display name.
	Host       string `json:"host"`
	InviteLink string `json:"invite_link"`
	// Password is the meeting passcode.
	Password string `json:"password"`
}

// UnmarshalJSON accepts identifiers and the passcode as strings, numbers or null.
func (ci *ClassInfo) UnmarshalJSON(b []byte) error {
	var w struct {
		ClassID          flexString `json:"class_id"`
		ExtClassID       flexString `json:"ext_class_id"`
		ClassName        string     `json:"class_name"`
		ClassDescription string     `json:"class_description"`
		MeetingID        flexString `json:"meeting_id"`
		Host             string     `json:"host"`
		InviteLink       string     `json:"invite_link"`
		Password         flexString `json:"password"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*ci = ClassInfo{
		ClassID:          string(w.ClassID),
		ExtClassID:       string(w.ExtClassID),
		ClassName:        w.ClassName,
		ClassDescription: w.ClassDescription,
		MeetingID:        string(w.MeetingID),
		Host:             w.Host,
		InviteLink:       w.InviteLink,
		Password:         string(w.Password),
	}
	return nil
}

// DeferredClass is a deferred class record: a class accepted by Class whose
// meeting is not made yet.
type DeferredClass struct {
	// ClassDeferredID is a number in some answers and a string in others; it
	// is kept as its decimal text.
	ClassDeferredID  string    `json:"class_deferred_id"`
	ClassID          string    `json:"class_id"`
	ExtClassID       string    `json:"ext_class_id"`
	Email            string    `json:"email"`
	ClassName        string    `json:"class_name"`
	ClassDescription string    `json:"class_description"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// UnmarshalJSON accepts class_deferred_id as a number or a string, and
// timestamps that are null or unreadable as the zero time.
func (d *DeferredClass) UnmarshalJSON(b []byte) error {
	var w struct {
		ClassDeferredID  flexString `json:"class_deferred_id"`
		ClassID          flexString `json:"class_id"`
		ExtClassID       flexString `json:"ext_class_id"`
		Email            string     `json:"email"`
		ClassName        string     `json:"class_name"`
		ClassDescription string     `json:"class_description"`
		CreatedAt        flexTime   `json:"created_at"`
		UpdatedAt        flexTime   `json:"updated_at"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*d = DeferredClass{
		ClassDeferredID:  string(w.ClassDeferredID),
		ClassID:          string(w.ClassID),
		ExtClassID:       string(w.ExtClassID),
		Email:            w.Email,
		ClassName:        w.ClassName,
		ClassDescription: w.ClassDescription,
		CreatedAt:        time.Time(w.CreatedAt),
		UpdatedAt:        time.Time(w.UpdatedAt),
	}
	return nil
}

func (r ClassRef) matchesClass(ci ClassInfo) bool {
	if r.ClassID != "" {
		return strings.EqualFold(ci.ClassID, r.ClassID)
	}
	return ci.ExtClassID == r.ExtClassID
}

func (r ClassRef) matchesDeferred(d DeferredClass) bool {
	switch {
	case r.ClassID != "":
		return strings.EqualFold(d.ClassID, r.ClassID)
	case r.ExtClassID != "":
		return d.ExtClassID == r.ExtClassID
	default:
		return d.ClassDeferredID == r.ClassDeferredID
	}
}

// CreateClass creates a class with req's host. Class answers either with the
// meeting at once or deferred (see [CreateClassResult]). A repeated
// ExtClassID is an error matching [ErrExists].
func (c *Client) CreateClass(ctx context.Context, req CreateClassRequest) (CreateClassResult, error) {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"Email", req.Email}, {"FirstName", req.FirstName}, {"LastName", req.LastName},
		{"ClassName", req.ClassName}, {"Timezone", req.Timezone},
	} {
		if strings.TrimSpace(f.value) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return CreateClassResult{}, invalidRequest("CreateClass", "%s required", strings.Join(missing, ", "))
	}
	body := createClassBody{
		Email:            req.Email,
		FirstName:        req.FirstName,
		LastName:         req.LastName,
		DisplayName:      req.DisplayName,
		Timezone:         req.Timezone,
		ExtClassID:       req.ExtClassID,
		ClassName:        req.ClassName,
		ClassDescription: req.ClassDescription,
		MeetingPasscode:  req.MeetingPasscode,
		TemplateID:       req.TemplateID,
		SessionTimes:     req.SessionTimes,
		Settings:         req.Settings,
	}
	for _, email := range req.AdditionalInstructors {
		body.AdditionalInstructors = append(body.AdditionalInstructors, instructorRef{Email: email})
	}
	r := request{method: http.MethodPost, path: pathClasses, body: body}
	resp, err := c.do(ctx, r)
	if err != nil {
		return CreateClassResult{}, err
	}
	results, err := decodeOneOrMany[CreateClassResult](r, resp)
	if err != nil {
		return CreateClassResult{}, err
	}
	if len(results) == 0 {
		return CreateClassResult{}, &decodeError{method: r.method, path: r.path, status: resp.status, err: errEmptyAnswer}
	}
	return results[0], nil
}

// ListClasses returns every (non-deferred) class of the organisation.
func (c *Client) ListClasses(ctx context.Context) ([]ClassInfo, error) {
	r := request{method: http.MethodGet, path: pathClasses}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return decodeOneOrMany[ClassInfo](r, resp)
}

// ListDeferredClasses returns every deferred class record (?deferred=true).
func (c *Client) ListDeferredClasses(ctx context.Context) ([]DeferredClass, error) {
	r := request{method: http.MethodGet, path: pathClasses, query: url.Values{"deferred": {"true"}}}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return decodeOneOrMany[DeferredClass](r, resp)
}

// GetClass returns the class ref names by ClassID or ExtClassID (Class offers
// no lookup of a class by ClassDeferredID; see [Client.GetDeferredClass]). An
// empty answer, one without the class, or a 404 is an error matching
// [ErrNotFound]: a deferred class is not found here.
func (c *Client) GetClass(ctx context.Context, ref ClassRef) (ClassInfo, error) {
	if err := ref.check("GetClass", false); err != nil {
		return ClassInfo{}, err
	}
	r := request{method: http.MethodGet, path: pathClasses, query: ref.values()}
	resp, err := c.do(ctx, r)
	if err != nil {
		return ClassInfo{}, err
	}
	classes, err := decodeOneOrMany[ClassInfo](r, resp)
	if err != nil {
		return ClassInfo{}, err
	}
	for _, ci := range classes {
		if ref.matchesClass(ci) {
			return ci, nil
		}
	}
	return ClassInfo{}, notFound(r)
}

// GetDeferredClass returns the deferred class record ref names
// (?deferred=true&class_id=… or &ext_class_id=…). Class documents no query by
// class_deferred_id, so a ref by ClassDeferredID lists the deferred records and
// picks the match. No match is an error matching [ErrNotFound].
func (c *Client) GetDeferredClass(ctx context.Context, ref ClassRef) (DeferredClass, error) {
	if err := ref.check("GetDeferredClass", true); err != nil {
		return DeferredClass{}, err
	}
	q := url.Values{"deferred": {"true"}}
	if ref.ClassDeferredID == "" {
		for k, v := range ref.values() {
			q[k] = v
		}
	}
	r := request{method: http.MethodGet, path: pathClasses, query: q}
	resp, err := c.do(ctx, r)
	if err != nil {
		return DeferredClass{}, err
	}
	records, err := decodeOneOrMany[DeferredClass](r, resp)
	if err != nil {
		return DeferredClass{}, err
	}
	for _, d := range records {
		if ref.matchesDeferred(d) {
			return d, nil
		}
	}
	return DeferredClass{}, notFound(r)
}

// UpdateClassRequest changes a class's name or description, the only
// attributes Class lets change; nil fields are left as they are.
type UpdateClassRequest struct {
	Ref              ClassRef
	ClassName        *string
	ClassDescription *string
}

type updateClassBody struct {
	ClassID          string  `json:"class_id,omitempty"`
	ExtClassID       string  `json:"ext_class_id,omitempty"`
	ClassDeferredID  string  `json:"class_deferred_id,omitempty"`
	ClassName        *string `json:"class_name,omitempty"`
	ClassDescription *string `json:"class_description,omitempty"`
}

// UpdateClass changes the name or description of a class or a deferred class.
// Class answers with the class (an object) or, for a deferred class, with an
// array of records; both are accepted and neither is needed.
func (c *Client) UpdateClass(ctx context.Context, req UpdateClassRequest) error {
	if err := req.Ref.check("UpdateClass", true); err != nil {
		return err
	}
	if req.ClassName == nil && req.ClassDescription == nil {
		return invalidRequest("UpdateClass", "nothing to update")
	}
	body := updateClassBody{
		ClassID:          req.Ref.ClassID,
		ExtClassID:       req.Ref.ExtClassID,
		ClassDeferredID:  req.Ref.ClassDeferredID,
		ClassName:        req.ClassName,
		ClassDescription: req.ClassDescription,
	}
	_, err := c.do(ctx, request{method: http.MethodPatch, path: pathClasses, body: body})
	return err
}

// DeleteClass removes the class ref names (by any of its three identifiers).
func (c *Client) DeleteClass(ctx context.Context, ref ClassRef) error {
	if err := ref.check("DeleteClass", true); err != nil {
		return err
	}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: pathClasses, query: ref.values()})
	return err
}

// ResolveClassID finds the Class UUID of the class with ext_class_id extClassID,
// which schedules need: first among regular classes, then among deferred ones
// (deferred reports which). A class in neither is an error matching
// [ErrNotFound]. The worker caches the answer; this makes the calls only.
func (c *Client) ResolveClassID(ctx context.Context, extClassID string) (classID string, deferred bool, err error) {
	if extClassID == "" {
		return "", false, invalidRequest("ResolveClassID", "extClassID required")
	}
	ref := ClassRef{ExtClassID: extClassID}
	ci, err := c.GetClass(ctx, ref)
	if err == nil && ci.ClassID != "" {
		return ci.ClassID, false, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return "", false, err
	}
	d, err := c.GetDeferredClass(ctx, ref)
	if err != nil {
		return "", false, err
	}
	if d.ClassID == "" {
		return "", true, fmt.Errorf("class: GET %s: deferred class has no class_id yet: %w", pathClasses, ErrNotFound)
	}
	return d.ClassID, true, nil
}
