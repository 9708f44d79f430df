// Command worker applies the change messages of its tenants, read from the
// PROVISION stream, to each tenant's Class.
//
//	worker -config /etc/rollcall/config.yaml
//
// The configuration path can also come from PROVISION_CONFIG. SIGINT or
// SIGTERM lets the messages in flight finish, then exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/natsconn"
	"github.com/rollcall/rollcall/internal/startup"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	cfg, log, ok := startup.Load("worker", flag.NewFlagSet("worker", flag.ContinueOnError), args, stderr)
	if !ok {
		return startup.ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("worker stopped", slog.Any("error", err))
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	nc, err := natsconn.Connect(cfg.NATS, "rollcall-worker", log)
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
		MaxAge:          cfg.NATS.StreamMaxAge,
		DuplicateWindow: cfg.NATS.DuplicateWindow,
		Replicas:        cfg.NATS.StreamReplicas,
	})
	if err != nil {
		return err
	}
	wcfg := handlers.Config{
		JS:          js,
		Resources:   res,
		Concurrency: cfg.Worker.Concurrency,
		AckWait:     cfg.Worker.AckWait,
		Retry: handlers.RetryPolicy{
			MaxAttempts:    cfg.Worker.MaxAttempts,
			MaxAge:         cfg.Worker.MaxAge,
			BackoffInitial: cfg.Worker.BackoffInitial,
			BackoffMax:     cfg.Worker.BackoffMax,
		},
		AuthProbeInterval: cfg.Worker.AuthProbeInterval,
		Logger:            log,
	}
	for i, t := range cfg.Tenants {
		c, err := class.New(t.Class.BaseURL, t.Class.APIKey.Reveal())
		if err != nil {
			return fmt.Errorf("tenants[%d].class: %w", i, err)
		}
		wcfg.Tenants = append(wcfg.Tenants, handlers.Tenant{ID: t.ID, Class: c, Timezone: t.Class.Timezone})
	}
	w, err := handlers.New(wcfg)
	if err != nil {
		return err
	}
	log.Info("worker started", slog.Int("tenants", len(wcfg.Tenants)), slog.Int("concurrency", cfg.Worker.Concurrency))
	return w.Run(ctx)
}
