// Command worker applies the change messages of its tenants, read from the
// PROVISION stream, to each tenant's Class.
//
//	worker -config /etc/rollcall/config.yaml
//
// The configuration path can also come from PROVISION_CONFIG. SIGINT or
// SIGTERM lets the messages in flight finish, then exits. /healthz, /readyz
// and /metrics are served on admin.listen (default 127.0.0.1:9090).
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
	"github.com/rollcall/rollcall/internal/startup"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	cfg, log, exit, ok := startup.Load("worker", flag.NewFlagSet("worker", flag.ContinueOnError), args, stderr)
	if !ok {
		return exit
	}
	if cfg.Admin.Listen == "" {
		cfg.Admin.Listen = app.WorkerAdminDefault
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
	return app.RunWorker(ctx, cfg, app.Options{Logger: log})
}
