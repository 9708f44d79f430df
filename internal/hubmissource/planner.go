package hubmissource

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"time"
)

// Defaults of [SnapshotPlanner].
const (
	RefreshEveryCyclesDefault = 4
	LessonWindowDefault       = 14 * 24 * time.Hour
	// RequestIntervalDefault is HUBmis's documented pace: one request back
	// in the bucket every 5 s, 12 a minute.
	RequestIntervalDefault = 5 * time.Second
)

// SnapshotPlanner decides which of a snapshot's costly reads (a set's
// members, a member of staff's timetable) a cycle makes. Lists (students,
// staff, sets with their student counts and staff) are read every cycle;
// they are a few pages and they show what changed. Then a cycle reads the
// members of every set whose count or staff changed, the calendars of staff
// whose sets changed, and, round-robin by age, enough of the rest that every
// set and every calendar is re-read at least every RefreshEveryCycles
// cycles, as far as the budget allows.
type SnapshotPlanner struct {
	// RefreshEveryCycles bounds staleness: every set and calendar is re-read
	// at least this often. Defaults to [RefreshEveryCyclesDefault].
	RefreshEveryCycles int
	// Budget is the number of requests a later cycle may use, lists
	// included. The first snapshot reads everything, paced by the rate
	// limiters, however many requests that takes.
	Budget int
}

// Plan is what one cycle reads beyond the lists.
type Plan struct {
	MemberReads   []string // set ids
	CalendarReads []string // staff ids
	// Forced counts the reads that changes required; RoundRobin the rest.
	Forced, RoundRobin int
	// Short is how many reads the round-robin wanted and the budget did not
	// allow: non-zero means the staleness bound is not met.
	Short int
}

// Requests is the number of requests the plan makes.
func (p Plan) Requests() int { return len(p.MemberReads) + len(p.CalendarReads) }

// Plan plans a cycle. prev is the last committed snapshot (nil on the first
// cycle); sets and staff are this cycle's lists; listCost the requests the
// lists took.
func (sp SnapshotPlanner) Plan(prev *Snapshot, sets map[string]Set, teaching []string, listCost int) Plan {
	var p Plan
	if prev == nil || len(prev.Sets) == 0 {
		p.MemberReads = slices.Sorted(maps.Keys(sets))
		p.CalendarReads = slices.Sorted(slices.Values(teaching))
		p.Forced = p.Requests()
		return p
	}
	forcedSets := map[string]bool{}
	forcedStaff := map[string]bool{}
	for id, s := range sets {
		old, ok := prev.Sets[id]
		if !ok || old.MembersRead.IsZero() || old.StudentCount != s.StudentCount || !slices.Equal(old.StaffIDs, s.StaffIDs) {
			forcedSets[id] = true
			// A set's lessons come from its staff's calendars: a new set or
			// a change of staff needs them read again.
			if !ok || !slices.Equal(old.StaffIDs, s.StaffIDs) {
				for _, st := range s.StaffIDs {
					forcedStaff[st] = true
				}
			}
		}
	}
	for _, st := range teaching {
		if _, ok := prev.Calendars[st]; !ok {
			forcedStaff[st] = true
		}
	}
	p.MemberReads = slices.Sorted(maps.Keys(forcedSets))
	p.CalendarReads = slices.Sorted(maps.Keys(forcedStaff))
	p.Forced = p.Requests()

	every := cmp.Or(sp.RefreshEveryCycles, RefreshEveryCyclesDefault)
	total := len(sets) + len(teaching)
	want := int(math.Ceil(float64(total) / float64(every)))
	left := sp.Budget - listCost - p.Forced
	if sp.Budget == 0 {
		left = want
	}
	take := max(0, min(want, left))
	p.Short = want - take

	// Round-robin: the oldest reads first, sets and calendars together.
	type item struct {
		set  bool
		id   string
		read time.Time
	}
	var items []item
	for id := range sets {
		if !forcedSets[id] {
			items = append(items, item{set: true, id: id, read: prev.Sets[id].MembersRead})
		}
	}
	for _, st := range teaching {
		if !forcedStaff[st] {
			items = append(items, item{id: st, read: prev.Calendars[st].Read})
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(a.read.Compare(b.read), cmp.Compare(a.id, b.id))
	})
	for _, it := range items[:min(take, len(items))] {
		if it.set {
			p.MemberReads = append(p.MemberReads, it.id)
		} else {
			p.CalendarReads = append(p.CalendarReads, it.id)
		}
		p.RoundRobin++
	}
	return p
}

// StalenessBound is how old the oldest set or calendar may get when every
// cycle takes its round-robin share: RefreshEveryCycles intervals.
func (sp SnapshotPlanner) StalenessBound(interval time.Duration) time.Duration {
	return time.Duration(cmp.Or(sp.RefreshEveryCycles, RefreshEveryCyclesDefault)) * interval
}

// CycleBudget is the number of requests a cycle of this interval can make
// at HUBmis's sustained pace (one every 5 s), capped by the configured
// request budget: spending more would only make the next cycle wait.
func CycleBudget(interval time.Duration, configured int) int {
	pace := int(interval / RequestIntervalDefault)
	if configured > 0 {
		return min(pace, configured)
	}
	return pace
}
