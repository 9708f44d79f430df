// Command bench measures, in one run on this machine, how fast the worker
// applies change messages, against what JetStream itself allows:
//
//  1. raw nats.go jetstream consume with a double ack per message, one at a
//     time and with 32 in flight: the ceiling of any consumer here;
//  2. the worker applying class creations to a Class simulator with no
//     latency: its own cost (decode, per-key claim and release in KV with the
//     desired state, the Class call, the double ack);
//     and the same with one Class call per message, the floor of any worker;
//  3. the worker with 50 ms added to every Class call at concurrency 32,
//     against the bound of concurrency / latency = 640 msg/s;
//  4. the DataHub pipeline's event-to-applied latency at steady rates, the
//     source's first sync and poll throughput;
//  5. the HUBmis diff's cost per entity at 10k and 100k entities and its
//     growth exponent, and the requests of a first snapshot against the
//     fewest the documented paging allows;
//  6. the peak heap and RSS of the worker's and the pollers' work.
//
// Everything runs in this process: an embedded nats-server (JetStream in a
// temp dir) and the simulators on loopback. It prints each figure as it is
// measured and a summary table at the end, each figure beside its ceiling
// or aim; it never fails on a timing.
//
//	go run ./cmd/bench [-only worker|datahub|hubmis] [-n 5000] [-n-latency 2000] [-concurrency 32] [-latency 50ms] [-rates 50,500]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/natsembed"
)

func main() {
	n := flag.Int("n", 5000, "messages per raw and no-latency run")
	nLatency := flag.Int("n-latency", 2000, "messages in the run with Class latency")
	concurrency := flag.Int("concurrency", 32, "worker concurrency")
	latency := flag.Duration("latency", 50*time.Millisecond, "added latency of every Class call in the third run")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	only := flag.String("only", "", "run only one suite: worker, datahub or hubmis")
	rates := flag.String("rates", "50,500", "DataHub events per second of the latency runs, comma-separated")
	duration := flag.Duration("duration", 10*time.Second, "length of the DataHub latency run")
	pollInterval := flag.Duration("poll-interval", time.Second, "DataHub poll interval in the latency run")
	nEvents := flag.Int("n-events", 5000, "pending DataHub events in the throughput run")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var rateList []int
	for _, f := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			fmt.Fprintf(os.Stderr, "bench: -rates: %q is not a positive number\n", f)
			os.Exit(2)
		}
		rateList = append(rateList, r)
	}
	if err := run(suites{only: *only, n: *n, nLatency: *nLatency, concurrency: *concurrency, latency: *latency,
		rates: rateList, duration: *duration, pollInterval: *pollInterval, nEvents: *nEvents}); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

type suites struct {
	only                     string
	school                   school // of the HUBmis suite's snapshot; the reference school if zero
	n, nLatency, concurrency int
	latency                  time.Duration
	rates                    []int
	nEvents                  int
	duration, pollInterval   time.Duration
}

func run(o suites) error {
	n, nLatency, concurrency, latency := o.n, o.nLatency, o.concurrency, o.latency
	if o.school == (school{}) {
		o.school = referenceSchool
	}
	dir, err := os.MkdirTemp("", "rollcall-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	fmt.Printf("rollcall bench: %s/%s, %d CPUs (%s), Go %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), runtime.Version())
	rep := &report{}
	defer rep.print(os.Stdout)

	res, err := events.EnsureResources(ctx, js, events.StreamSettings{})
	if err != nil {
		return err
	}
	if o.only == "" || o.only == "worker" {
		if err := workerSuite(ctx, js, res, rep, n, nLatency, concurrency, latency); err != nil {
			return err
		}
	}
	if o.only == "" || o.only == "hubmis" {
		hubmisDiff(rep)
		if err := hubmisSnapshotCost(ctx, js, res, rep, o.school, concurrency, latency); err != nil {
			return err
		}
	}
	if o.only == "" || o.only == "datahub" {
		for _, rate := range o.rates {
			p50, p99, count, err := datahubLatency(ctx, js, res, rate, o.duration, o.pollInterval)
			if err != nil {
				return err
			}
			bound := o.pollInterval + 500*time.Millisecond
			fmt.Printf("%-58s p50 %s  p99 %s  (%d changes; aim p99 < %s)\n",
				fmt.Sprintf("DataHub event → applied, %d events/s, poll %s", rate, o.pollInterval),
				p50.Round(time.Millisecond), p99.Round(time.Millisecond), count, bound)
			rep.add(fmt.Sprintf("DataHub event → applied at %d events/s (poll %s)", rate, o.pollInterval),
				fmt.Sprintf("p50 %s, p99 %s", p50.Round(time.Millisecond), p99.Round(time.Millisecond)),
				fmt.Sprintf("p99 < poll + 500 ms = %s", bound), aim(p99 < bound))
		}
		mem := startMemPeak()
		syncMsgs, syncTook, evs, msgs, err := datahubThroughput(ctx, js, o.nEvents)
		if err != nil {
			return err
		}
		memText := mem.end()
		fmt.Printf("%-58s %9.0f msg/s  (%d messages in %s)\n", "DataHub first sync (5,000 students, 400 sections)",
			float64(syncMsgs)/syncTook.Seconds(), syncMsgs, syncTook.Round(time.Millisecond))
		fmt.Printf("%-58s %9.0f events/s, %.0f msg/s\n", fmt.Sprintf("DataHub poll of %d pending events (map + publish)", o.nEvents), evs, msgs)
		fmt.Printf("%-58s %s\n", "  memory of that poller work (with the simulator)", memText)
		rep.add("DataHub first sync, 5,000 students, 400 sections", fmt.Sprintf("%.0f msg/s", float64(syncMsgs)/syncTook.Seconds()), "", "")
		rep.add(fmt.Sprintf("DataHub poll of %d pending events", o.nEvents), fmt.Sprintf("%.0f events/s, %.0f msg/s", evs, msgs), "", "")
		rep.add("peak memory: DataHub poller (first sync + poll)", memText, "", "")
	}
	return nil
}

// throughput is a run's rate and the CPU time the whole process (worker,
// broker and simulator alike) spent per message.
type throughput struct {
	perSecond float64
	cpu       time.Duration
}

func (t throughput) String() string {
	return fmt.Sprintf("%.0f msg/s, %d µs CPU/msg", t.perSecond, t.cpu.Microseconds())
}

func workerSuite(ctx context.Context, js jetstream.JetStream, res *events.Resources, rep *report, n, nLatency, concurrency int, latency time.Duration) error {
	raw1, err := rawConsume(ctx, js, "RAW1", n, 1, nil)
	if err != nil {
		return err
	}
	raw32, err := rawConsume(ctx, js, "RAW32", n, concurrency, nil)
	if err != nil {
		return err
	}
	fmt.Printf("%-58s %s\n", "raw JetStream consume + double ack, 1 in flight", raw1)
	fmt.Printf("%-58s %s\n", fmt.Sprintf("raw JetStream consume + double ack, %d in flight", concurrency), raw32)
	floor, err := classFloor(ctx, js, n, concurrency)
	if err != nil {
		return err
	}
	fmt.Printf("%-58s %s\n", fmt.Sprintf("raw consume + one Class call + double ack, %d in flight", concurrency), floor)

	mem := startMemPeak()
	w0, calls0, err := workerRun(ctx, js, res, "nolatency", n, concurrency, 0)
	if err != nil {
		return err
	}
	memText := mem.end()
	fmt.Printf("%-58s %s  (%.0f%% of raw 1 in flight, %.0f%% of the Class-call floor, %.1f Class calls/msg)\n",
		fmt.Sprintf("worker → classtest, no latency, concurrency %d", concurrency), w0,
		100*w0.perSecond/raw1.perSecond, 100*w0.perSecond/floor.perSecond, calls0)
	fmt.Printf("%-58s %s\n", "  memory of that worker run (with broker and simulator)", memText)
	wl, callsL, err := workerRun(ctx, js, res, "latency", nLatency, concurrency, latency)
	if err != nil {
		return err
	}
	bound := float64(concurrency) / latency.Seconds() / callsL
	fmt.Printf("%-58s %9.0f msg/s  (%.0f%% of the %.0f msg/s bound = %d / %s / %.1f calls)\n",
		fmt.Sprintf("worker → classtest, %s latency, concurrency %d", latency, concurrency), wl.perSecond, 100*wl.perSecond/bound, bound, concurrency, latency, callsL)

	rep.add("raw JetStream consume + double ack, 1 in flight", raw1.String(), "", "")
	rep.add(fmt.Sprintf("raw JetStream consume + double ack, %d in flight", concurrency), raw32.String(), "", "")
	rep.add(fmt.Sprintf("raw consume + one Class call + double ack, %d in flight", concurrency), floor.String(),
		fmt.Sprintf("%.0f%% of raw 1 in flight: the most any worker that calls Class once per message reaches here", 100*floor.perSecond/raw1.perSecond), "")
	rep.add(fmt.Sprintf("worker, no Class latency, concurrency %d", concurrency), w0.String(),
		fmt.Sprintf("raw 1 in flight %.0f (%.0f%%), Class-call floor %.0f (%.0f%%); aim ≥ 50%% of raw 1", raw1.perSecond, 100*w0.perSecond/raw1.perSecond, floor.perSecond, 100*w0.perSecond/floor.perSecond),
		aim(w0.perSecond >= raw1.perSecond/2))
	rep.add(fmt.Sprintf("worker, %s Class latency, concurrency %d", latency, concurrency), fmt.Sprintf("%.0f msg/s", wl.perSecond),
		fmt.Sprintf("concurrency / latency = %.0f msg/s (%.0f%%); aim ≥ 90%%", bound, 100*wl.perSecond/bound), aim(wl.perSecond >= 0.9*bound))
	rep.add("peak memory: worker (no-latency run)", memText, "", "")
	return nil
}

// classFloor is raw consumption with one Class call per message, the class
// creation the worker makes, at the worker's concurrency: what a consumer
// that does nothing but that call reaches on this machine, with the
// simulator sharing its cores as in the worker's run.
func classFloor(ctx context.Context, js jetstream.JetStream, n, concurrency int) (throughput, error) {
	sim := classtest.New(classtest.Options{Seed: 1})
	defer sim.Close()
	sim.AddKey("bench-key")
	c, err := class.New(sim.URL(), "bench-key")
	if err != nil {
		return throughput{}, err
	}
	var seq atomic.Int64
	return rawConsume(ctx, js, "RAWCLASS", n, concurrency, func(ctx context.Context, _ jetstream.Msg) error {
		i := seq.Add(1)
		_, err := c.CreateClass(ctx, class.CreateClassRequest{Email: "host@bench.example.org", FirstName: "Host", LastName: "Teacher",
			Timezone: "Europe/London", ExtClassID: fmt.Sprintf("bench:floor:section:%d", i), ClassName: fmt.Sprintf("Class %d", i)})
		return err
	})
}

// rawConsume publishes n messages and times their consumption with a double
// ack each, inFlight at a time, after work (if not nil) on each.
func rawConsume(ctx context.Context, js jetstream.JetStream, name string, n, inFlight int, work func(context.Context, jetstream.Msg) error) (throughput, error) {
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage})
	if err != nil {
		return throughput{}, err
	}
	payload := make([]byte, 400)
	for i := range n {
		if _, err := js.PublishAsync(fmt.Sprintf("%s.%d", name, i%16), payload); err != nil {
			return throughput{}, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return throughput{}, fmt.Errorf("%s: publish did not complete", name)
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4 * inFlight})
	if err != nil {
		return throughput{}, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(max(inFlight*2, 64)))
	if err != nil {
		return throughput{}, err
	}
	defer it.Stop()
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), processCPU()
	msgs := make(chan jetstream.Msg)
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				if work != nil {
					if err := work(ctx, m); err != nil {
						failed.Add(1)
						continue
					}
				}
				if err := m.DoubleAck(ctx); err == nil {
					done.Add(1)
				}
			}
		}()
	}
	for range n {
		m, err := it.Next()
		if err != nil {
			close(msgs)
			return throughput{}, err
		}
		msgs <- m
	}
	close(msgs)
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	if f := failed.Load(); f > 0 {
		return throughput{}, fmt.Errorf("%s: %d of %d messages failed their work", name, f, n)
	}
	return throughput{perSecond: float64(done.Load()) / elapsed.Seconds(), cpu: cpu / time.Duration(n)}, nil
}

// workerRun publishes n class creations for one tenant and times the worker
// until every one is applied to a fresh simulator.
func workerRun(ctx context.Context, js jetstream.JetStream, res *events.Resources, tenant string, n, concurrency int, latency time.Duration) (rate throughput, callsPerMsg float64, err error) {
	sim := classtest.New(classtest.Options{Seed: 1})
	defer sim.Close()
	sim.AddKey("bench-key")
	if latency > 0 {
		sim.SetFaults(classtest.Faults{Latency: latency})
	}
	host := events.Person{ExtPersonID: "t1", Email: "host@bench.example.org", FirstName: "Host", LastName: "Teacher"}
	base := time.Now()
	for i := range n {
		m, err := events.NewMessage(tenant, events.OpUpsert, events.ClassState{
			ExtClassID: fmt.Sprintf("bench:%s:section:%d", tenant, i), Name: fmt.Sprintf("Class %d", i), Host: host,
		}, events.Version{Time: base}, events.Origin{Source: "bench", ID: "1"})
		if err != nil {
			return throughput{}, 0, err
		}
		m.ID = fmt.Sprintf("bench:%s:%d", tenant, i)
		msg, err := events.Encode(m)
		if err != nil {
			return throughput{}, 0, err
		}
		if _, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(m.ID)); err != nil {
			return throughput{}, 0, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return throughput{}, 0, fmt.Errorf("publish did not complete")
	}
	run, err := applyAll(ctx, js, res, tenant, sim, n, concurrency)
	if err != nil {
		return throughput{}, 0, err
	}
	if run.results[handlers.ResultApplied] != n {
		return throughput{}, 0, fmt.Errorf("%s: %d of %d messages applied: %v", tenant, run.results[handlers.ResultApplied], n, run.results)
	}
	return run.throughput, run.callsPerMsg, nil
}

// workerRunResult is what applyAll measured.
type workerRunResult struct {
	throughput
	callsPerMsg float64
	// results counts the deliveries by result, retries included.
	results map[handlers.Result]int
}

// applyAll runs a worker for tenant's messages, already in the stream,
// against sim, and times it until n messages ended (applied, skipped or
// dead-lettered).
func applyAll(ctx context.Context, js jetstream.JetStream, res *events.Resources, tenant string, sim *classtest.Server, n, concurrency int) (workerRunResult, error) {
	c, err := class.New(sim.URL(), "bench-key")
	if err != nil {
		return workerRunResult{}, err
	}
	var mu sync.Mutex
	results := map[handlers.Result]int{}
	ended := 0
	allDone := make(chan struct{})
	w, err := handlers.New(handlers.Config{
		JS: js, Resources: res, Concurrency: concurrency,
		Tenants: []handlers.Tenant{{ID: tenant, Class: c, Timezone: "Europe/London"}},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnOutcome: func(o handlers.Outcome) {
			mu.Lock()
			defer mu.Unlock()
			results[o.Result]++
			switch o.Result {
			case handlers.ResultApplied, handlers.ResultSkipped, handlers.ResultDead:
				if ended++; ended == n {
					close(allDone)
				}
			}
		},
	})
	if err != nil {
		return workerRunResult{}, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	start, cpu0 := time.Now(), processCPU()
	go func() { stopped <- w.Run(runCtx) }()
	select {
	case <-allDone:
	case <-time.After(10 * time.Minute):
		cancel()
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		return workerRunResult{}, fmt.Errorf("%s: %d of %d messages ended within 10 minutes: %v", tenant, ended, n, results)
	}
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	cancel()
	if err := <-stopped; err != nil {
		return workerRunResult{}, err
	}
	mu.Lock()
	defer mu.Unlock()
	return workerRunResult{
		throughput:  throughput{perSecond: float64(n) / elapsed.Seconds(), cpu: cpu / time.Duration(n)},
		callsPerMsg: float64(sim.Stats().Requests) / float64(n),
		results:     maps.Clone(results),
	}, nil
}
