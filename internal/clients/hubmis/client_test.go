package hubmis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	good := Config{BaseURL: "https://api.hubmis.com", ClientID: "id", ClientSecret: "secret", Realm: "S999"}
	c, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.base.String() != "https://api.hubmis.com" || c.pageSize != PageSizeDefault ||
		c.tokens.TokenURL() != "https://api.hubmis.com/api/v1/token" || c.scale != 1 ||
		c.IPLimiter() != SharedIPLimiter(1) {
		t.Errorf("defaults: base %s, page size %d, token %s, scale %v", c.base, c.pageSize, c.tokens.TokenURL(), c.scale)
	}
	// A BaseURL that already names the API prefix does not get it twice.
	cfg := good
	cfg.BaseURL = "https://api.hubmis.com/api/v1/"
	if c, err := New(cfg); err != nil || c.tokens.TokenURL() != "https://api.hubmis.com/api/v1/token" {
		t.Errorf("BaseURL with /api/v1: %v", err)
	}

	ip, err := NewIPLimiter(IPLimiterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.BaseURL = "" }, "BaseURL: required"},
		{func(c *Config) { c.BaseURL = "ftp://x" }, "BaseURL: scheme"},
		{func(c *Config) { c.BaseURL = "https://u:p@x" }, "BaseURL: must not hold credentials"},
		{func(c *Config) { c.BaseURL = "https://x?a=b" }, "BaseURL: must not have a query"},
		{func(c *Config) { c.ClientID = " " }, "ClientID: required"},
		{func(c *Config) { c.ClientSecret = "" }, "ClientSecret: required"},
		{func(c *Config) { c.Realm = "" }, "Realm: required"},
		{func(c *Config) { c.Realm = "S9 99" }, "Realm: must be"},
		{func(c *Config) { c.AcademicYearID = "1\r\nX: y" }, "AcademicYearID"},
		{func(c *Config) { c.PageSize = PageSizeMax + 1 }, "PageSize"},
		{func(c *Config) { c.PageSize = -1 }, "PageSize"},
		{func(c *Config) { c.TimeScale = -2 }, "TimeScale"},
		{func(c *Config) { c.Now = time.Now }, "IPLimiter: required when Now is set"},
		{func(c *Config) { c.IPLimiter = ip; c.TimeScale = 10 }, "IPLimiter: its TimeScale differs"},
		{func(c *Config) { c.RetryMaxAttempts = -1 }, "RetryMaxAttempts"},
		{func(c *Config) { c.RetryMaxElapsed = -time.Second }, "RetryMaxElapsed"},
	} {
		cfg := good
		tc.mod(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
	// All problems at once.
	_, err = New(Config{PageSize: 5000})
	for _, want := range []string{"BaseURL", "ClientID", "ClientSecret", "Realm", "PageSize"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("joined error %v lacks %s", err, want)
		}
	}
	if _, err := NewIPLimiter(IPLimiterConfig{Capacity: -1, RefillInterval: -1, TimeScale: -1}); err == nil ||
		!strings.Contains(err.Error(), "Capacity") || !strings.Contains(err.Error(), "RefillInterval") || !strings.Contains(err.Error(), "TimeScale") {
		t.Errorf("NewIPLimiter: %v", err)
	}
	// A clock of its own is fine without limits.
	cfg = good
	cfg.Now, cfg.NoRateLimit = time.Now, true
	if c, err := New(cfg); err != nil || c.IPLimiter() != nil {
		t.Errorf("NoRateLimit with Now: %v", err)
	}
}

func TestTokenAndHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, token string) {
		writeJSON(w, 200, `{"regional_country_id":34,"start_day_week":"monday","timezone":"Europe/London"}`)
	}, func(c *Config) { c.AcademicYearID = "7" })
	rs, err := b.client.RegionalSettings(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rs != (RegionalSettings{CountryID: "34", WeekStart: "monday", TimeZone: "Europe/London"}) {
		t.Errorf("settings = %+v", rs)
	}
	if loc, err := rs.Location(); err != nil || loc.String() != "Europe/London" {
		t.Errorf("Location = %v, %v", loc, err)
	}
	req := b.fake.seen()[0]
	if req.Method != http.MethodGet || req.URL.Path != pathRegionalSettings || req.URL.RawQuery != "" {
		t.Errorf("request %s %s", req.Method, req.URL)
	}
	for h, want := range map[string]string{
		"Authorization":    "Bearer tok-1",
		"Realm":            testRealm,
		"Academic-Year-Id": "7",
		"Accept":           "application/json",
		"User-Agent":       UserAgentDefault,
	} {
		if got := req.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if b.fake.tokenCount() != 1 || b.client.Requests() != 2 {
		t.Errorf("%d tokens, %d requests", b.fake.tokenCount(), b.client.Requests())
	}

	// Without AcademicYearID the header is absent.
	b2 := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if _, ok := r.Header["Academic-Year-Id"]; ok {
			t.Errorf("academic-year-id sent without AcademicYearID")
		}
		writeJSON(w, 200, `[]`)
	})
	if _, err := b2.client.AcademicYears(b2.ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTokenRenewedEarlyAndExpiresInTrusted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expiresIn   string
		early, late time.Duration // reused at early, renewed at late
	}{
		{"100", 79 * time.Second, 81 * time.Second},
		{`"900"`, 719 * time.Second, 721 * time.Second},
		// The docs' first sample: a day, trusted over the text's 15 minutes.
		{"86400", 19 * time.Hour, 20 * time.Hour},
		// No expires_in: the text's 15 minutes.
		{"null", 11 * time.Minute, 13 * time.Minute},
	} {
		b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) { writeJSON(w, 200, `[]`) })
		b.fake.tokenAnswer = func(n int) (int, string, http.Header) {
			return 200, `{"token_type":"Bearer","access_token":"t` + strconv.Itoa(n) + `","expires_in":` + tc.expiresIn + `}`, nil
		}
		if _, err := b.client.AcademicYears(b.ctx); err != nil {
			t.Fatal(err)
		}
		b.clock.Advance(tc.early)
		if _, err := b.client.AcademicYears(b.ctx); err != nil {
			t.Fatal(err)
		}
		if n := b.fake.tokenCount(); n != 1 {
			t.Errorf("expires_in %s: %d tokens after %s, want 1", tc.expiresIn, n, tc.early)
		}
		b.clock.Advance(tc.late - tc.early)
		if _, err := b.client.AcademicYears(b.ctx); err != nil {
			t.Fatal(err)
		}
		if n := b.fake.tokenCount(); n != 2 {
			t.Errorf("expires_in %s: %d tokens after %s, want 2", tc.expiresIn, n, tc.late)
		}
	}
}

func TestUnauthorizedRefetchesTokenOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, token string) {
		if token == "tok-1" {
			writeJSON(w, 401, `{"message":"Unauthenticated."}`)
			return
		}
		writeJSON(w, 200, `[{"id":1,"name":"2025/26","date_start":"2025-09-01","date_end":"2026-08-31","is_current":true}]`)
	})
	years, err := b.client.AcademicYears(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(years) != 1 || years[0] != (AcademicYear{ID: "1", Name: "2025/26", DateStart: "2025-09-01", DateEnd: "2026-08-31", Current: true}) {
		t.Errorf("years = %+v", years)
	}
	if b.fake.tokenCount() != 2 || len(b.fake.seen()) != 2 {
		t.Errorf("%d tokens, %d API requests; want 2 and 2", b.fake.tokenCount(), len(b.fake.seen()))
	}
}

func TestUnauthorizedAfterFreshTokenIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, 401, `{"message":"Unauthenticated."}`)
	})
	_, err := b.client.Students(b.ctx)
	if !errors.Is(err, ErrUnauthorized) || IsRetryable(err) {
		t.Fatalf("err = %v; want ErrUnauthorized, not retryable", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Path != pathStudents || ae.Method != "GET" {
		t.Errorf("APIError = %+v", ae)
	}
	if strings.Contains(err.Error(), "enrolmentStatus") || strings.Contains(err.Error(), "page") {
		t.Errorf("error %q holds the query", err)
	}
	if b.fake.tokenCount() != 2 || len(b.fake.seen()) != 2 {
		t.Errorf("%d tokens, %d API requests; want 2 and 2", b.fake.tokenCount(), len(b.fake.seen()))
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status    int
		body      string
		unauth    bool
		retryable bool
	}{
		{401, `{"error":"invalid_client","error_description":"Client authentication failed"}`, true, false},
		{400, `{"error":"invalid_client"}`, true, false},
		{400, `{"error":"unsupported_grant_type"}`, true, false},
		{500, `{"message":"oops"}`, false, true},
		{200, `{"token_type":"Bearer"}`, false, false}, // no access_token
		// The secret JSON-escaped: the raw answer does not hold it, its
		// decoded text does.
		{401, `{"message":"client secret s3cret+\/=value is not valid"}`, true, false},
		{401, `{"errors":[{"detail":"client secret s3cret+\/=value is not valid"}]}`, true, false},
	} {
		b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
			t.Errorf("API called without a token")
		}, func(c *Config) { c.RetryMaxAttempts = 1 })
		b.fake.tokenAnswer = func(int) (int, string, http.Header) { return tc.status, tc.body, nil }
		_, err := b.client.Staff(b.ctx)
		if err == nil || errors.Is(err, ErrUnauthorized) != tc.unauth || IsRetryable(err) != tc.retryable {
			t.Errorf("%d %s: err = %v (unauthorized %v, retryable %v)", tc.status, tc.body, err, errors.Is(err, ErrUnauthorized), IsRetryable(err))
		}
		if err != nil && (strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), testID)) {
			t.Errorf("error %q holds a credential", err)
		}
		if tc.status == 200 && !errors.Is(err, ErrMalformed) {
			t.Errorf("token answer without access_token: %v", err)
		}
	}
}

func TestPagingBareArrays(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		q := r.URL.Query()
		if r.URL.Path != pathStudents || q.Get("page[size]") != "3" || q.Get("filter[enrolmentStatus]") != "current" {
			t.Errorf("request %s", r.URL.RequestURI())
		}
		switch pageNumber(r) {
		case 1:
			writeJSON(w, 200, bareArray(records(1, 3)))
		case 2:
			writeJSON(w, 200, bareArray(records(4, 3)))
		case 3:
			writeJSON(w, 200, bareArray(records(7, 1))) // short: the last page
		default:
			t.Errorf("page %d asked for", pageNumber(r))
			writeJSON(w, 200, `[]`)
		}
	}, func(c *Config) { c.PageSize = 3 })
	got, err := b.client.Students(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1", "2", "3", "4", "5", "6", "7"}; !slices.Equal(ids(got, studentID), want) {
		t.Errorf("ids = %v", ids(got, studentID))
	}
	if got[0].FirstName != "Pupil1" || got[0].Email != "p1@school.example" {
		t.Errorf("student = %+v", got[0])
	}
	if n := len(b.fake.seen()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestPagingBareArrayEndsOnEmptyPage(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if pageNumber(r) == 1 {
			writeJSON(w, 200, bareArray(records(1, 2)))
			return
		}
		writeJSON(w, 200, `[]`)
	}, func(c *Config) { c.PageSize = 2 })
	got, err := b.client.Students(b.ctx)
	if err != nil || len(got) != 2 || len(b.fake.seen()) != 2 {
		t.Fatalf("got %d students, %d requests, %v", len(got), len(b.fake.seen()), err)
	}
}

func TestPagingEnvelope(t *testing.T) {
	t.Parallel()
	// The server caps the page at 2 although 5 were asked for: the next link
	// and meta, not the short page, decide.
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		n := pageNumber(r)
		meta := fmt.Sprintf(`{"current_page":%d,"last_page":3,"per_page":2,"total":5}`, n)
		switch n {
		case 1:
			writeJSON(w, 200, envelope(records(1, 2), meta, "https://elsewhere.example/steal?page[number]=2"))
		case 2:
			writeJSON(w, 200, envelope(records(3, 2), meta, "/api/v1/students?page[number]=3"))
		case 3:
			writeJSON(w, 200, envelope(records(5, 1), meta, ""))
		default:
			t.Errorf("page %d asked for", n)
		}
	}, func(c *Config) { c.PageSize = 5 })
	got, err := b.client.Students(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1", "2", "3", "4", "5"}; !slices.Equal(ids(got, studentID), want) {
		t.Errorf("ids = %v", ids(got, studentID))
	}
	for _, r := range b.fake.seen() {
		if r.Host != strings.TrimPrefix(b.fake.srv.URL, "http://") {
			t.Errorf("a request went to %s", r.Host)
		}
	}
}

func TestPagingEnvelopeHints(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		pages []string // by page number
		want  int      // records
	}{
		{"next null ends a full page", []string{envelope(records(1, 2), "", "null")}, 2},
		{"links without next end a full page", []string{envelope(records(1, 2), "", "")}, 2},
		{"meta alone: last page", []string{
			`{"data":` + bareArray(records(1, 2)) + `,"meta":{"currentPage":1,"lastPage":2}}`,
			`{"data":` + bareArray(records(3, 2)) + `,"meta":{"currentPage":2,"lastPage":2}}`,
		}, 4},
		{"meta.page nested", []string{
			`{"data":` + bareArray(records(1, 1)) + `,"meta":{"page":{"current_page":1,"last_page":2}}}`,
			`{"data":` + bareArray(records(2, 1)) + `,"meta":{"page":{"current_page":2,"last_page":2}}}`,
		}, 2},
		{"neither: short page", []string{
			`{"data":` + bareArray(records(1, 2)) + `}`,
			`{"data":` + bareArray(records(3, 1)) + `}`,
		}, 3},
		{"data null", []string{`{"data":null,"links":{"next":"x"}}`}, 0},
		{"JSON:API resources", []string{
			`{"data":[{"type":"students","id":"9","attributes":{"first_name":"Ada"}}],"links":{"next":null}}`,
		}, 1},
	} {
		b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
			n := pageNumber(r)
			if n > len(tc.pages) {
				t.Errorf("%s: page %d asked for", tc.name, n)
				writeJSON(w, 200, `[]`)
				return
			}
			writeJSON(w, 200, tc.pages[n-1])
		}, func(c *Config) { c.PageSize = 2 })
		got, err := b.client.Students(b.ctx)
		if err != nil || len(got) != tc.want {
			t.Errorf("%s: %d students, %v", tc.name, len(got), err)
		}
		if tc.name == "JSON:API resources" && len(got) == 1 && (got[0].ID != "9" || got[0].FirstName != "Ada") {
			t.Errorf("resource flattened to %+v", got[0])
		}
	}
}

func TestPagingFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		page func(n int) string
	}{
		{"page[number] ignored", func(int) string { return bareArray(records(1, 2)) }},
		{"not a list", func(int) string { return `{"students":[]}` }},
		{"a string", func(int) string { return `"x"` }},
		{"a record without id", func(int) string { return `[{"id":1},{"first_name":"Nameless","last_name":"Pupil"}]` }},
		{"a record not an object", func(int) string { return `[{"id":1},"Secret Name"]` }},
		{"truncated", func(int) string { return `[{"id":1,"first_name":"Secr` }},
	} {
		b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
			writeJSON(w, 200, tc.page(pageNumber(r)))
		}, func(c *Config) { c.PageSize = 2 })
		_, err := b.client.Students(b.ctx)
		if !errors.Is(err, ErrMalformed) || IsRetryable(err) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.name, err)
			continue
		}
		for _, leak := range []string{"Nameless", "Secret", "Secr", "Pupil1", "school.example"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error %q quotes the payload", tc.name, err)
			}
		}
	}
}

func TestUnpagedListsSendNoPageParameters(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if r.URL.Query().Has("page[number]") || r.URL.Query().Has("page[size]") {
			t.Errorf("%s: page parameters on an unpaged list", r.URL.RequestURI())
		}
		switch r.URL.Path {
		case "/api/v1/academic-years/2/subject-sets/5001/students":
			writeJSON(w, 200, bareArray(records(1, 3)))
		case "/api/v1/academic-years/2/subject-sets/5001/staff":
			writeJSON(w, 200, `[{"id":202,"first_name":"B","roles":[{"id":2,"name":"Teacher"}]},{"id":201,"title":{"id":1,"name":"Mr"}}]`)
		default:
			t.Errorf("path %s", r.URL.Path)
			writeJSON(w, 404, `{}`)
		}
	}, func(c *Config) { c.PageSize = 3 })
	students, err := b.client.SetStudents(b.ctx, "2", "5001")
	if err != nil || len(students) != 3 {
		t.Fatalf("SetStudents = %d, %v", len(students), err)
	}
	staff, err := b.client.SetStaff(b.ctx, "2", "5001")
	if err != nil || len(staff) != 2 || staff[0].ID != "202" || !staff[0].IsTeacher() || staff[1].Title != "Mr" || staff[1].IsTeacher() {
		t.Fatalf("SetStaff = %+v, %v", staff, err)
	}
	if n := len(b.fake.seen()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	// Ids that would change the path are refused before any request.
	for _, bad := range [][2]string{{"", "1"}, {"2", "../x"}, {"2", "a/b"}, {"2", "1?x=y"}} {
		if _, err := b.client.SetStudents(b.ctx, bad[0], bad[1]); err == nil {
			t.Errorf("SetStudents(%q, %q) accepted", bad[0], bad[1])
		}
	}
	if n := len(b.fake.seen()); n != 2 {
		t.Errorf("a bad id made a request")
	}
}

func TestSubjectSets(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if r.URL.Path != "/api/v1/academic-years/2/subject-sets" || r.URL.Query().Get("page[number]") != "1" {
			t.Errorf("request %s", r.URL.RequestURI())
		}
		writeJSON(w, 200, `[{"academic_year":{"id":2,"name":"2025/26"},"code":"ENG9A","max_students":40,"name":"English 9A",
			"rooms":[{"id":12,"room_code":"R12"}],"short_description":"English class year 9 group A",
			"staff":[{"id":202,"first_name":"X"},{"id":201}],"staff_report_writers":[],"student_count":30,
			"timetable_code":"9AEng","id":25,"credit_score":12,"date_start":"2019-04-24","date_end":"2019-09-24",
			"qualification":null,"section":{"id":1,"name":"Senior School"},"subject":{"id":31,"name":"English","code":"EN"},
			"year_group":{"id":9,"name":"Year 9"},"brand_new_field":{"x":[1,2]}}]`)
	})
	sets, err := b.client.SubjectSets(b.ctx, "2")
	if err != nil || len(sets) != 1 {
		t.Fatalf("SubjectSets = %+v, %v", sets, err)
	}
	want := SubjectSet{
		ID: "25", AcademicYearID: "2", Code: "ENG9A", Name: "English 9A", ShortDescription: "English class year 9 group A",
		TimetableCode: "9AEng", Subject: Ref{ID: "31", Name: "English", Code: "EN"}, YearGroup: Ref{ID: "9", Name: "Year 9"},
		Section: Ref{ID: "1", Name: "Senior School"}, Rooms: []Ref{{ID: "12", Code: "R12"}}, MaxStudents: 40, StudentCount: 30,
		DateStart: "2019-04-24", DateEnd: "2019-09-24", StaffIDs: []string{"202", "201"},
	}
	if fmt.Sprint(sets[0]) != fmt.Sprint(want) {
		t.Errorf("set = %+v\nwant  %+v", sets[0], want)
	}
}

func TestStaffCalendar(t *testing.T) {
	t.Parallel()
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		q := r.URL.Query()
		if r.URL.Path != "/api/v1/staff/201/timetable/calendar" || q.Get("filter[dateFrom]") != "2026-03-30" ||
			q.Get("filter[dateTo]") != "2026-04-03" || q.Has("page[number]") {
			t.Errorf("request %s", r.URL.RequestURI())
		}
		writeJSON(w, 200, `{"calendar":[
			{"id":900001,"type":"lesson","date":"2026-03-30","start":"2026-03-30T09:00:00+01:00","end":"2026-03-30T09:55:00+01:00",
			 "subject_set":{"id":5001,"name":"Maths 9B","code":"MA9B","academic_year_id":2},"subject":{"id":31,"name":"Maths","code":"MA"},
			 "room":{"id":12,"room_code":"R12"},"staff":[{"id":201}]},
			{"id":900002,"type":"lesson","date":"2026-03-31","time_from":"14:00:00","time_to":"14:55:00","subject_set":5002},
			{"id":7,"type":"event","title":"Staff briefing","date":"2026-03-30","start":"2026-03-30T08:30:00","end":"2026-03-30T08:50:00","subject_set":null}
		]}`)
	})
	from := time.Date(2026, 3, 30, 0, 0, 0, 0, london)
	got, err := b.client.StaffCalendar(b.ctx, "201", from, from.AddDate(0, 0, 4))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries", len(got))
	}
	l := got[0]
	if !l.IsLesson() || l.ID != "900001" || l.SubjectSet.ID != "5001" || l.Room.Code != "R12" || l.Subject.Name != "Maths" ||
		!l.Start.Equal(time.Date(2026, 3, 30, 8, 0, 0, 0, time.UTC)) || l.End.Sub(l.Start) != 55*time.Minute || l.Date != "2026-03-30" {
		t.Errorf("lesson = %+v", l)
	}
	l = got[1]
	if !l.IsLesson() || l.SubjectSet.ID != "5002" || !l.Start.Equal(time.Date(2026, 3, 31, 14, 0, 0, 0, london)) ||
		!l.End.Equal(time.Date(2026, 3, 31, 14, 55, 0, 0, london)) {
		t.Errorf("wall-clock lesson = %+v", l)
	}
	if e := got[2]; e.IsLesson() || e.Title != "Staff briefing" || !e.Start.Equal(time.Date(2026, 3, 30, 8, 30, 0, 0, london)) {
		t.Errorf("event = %+v", e)
	}
	if _, err := b.client.StaffCalendar(b.ctx, "201", from, from.AddDate(0, 0, -1)); err == nil {
		t.Errorf("to before from accepted")
	}
}

func TestStaffCalendarLessonWithoutTimesIsMalformed(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, 200, `{"calendar":[{"id":1,"type":"lesson","subject_set":{"id":5},"start":"soon"}]}`)
	})
	_, err := b.client.StaffCalendar(b.ctx, "201", time.Now(), time.Now())
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
}

func TestCurrentAcademicYear(t *testing.T) {
	t.Parallel()
	const years = `[
		{"id":1,"name":"2024/25","date_start":"2024-09-01","date_end":"2025-08-31","is_current":false},
		{"id":2,"name":"2025/26","date_start":"2025-09-01","date_end":"2026-08-31","is_current":%s}]`
	for _, tc := range []struct {
		flag, configured string
		want             string
		notFound         bool
	}{
		{flag: "true", want: "2"},
		{flag: "false", want: "2"}, // none marked: the one containing today (2026-03-02)
		{flag: "true", configured: "1", want: "1"},
		{flag: "true", configured: "9", notFound: true},
	} {
		b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
			writeJSON(w, 200, fmt.Sprintf(years, tc.flag))
		}, func(c *Config) { c.AcademicYearID = tc.configured })
		y, err := b.client.CurrentAcademicYear(b.ctx)
		if tc.notFound {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%+v: err = %v", tc, err)
			}
			continue
		}
		if err != nil || y.ID != tc.want {
			t.Errorf("%+v: year %+v, %v", tc, y, err)
		}
	}
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, 200, `[{"id":1,"date_start":"2020-09-01","date_end":"2021-08-31"}]`)
	})
	if _, err := b.client.CurrentAcademicYear(b.ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("no current year: %v", err)
	}
}

func TestTeachingStaff(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, 200, `[
			{"id":1,"roles":[{"id":2,"name":"Teacher"}],"status":"current","email":"a@school.example"},
			{"id":2,"roles":[{"id":5,"name":"Support Staff"}],"status":"current"},
			{"id":3,"roles":[{"id":2,"name":"Teacher"}],"status":"past"},
			{"id":4,"roles":[{"id":7,"name":"Head of Teaching and Learning"}]}]`)
	})
	got, err := b.client.TeachingStaff(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(got, func(s Staff) string { return s.ID }); !slices.Equal(got, []string{"1", "4"}) {
		t.Errorf("teaching staff = %v", got)
	}
}

func TestNotFoundAndForbidden(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if strings.Contains(r.URL.Path, "subject-sets") {
			writeJSON(w, 404, `{"error":"not_found","message":"Not Found"}`)
			return
		}
		writeJSON(w, 403, `{"errors":[{"status":"403","detail":"Missing scope students.past.read for jo@school.example"}]}`)
	})
	_, err := b.client.SubjectSets(b.ctx, "99")
	if !errors.Is(err, ErrNotFound) || IsRetryable(err) || errors.Is(err, ErrUnauthorized) {
		t.Errorf("404: %v", err)
	}
	_, err = b.client.Students(b.ctx)
	if !errors.Is(err, ErrForbidden) || IsRetryable(err) || errors.Is(err, ErrUnauthorized) {
		t.Errorf("403: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "Missing scope") || strings.Contains(err.Error(), "jo@") {
		t.Errorf("403 message: %v", err)
	}
}

func TestTransientFaultsRetried(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		switch calls.Add(1) {
		case 1:
			writeJSON(w, 500, `{}`)
		case 2:
			w.Header().Set("Retry-After", "7")
			writeJSON(w, 503, `{}`)
		default:
			writeJSON(w, 200, `[]`)
		}
	})
	if _, err := b.client.AcademicYears(b.ctx); err != nil {
		t.Fatal(err)
	}
	w := b.waits()
	if len(w) != 2 || w[0] <= 0 || w[0] > retryMaxInterval || w[1] != 7*time.Second {
		t.Errorf("waits = %v; want a backoff, then the 503's 7s", w)
	}

	b = setup(t, func(w http.ResponseWriter, r *http.Request, _ string) { writeJSON(w, 502, `{}`) })
	_, err := b.client.AcademicYears(b.ctx)
	var ae *APIError
	if !IsRetryable(err) || !errors.As(err, &ae) || ae.Status != 502 || len(b.fake.seen()) != RetryMaxAttemptsDefault {
		t.Errorf("err = %v after %d requests", err, len(b.fake.seen()))
	}
}

func TestTransportErrorsHoldNoQuery(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		// Hang up without an answer.
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Fatal("no hijacker")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
	}, func(c *Config) { c.RetryMaxAttempts = 2 })
	_, err := b.client.StaffCalendar(b.ctx, "201", time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC))
	if err == nil || !IsRetryable(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	if strings.Contains(err.Error(), "dateFrom") || strings.Contains(err.Error(), "2026-01-05") || strings.Contains(err.Error(), "?") {
		t.Errorf("error %q holds the query", err)
	}
	if !strings.Contains(err.Error(), "/api/v1/staff/201/timetable/calendar") {
		t.Errorf("error %q lacks the path", err)
	}
}

func TestContextCancelled(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ string) { writeJSON(w, 500, `{}`) })
	ctx, cancel := context.WithCancel(b.ctx)
	b.client.sleepFunc = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	_, err := b.client.AcademicYears(ctx)
	if !errors.Is(err, context.Canceled) || IsRetryable(err) {
		t.Errorf("err = %v", err)
	}
}
