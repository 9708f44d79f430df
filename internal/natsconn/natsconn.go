// Package natsconn connects a binary to NATS as the configuration says.
package natsconn

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"

	"github.com/rollcall/rollcall/internal/config"
)

// Connect connects with the configured credentials and TLS. The connection
// reconnects forever: a broker restart must pause the binaries, not end them.
func Connect(cfg config.NATS, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("disconnected from NATS", slog.Any("error", err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", slog.String("server", nc.ConnectedServerId()))
		}),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password.Reveal()))
	}
	if cfg.TLS != nil {
		if cfg.TLS.CAFile != "" {
			opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
		}
		if cfg.TLS.CertFile != "" {
			opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
		}
		opts = append(opts, nats.Secure())
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS (nats.url): %w", err)
	}
	return nc, nil
}

// ConnectRetrying is [Connect] for a long-running binary: a broker that is
// not up yet, or restarting, when the binary starts is waited for, with
// exponential backoff and a warning per attempt, until ctx ends. Refused
// credentials or an untrusted certificate end it at once: waiting would not
// mend them.
func ConnectRetrying(ctx context.Context, cfg config.NATS, name string, log *slog.Logger) (*nats.Conn, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 250*time.Millisecond, 5*time.Second, 0
	return backoff.RetryNotifyWithData(func() (*nats.Conn, error) {
		nc, err := Connect(cfg, name, log)
		if err != nil && permanent(err) {
			return nil, backoff.Permanent(err)
		}
		return nc, err
	}, backoff.WithContext(b, ctx), func(err error, next time.Duration) {
		log.Warn("cannot connect to NATS yet; retrying", slog.Any("error", err), slog.Duration("in", next))
	})
}

// permanent tells a connection error that retrying cannot mend.
func permanent(err error) bool {
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &host)
}
