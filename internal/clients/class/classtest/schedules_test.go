package classtest

import (
	"net/http"
	"testing"
)

func TestSchedulesLifecycle(t *testing.T) {
	t.Parallel()
	h := setup(t)
	id := h.createDocClass() // with one session time, 1631810954-1631814554

	add := func(start, end int64) response {
		return h.do("POST", "/api/v1/schedules", map[string]any{
			"class_id": id, "start_time": start, "end_time": end, "timezone": "America/Los_Angeles",
		})
	}
	var added map[string]string
	add(1654787671, 1654874071).want(t, http.StatusOK).decode(t, &added)
	if len(added) != 1 || !uuidRE.MatchString(added["schedule_id"]) {
		t.Fatalf("POST answer = %v, want one schedule_id", added)
	}
	add(1628859600, 1628920800).want(t, http.StatusOK)

	var dates []map[string]any
	h.do("GET", "/api/v1/schedules?class_id="+id, nil).want(t, http.StatusOK).decode(t, &dates)
	if len(dates) != 3 {
		t.Fatalf("GET = %v, want 3 dates", dates)
	}
	wantKeys(t, dates[0], "schedule_id", "class_id", "start_time", "end_time")
	starts := []float64{1628859600, 1631810954, 1654787671}
	for i, d := range dates {
		if d["start_time"] != starts[i] || d["class_id"] != id {
			t.Errorf("date %d = %v, want start %v, ordered by start", i, d, starts[i])
		}
	}

	h.do("DELETE", "/api/v1/schedules?schedule_id="+added["schedule_id"], nil).wantJSON(t, http.StatusOK, `{"message":"Success"}`)
	h.do("DELETE", "/api/v1/schedules?schedule_id="+added["schedule_id"], nil).
		wantJSON(t, http.StatusNotFound, `{"error":"schedule `+added["schedule_id"]+` not found"}`)
	if c, _ := h.srv.FindClass("demo-1"); len(c.Dates) != 2 || c.Dates[1].Start != 1631810954 {
		t.Errorf("dates after DELETE = %+v", c.Dates)
	}
}

func TestScheduleErrorsAndDuplicates(t *testing.T) {
	t.Parallel()
	h := setup(t)
	id := h.createDocClass()

	h.do("POST", "/api/v1/schedules", map[string]any{
		"class_id": id, "start_time": 2000, "end_time": 1000, "timezone": "Nowhere/Never",
	}).wantJSON(t, http.StatusBadRequest, `{"error":"Request failed validation","data":{`+
		`"end_time":["The end time must be after the start time."],"timezone":["The timezone is invalid."]}}`)
	h.do("POST", "/api/v1/schedules", map[string]any{
		"class_id": "demo-1", "start_time": 1000, "end_time": 2000, "timezone": "UTC",
	}).wantJSON(t, http.StatusNotFound, `{"error":"class demo-1 not found"}`) // ext ids do not address schedules
	h.do("GET", "/api/v1/schedules", nil).want(t, http.StatusBadRequest)
	h.do("GET", "/api/v1/schedules?class_id=missing", nil).wantJSON(t, http.StatusNotFound, `{"error":"class missing not found"}`)

	if d := h.srv.Duplicates(); d != nil {
		t.Fatalf("duplicates before a repeat = %v", d)
	}
	for range 2 {
		h.do("POST", "/api/v1/schedules", map[string]any{
			"class_id": id, "start_time": 1000, "end_time": 2000, "timezone": "UTC",
		}).want(t, http.StatusOK)
	}
	dups := h.srv.Duplicates()
	if len(dups) != 1 || dups[0].Kind != DuplicateSchedule {
		t.Errorf("duplicates = %v, want one schedule duplicate", dups)
	}
	if c, _ := h.srv.FindClass("demo-1"); len(c.Dates) != 3 {
		t.Errorf("%d dates stored, want 3 (the repeat is added)", len(c.Dates))
	}
}
