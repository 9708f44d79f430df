package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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

// hubmisDiff times the diff of two snapshots of growing size and reports
// allocations and the peak heap while it runs.
func hubmisDiff() {
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	for _, sets := range []int{1900, 3800, 7600} {
		prev := hubmissource.SyntheticSchool(sets, 25, sets/10, 0, at)
		next := hubmissource.SyntheticSchool(sets, 25, sets/10, sets/100, at)
		entities := sets*27 + sets/10 // enrollments (25 pupils + 1 teacher + 1 changed), classes, users
		runtime.GC()
		debug.FreeOSMemory()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
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
		}()
		start := time.Now()
		changes := hubmissource.Mapper{Tenant: "bench"}.Diff(prev, next)
		took := time.Since(start)
		close(stop)
		wg.Wait()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		fmt.Printf("%-58s %9s  %d allocs, %d MB allocated, peak heap %d MB (%d changes)\n",
			fmt.Sprintf("HUBmis diff of two snapshots, ~%dk entities", entities/1000), took.Round(time.Millisecond),
			after.Mallocs-before.Mallocs, (after.TotalAlloc-before.TotalAlloc)>>20, peak.Load()>>20, len(changes))
	}
}

// hubmisSnapshotCost takes the first snapshot of the reference school (1,500
// students, 150 staff, 300 sets) from a time-scaled simulator and compares
// the requests it took with the fewest the documented paging allows.
func hubmisSnapshotCost(ctx context.Context, js jetstream.JetStream) error {
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
	rep, err := src.Cycle(ctx)
	if err != nil {
		return err
	}
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
		rep.Requests, minimum, mis.Stats().TooMany, (time.Duration(rep.Requests) * 5 * time.Second).Round(time.Minute))
	return nil
}
