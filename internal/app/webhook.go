package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rollcall/rollcall/internal/webhook"
)

func startWebhook(ctx context.Context, opts Options, hooks []webhook.Tenant, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", opts.WebhookListen)
	if err != nil {
		return nil, fmt.Errorf("-webhook-listen: %w", err)
	}
	srv := &http.Server{Handler: webhook.NewHandler(hooks, log), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("webhook listener stopped", slog.Any("error", err))
		}
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	log.Info("DataHub webhook listening", slog.String("addr", ln.Addr().String()), slog.Int("tenants", len(hooks)))
	if opts.WebhookReady != nil {
		opts.WebhookReady(ln.Addr().String())
	}
	return srv, nil
}
