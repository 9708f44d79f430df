package hubmissource

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rollcall/rollcall/internal/clients/hubmis"
)

// ClientAPI adapts the HUBmis client to [API].
type ClientAPI struct{ C *hubmis.Client }

var _ API = ClientAPI{}

func classify(err error) error {
	if errors.Is(err, hubmis.ErrUnauthorized) {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return err
}

// CurrentYear implements [API].
func (a ClientAPI) CurrentYear(ctx context.Context) (Year, error) {
	y, err := a.C.CurrentAcademicYear(ctx)
	if err != nil {
		return Year{}, classify(err)
	}
	out := Year{ID: y.ID}
	if start, err := time.Parse(time.DateOnly, y.DateStart); err == nil {
		out.Start = start
	}
	if end, err := time.Parse(time.DateOnly, y.DateEnd); err == nil {
		out.End = end.Add(24 * time.Hour) // the year's last day included
	}
	return out, nil
}

// Timezone implements [API].
func (a ClientAPI) Timezone(ctx context.Context) (string, error) {
	r, err := a.C.RegionalSettings(ctx)
	if err != nil {
		return "", classify(err)
	}
	if _, err := r.Location(); err != nil {
		return "", err
	}
	return r.TimeZone, nil
}

func person(id, first, preferred, last, email string) Person {
	if preferred != "" {
		first = preferred
	}
	return Person{ID: id, FirstName: first, LastName: last, Email: email}
}

// Students implements [API].
func (a ClientAPI) Students(ctx context.Context) ([]Person, error) {
	list, err := a.C.Students(ctx)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]Person, 0, len(list))
	for _, s := range list {
		if s.Deleted {
			continue
		}
		out = append(out, person(s.ID, s.FirstName, s.PreferredName, s.LastName, s.Email))
	}
	return out, nil
}

// TeachingStaff implements [API].
func (a ClientAPI) TeachingStaff(ctx context.Context) ([]Person, error) {
	list, err := a.C.TeachingStaff(ctx)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]Person, 0, len(list))
	for _, s := range list {
		out = append(out, person(s.ID, s.FirstName, s.PreferredName, s.LastName, s.Email))
	}
	return out, nil
}

// Sets implements [API].
func (a ClientAPI) Sets(ctx context.Context, yearID string) ([]Set, error) {
	list, err := a.C.SubjectSets(ctx, yearID)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]Set, 0, len(list))
	for _, s := range list {
		desc := s.ShortDescription
		if desc == "" {
			desc = s.Subject.Name
		}
		out = append(out, Set{ID: s.ID, Name: s.Name, Description: desc, StudentCount: s.StudentCount, StaffIDs: s.StaffIDs})
	}
	return out, nil
}

// SetStudents implements [API].
func (a ClientAPI) SetStudents(ctx context.Context, yearID, setID string) ([]string, error) {
	list, err := a.C.SetStudents(ctx, yearID, setID)
	if err != nil {
		return nil, classify(err)
	}
	ids := make([]string, 0, len(list))
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return ids, nil
}

// Calendar implements [API].
func (a ClientAPI) Calendar(ctx context.Context, staffID string, from, to time.Time) ([]Lesson, error) {
	list, err := a.C.StaffCalendar(ctx, staffID, from, to)
	if err != nil {
		return nil, classify(err)
	}
	var out []Lesson
	for _, e := range list {
		if e.IsLesson() {
			out = append(out, Lesson{SetID: e.SubjectSet.ID, Start: e.Start.UTC(), End: e.End.UTC()})
		}
	}
	return out, nil
}

// Requests implements [API].
func (a ClientAPI) Requests() int64 { return a.C.Requests() }
