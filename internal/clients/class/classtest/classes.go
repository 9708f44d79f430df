package classtest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/rollcall/rollcall/internal/simhttp"
)

// classJSON is the regular class shape of GET and PATCH answers.
type classJSON struct {
	ClassID          string  `json:"class_id"`
	ExtClassID       *string `json:"ext_class_id"`
	ClassName        string  `json:"class_name"`
	ClassDescription string  `json:"class_description"`
	MeetingID        string  `json:"meeting_id"`
	Host             string  `json:"host"`
	InviteLink       string  `json:"invite_link"`
	Password         *string `json:"password"`
}

// deferredClassJSON is the deferred class shape of GET and PATCH answers.
type deferredClassJSON struct {
	ClassDeferredID  int64   `json:"class_deferred_id"`
	ClassID          string  `json:"class_id"`
	ExtClassID       *string `json:"ext_class_id"`
	Email            string  `json:"email"`
	ClassName        string  `json:"class_name"`
	ClassDescription string  `json:"class_description"`
	CreatedAt        string  `json:"created_at"`
	UpdatedAt        string  `json:"updated_at"`
}

func (s *Server) inviteLink(c *classRec) string {
	return s.URL() + "/class.html?class_uuid=" + c.id
}

func (s *Server) classJSON(c *classRec) classJSON {
	return classJSON{
		ClassID: c.id, ExtClassID: nullable(c.ext), ClassName: c.name, ClassDescription: c.desc,
		MeetingID: c.meetingID, Host: c.hostName(), InviteLink: s.inviteLink(c), Password: nullable(c.password),
	}
}

func deferredJSON(c *classRec) deferredClassJSON {
	return deferredClassJSON{
		ClassDeferredID: c.deferredID, ClassID: c.id, ExtClassID: nullable(c.ext), Email: c.hostEmail,
		ClassName: c.name, ClassDescription: c.desc, CreatedAt: apiTime(c.created), UpdatedAt: apiTime(c.updated),
	}
}

// findClass looks a class (regular or deferred) up by class_id, ext_class_id or
// class_deferred_id; s.mu must be held.
func (s *Server) findClass(kind, value string) *classRec {
	switch kind {
	case "class_id":
		return s.data.byID[value]
	case "ext_class_id":
		return s.data.byExt[value]
	case "class_deferred_id":
		if n, ok := parseID(value); ok {
			return s.data.byDeferred[n]
		}
	}
	return nil
}

func classNotFound(id string) simhttp.Reply {
	return errReply(http.StatusNotFound, "class "+id+" not found")
}

func parseDeferredFlag(q string) (bool, *simhttp.Reply) {
	if q == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(q)
	if err != nil {
		fe := fieldErrors{}
		fe.add("deferred", "The deferred field must be true or false.")
		r := fe.reply()
		return false, &r
	}
	return b, nil
}

// getClasses serves Get All Classes Info and Get Single Class Info, regular or deferred.
func (s *Server) getClasses(r *http.Request, _ []byte) simhttp.Reply {
	q := r.URL.Query()
	deferred, rep := parseDeferredFlag(q.Get("deferred"))
	if rep != nil {
		return *rep
	}
	kind, id, rep := pickOne(map[string]string{"class_id": q.Get("class_id"), "ext_class_id": q.Get("ext_class_id")},
		false, "class_id", "ext_class_id")
	if rep != nil {
		return *rep
	}
	var found []*classRec
	if kind == "" {
		for _, c := range s.data.classes {
			if c.deferred == deferred {
				found = append(found, c)
			}
		}
	} else {
		c := s.findClass(kind, id)
		if c == nil || c.deferred != deferred {
			return classNotFound(id)
		}
		found = append(found, c)
	}
	if deferred {
		out := make([]deferredClassJSON, 0, len(found))
		for _, c := range found {
			out = append(out, deferredJSON(c))
		}
		return simhttp.JSON(http.StatusOK, out)
	}
	out := make([]classJSON, 0, len(found))
	for _, c := range found {
		out = append(out, s.classJSON(c))
	}
	return simhttp.JSON(http.StatusOK, out)
}

type createClassBody struct {
	Email            string `json:"email"`
	FirstName        string `json:"first_name"`
	LastName         string `json:"last_name"`
	DisplayName      string `json:"display_name"`
	ExtClassID       string `json:"ext_class_id"`
	ClassName        string `json:"class_name"`
	ClassDescription string `json:"class_description"`
	TemplateID       *int64 `json:"template_id"`
	MeetingPasscode  string `json:"meeting_passcode"`
	Timezone         string `json:"timezone"`
	SessionTimes     []struct {
		StartTime *int64 `json:"start_time"`
		EndTime   *int64 `json:"end_time"`
	} `json:"session_times"`
	Settings *struct {
		WaitingRoom    *bool  `json:"waiting_room"`
		JoinBeforeHost *bool  `json:"join_before_host"`
		JBHTime        *int64 `json:"jbh_time"`
	} `json:"settings"`
	AdditionalInstructors []struct {
		Email string `json:"email"`
	} `json:"additional_instructors"`
}

func (b *createClassBody) validate() fieldErrors {
	fe := fieldErrors{}
	if b.Email == "" {
		fe.required("email")
	}
	fe.checkEmail("email", b.Email)
	for _, f := range []struct{ name, v string }{
		{"first_name", b.FirstName}, {"last_name", b.LastName}, {"class_name", b.ClassName}, {"timezone", b.Timezone},
	} {
		if f.v == "" {
			fe.required(f.name)
		}
	}
	if b.Timezone != "" && !validTimezone(b.Timezone) {
		fe.add("timezone", msgTimezoneInvalid)
	}
	for i, st := range b.SessionTimes {
		prefix := "session_times." + strconv.Itoa(i) + "."
		if st.StartTime == nil {
			fe.required(prefix + "start_time")
		}
		if st.EndTime == nil {
			fe.required(prefix + "end_time")
		}
		if st.StartTime != nil && st.EndTime != nil && *st.EndTime <= *st.StartTime {
			fe.add(prefix+"end_time", "The "+attr(prefix+"end_time")+" must be after the start time.")
		}
	}
	if b.Settings != nil && b.Settings.JBHTime != nil {
		switch *b.Settings.JBHTime {
		case 0, 5, 10:
		default:
			fe.add("settings.jbh_time", "The selected settings.jbh time is invalid.")
		}
	}
	for i, ai := range b.AdditionalInstructors {
		field := "additional_instructors." + strconv.Itoa(i) + ".email"
		if ai.Email == "" {
			fe.required(field)
		}
		fe.checkEmail(field, ai.Email)
	}
	return fe
}

// postClass serves Create a Class, regular or (in deferred mode) deferred.
func (s *Server) postClass(_ *http.Request, body []byte) simhttp.Reply {
	var b createClassBody
	if rep := decodeBody(body, &b); rep != nil {
		return *rep
	}
	if fe := b.validate(); len(fe) > 0 {
		return fe.reply()
	}
	if b.ExtClassID != "" && s.data.byExt[b.ExtClassID] != nil {
		return errReply(http.StatusBadRequest, "Class exists for external class ID provided: "+b.ExtClassID+".")
	}

	now := time.Now()
	c := &classRec{
		id: s.newUUID(), ext: b.ExtClassID, name: b.ClassName, desc: b.ClassDescription,
		hostEmail: b.Email, hostFirst: b.FirstName, hostLast: b.LastName, hostDisplay: b.DisplayName,
		timezone: b.Timezone, password: b.MeetingPasscode, created: now, updated: now,
	}
	if s.deferMode {
		c.deferred = true
		c.deferredID = s.data.nextDefID
		s.data.nextDefID++
	} else {
		c.meetingID = s.newMeetingID()
	}
	// The host is enrolled as a teacher on creation; so are additional instructors, with
	// the names of the Class user of that email when there is one.
	s.enroll(c, &enrollRec{email: b.Email, first: b.FirstName, last: b.LastName, display: b.DisplayName, role: "teacher"})
	for _, ai := range b.AdditionalInstructors {
		e := &enrollRec{email: ai.Email, role: "teacher"}
		if u := s.data.userBy("email", ai.Email); u != nil {
			e.display = u.name
		}
		s.enroll(c, e)
	}
	for _, st := range b.SessionTimes {
		s.data.addDate(c, &dateRec{id: s.newUUID(), start: *st.StartTime, end: *st.EndTime, timezone: b.Timezone})
	}
	s.data.addClass(c)

	if c.deferred {
		return simhttp.JSON(http.StatusCreated, struct {
			ClassDeferredID int64   `json:"class_deferred_id"`
			ClassID         string  `json:"class_id"`
			ExtID           *string `json:"ext_id"`
		}{c.deferredID, c.id, nullable(c.ext)})
	}
	return simhttp.JSON(http.StatusCreated, struct {
		MeetingID  string `json:"meeting_id"`
		InviteLink string `json:"invite_link"`
	}{c.meetingID, s.inviteLink(c)})
}

type patchClassBody struct {
	ClassID          string          `json:"class_id"`
	ExtClassID       string          `json:"ext_class_id"`
	ClassDeferredID  json.RawMessage `json:"class_deferred_id"`
	ClassName        *string         `json:"class_name"`
	ClassDescription *string         `json:"class_description"`
}

// patchClass serves Update a Class: only the name and the description change.
func (s *Server) patchClass(_ *http.Request, body []byte) simhttp.Reply {
	var b patchClassBody
	if rep := decodeBody(body, &b); rep != nil {
		return *rep
	}
	deferredID, okID := flexID(b.ClassDeferredID)
	fe := fieldErrors{}
	if !okID {
		fe.add("class_deferred_id", "The class deferred id must be an integer.")
	}
	if b.ClassName != nil && *b.ClassName == "" {
		fe.add("class_name", "The class name field must not be empty.")
	}
	if len(fe) > 0 {
		return fe.reply()
	}
	kind, id, rep := pickOne(map[string]string{
		"class_id": b.ClassID, "ext_class_id": b.ExtClassID, "class_deferred_id": deferredID,
	}, true, "class_id", "ext_class_id", "class_deferred_id")
	if rep != nil {
		return *rep
	}
	c := s.findClass(kind, id)
	if c == nil {
		return classNotFound(id)
	}
	if b.ClassName != nil {
		c.name = *b.ClassName
	}
	if b.ClassDescription != nil {
		c.desc = *b.ClassDescription
	}
	c.updated = time.Now()
	if c.deferred {
		// The API answers a deferred update with an array, unlike a regular one.
		return simhttp.JSON(http.StatusOK, []deferredClassJSON{deferredJSON(c)})
	}
	return simhttp.JSON(http.StatusOK, s.classJSON(c))
}

// deleteClass serves Remove a Class, with its enrollments and dates.
func (s *Server) deleteClass(r *http.Request, _ []byte) simhttp.Reply {
	q := r.URL.Query()
	kind, id, rep := pickOne(map[string]string{
		"class_id": q.Get("class_id"), "ext_class_id": q.Get("ext_class_id"), "class_deferred_id": q.Get("class_deferred_id"),
	}, true, "class_id", "ext_class_id", "class_deferred_id")
	if rep != nil {
		return *rep
	}
	if kind == "class_deferred_id" {
		if _, okID := parseID(id); !okID {
			fe := fieldErrors{}
			fe.add("class_deferred_id", "The class deferred id must be an integer.")
			return fe.reply()
		}
	}
	c := s.findClass(kind, id)
	if c == nil {
		return classNotFound(id)
	}
	s.data.removeClass(c)
	return successReply()
}
