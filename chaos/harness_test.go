package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/natsembed"
	"github.com/rollcall/rollcall/internal/simcheck"
)

const (
	tenant   = "chaos"
	classKey = "chaos-class-key"
	hubID    = "chaos-client"
	// Secrets reach the binaries through the environment, as in production.
	classKeyEnv  = "CHAOS_CLASS_KEY"
	hubSecretEnv = "CHAOS_DATAHUB_SECRET"
	hubSecret    = "chaos-datahub-secret"
)

// cluster is the whole system under test: the broker, the simulators and
// the two binaries.
type cluster struct {
	t        *testing.T
	storeDir string
	port     int
	ns       *server.Server

	hub *datahubtest.Server
	cls *classtest.Server

	poller, worker *proc

	// changes numbers the scenario's changes, so the people it adds never
	// share an email (Class refuses two users with one email, rightly).
	changes int
}

// startCluster builds the binaries, starts nats-server (sync always, on a
// store that survives its restarts) and the simulators, writes the
// configuration and starts one poller and one worker.
func startCluster(t *testing.T, hubOpts datahubtest.Options, pollInterval time.Duration) *cluster {
	t.Helper()
	bin := t.TempDir()
	buildBinaries(t, bin)
	c := &cluster{t: t, storeDir: t.TempDir()}
	c.startNATS()
	t.Cleanup(func() {
		if c.ns != nil {
			c.ns.Shutdown()
			c.ns.WaitForShutdown()
		}
	})

	hubOpts.ClientID, hubOpts.ClientSecret = hubID, hubSecret
	c.hub = datahubtest.New(hubOpts)
	t.Cleanup(c.hub.Close)
	c.cls = classtest.New(classtest.Options{Seed: hubOpts.Seed + 1})
	t.Cleanup(c.cls.Close)
	c.cls.AddKey(classKey)

	cfg := fmt.Sprintf(`# written by the chaos suite
nats:
  url: nats://127.0.0.1:%d
lease_ttl: 2s
admin: {listen: "127.0.0.1:0"}   # the binaries would default to fixed ports
worker:
  concurrency: 16
  ack_wait: 3s
  backoff_initial: 100ms
  backoff_max: 1s
  auth_probe_interval: 1s
tenants:
  - id: %s
    deletion_policy: delete
    max_delete_share: 1
    class:
      base_url: %s
      api_key: ${%s}
      timezone: America/Chicago
    datahub:
      base_url: %s
      client_id: %s
      client_secret: ${%s}
      poll_interval: %s
`, c.port, tenant, c.cls.URL(), classKeyEnv, c.hub.URL(), hubID, hubSecretEnv, pollInterval)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), classKeyEnv+"="+classKey, hubSecretEnv+"="+hubSecret)
	args := []string{"-config", path, "-log-level", "warn"}
	c.worker = newProc(t, "worker", filepath.Join(bin, "worker"), args, env)
	c.poller = newProc(t, "poller", filepath.Join(bin, "poller"), args, env)
	for _, p := range []*proc{c.worker, c.poller} {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *cluster) startNATS() {
	c.t.Helper()
	ns, err := natsembed.Start(natsembed.Options{StoreDir: c.storeDir, Port: c.port, SyncAlways: true})
	if err != nil {
		c.t.Fatal(err)
	}
	c.ns, c.port = ns, natsembed.Port(ns)
}

// restartNATS stops the broker and starts it again on the same port and
// store, as an outage of the one server would.
func (c *cluster) restartNATS() {
	c.ns.Shutdown()
	c.ns.WaitForShutdown()
	c.ns = nil
	c.startNATS()
}

// connect opens a connection of the test's own to the broker.
func (c *cluster) connect(opts ...nats.Option) jetstream.JetStream {
	c.t.Helper()
	nc, err := nats.Connect(c.ns.ClientURL(), opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return js
}

// mismatch compares Class with the district now, through the sources' own
// mapping (internal/simcheck); nil means equal. At most 8 lines.
func (c *cluster) mismatch(skip map[string]bool) ([]string, error) {
	want, err := simcheck.DataHubDesired(c.hub, tenant)
	if err != nil {
		return nil, err
	}
	out := simcheck.Compare(want, c.cls.State(), "datahub:"+tenant+":", skip)
	if len(out) > 8 {
		out = append(out[:8], fmt.Sprintf("... %d more", len(out)-8))
	}
	return out, nil
}

// deadLetters reads every record of PROVISION_DLQ.
func deadLetters(ctx context.Context, js jetstream.JetStream) ([]*jetstream.RawStreamMsg, error) {
	s, err := js.Stream(ctx, events.DLQStreamName)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				continue
			}
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// waitFor polls cond every interval until it is true or the deadline
// passes; it returns the time taken and whether cond became true.
func waitFor(timeout, interval time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		<-tick.C
	}
}
