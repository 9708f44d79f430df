package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSConnected is ready while nc is connected. During a reconnect nats.go
// buffers publishes and the process is alive (/healthz) but not ready: the
// poller cannot have its publishes acknowledged and the worker receives
// nothing.
func NATSConnected(nc *nats.Conn) Check {
	return Func("nats", func(context.Context) error {
		if st := nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", st)
		}
		return nil
	})
}

// StreamsPresent is ready when every named JetStream stream exists and
// answers, which also proves JetStream itself is up (a server restarted
// without its store would fail here, not on the first publish).
func StreamsPresent(js jetstream.JetStream, names ...string) Check {
	return Func("streams", func(ctx context.Context) error {
		// A request over a connection that is reconnecting waits for the
		// whole deadline; say why at once instead.
		if st := js.Conn().Status(); st != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", st)
		}
		var errs []error
		for _, name := range names {
			if _, err := js.Stream(ctx, name); err != nil {
				errs = append(errs, fmt.Errorf("stream %s: %w", name, err))
			}
		}
		return errors.Join(errs...)
	})
}
