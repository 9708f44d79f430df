package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rollcall/rollcall/internal/admin"
	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/telemetry"
)

// RunWorker applies the change messages of the configured tenants to their
// Class until ctx ends, then lets the messages in flight finish.
func RunWorker(ctx context.Context, cfg *config.Config, opts Options) error {
	b, err := start(ctx, cfg, &opts, "rollcall-worker")
	if err != nil {
		return err
	}
	defer b.close()
	tp := b.tel.TracerProvider()
	m := b.metrics
	wcfg := handlers.Config{
		JS:          b.js,
		Resources:   b.res,
		Concurrency: cfg.Worker.Concurrency,
		AckWait:     cfg.Worker.AckWait,
		Retry: handlers.RetryPolicy{
			MaxAttempts:    cfg.Worker.MaxAttempts,
			MaxAge:         cfg.Worker.MaxAge,
			BackoffInitial: cfg.Worker.BackoffInitial,
			BackoffMax:     cfg.Worker.BackoffMax,
			ConflictGrace:  cfg.Worker.ConflictGrace,
		},
		AuthProbeInterval: cfg.Worker.AuthProbeInterval,
		Logger:            b.log,
		HolderID:          opts.Holder,
		TracerProvider:    tp,
		OnOutcome: func(o handlers.Outcome) {
			ctx := context.Background()
			m.MessageProcessed(ctx, o.Tenant, string(o.Kind), string(o.Op), telemetry.Result(o.Result))
			if o.Result == handlers.ResultApplied && !o.Replay && !o.Observed.IsZero() {
				m.ChangeApplied(ctx, o.Tenant, string(o.Kind), time.Since(o.Observed))
			}
			if opts.OnOutcome != nil {
				opts.OnOutcome(o)
			}
		},
	}
	for i, t := range cfg.Tenants {
		wrap := func(rt http.RoundTripper) http.RoundTripper { return classMetrics{next: rt, tenant: t.ID, metrics: m} }
		c, err := class.New(t.Class.BaseURL, t.Class.APIKey.Reveal(),
			class.WithHTTPClient(httpClient(tp, class.TimeoutDefault, wrap)))
		if err != nil {
			return fmt.Errorf("tenants[%d].class: %w", i, err)
		}
		wcfg.Tenants = append(wcfg.Tenants, handlers.Tenant{ID: t.ID, Class: c, Timezone: t.Class.Timezone})
	}
	w, err := handlers.New(wcfg)
	if err != nil {
		return err
	}
	if err := observeWorker(b, cfg, w); err != nil {
		return err
	}
	// A tenant whose Class key is refused is reported here (as the design
	// asks), in the logs and by rollcall_tenant_paused; its messages wait.
	keys := admin.Func("class_keys", func(context.Context) error {
		var refused []string
		for _, t := range cfg.Tenants {
			if w.PauseCause(t.ID) == handlers.PauseAuth {
				refused = append(refused, t.ID)
			}
		}
		if len(refused) > 0 {
			return fmt.Errorf("Class refuses the API key of tenant(s) %s; their messages wait", strings.Join(refused, ", "))
		}
		return nil
	})
	if err := b.serveAdmin(ctx, cfg, &opts, keys); err != nil {
		return err
	}
	b.log.Info("worker started", slog.Int("tenants", len(wcfg.Tenants)), slog.Int("concurrency", cfg.Worker.Concurrency))
	return w.Run(ctx)
}

// observeWorker reports, at each scrape, the messages pending per tenant
// and which tenants are paused and why.
func observeWorker(b *base, cfg *config.Config, w *handlers.Worker) error {
	if _, err := b.metrics.ObserveConsumerPending(func(ctx context.Context) map[string]int64 {
		out := map[string]int64{}
		for _, t := range cfg.Tenants {
			c, err := b.res.Stream.Consumer(ctx, events.WorkerConsumerName(t.ID))
			if err != nil {
				continue
			}
			if info, err := c.Info(ctx); err == nil {
				out[t.ID] = int64(info.NumPending) + int64(info.NumAckPending)
			}
		}
		return out
	}); err != nil {
		return err
	}
	_, err := b.metrics.ObserveTenantsPaused(func(context.Context) map[string]telemetry.PauseReason {
		out := map[string]telemetry.PauseReason{}
		for _, t := range cfg.Tenants {
			switch w.PauseCause(t.ID) {
			case handlers.PauseAuth:
				out[t.ID] = telemetry.PauseAuth
			case handlers.PauseOperator:
				out[t.ID] = telemetry.PauseOperator
			}
		}
		return out
	})
	return err
}
