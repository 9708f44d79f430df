package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/lease"
	"github.com/rollcall/rollcall/internal/natstest"
	"github.com/rollcall/rollcall/internal/ops"
	"github.com/rollcall/rollcall/internal/telemetry"
)

// TestHUBmisTenantsPolledByOnePollerPerEgress: of two pollers behind one
// address, one polls every HUBmis tenant (HUBmis's 12 requests a minute are
// per address, and a process paces only its own), and the other starts none
// of them, not even one only it serves, until it takes them all over when
// the first stops.
func TestHUBmisTenantsPolledByOnePollerPerEgress(t *testing.T) {
	const scale = 100
	ns := natstest.Start(t)
	mis := hubmistest.New(hubmistest.Options{Seed: 31, TimeScale: scale})
	t.Cleanup(mis.Close)
	mis.Populate(6, 2, 2, 2)
	cls := classtest.New(classtest.Options{Seed: 32})
	t.Cleanup(cls.Close)
	configOf := func(tenants []string) *config.Config {
		yaml := fmt.Sprintf("nats: {url: %s}\nadmin: {listen: \"127.0.0.1:0\"}\nlease_ttl: 1s\nhubmis_egress: school-nat\ntenants:\n", ns.ClientURL())
		for _, id := range tenants {
			yaml += fmt.Sprintf(`  - id: %s
    class: {base_url: %s, api_key: class-key, timezone: Europe/London}
    hubmis: {base_url: %s, client_id: %s, client_secret: %s, realm: %s}
`, id, cls.URL(), mis.URL(), mis.ClientID(), mis.ClientSecret(), mis.Realm())
		}
		cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "rollcall-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	var wg sync.WaitGroup
	var stops []func()
	t.Cleanup(func() {
		for _, stop := range stops {
			stop()
		}
		wg.Wait()
	})
	// start runs a poller until the returned function is called; it returns
	// once the poller serves its admin port, its leases sought.
	start := func(holder string, cfg *config.Config, log *slog.Logger) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done, ready := make(chan struct{}), make(chan string, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			err := RunPoller(ctx, cfg, Options{Logger: log, Telemetry: tel, Holder: holder, HUBmisTimeScale: scale,
				AdminReady: func(addr string) { ready <- addr }})
			if err != nil {
				t.Errorf("%s: %v", holder, err)
			}
		}()
		select {
		case <-ready:
		case <-done:
			t.Fatalf("%s stopped before it was ready", holder)
		}
		stop = sync.OnceFunc(func() { cancel(); <-done })
		stops = append(stops, stop)
		return stop
	}

	_, js := ns.Connect(t)
	kv, err := lease.EnsureBucket(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	// heldBy waits until holder holds the egress and every one of tenants,
	// and returns the egress lease's record.
	heldBy := func(holder string, tenants []string) lease.Record {
		var egress lease.Record
		eventually.Holds(t, 30*time.Second, holder+" holds the HUBmis egress and every HUBmis tenant", func() (bool, string) {
			rec, ok, err := lease.Read(t.Context(), kv, lease.HUBmisEgressName("school-nat"))
			if err != nil || !ok || rec.Holder != holder {
				return false, fmt.Sprintf("egress lease: %+v, %v", rec, err)
			}
			egress = rec
			for _, id := range tenants {
				rec, ok, err := lease.Read(t.Context(), kv, "hubmis."+id)
				if err != nil || !ok || rec.Holder != holder {
					return false, fmt.Sprintf("tenant %s: %+v, %v", id, rec, err)
				}
			}
			return true, ""
		})
		return egress
	}

	three := []string{"north", "south", "east"}
	stopA := start("poller-a", configOf(three), quiet)
	heldBy("poller-a", three)
	eventually.Holds(t, 60*time.Second, "every tenant's first snapshot published", func() (bool, string) {
		for _, id := range three {
			n := 0
			err := events.ReadStream(t.Context(), js, events.StreamName, []string{"provision." + id + ".>"}, jetstream.DeliverAllPolicy,
				func(jetstream.Msg) error { n++; return nil })
			if err != nil || n == 0 {
				return false, fmt.Sprintf("tenant %s: %d messages, %v", id, n, err)
			}
		}
		return true, ""
	})

	// The second poller also serves a fourth tenant, which the first does
	// not: it still waits for the egress before starting it.
	four := append(three, "west")
	var logsB lockedBuffer
	start("poller-b", configOf(four), slog.New(slog.NewJSONHandler(&logsB, nil)))
	// Until then it says why west is not polled.
	eventually.True(t, 30*time.Second, "poller-b warns that nobody polls west", func() bool {
		for _, line := range strings.Split(logsB.String(), "\n") {
			if strings.Contains(line, "HUBmis tenant not polled") && strings.Contains(line, `"tenant":"west"`) &&
				strings.Contains(line, `"egress_holder":"poller-a"`) {
				return true
			}
		}
		return false
	})
	for _, line := range strings.Split(logsB.String(), "\n") {
		if strings.Contains(line, "HUBmis tenant not polled") && !strings.Contains(line, `"tenant":"west"`) {
			t.Errorf("a polled tenant reported as not polled: %s", line)
		}
	}
	stopA()
	egress := heldBy("poller-b", four)
	west, _, err := lease.Read(t.Context(), kv, "hubmis.west")
	if err != nil {
		t.Fatal(err)
	}
	if west.Acquired.Before(egress.Acquired) {
		t.Errorf("poller-b took tenant west at %s, before the egress at %s: two pollers polled HUBmis from one address",
			west.Acquired.Format(time.RFC3339Nano), egress.Acquired.Format(time.RFC3339Nano))
	}
	// provisionctl status names the egress and its holder beside the
	// tenant's own lease.
	env, err := ops.Open(t.Context(), js, configOf(four))
	if err != nil {
		t.Fatal(err)
	}
	sts, err := env.Status(t.Context(), "west")
	if err != nil {
		t.Fatal(err)
	}
	if eg := sts[0].Egress; eg == nil || eg.Name != "school-nat" || eg.Lease == nil || eg.Lease.Holder != "poller-b" {
		t.Errorf("status of west: egress %+v, want school-nat held by poller-b", eg)
	}
	if n := mis.Stats().TooMany; n != 0 {
		t.Errorf("HUBmis answered %d requests with 429", n)
	}
}
