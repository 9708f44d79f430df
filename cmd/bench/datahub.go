package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
)

// datahubLatency runs the whole pipeline (DataHub simulator, source, worker,
// Class simulator) and measures event-to-applied latency: from an event's
// time at DataHub to Class confirming the change, for events arriving at
// rate per second during d, polled every pollInterval.
func datahubLatency(ctx context.Context, js jetstream.JetStream, res *events.Resources, rate int, d, pollInterval time.Duration) (p50, p99 time.Duration, n int, err error) {
	tenant := fmt.Sprintf("latency-%d", rate)
	hub := datahubtest.New(datahubtest.Options{Seed: 7})
	defer hub.Close()
	hub.Populate(30, 600, 60, 10)
	cls := classtest.New(classtest.Options{Seed: 8})
	defer cls.Close()
	cls.AddKey("k")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	stores, err := datahubsource.EnsureStores(ctx, js, 1)
	if err != nil {
		return 0, 0, 0, err
	}
	client, err := datahub.New(datahub.Config{BaseURL: hub.URL(), ClientID: datahubtest.ClientIDDefault, ClientSecret: datahubtest.ClientSecretDefault})
	if err != nil {
		return 0, 0, 0, err
	}
	src := datahubsource.New(datahubsource.Config{Tenant: tenant, Client: client, JS: js, Stores: stores, PollInterval: pollInterval, Logger: quiet})
	cc, err := class.New(cls.URL(), "k")
	if err != nil {
		return 0, 0, 0, err
	}
	var mu sync.Mutex
	var lat []time.Duration
	measuring := time.Time{}
	w, err := handlers.New(handlers.Config{JS: js, Resources: res, Logger: quiet,
		Tenants: []handlers.Tenant{{ID: tenant, Class: cc, Timezone: "America/Chicago"}},
		OnOutcome: func(o handlers.Outcome) {
			if o.Result != handlers.ResultApplied {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !measuring.IsZero() && o.Version.Time.After(measuring) {
				lat = append(lat, time.Since(o.Version.Time))
			}
		}})
	if err != nil {
		return 0, 0, 0, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = w.Run(runCtx) }()
	go func() { defer wg.Done(); _ = src.Run(runCtx) }()
	defer wg.Wait()
	defer cancel()

	// Wait for the first sync to be applied before measuring.
	for {
		if c, _, _ := datahubsource.ReadCursor(ctx, stores.Cursors, tenant); c.Updated.After(time.Time{}) && len(cls.State().Classes) == 60 {
			break
		}
		time.Sleep(50 * time.Millisecond) // a setup wait in a benchmark, not a test
	}
	mu.Lock()
	measuring = time.Now()
	mu.Unlock()
	rng := rand.New(rand.NewPCG(1, 2))
	sections := hub.Sections()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	sent := 0
	for end := time.Now().Add(d); time.Now().Before(end); sent++ {
		<-tick.C
		s := sections[rng.IntN(len(sections))]
		hub.RenameStudent(s.Students[rng.IntN(len(s.Students))], fmt.Sprintf("Name%d", sent), "Bench")
	}
	// Let the last poll and its messages land.
	deadline := time.Now().Add(pollInterval + 10*time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := len(lat)
		mu.Unlock()
		if got >= sent { // every rename touches at least one enrollment
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		return 0, 0, 0, fmt.Errorf("no change applied")
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], len(lat), nil
}

// datahubThroughput measures the source alone: a first sync of a large
// district, then one poll over many pending events, with no upstream latency.
func datahubThroughput(ctx context.Context, js jetstream.JetStream, nEvents int) (syncMsgs int64, syncTook time.Duration, evPerSec, msgPerSec float64, err error) {
	const tenant = "throughput"
	hub := datahubtest.New(datahubtest.Options{Seed: 9})
	defer hub.Close()
	hub.Populate(200, 5000, 400, 25)
	stores, err := datahubsource.EnsureStores(ctx, js, 1)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	client, err := datahub.New(datahub.Config{BaseURL: hub.URL(), ClientID: datahubtest.ClientIDDefault, ClientSecret: datahubtest.ClientSecretDefault, PageLimit: 1000})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	src := datahubsource.New(datahubsource.Config{Tenant: tenant, Client: client, JS: js, Stores: stores,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	start := time.Now()
	if err := src.PollOnce(ctx); err != nil {
		return 0, 0, 0, 0, err
	}
	syncTook = time.Since(start)
	syncMsgs = src.Stats.MessagesPublished.Load()
	rng := rand.New(rand.NewPCG(3, 4))
	students := hub.Students()
	for i := range nEvents {
		hub.RenameStudent(students[rng.IntN(len(students))].ID, fmt.Sprintf("N%d", i), "Bench")
	}
	start = time.Now()
	if err := src.PollOnce(ctx); err != nil {
		return 0, 0, 0, 0, err
	}
	took := time.Since(start).Seconds()
	msgs := src.Stats.MessagesPublished.Load() - syncMsgs
	return syncMsgs, syncTook, float64(src.Stats.EventsPolled.Load()) / took, float64(msgs) / took, nil
}
