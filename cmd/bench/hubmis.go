package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rollcall/rollcall/internal/hubmissource"
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
