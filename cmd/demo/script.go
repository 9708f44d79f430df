package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/ops"
)

// stage is one step of the school year: a change at a source (or at
// Class), then a wait, under the stage deadline, for its condition.
type stage struct {
	title string
	// do makes the change and says what it did; empty for none.
	do func(ctx context.Context) (string, error)
	// waitFor says what the stage waits for, once the change is made.
	waitFor string
	// until is the stage's own condition; Class equal to both sources with
	// nothing pending is always part of it.
	until func(ctx context.Context) (bool, string, error)
	// after runs once the stage's condition holds: a note for its line.
	after func(ctx context.Context) string
}

// checkInterval is how often a stage looks at its condition.
const checkInterval = 100 * time.Millisecond

// stageResult is what the summary says of a stage.
type stageResult struct {
	title string
	took  time.Duration
}

// script is the school year. State shared by its stages (the section of the
// teacher change, the dead-lettered key, the replay's size) lives in the
// closure.
func (s *site) script() []stage {
	var (
		deadBefore    int
		badKey        string
		replayed      int
		outageStarted time.Time
		outage503s    int
	)
	sections := s.hub.Sections()
	slices.SortFunc(sections, func(a, b datahubtest.Section) int { return strings.Compare(a.ID, b.ID) })
	year := s.mis.CurrentAcademicYear().ID
	var sets []hubmistest.Set
	for _, set := range s.mis.Sets() {
		if set.AcademicYearID == year && len(set.StaffIDs) > 0 {
			sets = append(sets, set)
		}
	}
	names := [][2]string{{"Maya", "Okafor"}, {"Theo", "Lindqvist"}, {"Priya", "Raman"}, {"Jonas", "Weber"}, {"Ines", "Duarte"}, {"Kofi", "Mensah"}}
	next := 0
	newName := func() (string, string) {
		n := names[next%len(names)]
		next++
		if next > len(names) {
			n[1] += fmt.Sprint(next)
		}
		return n[0], n[1]
	}
	// addDataHubStudent adds a student to the district and enrolls them in
	// two sections, never the last: the script deletes it.
	live := sections[:len(sections)-1]
	addDataHubStudent := func(i int) {
		first, last := newName()
		st, _ := s.hub.AddStudent(datahubtest.Student{Name: datahubtest.Name{First: first, Last: last},
			Email: strings.ToLower(first+"."+last) + "@pupils.springfield.example", Grade: "9"})
		for _, sec := range []datahubtest.Section{live[i%len(live)], live[(i+1)%len(live)]} {
			s.hub.Enroll(sec.ID, st.ID)
		}
	}
	addHUBmisStudent := func(set hubmistest.Set) {
		first, last := newName()
		st := s.mis.AddStudent(hubmistest.Student{FirstName: first, LastName: last, YearGroup: set.YearGroup})
		s.mis.JoinSet(set.ID, st.ID)
	}

	return []stage{
		{
			title:   "initial sync",
			waitFor: "Class to equal both sources",
			after: func(context.Context) string {
				st := s.cls.State()
				return fmt.Sprintf("%d classes, %d users", len(st.Classes), len(st.Users))
			},
		},
		{
			title: "new students",
			do: func(context.Context) (string, error) {
				for i := range s.size.newStudents {
					addDataHubStudent(i)
				}
				addHUBmisStudent(sets[0])
				return fmt.Sprintf("%d at DataHub (2 sections each), 1 at HUBmis (set %s)", s.size.newStudents, sets[0].Name), nil
			},
			waitFor: "their enrollments in Class",
		},
		{
			title: "teacher change",
			do: func(context.Context) (string, error) {
				sec := sections[0]
				var to datahubtest.Teacher
				for _, t := range s.hub.Teachers() {
					if !slices.Contains(sec.Teachers, t.ID) && t.ID != sec.Teacher {
						to = t
						break
					}
				}
				if to.ID == "" {
					return "", fmt.Errorf("no teacher outside section %s to move in", sec.ID)
				}
				classID := events.ExternalID("datahub", dataHubTenant, "section", sec.ID)
				s.rec.watchFor(func(o handlers.Outcome) bool { return strings.HasPrefix(o.Key, classID) })
				s.hub.SetSectionTeacher(sec.ID, to.ID)
				return fmt.Sprintf("section %q gets a new primary teacher at DataHub", sec.Name), nil
			},
			waitFor: "the new teacher enrolled and the old one removed",
		},
		{
			title: "lesson moved",
			do: func(context.Context) (string, error) {
				return s.moveLesson(sets)
			},
			waitFor: "the next HUBmis snapshot to move the class date",
		},
		{
			title: "section deleted",
			do: func(context.Context) (string, error) {
				sec := sections[len(sections)-1]
				s.hub.DeleteSection(sec.ID)
				return fmt.Sprintf("section %q deleted at DataHub", sec.Name), nil
			},
			waitFor: "its class deleted in Class",
		},
		{
			title: "Class outage",
			do: func(context.Context) (string, error) {
				outage503s = s.cls.Stats().ByStatus[503]
				outageStarted = time.Now()
				s.cls.SetFaults(classtest.Faults{Rate503: 0.9, RetryAfter: time.Second})
				for i := range s.size.newStudents {
					addDataHubStudent(len(sections)/2 + i)
				}
				addHUBmisStudent(sets[len(sets)-1])
				renamed := sections[1]
				s.hub.UpdateSection(renamed.ID, renamed.Name+" (Honors)", "")
				return fmt.Sprintf("Class answers 90%% of requests 503 for %s while %d students arrive and a section is renamed",
					s.o.outage, s.size.newStudents+1), nil
			},
			waitFor: "the outage to end and the retries to land",
			until: func(context.Context) (bool, string, error) {
				if outageStarted.IsZero() {
					return true, "", nil
				}
				n := s.cls.Stats().ByStatus[503] - outage503s
				if time.Since(outageStarted) < s.o.outage || n == 0 {
					return false, fmt.Sprintf("Class answered %d 503s", n), nil
				}
				s.cls.SetFaults(classtest.Faults{})
				outageStarted, outage503s = time.Time{}, n
				return false, "Class healed", nil
			},
			after: func(context.Context) string { return fmt.Sprintf("Class answered %d 503s", outage503s) },
		},
		{
			title: "bad email",
			do: func(ctx context.Context) (string, error) {
				dead, err := s.env.DLQList(ctx, dataHubTenant, "")
				if err != nil {
					return "", err
				}
				deadBefore = len(dead)
				t, _ := s.hub.AddTeacher(datahubtest.Teacher{Email: "sam.typo at springfield.example",
					Name: datahubtest.Name{First: "Sam", Last: "Typo"}})
				badKey = events.ExternalID("datahub", dataHubTenant, "teacher", t.ID)
				s.skipKey("user " + badKey)
				return "a DataHub teacher whose email Class refuses (400)", nil
			},
			waitFor: "the record in the dead-letter queue",
			until: func(ctx context.Context) (bool, string, error) {
				dead, err := s.env.DLQList(ctx, dataHubTenant, "")
				if err != nil {
					return false, "", err
				}
				return len(dead) > deadBefore, fmt.Sprintf("%d dead letters", len(dead)-deadBefore), nil
			},
			after: func(ctx context.Context) string {
				dead, err := s.env.DLQList(ctx, dataHubTenant, "")
				if err != nil || len(dead) == 0 {
					return ""
				}
				return "reason: " + truncate(dead[len(dead)-1].Reason, 80)
			},
		},
		{
			title: "replay",
			do: func(ctx context.Context) (string, error) {
				var parts []string
				for _, t := range s.cfg.Tenants {
					res, err := s.env.Replay(ctx, ops.ReplayOptions{Tenant: t.ID})
					if err != nil {
						return "", fmt.Errorf("replay of %s: %w", t.ID, err)
					}
					replayed += res.Published
					parts = append(parts, fmt.Sprintf("%s %d", t.ID, res.Published))
				}
				return "every entity's newest message re-published (" + strings.Join(parts, ", ") + ")", nil
			},
			waitFor: "every replayed message settled, Class unchanged",
			until: func(context.Context) (bool, string, error) {
				n := s.rec.counts().replaySettled()
				return n >= replayed, fmt.Sprintf("%d of %d settled", n, replayed), nil
			},
		},
	}
}

// moveLesson moves one HUBmis lesson, a day or more ahead and inside the
// lesson window, an hour later.
func (s *site) moveLesson(sets []hubmistest.Set) (string, error) {
	t, _ := s.cfg.Tenant(hubmisTenant)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	from, to := day.Add(24*time.Hour), day.Add(t.HUBmis.LessonWindow-48*time.Hour)
	for _, set := range sets {
		lessons := s.mis.LessonsBetween(set.ID, from, to)
		for _, l := range lessons {
			moved := l.Start.Add(time.Hour)
			if slices.ContainsFunc(lessons, func(x hubmistest.Lesson) bool { return x.Start.Equal(moved) }) {
				continue
			}
			s.mis.MoveLesson(set.ID, l.Start, moved)
			loc := l.Start.Location()
			return fmt.Sprintf("%s's lesson of %s moved to %s at HUBmis", set.Name,
				l.Start.In(loc).Format("Mon 2 Jan 15:04"), moved.In(loc).Format("15:04")), nil
		}
	}
	return "", fmt.Errorf("no HUBmis lesson between %s and %s to move", from.Format(time.DateOnly), to.Format(time.DateOnly))
}

// runStage makes a stage's change and waits for its condition and for
// Class to equal both sources with nothing pending, under the deadline.
func (s *site) runStage(parent context.Context, p *progress, n int, st stage) (stageResult, error) {
	// The deadline bounds the stage's own calls too (the replay, the DLQ
	// reads); the loop below says which deadline it was.
	ctx, cancel := context.WithTimeout(parent, s.o.stageTimeout)
	defer cancel()
	did := ""
	if st.do != nil {
		var err error
		if did, err = st.do(ctx); err != nil {
			return stageResult{}, fmt.Errorf("stage %q: %w", st.title, err)
		}
	}
	start := time.Now()
	if n == 1 {
		// The initial sync began when the poller and worker started.
		start = s.started
	}
	line := p.begin(n, st.title, did, st.waitFor, start)
	deadline := time.Now().Add(s.o.stageTimeout)
	tick := time.NewTicker(checkInterval)
	defer tick.Stop()
	stable, detail := 0, ""
	for {
		ok, why, err := s.stageDone(ctx, st)
		if err != nil && parent.Err() == nil && ctx.Err() != nil {
			err = nil // the deadline, reported below
		}
		if err != nil {
			line.fail()
			return stageResult{}, fmt.Errorf("stage %q: %w", st.title, err)
		}
		// Twice in a row: a look between two deliveries of one change must
		// not end the stage.
		if ok {
			stable++
		} else {
			stable, detail = 0, why
		}
		if stable >= 2 {
			note := ""
			if st.after != nil {
				note = st.after(ctx)
			}
			return stageResult{title: st.title, took: line.done(note)}, nil
		}
		c := s.rec.counts()
		line.tick(fmt.Sprintf("applied %d, retries %d  %s", c.results[handlers.ResultApplied]+c.replayResults[handlers.ResultApplied], c.transient, detail))
		if time.Now().After(deadline) {
			line.fail()
			return stageResult{}, fmt.Errorf("stage %q timed out after %s waiting for %s: %s (-stage-timeout raises the limit; the logs are in %s)",
				st.title, s.o.stageTimeout, st.waitFor, detail, s.logWhere())
		}
		select {
		case <-parent.Done():
			line.fail()
			return stageResult{}, errInterrupted
		case <-tick.C:
		}
	}
}

// stageDone is the stage's condition: its own, then Class equal to both
// sources, then nothing pending for the workers.
func (s *site) stageDone(ctx context.Context, st stage) (bool, string, error) {
	if err := s.failed(); err != nil {
		return false, "", err
	}
	if st.until != nil {
		ok, why, err := st.until(ctx)
		if err != nil || !ok {
			return false, why, err
		}
	}
	if diff := s.differences(); len(diff) > 0 {
		return false, fmt.Sprintf("%d differences, first: %s", len(diff), diff[0]), nil
	}
	n, err := s.pending(ctx)
	if err != nil {
		// The worker creates its consumers as it starts.
		return false, err.Error(), nil
	}
	if n > 0 {
		return false, fmt.Sprintf("%d messages pending", n), nil
	}
	return true, "", nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
