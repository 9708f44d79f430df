package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/natstest"
)

// TestWorkerSuiteRuns runs the worker suite at a tiny size: the bench must
// keep working, whatever its figures.
func TestWorkerSuiteRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if err := run(suites{only: "worker", n: 200, nLatency: 64, concurrency: 8, latency: 5 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
}

// TestHUBmisSnapshotAndFirstSyncRun takes a small school's first snapshot
// and has the worker apply it, with and without Class latency: the suite
// fails if a message is dead-lettered or never ends.
func TestHUBmisSnapshotAndFirstSyncRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	res, err := events.EnsureResources(ctx, js, events.StreamSettings{})
	if err != nil {
		t.Fatal(err)
	}
	rep := &report{}
	if err := hubmisSnapshotCost(ctx, js, res, rep, school{students: 60, staff: 8, sets: 12}, 8, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	rep.print(&b)
	for _, want := range []string{"HUBmis first snapshot", "first sync of a school of 60 students, no Class latency",
		"first sync of a school of 60 students, 2ms Class latency", "B in PROVISION_STATE"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

func TestReportPrintsEveryRow(t *testing.T) {
	r := &report{}
	r.add("worker", "100 msg/s", "raw 200 (50%)", aim(true))
	r.add("diff exponent", "1.30", "≤ 1.1", aim(false))
	var b bytes.Buffer
	r.print(&b)
	for _, want := range []string{"Summary", "figure", "100 msg/s", "raw 200 (50%)", "met", "MISSED"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

func TestMemPeakSeesAnAllocation(t *testing.T) {
	m := startMemPeak()
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	got := m.end()
	if !strings.Contains(got, "heap +") || rssNow() == 0 && heapNow() == 0 {
		t.Errorf("memPeak = %q", got)
	}
	_ = buf[len(buf)-1]
}

// TestProcessCPUCountsWork: the CPU clock the figures divide must advance
// with work done, or every "CPU/msg" would read 0.
func TestProcessCPUCountsWork(t *testing.T) {
	before := processCPU()
	deadline := time.Now().Add(10 * time.Second)
	x := uint64(1)
	for processCPU()-before < 20*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("processCPU advanced %s in 10 s of busy work", processCPU()-before)
		}
		for i := range 100_000 {
			x = x*6364136223846793005 + uint64(i)
		}
	}
	if x == 0 {
		t.Log(x) // keeps the loop from being optimised away
	}
}
