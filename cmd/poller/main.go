// Command poller reads each tenant's source system and publishes the change
// messages that keep Class in step:
//
//	poller -config /etc/rollcall/config.yaml [-webhook-listen 127.0.0.1:8081]
//
// Per tenant exactly one poller is active (a lease in JetStream KV); run a
// second replica as a hot standby. DataHub tenants follow the event feed;
// HUBmis tenants are snapshotted every snapshot_interval within the rate limit;
// -webhook-listen turns on POST /webhooks/datahub/<tenant>, whose signed
// notifications trigger an immediate poll. /healthz, /readyz and /metrics are
// served on admin.listen (default 127.0.0.1:9091).
package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/startup"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("poller", flag.ContinueOnError)
	webhookListen := fs.String("webhook-listen", "", "address of the DataHub webhook endpoint (off when empty)")
	cfg, log, exit, ok := startup.Load("poller", fs, args, stderr)
	if !ok {
		return exit
	}
	if cfg.Admin.Listen == "" {
		cfg.Admin.Listen = app.PollerAdminDefault
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
	return app.RunPoller(ctx, cfg, app.Options{
		Logger: log, Holder: opts.holder, WebhookListen: opts.webhookListen,
		WebhookReady: opts.webhookReady, OnDataHubSource: opts.onSource,
	})
}
