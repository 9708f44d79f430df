package classtest

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/rollcall/rollcall/internal/simhttp"
)

type scheduleJSON struct {
	ScheduleID string `json:"schedule_id"`
	ClassID    string `json:"class_id"`
	StartTime  int64  `json:"start_time"`
	EndTime    int64  `json:"end_time"`
}

// postSchedule serves Add a Class Date. A date equal to one the class already has is
// added all the same and recorded as a Duplicate.
func (s *Server) postSchedule(_ *http.Request, body []byte) simhttp.Reply {
	var b struct {
		ClassID   string `json:"class_id"`
		StartTime *int64 `json:"start_time"`
		EndTime   *int64 `json:"end_time"`
		Timezone  string `json:"timezone"`
	}
	if rep := decodeBody(body, &b); rep != nil {
		return *rep
	}
	fe := fieldErrors{}
	if b.ClassID == "" {
		fe.required("class_id")
	}
	if b.StartTime == nil {
		fe.required("start_time")
	}
	if b.EndTime == nil {
		fe.required("end_time")
	}
	if b.StartTime != nil && b.EndTime != nil && *b.EndTime <= *b.StartTime {
		fe.add("end_time", "The end time must be after the start time.")
	}
	if b.Timezone == "" {
		fe.required("timezone")
	} else if !validTimezone(b.Timezone) {
		fe.add("timezone", msgTimezoneInvalid)
	}
	if len(fe) > 0 {
		return fe.reply()
	}
	// Schedules address a class by class_id only, regular or deferred.
	c := s.data.byID[b.ClassID]
	if c == nil {
		return classNotFound(b.ClassID)
	}
	d := &dateRec{id: s.newUUID(), start: *b.StartTime, end: *b.EndTime, timezone: b.Timezone}
	s.data.addDate(c, d)
	return simhttp.JSON(http.StatusOK, map[string]string{"schedule_id": d.id})
}

// getSchedules serves Get Class Dates, ordered by start and end.
func (s *Server) getSchedules(r *http.Request, _ []byte) simhttp.Reply {
	id := r.URL.Query().Get("class_id")
	if id == "" {
		fe := fieldErrors{}
		fe.required("class_id")
		return fe.reply()
	}
	c := s.data.byID[id]
	if c == nil {
		return classNotFound(id)
	}
	out := make([]scheduleJSON, 0, len(c.dates))
	for _, d := range c.dates {
		out = append(out, scheduleJSON{ScheduleID: d.id, ClassID: c.id, StartTime: d.start, EndTime: d.end})
	}
	slices.SortStableFunc(out, func(a, b scheduleJSON) int {
		return cmp.Or(cmp.Compare(a.StartTime, b.StartTime), cmp.Compare(a.EndTime, b.EndTime))
	})
	return simhttp.JSON(http.StatusOK, out)
}

// deleteSchedule serves Remove a Class Date.
func (s *Server) deleteSchedule(r *http.Request, _ []byte) simhttp.Reply {
	id := r.URL.Query().Get("schedule_id")
	if id == "" {
		fe := fieldErrors{}
		fe.required("schedule_id")
		return fe.reply()
	}
	for _, c := range s.data.classes {
		if i := slices.IndexFunc(c.dates, func(d *dateRec) bool { return d.id == id }); i >= 0 {
			c.dates = slices.Delete(c.dates, i, i+1)
			return successReply()
		}
	}
	return errReply(http.StatusNotFound, "schedule "+id+" not found")
}
