package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/admin"
	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/clients/hubmis"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/hubmissource"
	"github.com/rollcall/rollcall/internal/lease"
	"github.com/rollcall/rollcall/internal/telemetry"
	"github.com/rollcall/rollcall/internal/tenantctl"
	"github.com/rollcall/rollcall/internal/valve"
	"github.com/rollcall/rollcall/internal/webhook"
)

// RunPoller reads each tenant's source and publishes its changes until ctx
// ends. Per tenant one poller is active (a lease in JetStream KV); another
// replica is a hot standby. An operator's pause stops a tenant's polling
// while the lease stays; the cursor waits where it was.
func RunPoller(ctx context.Context, cfg *config.Config, opts Options) error {
	b, err := start(ctx, cfg, &opts, "rollcall-poller")
	if err != nil {
		return err
	}
	defer b.close()
	log, js := b.log, b.js
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stores, err := datahubsource.EnsureStores(setupCtx, js, cfg.NATS.StreamReplicas)
	if err != nil {
		return err
	}
	leases, err := lease.EnsureBucket(setupCtx, js, cfg.NATS.StreamReplicas)
	if err != nil {
		return err
	}
	snapshots, err := hubmissource.EnsureSnapshotStore(setupCtx, js, cfg.NATS.StreamReplicas)
	if err != nil {
		return err
	}
	controls, err := tenantctl.Watch(ctx, b.res.Tenants, log)
	if err != nil {
		return err
	}
	holder := opts.holder()
	tp := b.tel.TracerProvider()

	var wg sync.WaitGroup
	// A tenant's hold may end with an error more than once (after every
	// handover of the HUBmis egress lease), so the errors are collected, not
	// sent to a channel of fixed size.
	var errsMu sync.Mutex
	var errs []error
	fail := func(err error) {
		errsMu.Lock()
		defer errsMu.Unlock()
		errs = append(errs, err)
	}
	// hold runs a tenant under its lease, in wg, until ctx ends.
	hold := func(ctx context.Context, wg *sync.WaitGroup, t *config.Tenant, l *lease.Lease, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.Hold(ctx, func(ctx context.Context) error { return controls.RunWhileActive(ctx, t.ID, run) })
			if err != nil {
				fail(fmt.Errorf("tenant %s: %w", t.ID, err))
			}
		}()
	}
	newLease := func(name string) (*lease.Lease, error) {
		return lease.New(lease.Config{KV: leases, Name: name, Holder: holder, TTL: cfg.LeaseTTL, Logger: log.With(slog.String("lease", name))})
	}
	type hubmisRun struct {
		t     *config.Tenant
		lease *lease.Lease
		run   func(context.Context) error
	}
	var hubmisRuns []hubmisRun
	var hooks []webhook.Tenant
	datahubSources := map[string]*datahubsource.Source{}
	for i := range cfg.Tenants {
		t := &cfg.Tenants[i]
		if t.HUBmis != nil {
			run, err := hubmisTenant(t, js, snapshots, stores.Held, b, log, opts.HUBmisTimeScale)
			if err != nil {
				return fmt.Errorf("tenants[%d].hubmis: %w", i, err)
			}
			l, err := newLease("hubmis." + t.ID)
			if err != nil {
				return err
			}
			hubmisRuns = append(hubmisRuns, hubmisRun{t: t, lease: l, run: run})
			continue
		}
		client, err := datahub.New(datahub.Config{
			BaseURL: t.DataHub.BaseURL, ClientID: t.DataHub.ClientID, ClientSecret: t.DataHub.ClientSecret.Reveal(),
			TokenPath: t.DataHub.TokenPath, HTTPClient: httpClient(tp, datahub.TimeoutDefault, nil),
			District: t.DataHub.DistrictID,
		})
		if err != nil {
			return fmt.Errorf("tenants[%d].datahub: %w", i, err)
		}
		trigger := webhook.NewCoalescer()
		if secret := t.DataHub.WebhookSecret.Reveal(); secret != "" {
			hooks = append(hooks, webhook.Tenant{ID: t.ID, Secret: []byte(secret), Trigger: trigger.Trigger})
		}
		src := datahubsource.New(datahubsource.Config{
			Tenant: t.ID, Client: client, JS: js, Stores: stores,
			PollInterval: t.DataHub.PollInterval, DeletionPolicy: string(t.DeletionPolicy),
			GracePeriod: t.GracePeriod, MaxDeleteShare: t.MaxDeleteShare,
			Trigger: trigger.C(), Logger: log, TracerProvider: tp, Metrics: b.metrics,
		})
		if opts.OnDataHubSource != nil {
			opts.OnDataHubSource(t.ID, src)
		}
		l, err := newLease("datahub." + t.ID)
		if err != nil {
			return err
		}
		hold(ctx, &wg, t, l, src.Run)
		datahubSources[t.ID] = src
	}
	if len(hubmisRuns) > 0 {
		// HUBmis counts requests per address, and the client paces only its
		// own process's: so of the pollers behind one address (one
		// hubmis_egress name) only the holder of this lease polls HUBmis,
		// every HUBmis tenant of it. The tenants keep their own leases, so
		// at a handover the new holder starts a tenant only once the old one
		// has let it go.
		egress, err := newLease(lease.HUBmisEgressName(cfg.HUBmisEgress))
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := egress.Hold(ctx, func(ctx context.Context) error {
				var tenants sync.WaitGroup
				for _, r := range hubmisRuns {
					hold(ctx, &tenants, r.t, r.lease, r.run)
				}
				tenants.Wait()
				return nil
			})
			if err != nil {
				fail(fmt.Errorf("HUBmis egress %s: %w", cfg.HUBmisEgress, err))
			}
		}()
		var ids []string
		for _, r := range hubmisRuns {
			ids = append(ids, r.t.ID)
		}
		wg.Go(func() { warnUnpolledHUBmis(ctx, leases, egress, cfg.HUBmisEgress, ids, 2*cfg.LeaseTTL, log) })
	}
	if err := observePoller(b, cfg, stores, datahubSources); err != nil {
		return err
	}
	if opts.WebhookListen != "" {
		srv, err := startWebhook(ctx, opts, hooks, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	// Lease state is known when the lease bucket answers.
	if err := b.serveAdmin(ctx, cfg, &opts, admin.Func("leases", func(ctx context.Context) error {
		_, err := leases.Status(ctx)
		return err
	})); err != nil {
		return err
	}
	log.Info("poller started", slog.Int("tenants", len(cfg.Tenants)), slog.String("holder", holder))
	wg.Wait()
	errsMu.Lock()
	defer errsMu.Unlock()
	return errors.Join(errs...)
}

// warnUnpolledHUBmis warns, while this poller is a standby for the HUBmis
// egress, of its HUBmis tenants that nobody polls: the egress holder does not
// list them (the pollers sharing hubmis_egress were given different tenants),
// so they wait until this poller takes the egress over. A tenant must be
// found unpolled at two checks in a row, so that a holder still starting its
// tenants is not taken for one that lacks them; each is told once until it
// is polled again.
func warnUnpolledHUBmis(ctx context.Context, leases jetstream.KeyValue, egress *lease.Lease, name string, tenants []string, every time.Duration, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	seen, told := map[string]bool{}, map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		holder, ok, err := lease.Read(ctx, leases, lease.HUBmisEgressName(name))
		if err != nil || !ok || egress.Held() || time.Now().After(holder.Until) {
			clear(seen)
			continue
		}
		for _, id := range tenants {
			rec, ok, err := lease.Read(ctx, leases, "hubmis."+id)
			unpolled := err == nil && (!ok || time.Now().After(rec.Until))
			switch {
			case !unpolled:
				seen[id], told[id] = false, false
			case !seen[id]:
				seen[id] = true
			case !told[id]:
				told[id] = true
				log.Warn("HUBmis tenant not polled: the poller holding the HUBmis egress does not list it; pollers sharing hubmis_egress must list the same HUBmis tenants",
					slog.String("tenant", id), slog.String("hubmis_egress", name), slog.String("egress_holder", holder.Holder))
			}
		}
	}
}

// observePoller reports the held change sets, the DataHub cursors' ages and
// the DataHub tenants whose source refuses them, at each scrape.
func observePoller(b *base, cfg *config.Config, stores *datahubsource.Stores, sources map[string]*datahubsource.Source) error {
	if _, err := b.metrics.ObserveTenantsPaused(func(context.Context) map[string]telemetry.PauseReason {
		out := map[string]telemetry.PauseReason{}
		for id, src := range sources {
			if src.Refusal() != "" {
				out[id] = telemetry.PauseSource
			}
		}
		return out
	}); err != nil {
		return err
	}
	var ids []string
	for _, t := range cfg.Tenants {
		ids = append(ids, t.ID)
	}
	if _, err := b.metrics.ObserveValveHeldSets(func(ctx context.Context) map[string]int64 {
		out := map[string]int64{}
		for _, id := range ids {
			if sets, err := stores.Held.List(ctx, id); err == nil {
				out[id] = int64(len(sets))
			}
		}
		return out
	}); err != nil {
		return err
	}
	_, err := b.metrics.ObserveDataHubCursorAge(func(ctx context.Context) map[string]time.Duration {
		out := map[string]time.Duration{}
		for id := range sources {
			c, ok, err := datahubsource.ReadCursor(ctx, stores.Cursors, id)
			if err == nil && ok && !c.LastEventTime.IsZero() {
				out[id] = time.Since(c.LastEventTime)
			}
		}
		return out
	})
	return err
}

// hubmisTenant builds the snapshot source of a HUBmis tenant. Every HUBmis
// client of the process shares one per-IP limiter: the 12 requests a minute
// are per egress address, whatever the tenant.
//
// With a time scale above 1 (a fast-forwarded simulator) a cycle's budget is
// what the scaled interval refills: the interval counted in server seconds.
func hubmisTenant(t *config.Tenant, js jetstream.JetStream, snapshots jetstream.ObjectStore, held *valve.Store, b *base, log *slog.Logger, timeScale float64) (func(context.Context) error, error) {
	h := t.HUBmis
	tp := b.tel.TracerProvider()
	scale := max(timeScale, 1)
	client, err := hubmis.New(hubmis.Config{
		BaseURL: h.BaseURL, ClientID: h.ClientID, ClientSecret: h.ClientSecret.Reveal(), Realm: h.Realm,
		AcademicYearID: h.AcademicYearID, PageSize: h.PageSize, HTTPClient: httpClient(tp, hubmis.TimeoutDefault, nil),
		TimeScale: scale,
	})
	if err != nil {
		return nil, err
	}
	src := hubmissource.New(hubmissource.Config{
		Tenant: t.ID, API: hubmissource.ClientAPI{C: client}, JS: js, Snapshots: snapshots, Held: held,
		Timezone: t.Class.Timezone, SnapshotInterval: h.SnapshotInterval, LessonWindow: h.LessonWindow,
		Planner: hubmissource.SnapshotPlanner{
			RefreshEveryCycles: h.RefreshEveryCycles,
			Budget:             hubmissource.CycleBudget(time.Duration(float64(h.SnapshotInterval)*scale), h.RequestBudget),
		},
		DeletionPolicy: string(t.DeletionPolicy), GraceSnapshots: t.GraceSnapshots, MaxDeleteShare: t.MaxDeleteShare,
		Logger: log, TracerProvider: tp, Metrics: b.metrics,
	})
	return src.Run, nil
}
