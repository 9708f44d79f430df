package hubmistest

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"time"
)

// Lessons are not stored one by one: a set has weekly slots, and its lessons on any day
// of its academic year are computed from them, minus the cancelled (or moved) ones, plus
// the extra (moved or added) ones. So the calendar answers any window, and the clock can
// move on without a horizon to maintain.

// lessonID is the id of a lesson in the calendar: stable for one set and one original
// start, within 2^53 so that every JSON decoder keeps it exact.
func lessonID(kind string, owner int, start time.Time) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(kind))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(owner))
	binary.BigEndian.PutUint64(b[8:], uint64(start.Unix()))
	_, _ = h.Write(b[:])
	return int(h.Sum64() & (1<<53 - 1))
}

// occurrencesLocked returns the lessons of set that start in [from, end), by start.
func (s *Server) occurrencesLocked(set *setRec, from, end time.Time) []occurrence {
	var out []occurrence
	if y := s.data.years[set.year]; y != nil && len(set.slots) > 0 {
		f := from.In(s.loc)
		day := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, s.loc)
		for ; day.Before(end); day = day.AddDate(0, 0, 1) {
			if !y.contains(day) {
				continue
			}
			for _, sl := range set.slots {
				if sl.Weekday != day.Weekday() {
					continue
				}
				// time.Date on the wall clock, not midnight plus a duration, so a lesson
				// stays at 09:00 on the days the clocks change.
				start := time.Date(day.Year(), day.Month(), day.Day(),
					int(sl.Start/time.Hour), int(sl.Start%time.Hour/time.Minute), 0, 0, s.loc)
				if start.Before(from) || !start.Before(end) || set.cancelled[start.Unix()] {
					continue
				}
				out = append(out, occurrence{
					id:    lessonID("lesson", set.id, start),
					start: start,
					end:   start.Add(sl.Length),
				})
			}
		}
	}
	for _, x := range set.extras {
		if !x.start.Before(from) && x.start.Before(end) {
			out = append(out, x)
		}
	}
	slices.SortStableFunc(out, func(a, b occurrence) int { return a.start.Compare(b.start) })
	return out
}

// findLessonLocked returns the lesson of set starting at start; s.mu must be held.
func (s *Server) findLessonLocked(set *setRec, start time.Time) (occurrence, bool) {
	for _, o := range s.occurrencesLocked(set, start, start.Add(time.Second)) {
		if o.start.Equal(start) {
			return o, true
		}
	}
	return occurrence{}, false
}

// removeLessonLocked takes lesson o out of set: an extra is dropped, a weekly one
// cancelled.
func removeLessonLocked(set *setRec, o occurrence) {
	if o.extra {
		set.extras = slices.DeleteFunc(set.extras, func(x occurrence) bool { return x.id == o.id && x.start.Equal(o.start) })
		return
	}
	if set.cancelled == nil {
		set.cancelled = map[int64]bool{}
	}
	set.cancelled[o.start.Unix()] = true
}

// MoveLesson moves the lesson of a set that starts at from so that it starts at to,
// keeping its length and its calendar id. It panics when the set has no lesson starting
// at from: that is a bug in the calling test.
func (s *Server) MoveLesson(setID string, from, to time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.setLocked("MoveLesson", setID)
	o, ok := s.findLessonLocked(set, from)
	if !ok {
		panic("hubmistest: MoveLesson: set " + setID + " has no lesson at " + from.Format(time.RFC3339))
	}
	removeLessonLocked(set, o)
	set.extras = append(set.extras, occurrence{
		id: o.id, start: to.In(s.loc), end: to.In(s.loc).Add(o.end.Sub(o.start)), extra: true,
	})
}

// CancelLesson removes the lesson of a set that starts at start. It panics when there is
// none.
func (s *Server) CancelLesson(setID string, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.setLocked("CancelLesson", setID)
	o, ok := s.findLessonLocked(set, start)
	if !ok {
		panic("hubmistest: CancelLesson: set " + setID + " has no lesson at " + start.Format(time.RFC3339))
	}
	removeLessonLocked(set, o)
}

// AddLesson adds a one-off lesson to a set, outside its weekly slots and whatever its
// academic year's dates.
func (s *Server) AddLesson(setID string, start, end time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.setLocked("AddLesson", setID)
	s.data.nextLesson++
	set.extras = append(set.extras, occurrence{
		id:    lessonID("added", set.id*1000003+s.data.nextLesson, start),
		start: start.In(s.loc), end: end.In(s.loc), extra: true,
	})
}

// Lessons returns the lessons of a set that start within [Options.LessonHorizon] from the
// start of today (by [Options.Now], in the school's time zone), by start: what the staff
// calendars of the set's teachers list for those dates.
func (s *Server) Lessons(setID string) []Lesson {
	now := s.now().In(s.loc)
	from := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.loc)
	// Whole days by the calendar, so the window ends at a midnight across a change of
	// the clocks.
	to := from.AddDate(0, 0, int(s.horizon/(24*time.Hour))).Add(s.horizon % (24 * time.Hour))
	return s.LessonsBetween(setID, from, to)
}

// LessonsBetween returns the lessons of a set that start in [from, to), by start.
func (s *Server) LessonsBetween(setID string, from, to time.Time) []Lesson {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.setLocked("Lessons", setID)
	occ := s.occurrencesLocked(set, from, to)
	out := make([]Lesson, 0, len(occ))
	for _, o := range occ {
		out = append(out, Lesson{SetID: setID, Start: o.start, End: o.end})
	}
	return out
}
