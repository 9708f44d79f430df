package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/hubmis"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/hubmissource"
	"github.com/rollcall/rollcall/internal/valve"
)

// hubmisDiff times the diff of two snapshots at about 10k, 50k and 100k
// entities (best of three runs each), reports allocations and the peak heap
// (from a fourth, untimed run), and the growth exponent of the time:
// log(t2/t1) / log(n2/n1), 1 for linear growth, from 10k and from 50k to
// 100k.
func hubmisDiff(rep *report) {
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	type point struct {
		entities int
		took     time.Duration
	}
	var points []point
	for _, sets := range []int{380, 1900, 3800} {
		prev := hubmissource.SyntheticSchool(sets, 25, sets/10, 0, at)
		next := hubmissource.SyntheticSchool(sets, 25, sets/10, sets/100, at)
		entities := sets*27 + sets/10 // enrollments (25 pupils + 1 teacher + 1 changed), classes, users
		var best time.Duration
		var allocs, allocated uint64
		var changes int
		for run := range 3 {
			// Each run starts from a collected heap given back to the OS,
			// so no run gains from pages an earlier one left mapped.
			runtime.GC()
			debug.FreeOSMemory()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			changes = len(hubmissource.Mapper{Tenant: "bench"}.Diff(prev, next))
			took := time.Since(start)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if run == 0 || took < best {
				best = took
			}
			if run == 0 {
				allocs, allocated = after.Mallocs-before.Mallocs, (after.TotalAlloc-before.TotalAlloc)>>20
			}
		}
		peak := int(diffPeakHeap(prev, next) >> 20)
		perEntity := best / time.Duration(entities)
		fmt.Printf("%-58s %9s  %s/entity, %d allocs, %d MB allocated, peak heap %d MB (%d changes)\n",
			fmt.Sprintf("HUBmis diff of two snapshots, ~%dk entities", entities/1000), best.Round(time.Millisecond),
			perEntity, allocs, allocated, peak, changes)
		rep.add(fmt.Sprintf("HUBmis diff, %d entities (best of 3)", entities),
			fmt.Sprintf("%s, %s/entity", best.Round(time.Millisecond), perEntity), "", "")
		rep.add(fmt.Sprintf("peak memory: HUBmis diff of %d entities", entities), fmt.Sprintf("heap %d MB, %d MB allocated", peak, allocated), "", "")
		points = append(points, point{entities, best})
	}
	exponent := func(a, b point) float64 {
		return math.Log(b.took.Seconds()/a.took.Seconds()) / math.Log(float64(b.entities)/float64(a.entities))
	}
	exp := exponent(points[0], points[2])
	exp50 := exponent(points[1], points[2])
	fmt.Printf("%-58s %9.2f  (aim ≤ 1.1; 50k → 100k: %.2f)\n", "HUBmis diff growth exponent, 10k → 100k entities", exp, exp50)
	rep.add("HUBmis diff growth exponent, 10k → 100k", fmt.Sprintf("%.2f", exp), "≤ 1.1 (1 is linear)", aim(exp <= 1.1))
	rep.add("HUBmis diff growth exponent, 50k → 100k", fmt.Sprintf("%.2f", exp50), "≤ 1.1 (1 is linear)", aim(exp50 <= 1.1))
}

// diffPeakHeap is the peak heap in use while diffing prev and next. It
// samples with runtime.ReadMemStats, which stops the world, so it runs the
// diff once more, untimed, rather than slow the timed runs.
func diffPeakHeap(prev, next *hubmissource.Snapshot) uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	hubmissource.Mapper{Tenant: "bench"}.Diff(prev, next)
	close(stop)
	wg.Wait()
	return peak.Load()
}

// hubmisSnapshotCost takes the first snapshot of the reference school (1,500
// students, 150 staff, 300 sets) from a time-scaled simulator and compares
// the requests it took with the fewest the documented paging allows.
func hubmisSnapshotCost(ctx context.Context, js jetstream.JetStream, rep *report) error {
	const scale = 500
	mis := hubmistest.New(hubmistest.Options{Seed: 11, TimeScale: scale})
	defer mis.Close()
	mis.Populate(1500, 150, 300, 3)
	client, err := hubmis.New(hubmis.Config{BaseURL: mis.URL(), ClientID: mis.ClientID(), ClientSecret: mis.ClientSecret(),
		Realm: mis.Realm(), TimeScale: scale})
	if err != nil {
		return err
	}
	snaps, err := hubmissource.EnsureSnapshotStore(ctx, js, 1)
	if err != nil {
		return err
	}
	held, err := valve.EnsureStore(ctx, js, 1)
	if err != nil {
		return err
	}
	src := hubmissource.New(hubmissource.Config{Tenant: "reference", API: hubmissource.ClientAPI{C: client}, JS: js,
		Snapshots: snaps, Held: held, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	mem := startMemPeak()
	cycle, err := src.Cycle(ctx)
	if err != nil {
		return err
	}
	memText := mem.end()
	year := mis.CurrentAcademicYear().ID
	sets, teaching := 0, map[string]bool{}
	for _, s := range mis.Sets() {
		if s.AcademicYearID == year {
			sets++
			for _, id := range s.StaffIDs {
				teaching[id] = true
			}
		}
	}
	pages := func(n int) int { return (n + hubmistest.MaxPageSizeDefault - 1) / hubmistest.MaxPageSizeDefault }
	// Year and regional settings, the three paged lists at the largest page
	// size, then one request per set (members) and per teacher (calendar).
	minimum := 2 + pages(len(mis.Students())) + pages(len(mis.Staff())) + pages(sets) + sets + len(teaching)
	fmt.Printf("%-58s %9d requests (minimum %d; %d 429s); at 12/min that is %s\n", "HUBmis first snapshot of the reference school",
		cycle.Requests, minimum, mis.Stats().TooMany, (time.Duration(cycle.Requests) * 5 * time.Second).Round(time.Minute))
	fmt.Printf("%-58s %s\n", "  memory of that snapshot (with the simulator)", memText)
	ratio := float64(cycle.Requests) / float64(minimum)
	rep.add("HUBmis first snapshot, reference school", fmt.Sprintf("%d requests", cycle.Requests),
		fmt.Sprintf("minimum %d (%.3f×); aim ≤ 1.1×", minimum, ratio), aim(ratio <= 1.1))
	rep.add("peak memory: HUBmis poller (first snapshot)", memText, "", "")
	return nil
}
