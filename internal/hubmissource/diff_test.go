package hubmissource

import (
	"slices"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/events"
)

func TestDiffOfTwoSnapshots(t *testing.T) {
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	a := SyntheticSchool(100, 20, 10, 0, at)
	b := SyntheticSchool(100, 20, 10, 5, at)
	changes := Mapper{Tenant: "gw"}.Diff(a, b)
	var classes, enrolls int
	for _, c := range changes {
		if c.Op != events.OpUpsert {
			t.Errorf("unexpected %s of %s", c.Op, c.Key())
		}
		switch c.State.Kind() {
		case events.KindClass:
			classes++
		case events.KindEnrollment:
			enrolls++
		}
	}
	if classes != 5 || enrolls != 5 {
		t.Errorf("diff: %d classes and %d enrollments changed, want 5 renamed sets and 5 new members", classes, enrolls)
	}
	if again := (Mapper{Tenant: "gw"}).Diff(b, b); len(again) != 0 {
		t.Errorf("a snapshot diffed with itself gives %d changes", len(again))
	}
}

// A set whose members were not read this time keeps its enrollments: the
// ones the previous snapshot had are neither deleted nor upserted, while
// another set's lost member is deleted.
func TestDiffHoldsTheMembersOfASetNotRead(t *testing.T) {
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	prev := SyntheticSchool(4, 3, 2, 0, at)
	next := SyntheticSchool(4, 3, 2, 0, at)
	unread := next.Sets["set1"]
	unread.StudentIDs, unread.MembersRead = nil, time.Time{}
	next.Sets["set1"] = unread
	shrunk := next.Sets["set2"]
	gone := shrunk.StudentIDs[0]
	shrunk.StudentIDs = shrunk.StudentIDs[1:]
	next.Sets["set2"] = shrunk
	m := Mapper{Tenant: "gw"}
	var got []string
	for _, c := range m.Diff(prev, next) {
		got = append(got, string(c.Op)+" "+c.Key())
	}
	want := []string{string(events.OpDelete) + " enrollment/" + m.ext("set", "set2") + "#" + m.ext("student", gone)}
	if !slices.Equal(got, want) {
		t.Errorf("diff = %q, want %q", got, want)
	}
}

func BenchmarkDiff100k(b *testing.B) {
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	prev := SyntheticSchool(3800, 25, 400, 0, at)
	next := SyntheticSchool(3800, 25, 400, 38, at)
	b.ReportAllocs()
	for b.Loop() {
		Mapper{Tenant: "gw"}.Diff(prev, next)
	}
}
