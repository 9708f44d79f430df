package natsconn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/natsconn"
	"github.com/rollcall/rollcall/internal/natsembed"
)

// warnings counts the records at Warn and above.
type warnings struct{ n atomic.Int64 }

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.n.Add(1)
	}
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A binary that starts before its broker waits for it instead of exiting.
func TestConnectRetryingWaitsForTheBroker(t *testing.T) {
	port := freePort(t)
	w := &warnings{}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		nc, err := natsconn.ConnectRetrying(ctx, config.NATS{URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}, "test", slog.New(w))
		done <- result{nc, err}
	}()
	eventually.True(t, 10*time.Second, "a failed attempt is logged", func() bool { return w.n.Load() > 0 })
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	r := <-done
	if r.err != nil {
		t.Fatalf("ConnectRetrying: %v", r.err)
	}
	defer r.nc.Close()
	if !r.nc.IsConnected() {
		t.Error("returned a connection that is not connected")
	}
}

// Refused credentials are not waited out: the binary stops with the reason.
func TestConnectRetryingStopsOnRefusedCredentials(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, Username: "rollcall", Password: "right", NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	w := &warnings{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = natsconn.ConnectRetrying(ctx, config.NATS{URL: ns.ClientURL(), User: "rollcall", Password: config.Secret("wrong")}, "test", slog.New(w))
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("err = %v, want the authorization violation", err)
	}
	if n := w.n.Load(); n != 0 {
		t.Errorf("%d retries logged for refused credentials, want none", n)
	}
}
