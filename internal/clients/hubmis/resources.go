package hubmis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// AcademicYears returns the school's academic years, in HUBmis's order.
func (c *Client) AcademicYears(ctx context.Context) ([]AcademicYear, error) {
	return listAll(ctx, c, listSpec{path: pathAcademicYears, kind: "academic years"}, decodeAcademicYear)
}

// CurrentAcademicYear returns the year the client works in: the one of
// [Config.AcademicYearID] when set; else the year HUBmis marks current (of
// several, the one that contains today); else the one whose dates contain
// today, by [Config.Now] in its own location. When there is none, the error
// matches [ErrNotFound].
func (c *Client) CurrentAcademicYear(ctx context.Context) (AcademicYear, error) {
	years, err := c.AcademicYears(ctx)
	if err != nil {
		return AcademicYear{}, err
	}
	if c.academicYear != "" {
		for _, y := range years {
			if y.ID == c.academicYear {
				return y, nil
			}
		}
		return AcademicYear{}, fmt.Errorf("hubmis: GET %s: the configured academic year is not listed: %w", pathAcademicYears, ErrNotFound)
	}
	today := c.now()
	var marked []AcademicYear
	for _, y := range years {
		if y.Current {
			marked = append(marked, y)
		}
	}
	switch len(marked) {
	case 0:
		for _, y := range years {
			if y.Contains(today) {
				return y, nil
			}
		}
		return AcademicYear{}, fmt.Errorf("hubmis: GET %s: no academic year is current or contains today: %w", pathAcademicYears, ErrNotFound)
	case 1:
		return marked[0], nil
	}
	for _, y := range marked {
		if y.Contains(today) {
			return y, nil
		}
	}
	return marked[0], nil
}

// Students returns the school's current students (filter[enrolmentStatus]=
// current, which also needs the fewest scopes: the basic call wants those of
// past students and applicants too).
func (c *Client) Students(ctx context.Context) ([]Student, error) {
	return listAll(ctx, c, listSpec{
		path:  pathStudents,
		query: url.Values{"filter[enrolmentStatus]": {"current"}},
		paged: true,
		kind:  "students",
	}, decodeStudent)
}

// Staff returns every member of staff HUBmis lists, past and support staff
// included (the docs' filter[status] takes a status id whose values are not
// documented, so it is not used).
func (c *Client) Staff(ctx context.Context) ([]Staff, error) {
	return listAll(ctx, c, listSpec{path: pathStaff, paged: true, kind: "staff"}, decodeStaff)
}

// TeachingStaff returns the current members of staff with a teaching role
// ([Staff.IsTeacher] and [Staff.IsCurrent]); it reads the whole staff list.
func (c *Client) TeachingStaff(ctx context.Context) ([]Staff, error) {
	all, err := c.Staff(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, s := range all {
		if s.IsTeacher() && s.IsCurrent() {
			out = append(out, s)
		}
	}
	return out, nil
}

// SubjectSets returns the subject sets of an academic year. An unknown year
// matches [ErrNotFound].
func (c *Client) SubjectSets(ctx context.Context, yearID string) ([]SubjectSet, error) {
	path, err := expand(pathSubjectSets, yearID)
	if err != nil {
		return nil, err
	}
	return listAll(ctx, c, listSpec{path: path, paged: true, kind: "subject sets"}, decodeSubjectSet)
}

// SetStudents returns the students of a subject set. An unknown set, or one
// of another year, matches [ErrNotFound].
func (c *Client) SetStudents(ctx context.Context, yearID, setID string) ([]Student, error) {
	path, err := expand(pathSetStudents, yearID, setID)
	if err != nil {
		return nil, err
	}
	return listAll(ctx, c, listSpec{path: path, kind: "set students"}, decodeStudent)
}

// SetStaff returns the staff of a subject set in HUBmis's order, the main
// teacher first. An unknown set, or one of another year, matches
// [ErrNotFound].
func (c *Client) SetStaff(ctx context.Context, yearID, setID string) ([]Staff, error) {
	path, err := expand(pathSetStaff, yearID, setID)
	if err != nil {
		return nil, err
	}
	return listAll(ctx, c, listSpec{path: path, kind: "set staff"}, decodeStaff)
}

// StaffCalendar returns a member of staff's timetable calendar for the days
// from through to, both included: filter[dateFrom] and filter[dateTo] are
// the calendar dates of from and to in their own location, which should be
// the school's time zone. Entry times given without an offset are read in
// from's location. Entries that are not lessons are returned too; see
// [CalendarEntry.IsLesson]. A lesson without a readable start and end fails
// the call (ErrMalformed): leaving it out would read as a cancellation.
func (c *Client) StaffCalendar(ctx context.Context, staffID string, from, to time.Time) ([]CalendarEntry, error) {
	path, err := expand(pathStaffCalendar, staffID)
	if err != nil {
		return nil, err
	}
	fromDay, toDay := from.Format(time.DateOnly), to.Format(time.DateOnly)
	if toDay < fromDay {
		return nil, errors.New("hubmis: StaffCalendar: to is before from")
	}
	loc := from.Location()
	return listAll(ctx, c, listSpec{
		path:     path,
		query:    url.Values{"filter[dateFrom]": {fromDay}, "filter[dateTo]": {toDay}},
		listKeys: []string{"calendar", "data"},
		kind:     "calendar entries",
	}, func(raw json.RawMessage) (CalendarEntry, error) { return decodeCalendarEntry(raw, loc) })
}

// RegionalSettings returns the school's regional settings, its time zone
// among them.
func (c *Client) RegionalSettings(ctx context.Context) (RegionalSettings, error) {
	body, err := c.get(ctx, pathRegionalSettings, nil)
	if err != nil {
		return RegionalSettings{}, err
	}
	rs, err := decodeRegionalSettings(body)
	if err != nil {
		return RegionalSettings{}, fmt.Errorf("hubmis: GET %s: %w", pathRegionalSettings, err)
	}
	return rs, nil
}
