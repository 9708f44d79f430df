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
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/hubmis"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/hubmissource"
	"github.com/rollcall/rollcall/internal/valve"
)

// hubmisDiff times the diff of two snapshots (mapping both to desired sets
// and diffing them, as a snapshot cycle does) at about 10k, 50k and 100k
// entities, and the growth exponent of the time per diff: log(t2/t1) /
// log(n2/n1), 1 for linear growth.
//
// The aim's figure is from cold CPU caches: a poller diffs once per snapshot
// interval, so it finds its data in memory, not in the caches; and a 10k
// school's data (a few MB) fits the caches of a benchmark that diffs it
// again and again, where a 100k school's does not, which would measure the
// caches, not the diff. So before each timed run a buffer larger than any
// cache is swept; it lies outside the Go heap, so the collector's pacing is
// the one the diff alone makes. The collector is not forced between runs:
// its cost is amortised over them, as in a poller that runs for weeks. Each
// figure is the mean of at least diffRunsMin runs and diffTimeMin of timed
// work. The same with warm caches (no sweep) is printed beside it.
func hubmisDiff(rep *report) {
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	type point struct {
		entities   int
		cold, warm time.Duration
	}
	var points []point
	for _, sets := range []int{380, 1900, 3800} {
		prev := hubmissource.SyntheticSchool(sets, 25, sets/10, 0, at)
		next := hubmissource.SyntheticSchool(sets, 25, sets/10, sets/100, at)
		entities := sets*27 + sets/10 // enrollments (25 pupils + 1 teacher + 1 changed), classes, users
		m := hubmissource.Mapper{Tenant: "bench"}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		changes := len(m.Diff(prev, next))
		runtime.ReadMemStats(&after)
		allocs, allocated := after.Mallocs-before.Mallocs, (after.TotalAlloc-before.TotalAlloc)>>20
		cold, coldRuns := meanDiff(m, prev, next, true)
		warm, _ := meanDiff(m, prev, next, false)
		peak := int(diffPeakHeap(prev, next) >> 20)
		fmt.Printf("%-58s %9s  %s/entity (warm caches %s), %d allocs, %d MB allocated, peak heap %d MB (%d changes; mean of %d)\n",
			fmt.Sprintf("HUBmis diff of two snapshots, ~%dk entities", entities/1000), cold.Round(100*time.Microsecond),
			cold/time.Duration(entities), warm.Round(100*time.Microsecond), allocs, allocated, peak, changes, coldRuns)
		rep.add(fmt.Sprintf("HUBmis diff, %d entities (cold caches; warm)", entities),
			fmt.Sprintf("%s, %s/entity; warm %s", cold.Round(100*time.Microsecond), cold/time.Duration(entities), warm.Round(100*time.Microsecond)), "", "")
		rep.add(fmt.Sprintf("peak memory: HUBmis diff of %d entities", entities), fmt.Sprintf("heap %d MB, %d MB allocated", peak, allocated), "", "")
		points = append(points, point{entities, cold, warm})
	}
	exponent := func(a, b point, t func(point) time.Duration) float64 {
		return math.Log(t(b).Seconds()/t(a).Seconds()) / math.Log(float64(b.entities)/float64(a.entities))
	}
	// The sweep's pages go back to the OS, or they would count in the
	// resident memory of every later figure.
	if err := syscall.Madvise(evictBuffer(), syscall.MADV_DONTNEED); err != nil {
		fmt.Printf("  (the cache sweep buffer stays resident: %v)\n", err)
	}
	cold := func(p point) time.Duration { return p.cold }
	warm := func(p point) time.Duration { return p.warm }
	exp, exp50, expWarm := exponent(points[0], points[2], cold), exponent(points[1], points[2], cold), exponent(points[0], points[2], warm)
	fmt.Printf("%-58s %9.2f  (aim ≤ 1.1; 50k → 100k: %.2f; warm caches: %.2f)\n", "HUBmis diff growth exponent, 10k → 100k entities", exp, exp50, expWarm)
	rep.add("HUBmis diff growth exponent, 10k → 100k (cold caches)", fmt.Sprintf("%.2f", exp), "≤ 1.1 (1 is linear)", aim(exp <= 1.1))
	rep.add("HUBmis diff growth exponent, 50k → 100k (cold caches)", fmt.Sprintf("%.2f", exp50), "", "")
	rep.add("HUBmis diff growth exponent, 10k → 100k (warm caches)", fmt.Sprintf("%.2f", expWarm),
		"10k fits the caches, 100k does not", "")
}

// How long meanDiff times a diff.
const (
	diffRunsMin = 10
	diffTimeMin = time.Second
)

// meanDiff is the mean time of m.Diff(prev, next) over at least diffRunsMin
// runs and diffTimeMin, each after a sweep of the caches when cold, and the
// number of runs.
func meanDiff(m hubmissource.Mapper, prev, next *hubmissource.Snapshot, cold bool) (time.Duration, int) {
	m.Diff(prev, next) // the collector's pace set by the diff, not by what ran before
	var total time.Duration
	runs := 0
	for runs < diffRunsMin || total < diffTimeMin {
		if cold {
			evictCaches()
		}
		start := time.Now()
		m.Diff(prev, next)
		total += time.Since(start)
		runs++
	}
	return total / time.Duration(runs), runs
}

// evictBuffer is larger than any CPU's last-level cache, and mapped outside
// the Go heap, so that it changes nothing of the collector's pacing. Mapped
// on first use: the other suites never touch it.
var evictBuffer = sync.OnceValue(func() []byte {
	b, err := syscall.Mmap(-1, 0, 256<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		panic(fmt.Sprintf("bench: mapping the cache sweep buffer: %v", err))
	}
	return b
})

// evictCaches writes a byte of every cache line of evictBuffer, so that what
// an earlier run left in the CPU's caches is gone.
func evictCaches() {
	b := evictBuffer()
	for i := 0; i < len(b); i += 64 {
		b[i]++
	}
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

// school is the size of a simulated HUBmis school.
type school struct{ students, staff, sets int }

// referenceSchool is the school the HUBmis figures are taken on.
var referenceSchool = school{students: 1500, staff: 150, sets: 300}

func (s school) String() string {
	if s == referenceSchool {
		return "the reference school"
	}
	return fmt.Sprintf("a school of %d students", s.students)
}

// hubmisSnapshotCost takes the first snapshot of a school (in the bench the
// reference school: 1,500 students, 150 staff, 300 sets) from a time-scaled simulator and compares
// the requests it took with the fewest the documented paging allows.
//
// Then it times the worker applying that first sync, and the same school's
// first sync again, as a second tenant, with latency added to every Class
// call.
func hubmisSnapshotCost(ctx context.Context, js jetstream.JetStream, res *events.Resources, rep *report, sch school, concurrency int, latency time.Duration) error {
	const scale = 500
	mis := hubmistest.New(hubmistest.Options{Seed: 11, TimeScale: scale})
	defer mis.Close()
	mis.Populate(sch.students, sch.staff, sch.sets, 3)
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
	source := func(tenant string) *hubmissource.Source {
		return hubmissource.New(hubmissource.Config{Tenant: tenant, API: hubmissource.ClientAPI{C: client}, JS: js,
			Snapshots: snaps, Held: held, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	stored0, err := storedBytes(ctx, res)
	if err != nil {
		return err
	}
	mem := startMemPeak()
	cycle, err := source("reference").Cycle(ctx)
	if err != nil {
		return err
	}
	stored1, err := storedBytes(ctx, res)
	if err != nil {
		return err
	}
	memText := mem.end()
	snapInfo, _, err := hubmissource.ReadSnapshotInfo(ctx, snaps, "reference")
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
	fmt.Printf("%-58s %9d requests (minimum %d; %d 429s); at 12/min that is %s\n", "HUBmis first snapshot of "+sch.String(),
		cycle.Requests, minimum, mis.Stats().TooMany, (time.Duration(cycle.Requests) * 5 * time.Second).Round(time.Minute))
	fmt.Printf("%-58s %s\n", "  memory of that snapshot (with the simulator)", memText)
	// The committed snapshot holds the school and, as its outbox, the
	// messages of the cycle: what a tenant keeps in the snapshot store.
	snapText := fmt.Sprintf("%.1f MB (gzip JSON, outbox of %d messages included)", float64(snapInfo.Size)/1e6, cycle.Published)
	fmt.Printf("%-58s %s\n", "  stored snapshot", snapText)
	rep.add("stored HUBmis snapshot, "+sch.String(), snapText, "", "")
	ratio := float64(cycle.Requests) / float64(minimum)
	rep.add("HUBmis first snapshot, "+sch.String(), fmt.Sprintf("%d requests", cycle.Requests),
		fmt.Sprintf("minimum %d (%.3f×); aim ≤ 1.1×", minimum, ratio), aim(ratio <= 1.1))
	rep.add("peak memory: HUBmis poller (first snapshot)", memText, "", "")
	if err := workerFirstSync(ctx, js, res, rep, sch, "reference", cycle.Published, concurrency, 0); err != nil {
		return err
	}
	stored2, err := storedBytes(ctx, res)
	if err != nil {
		return err
	}
	// What the school's first sync leaves in JetStream, per change message:
	// the message itself, and once applied its key's record (the desired
	// state, kept for replay) and its audit records.
	perMsg := func(before, after uint64) uint64 { return (after - before) / uint64(max(cycle.Published, 1)) }
	storage := fmt.Sprintf("%d B in PROVISION, %d B in PROVISION_STATE, %d B in PROVISION_AUDIT",
		perMsg(stored0.provision, stored1.provision), perMsg(stored1.state, stored2.state), perMsg(stored1.audit, stored2.audit))
	fmt.Printf("%-58s %s\n", "  stored per change message of that first sync", storage)
	rep.add("stored per change message ("+sch.String()+"'s first sync)", storage, "", "")
	again, err := source("reference-latency").Cycle(ctx)
	if err != nil {
		return err
	}
	return workerFirstSync(ctx, js, res, rep, sch, "reference-latency", again.Published, concurrency, latency)
}

// workerFirstSync times the worker applying a school's first sync, the
// messages a poller just published for tenant: the mix of a real school
// (mostly enrollments, each a read of the class's enrollments and a post),
// unlike the class creations of the throughput runs. Enrollments whose class
// is not there yet go back to the stream and count as retries.
func workerFirstSync(ctx context.Context, js jetstream.JetStream, res *events.Resources, rep *report, sch school, tenant string, published, concurrency int, latency time.Duration) error {
	info, err := res.Stream.Info(ctx, jetstream.WithSubjectFilter(events.TenantSubjects(tenant)))
	if err != nil {
		return err
	}
	kinds := map[string]uint64{}
	for subject, count := range info.State.Subjects {
		if _, kind, _, err := events.ParseSubject(subject); err == nil {
			kinds[string(kind)] += count
		}
	}
	mix := fmt.Sprintf("%d users, %d classes, %d enrollments, %d schedules",
		kinds[string(events.KindUser)], kinds[string(events.KindClass)], kinds[string(events.KindEnrollment)], kinds[string(events.KindSchedule)])
	sim := classtest.New(classtest.Options{Seed: 1})
	defer sim.Close()
	sim.AddKey("bench-key")
	if latency > 0 {
		sim.SetFaults(classtest.Faults{Latency: latency})
	}
	run, err := applyAll(ctx, js, res, tenant, sim, published, concurrency)
	if err != nil {
		return err
	}
	if dead := run.results[handlers.ResultDead]; dead > 0 {
		return fmt.Errorf("first sync of %s: %d messages dead-lettered", tenant, dead)
	}
	retried := run.results[handlers.ResultRetry]
	if latency == 0 {
		fmt.Printf("%-58s %s, %.1f Class calls/msg, %d deliveries retried  (%s)\n",
			fmt.Sprintf("worker, first sync of %s, concurrency %d", sch, concurrency), run.throughput,
			run.callsPerMsg, retried, mix)
		rep.add(fmt.Sprintf("worker, first sync of %s, no Class latency", sch), run.throughput.String(),
			fmt.Sprintf("%d messages (%s), %.1f Class calls/msg, %d retried", published, mix, run.callsPerMsg, retried), "")
		return nil
	}
	// The 32 slots allow concurrency / latency Class calls a second; a slot
	// also waits for a read another enrollment of its class sent, which
	// takes its time but is not its call.
	slots := float64(concurrency) / latency.Seconds()
	callsPerSec := run.perSecond * run.callsPerMsg
	took := time.Duration(float64(published) / run.perSecond * float64(time.Second)).Round(100 * time.Millisecond)
	fmt.Printf("%-58s %9.0f msg/s  (%s for the school; %.1f Class calls/msg, %.0f calls/s: %.0f%% of the %.0f/s that %d slots at %s allow; %d retried)\n",
		fmt.Sprintf("worker, first sync of %s, %s latency", sch, latency), run.perSecond, took,
		run.callsPerMsg, callsPerSec, 100*callsPerSec/slots, slots, concurrency, latency, retried)
	rep.add(fmt.Sprintf("worker, first sync of %s, %s Class latency", sch, latency), fmt.Sprintf("%.0f msg/s, %s", run.perSecond, took),
		fmt.Sprintf("%.1f Class calls/msg: %.0f calls/s, %.0f%% of concurrency / latency = %.0f/s", run.callsPerMsg, callsPerSec, 100*callsPerSec/slots, slots), "")
	return nil
}

// stored is the bytes JetStream holds in the system's streams and buckets.
type stored struct{ provision, state, audit uint64 }

func storedBytes(ctx context.Context, res *events.Resources) (stored, error) {
	var out stored
	for _, s := range []struct {
		stream jetstream.Stream
		bytes  *uint64
	}{{res.Stream, &out.provision}, {res.Audit, &out.audit}} {
		info, err := s.stream.Info(ctx)
		if err != nil {
			return out, err
		}
		*s.bytes = info.State.Bytes
	}
	st, err := res.State.Status(ctx)
	if err != nil {
		return out, err
	}
	out.state = st.Bytes()
	return out, nil
}
