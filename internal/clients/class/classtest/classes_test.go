package classtest

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestCreateClassAnswersDocShapeAndRefusesRepeat(t *testing.T) {
	t.Parallel()
	h := setup(t)

	var created map[string]any
	h.do("POST", "/api/v1/classes", docClass()).want(t, http.StatusCreated).decode(t, &created)
	wantKeys(t, created, "meeting_id", "invite_link")
	if id, _ := created["meeting_id"].(string); !regexp.MustCompile(`^[0-9]{11}$`).MatchString(id) {
		t.Errorf("meeting_id = %v, want 11 digits", created["meeting_id"])
	}
	c, ok := h.srv.FindClass("demo-1")
	if !ok {
		t.Fatal("class not stored")
	}
	if !uuidRE.MatchString(c.ClassID) {
		t.Errorf("class_id %q is not UUID-shaped", c.ClassID)
	}
	if link, _ := created["invite_link"].(string); !strings.HasSuffix(link, "class_uuid="+c.ClassID) {
		t.Errorf("invite_link = %q, want it to end with class_uuid=%s", link, c.ClassID)
	}
	if c.Name != "Demo Class" || c.HostName != "Anne Malley" || c.Timezone != "America/Los_Angeles" || c.Deferred {
		t.Errorf("stored class = %+v", c)
	}
	if len(c.Dates) != 1 || c.Dates[0].Start != 1631810954 || c.Dates[0].End != 1631814554 {
		t.Errorf("dates = %+v, want the one session time", c.Dates)
	}
	if len(c.Enrollments) != 1 || c.Enrollments[0].Email != "anne.malley@demo.com" || c.Enrollments[0].Role != "teacher" ||
		c.Enrollments[0].ExtPersonID != "" || c.Enrollments[0].FirstName != "Anne" {
		t.Errorf("enrollments = %+v, want the host as teacher", c.Enrollments)
	}

	h.do("POST", "/api/v1/classes", docClass()).wantJSON(t, http.StatusBadRequest,
		`{"error":"Class exists for external class ID provided: demo-1."}`)
	if n := len(h.srv.State().Classes); n != 1 {
		t.Errorf("%d classes stored after the refused repeat, want 1", n)
	}
	if d := h.srv.Duplicates(); d != nil {
		t.Errorf("duplicates = %v, want none", d)
	}
}

func TestGetPatchDeleteClass(t *testing.T) {
	t.Parallel()
	h := setup(t)
	id := h.createDocClass()

	var byExt, byID, all []map[string]any
	h.do("GET", "/api/v1/classes?ext_class_id=demo-1", nil).want(t, http.StatusOK).decode(t, &byExt)
	if len(byExt) != 1 {
		t.Fatalf("GET by ext_class_id answered %d classes, want 1", len(byExt))
	}
	wantKeys(t, byExt[0], "class_id", "ext_class_id", "class_name", "class_description", "meeting_id", "host", "invite_link", "password")
	if byExt[0]["class_id"] != id || byExt[0]["host"] != "Anne Malley" || byExt[0]["password"] != "a1demo" ||
		byExt[0]["class_name"] != "Demo Class" {
		t.Errorf("GET by ext_class_id = %v", byExt[0])
	}
	h.do("GET", "/api/v1/classes?class_id="+id, nil).want(t, http.StatusOK).decode(t, &byID)
	if len(byID) != 1 || byID[0]["ext_class_id"] != "demo-1" {
		t.Errorf("GET by class_id = %v", byID)
	}
	second := docClass()
	second["ext_class_id"] = "demo-2"
	h.do("POST", "/api/v1/classes", second).want(t, http.StatusCreated)
	h.do("GET", "/api/v1/classes", nil).want(t, http.StatusOK).decode(t, &all)
	if len(all) != 2 || all[0]["ext_class_id"] != "demo-1" || all[1]["ext_class_id"] != "demo-2" {
		t.Errorf("GET all = %v, want demo-1 and demo-2 in creation order", all)
	}
	h.do("GET", "/api/v1/classes?class_id="+id+"&ext_class_id=demo-1", nil).want(t, http.StatusBadRequest)

	var patched map[string]any
	h.do("PATCH", "/api/v1/classes", map[string]any{
		"ext_class_id": "demo-1", "class_name": "Demo class extended", "class_description": "Updated description text",
	}).want(t, http.StatusOK).decode(t, &patched)
	if patched["class_name"] != "Demo class extended" || patched["class_description"] != "Updated description text" ||
		patched["class_id"] != id || patched["host"] != "Anne Malley" {
		t.Errorf("PATCH answer = %v", patched)
	}
	if c, _ := h.srv.FindClass("demo-1"); c.Name != "Demo class extended" || c.HostEmail != "anne.malley@demo.com" {
		t.Errorf("stored after PATCH = %+v", c)
	}
	h.do("PATCH", "/api/v1/classes", map[string]any{"ext_class_id": "nope", "class_name": "x"}).
		wantJSON(t, http.StatusNotFound, `{"error":"class nope not found"}`)

	h.do("DELETE", "/api/v1/classes?ext_class_id=demo-1", nil).wantJSON(t, http.StatusOK, `{"message":"Success"}`)
	h.do("GET", "/api/v1/classes?ext_class_id=demo-1", nil).wantJSON(t, http.StatusNotFound, `{"error":"class demo-1 not found"}`)
	h.do("GET", "/api/v1/classes?class_id="+id, nil).wantJSON(t, http.StatusNotFound, `{"error":"class `+id+` not found"}`)
	h.do("DELETE", "/api/v1/classes?class_id="+id, nil).want(t, http.StatusNotFound)
	h.do("DELETE", "/api/v1/classes", nil).want(t, http.StatusBadRequest)
	if st := h.srv.State(); len(st.Classes) != 1 || st.Classes[0].ExtClassID != "demo-2" {
		t.Errorf("classes after DELETE = %+v", st.Classes)
	}
}

func TestDeferredClassLifecycle(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.srv.SetDeferClasses(true)

	var created map[string]any
	h.do("POST", "/api/v1/classes", docClass()).want(t, http.StatusCreated).decode(t, &created)
	wantKeys(t, created, "class_deferred_id", "class_id", "ext_id")
	defID, isNum := created["class_deferred_id"].(float64)
	if !isNum || defID < 1 || defID != float64(int64(defID)) {
		t.Fatalf("class_deferred_id = %#v, want a positive integer", created["class_deferred_id"])
	}
	classID, _ := created["class_id"].(string)
	if !uuidRE.MatchString(classID) || created["ext_id"] != "demo-1" {
		t.Errorf("deferred answer = %v", created)
	}
	h.do("POST", "/api/v1/classes", docClass()).wantJSON(t, http.StatusBadRequest,
		`{"error":"Class exists for external class ID provided: demo-1."}`)

	// A deferred class is not among the regular ones.
	h.do("GET", "/api/v1/classes?ext_class_id=demo-1", nil).wantJSON(t, http.StatusNotFound, `{"error":"class demo-1 not found"}`)
	h.do("GET", "/api/v1/classes", nil).wantJSON(t, http.StatusOK, `[]`)
	var got []map[string]any
	h.do("GET", "/api/v1/classes?deferred=true&ext_class_id=demo-1", nil).want(t, http.StatusOK).decode(t, &got)
	if len(got) != 1 {
		t.Fatalf("deferred GET answered %v", got)
	}
	wantKeys(t, got[0], "class_deferred_id", "class_id", "ext_class_id", "email", "class_name", "class_description", "created_at", "updated_at")
	if got[0]["class_id"] != classID || got[0]["class_deferred_id"] != defID || got[0]["email"] != "anne.malley@demo.com" {
		t.Errorf("deferred GET = %v", got[0])
	}

	// class_deferred_id is a string in the PATCH table; the answer is an array.
	var patched []map[string]any
	h.do("PATCH", "/api/v1/classes", map[string]any{"class_deferred_id": "1", "class_name": "Renamed"}).
		want(t, http.StatusOK).decode(t, &patched)
	if len(patched) != 1 || patched[0]["class_name"] != "Renamed" || patched[0]["class_deferred_id"] != defID {
		t.Errorf("deferred PATCH = %v", patched)
	}

	// Enrollments by ext_class_id and dates by class_id reach the deferred class.
	var enrolled map[string]any
	h.do("POST", "/api/v1/class/enrollments", docEnrollment("demo-1")).want(t, http.StatusOK).decode(t, &enrolled)
	wantKeys(t, enrolled, "id", "class_deferred_id", "email_user", "enroll_params", "user", "created_at", "updated_at", "role")
	if enrolled["class_deferred_id"] != "1" || enrolled["email_user"] != "francisco.beck@demo.com" || enrolled["role"] != "student" {
		t.Errorf("deferred enrollment answer = %v", enrolled)
	}
	h.do("POST", "/api/v1/schedules", map[string]any{
		"class_id": classID, "start_time": 1654787671, "end_time": 1654874071, "timezone": "America/Los_Angeles",
	}).want(t, http.StatusOK)
	c, _ := h.srv.FindClass("demo-1")
	if !c.Deferred || c.DeferredID != int64(defID) || len(c.Enrollments) != 2 || len(c.Dates) != 2 {
		t.Errorf("stored deferred class = %+v", c)
	}

	h.do("DELETE", "/api/v1/classes?class_deferred_id=1", nil).wantJSON(t, http.StatusOK, `{"message":"Success"}`)
	if st := h.srv.State(); len(st.Classes) != 0 {
		t.Errorf("classes after deferred DELETE = %+v", st.Classes)
	}
	h.do("DELETE", "/api/v1/classes?class_deferred_id=1", nil).wantJSON(t, http.StatusNotFound, `{"error":"class 1 not found"}`)
}

func TestCreateClassValidation(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cases := []struct {
		name   string
		modify func(map[string]any)
		want   string
	}{
		{"bad email", func(b map[string]any) { b["email"] = "anne.malley" },
			`{"error":"Request failed validation","data":{"email":["The email format is invalid."]}}`},
		{"bad timezone", func(b map[string]any) { b["timezone"] = "Mars/Olympus_Mons" },
			`{"error":"Request failed validation","data":{"timezone":["The timezone is invalid."]}}`},
		{"Local timezone", func(b map[string]any) { b["timezone"] = "Local" },
			`{"error":"Request failed validation","data":{"timezone":["The timezone is invalid."]}}`},
		{"jbh_time 7", func(b map[string]any) { b["settings"] = map[string]any{"jbh_time": 7} },
			`{"error":"Request failed validation","data":{"settings.jbh_time":["The selected settings.jbh time is invalid."]}}`},
		{"missing names", func(b map[string]any) { delete(b, "first_name"); delete(b, "class_name") },
			`{"error":"Request failed validation","data":{"first_name":["The first name field is required."],"class_name":["The class name field is required."]}}`},
		{"session ends before it starts", func(b map[string]any) {
			b["session_times"] = []any{map[string]any{"start_time": 200, "end_time": 100}}
		}, `{"error":"Request failed validation","data":{"session_times.0.end_time":["The session times.0.end time must be after the start time."]}}`},
		{"start_time of the wrong type", func(b map[string]any) {
			b["session_times"] = []any{map[string]any{"start_time": "soon", "end_time": 100}}
		}, `{"error":"Request failed validation","data":{"session_times.start_time":["The session times.start time must be an integer."]}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := docClass()
			tc.modify(b)
			h.do("POST", "/api/v1/classes", b).wantJSON(t, http.StatusBadRequest, tc.want)
		})
	}
	h.do("POST", "/api/v1/classes", "{not json").wantJSON(t, http.StatusBadRequest, `{"error":"Malformed JSON body"}`)
	if st := h.srv.State(); len(st.Classes) != 0 {
		t.Errorf("a refused POST stored %+v", st.Classes)
	}
}

func TestValidEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"anne.malley@demo.com": true,
		"a@b.co":               true,
		"":                     false,
		"anne":                 false,
		"@demo.com":            false,
		"a@@demo.com":          false,
		"a@b@demo.com":         false,
		"a@democom":            false,
		"a@.com":               false,
		"a@demo.":              false,
		"an ne@demo.com":       false,
	} {
		if got := validEmail(in); got != want {
			t.Errorf("validEmail(%q) = %v, want %v", in, got, want)
		}
	}
}
