package datahubsource_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
)

// TestRefusalIsReported: a tenant DataHub will not serve at all (refused
// credentials, an unknown district) is reported as such, for the
// tenant-paused metric, and a tenant it serves is not.
func TestRefusalIsReported(t *testing.T) {
	p := newPipeline(t, 50*time.Millisecond)
	p.hub.Populate(2, 10, 2, 3)
	for _, c := range []struct {
		name, secret, district, want string
	}{
		{"refused credentials", "not-the-secret", "", "credentials"},
		{"unknown district", datahubtest.ClientSecretDefault, "no-such-district", "district"},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, err := datahub.New(datahub.Config{BaseURL: p.hub.URL(), ClientID: datahubtest.ClientIDDefault,
				ClientSecret: c.secret, District: c.district})
			if err != nil {
				t.Fatal(err)
			}
			src := datahubsource.New(datahubsource.Config{Tenant: tenant, Client: client, JS: p.js, Stores: p.stores,
				PollInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = src.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			deadline := time.Now().Add(10 * time.Second)
			for src.Refusal() == "" {
				if time.Now().After(deadline) {
					t.Fatal("no refusal reported within 10s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := src.Refusal(); !strings.Contains(got, c.want) {
				t.Errorf("Refusal() = %q, want it to mention %q", got, c.want)
			}
		})
	}
	p.runSource(t)
	p.converged(t, 30*time.Second, "first sync")
	if got := p.src.Refusal(); got != "" {
		t.Errorf("a served tenant reports a refusal: %q", got)
	}
}

func TestSyncVersionSortsAfterTheCursorAndTheHead(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	head := datahub.Head{ID: "e-head", Created: t0}
	older := datahubsource.Cursor{LastEventID: "e-old", LastEventTime: t0.Add(-time.Hour)}
	newer := datahubsource.Cursor{LastEventID: "e-new", LastEventTime: t0.Add(time.Hour)}

	if got, want := datahubsource.SyncVersion(head, older, "~sync"), (events.Version{Time: t0, Seq: "e-head~sync"}); got.Compare(want) != 0 {
		t.Errorf("cursor behind the head: %s, want %s", got, want)
	}
	got := datahubsource.SyncVersion(head, newer, "~sync")
	if !got.Time.Equal(newer.LastEventTime) {
		t.Errorf("cursor ahead of the head (the feed changed): %s, want the cursor's time", got)
	}
	// It sorts after what Class may hold (the cursor's event, full reads and
	// resyncs at it) and before any event read after it.
	for _, applied := range []string{"e-new", "e-new~sync", "e-new~sync~resync"} {
		if got.Compare(events.Version{Time: newer.LastEventTime, Seq: applied}) <= 0 {
			t.Errorf("sync version %s does not sort after %s", got, applied)
		}
	}
	if resync := datahubsource.SyncVersion(head, newer, "~sync~resync"); resync.Compare(got) <= 0 {
		t.Errorf("an operator's resync %s does not sort after the poller's read %s", resync, got)
	}
	if got.Compare(events.Version{Time: newer.LastEventTime.Add(time.Millisecond), Seq: "e-next"}) >= 0 {
		t.Error("sync version does not sort before a later event")
	}
}
