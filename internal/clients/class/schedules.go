package class

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// ClassDate is one scheduled meeting of a class, in Unix seconds.
type ClassDate struct {
	ScheduleID string `json:"schedule_id"`
	ClassID    string `json:"class_id"`
	StartTime  int64  `json:"start_time"`
	EndTime    int64  `json:"end_time"`
}

// UnmarshalJSON accepts identifiers as strings or numbers and times as numbers
// or numeric strings.
func (d *ClassDate) UnmarshalJSON(b []byte) error {
	var w struct {
		ScheduleID flexString `json:"schedule_id"`
		ClassID    flexString `json:"class_id"`
		StartTime  flexInt64  `json:"start_time"`
		EndTime    flexInt64  `json:"end_time"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*d = ClassDate{
		ScheduleID: string(w.ScheduleID),
		ClassID:    string(w.ClassID),
		StartTime:  int64(w.StartTime),
		EndTime:    int64(w.EndTime),
	}
	return nil
}

// AddClassDateRequest adds a meeting to a class (or a deferred class), named
// by its Class UUID: schedules are never addressed by ext_class_id.
type AddClassDateRequest struct {
	ClassID   string `json:"class_id"`
	StartTime int64  `json:"start_time"`
	EndTime   int64  `json:"end_time"`
	// Timezone is a tz database name such as "Europe/London".
	Timezone string `json:"timezone"`
}

// AddClassDate adds a meeting date and returns its schedule_id.
func (c *Client) AddClassDate(ctx context.Context, req AddClassDateRequest) (scheduleID string, err error) {
	switch {
	case req.ClassID == "":
		return "", invalidRequest("AddClassDate", "ClassID required")
	case req.Timezone == "":
		return "", invalidRequest("AddClassDate", "Timezone required")
	case req.EndTime <= req.StartTime:
		return "", invalidRequest("AddClassDate", "EndTime must be after StartTime")
	}
	r := request{method: http.MethodPost, path: pathSchedules, body: req}
	resp, err := c.do(ctx, r)
	if err != nil {
		return "", err
	}
	var w struct {
		ScheduleID flexString `json:"schedule_id"`
	}
	if err := decode(r, resp, &w); err != nil {
		return "", err
	}
	if w.ScheduleID == "" {
		return "", &decodeError{method: r.method, path: r.path, status: resp.status, err: errNoScheduleID}
	}
	return string(w.ScheduleID), nil
}

// ListClassDates returns the scheduled meetings of the class with Class UUID classID.
func (c *Client) ListClassDates(ctx context.Context, classID string) ([]ClassDate, error) {
	if classID == "" {
		return nil, invalidRequest("ListClassDates", "classID required")
	}
	r := request{method: http.MethodGet, path: pathSchedules, query: url.Values{"class_id": {classID}}}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return decodeOneOrMany[ClassDate](r, resp)
}

// RemoveClassDate removes one meeting date.
func (c *Client) RemoveClassDate(ctx context.Context, scheduleID string) error {
	if scheduleID == "" {
		return invalidRequest("RemoveClassDate", "scheduleID required")
	}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: pathSchedules, query: url.Values{"schedule_id": {scheduleID}}})
	return err
}
