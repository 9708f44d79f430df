// Command poller reads each tenant's source system and publishes the change
// messages that keep Class in step:
//
//	poller -config /etc/rollcall/config.yaml [-webhook-listen 127.0.0.1:8081]
//
// Per tenant exactly one poller is active (a lease in JetStream KV); run a
// second replica as a hot standby. DataHub tenants follow the event feed;
// HUBmis tenants are snapshotted every snapshot_interval within the rate limit;
// -webhook-listen turns on POST /webhooks/datahub/<tenant>, whose signed
// notifications trigger an immediate poll.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/clients/hubmis"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/hubmissource"
	"github.com/rollcall/rollcall/internal/lease"
	"github.com/rollcall/rollcall/internal/natsconn"
	"github.com/rollcall/rollcall/internal/startup"
	"github.com/rollcall/rollcall/internal/tenantctl"
	"github.com/rollcall/rollcall/internal/valve"
	"github.com/rollcall/rollcall/internal/webhook"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("poller", flag.ContinueOnError)
	webhookListen := fs.String("webhook-listen", "", "address of the DataHub webhook endpoint (off when empty)")
	cfg, log, ok := startup.Load("poller", fs, args, stderr)
	if !ok {
		return startup.ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, options{webhookListen: *webhookListen}, log); err != nil {
		log.Error("poller stopped", slog.Any("error", err))
		return 1
	}
	return 0
}

type options struct {
	webhookListen string
	holder        string
	// webhookReady, if set, receives the webhook's address once it listens.
	webhookReady func(addr string)
	// onSource, if set, receives each source as it starts (tests).
	onSource func(tenant string, s *datahubsource.Source)
}

func serve(ctx context.Context, cfg *config.Config, opts options, log *slog.Logger) error {
	nc, err := natsconn.Connect(cfg.NATS, "rollcall-poller", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := events.EnsureResources(setupCtx, js, events.StreamSettings{
		MaxAge: cfg.NATS.StreamMaxAge, DuplicateWindow: cfg.NATS.DuplicateWindow, Replicas: cfg.NATS.StreamReplicas,
	})
	if err != nil {
		return err
	}
	// An operator's pause (provisionctl pause) stops a tenant's polling
	// while the lease stays here; the cursor waits where it was.
	controls, err := tenantctl.Watch(ctx, res.Tenants, log)
	if err != nil {
		return err
	}
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
	held := stores.Held
	holder := opts.holder
	if holder == "" {
		host, _ := os.Hostname()
		holder = host + "-" + strconv.Itoa(os.Getpid())
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(cfg.Tenants)+1)
	var hooks []webhook.Tenant
	for i := range cfg.Tenants {
		t := &cfg.Tenants[i]
		if t.HUBmis != nil {
			run, err := hubmisTenant(t, js, snapshots, held, log)
			if err != nil {
				return fmt.Errorf("tenants[%d].hubmis: %w", i, err)
			}
			l, err := lease.New(lease.Config{KV: leases, Name: "hubmis." + t.ID, Holder: holder, TTL: cfg.LeaseTTL, Logger: log})
			if err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := l.Hold(ctx, func(ctx context.Context) error { return controls.RunWhileActive(ctx, t.ID, run) }); err != nil {
					errs <- fmt.Errorf("tenant %s: %w", t.ID, err)
				}
			}()
			continue
		}
		client, err := datahub.New(datahub.Config{
			BaseURL: t.DataHub.BaseURL, ClientID: t.DataHub.ClientID, ClientSecret: t.DataHub.ClientSecret.Reveal(),
			TokenPath: t.DataHub.TokenPath,
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
			Trigger: trigger.C(), Logger: log,
		})
		if opts.onSource != nil {
			opts.onSource(t.ID, src)
		}
		l, err := lease.New(lease.Config{KV: leases, Name: "datahub." + t.ID, Holder: holder, TTL: cfg.LeaseTTL, Logger: log})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Hold(ctx, func(ctx context.Context) error { return controls.RunWhileActive(ctx, t.ID, src.Run) }); err != nil {
				errs <- fmt.Errorf("tenant %s: %w", t.ID, err)
			}
		}()
	}
	if opts.webhookListen != "" {
		srv, err := startWebhook(ctx, opts, hooks, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	log.Info("poller started", slog.Int("tenants", len(cfg.Tenants)), slog.String("holder", holder))
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// hubmisTenant builds the snapshot source of a HUBmis tenant. Every HUBmis
// client of the process shares one per-IP limiter: the 12 requests a minute
// are per egress address, whatever the tenant.
func hubmisTenant(t *config.Tenant, js jetstream.JetStream, snapshots jetstream.ObjectStore, held *valve.Store, log *slog.Logger) (func(context.Context) error, error) {
	h := t.HUBmis
	client, err := hubmis.New(hubmis.Config{
		BaseURL: h.BaseURL, ClientID: h.ClientID, ClientSecret: h.ClientSecret.Reveal(), Realm: h.Realm,
		AcademicYearID: h.AcademicYearID, PageSize: h.PageSize,
	})
	if err != nil {
		return nil, err
	}
	src := hubmissource.New(hubmissource.Config{
		Tenant: t.ID, API: hubmissource.ClientAPI{C: client}, JS: js, Snapshots: snapshots, Held: held,
		Timezone: t.Class.Timezone, SnapshotInterval: h.SnapshotInterval, LessonWindow: h.LessonWindow,
		Planner: hubmissource.SnapshotPlanner{
			RefreshEveryCycles: h.RefreshEveryCycles,
			Budget:             hubmissource.CycleBudget(h.SnapshotInterval, h.RequestBudget),
		},
		DeletionPolicy: string(t.DeletionPolicy), GraceSnapshots: t.GraceSnapshots, MaxDeleteShare: t.MaxDeleteShare,
		Logger: log,
	})
	return src.Run, nil
}
