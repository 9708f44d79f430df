package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
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
