package tenantctl_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/natstest"
	"github.com/rollcall/rollcall/internal/tenantctl"
)

func TestRunWhileActiveStopsAndRestarts(t *testing.T) {
	_, js := natstest.Start(t).Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "T"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tenantctl.Set(ctx, kv, "a", tenantctl.State{Status: tenantctl.Paused, By: "test"}); err != nil {
		t.Fatal(err)
	}
	w, err := tenantctl.Watch(ctx, kv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !w.State("a").Stopped() || w.State("b").Stopped() {
		t.Fatalf("initial states: a %+v b %+v", w.State("a"), w.State("b"))
	}
	var starts, running atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- w.RunWhileActive(ctx, "a", func(ctx context.Context) error {
			starts.Add(1)
			running.Store(1)
			<-ctx.Done()
			running.Store(0)
			return ctx.Err()
		})
	}()
	// Paused from the start: fn must not run until resumed.
	if err := tenantctl.Set(ctx, kv, "b", tenantctl.State{Status: tenantctl.Paused}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 10*time.Second, "b paused", func() bool { return w.State("b").Stopped() })
	if starts.Load() != 0 {
		t.Fatal("fn ran while the tenant was paused")
	}
	if err := tenantctl.Set(ctx, kv, "a", tenantctl.State{Status: tenantctl.Active}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 10*time.Second, "fn running after resume", func() bool { return running.Load() == 1 })
	if err := tenantctl.Set(ctx, kv, "a", tenantctl.State{Status: tenantctl.Offboarded}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 10*time.Second, "fn stopped after offboard", func() bool { return running.Load() == 0 })
	if err := kv.Delete(ctx, "a"); err != nil { // a deleted entry means active
		t.Fatal(err)
	}
	eventually.True(t, 10*time.Second, "fn running again", func() bool { return running.Load() == 1 && starts.Load() == 2 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunWhileActive: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunWhileActive did not return after ctx ended")
	}
}
