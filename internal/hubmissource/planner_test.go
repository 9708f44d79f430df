package hubmissource

import (
	"fmt"
	"testing"
	"time"
)

func school(nSets, nStaff int, read time.Time) (*Snapshot, map[string]Set, []string) {
	prev := NewSnapshot()
	sets := map[string]Set{}
	var staff []string
	for i := range nStaff {
		id := fmt.Sprintf("st%03d", i)
		staff = append(staff, id)
		prev.Calendars[id] = Calendar{Read: read.Add(time.Duration(i) * time.Second)}
	}
	for i := range nSets {
		id := fmt.Sprintf("set%03d", i)
		s := Set{ID: id, StudentCount: 20, StaffIDs: []string{staff[i%nStaff]}}
		sets[id] = s
		s.MembersRead = read.Add(time.Duration(i) * time.Second)
		prev.Sets[id] = s
	}
	return prev, sets, staff
}

func TestFirstSnapshotReadsEverything(t *testing.T) {
	_, sets, staff := school(300, 150, time.Now())
	p := SnapshotPlanner{Budget: 180}.Plan(nil, sets, staff, 22)
	if len(p.MemberReads) != 300 || len(p.CalendarReads) != 150 {
		t.Errorf("first plan reads %d sets and %d calendars, want all 300 and 150", len(p.MemberReads), len(p.CalendarReads))
	}
}

func TestChangesAreReadAndTheRestRoundRobin(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	prev, sets, staff := school(300, 150, t0)
	s := sets["set010"]
	s.StudentCount = 21 // someone joined
	sets["set010"] = s
	s = sets["set020"]
	s.StaffIDs = []string{"st149"} // the teacher changed
	sets["set020"] = s
	sp := SnapshotPlanner{RefreshEveryCycles: 4, Budget: 180}
	p := sp.Plan(prev, sets, staff, 22)
	if p.Forced != 3 || p.MemberReads[0] != "set010" || p.MemberReads[1] != "set020" {
		t.Fatalf("forced reads %d, sets %v; want set010 and set020 and st149's calendar", p.Forced, p.MemberReads[:2])
	}
	want := (300 + 150 + 3) / 4 // ceil(450/4) = 113
	if p.RoundRobin != want || p.Short != 0 {
		t.Errorf("round-robin %d (short %d), want %d", p.RoundRobin, p.Short, want)
	}
	if p.Requests()+22 > 180 {
		t.Errorf("plan uses %d requests, over the budget", p.Requests()+22)
	}
	// Over RefreshEveryCycles cycles every set and calendar is read once.
	seenSets, seenStaff := map[string]bool{}, map[string]bool{}
	now := t0
	for cycle := range 4 {
		now = now.Add(15 * time.Minute)
		p := sp.Plan(prev, sets, staff, 22)
		for _, id := range p.MemberReads {
			seenSets[id] = true
			s := prev.Sets[id]
			s.MembersRead, s.StudentCount, s.StaffIDs = now, sets[id].StudentCount, sets[id].StaffIDs
			prev.Sets[id] = s
		}
		for _, id := range p.CalendarReads {
			seenStaff[id] = true
			prev.Calendars[id] = Calendar{Read: now}
		}
		if cycle > 0 && p.Forced != 0 {
			t.Errorf("cycle %d forced %d reads with nothing changed", cycle, p.Forced)
		}
	}
	if len(seenSets) != 300 || len(seenStaff) != 150 {
		t.Errorf("after 4 cycles %d sets and %d calendars were read, want all", len(seenSets), len(seenStaff))
	}
	if got := prev.Oldest(); now.Sub(got) > sp.StalenessBound(15*time.Minute) {
		t.Errorf("oldest data %s old, over the bound %s", now.Sub(got), sp.StalenessBound(15*time.Minute))
	}
}

func TestPlanReportsWhenTheBudgetCannotKeepTheBound(t *testing.T) {
	prev, sets, staff := school(300, 150, time.Now())
	p := SnapshotPlanner{RefreshEveryCycles: 1, Budget: 100}.Plan(prev, sets, staff, 22)
	if p.Requests() != 78 || p.Short != 450-78 {
		t.Errorf("plan %d requests, short %d; want 78 and %d", p.Requests(), p.Short, 450-78)
	}
	if got := CycleBudget(15*time.Minute, 500); got != 180 {
		t.Errorf("cycle budget for 15m = %d, want 180 (one request per 5 s)", got)
	}
}
