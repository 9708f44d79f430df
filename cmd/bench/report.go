package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// row is one line of the summary: a figure beside its ceiling or aim.
type row struct {
	figure, measured, against, verdict string
}

// report collects the rows of one run and prints them as one table at its
// end, so every figure of the run sits beside what it is measured against.
type report struct {
	mu   sync.Mutex
	rows []row
}

func (r *report) add(figure, measured, against, verdict string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row{figure, measured, against, verdict})
}

func (r *report) print(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nSummary")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tmeasured\tceiling or aim\tverdict")
	for _, x := range r.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.figure, x.measured, x.against, x.verdict)
	}
	tw.Flush()
}

// aim says whether a figure met its aim.
func aim(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// memPeak samples the process's memory while a phase runs: the heap's live
// objects (runtime/metrics) and the resident set (/proc/self/statm), every
// few milliseconds. Everything here runs in one process (broker, simulators,
// poller or worker code), so the figures are the phase's peak minus the
// baseline at its start, beside the absolute peaks.
type memPeak struct {
	stop chan struct{}
	done chan struct{}

	baseHeap, baseRSS uint64
	peakHeap, peakRSS uint64
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func startMemPeak() *memPeak {
	runtime.GC()
	m := &memPeak{stop: make(chan struct{}), done: make(chan struct{})}
	m.baseHeap, m.baseRSS = heapNow(), rssNow()
	m.peakHeap, m.peakRSS = m.baseHeap, m.baseRSS
	go func() {
		defer close(m.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			m.peakHeap = max(m.peakHeap, heapNow())
			m.peakRSS = max(m.peakRSS, rssNow())
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// end stops sampling and returns a description of the phase's peaks.
func (m *memPeak) end() string {
	close(m.stop)
	<-m.done
	return fmt.Sprintf("heap +%d MB (peak %d MB), RSS +%d MB (peak %d MB)",
		(m.peakHeap-m.baseHeap)>>20, m.peakHeap>>20, (m.peakRSS-min(m.baseRSS, m.peakRSS))>>20, m.peakRSS>>20)
}

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// rssNow reads the resident set size from /proc/self/statm (Linux); 0
// elsewhere.
func rssNow() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// cpuModel is the machine's CPU model name from /proc/cpuinfo, or "".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(k)) == "model name" {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

// processCPU is the CPU time this process has used so far, user and system:
// divided by the messages of a run it is a cost that other load on the
// machine disturbs far less than a rate does.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
