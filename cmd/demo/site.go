package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/natsembed"
	"github.com/rollcall/rollcall/internal/ops"
	"github.com/rollcall/rollcall/internal/simcheck"
	"github.com/rollcall/rollcall/internal/telemetry"
)

// The two tenants, their time zones and the demo's credentials. The
// credentials open simulators on the loopback interface only.
const (
	dataHubTenant = "springfield"
	hubmisTenant  = "greenwood"
	dataHubZone   = "America/Chicago"
	hubmisZone    = "Europe/London"

	dataHubClientID = "springfield-demo"
	dataHubSecret   = "springfield-demo-datahub-secret"
	hubmisClientID  = "greenwood-demo"
	hubmisSecret    = "greenwood-demo-hubmis-secret"
	springfieldKey  = "springfield-demo-class-key"
	greenwoodKey    = "greenwood-demo-class-key"

	// Files in the data directory.
	storeDirName  = "jetstream"
	logFileName   = "demo.log"
	configName    = "provisionctl.yaml"
	demoHolder    = "demo"
	startDeadline = 30 * time.Second
)

// Prefixes of the tenants' external ids in Class.
var (
	dataHubPrefix = strings.TrimSuffix(events.ExternalID("datahub", dataHubTenant, "", ""), ":")
	hubmisPrefix  = strings.TrimSuffix(events.ExternalID("hubmis", hubmisTenant, "", ""), ":")
)

// site is the running system: broker, simulators, poller and worker.
type site struct {
	o    options
	size sizes
	dir  string
	temp bool // dir is ours to remove

	logPath string
	logFile *os.File
	log     *slog.Logger

	ns  *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	env *ops.Env

	cls *classtest.Server
	hub *datahubtest.Server
	mis *hubmistest.Server

	cfg     *config.Config
	cfgPath string
	tel     *telemetry.Telemetry
	rec     *recorder

	// started is when the poller and worker were started.
	started time.Time
	// Admin addresses of the worker and the poller.
	workerAdmin, pollerAdmin string

	// skip are the keys of records Class refuses on purpose (the bad
	// email): they are in the DLQ, not in Class.
	mu   sync.Mutex
	skip map[string]bool

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	exited  chan error // the poller's or worker's early end
	closers []func()
}

// startSite builds and starts everything; close undoes it.
func startSite(ctx context.Context, o options, stderr io.Writer) (s *site, err error) {
	s = &site{o: o, size: o.sizes(), rec: newRecorder(), skip: map[string]bool{}, exited: make(chan error, 2)}
	defer func() {
		if err != nil {
			s.close(false)
			s = nil
		}
	}()
	if err := s.makeDir(); err != nil {
		return s, err
	}
	if err := s.openLog(stderr); err != nil {
		return s, err
	}
	s.ns, err = natsembed.Start(natsembed.Options{StoreDir: filepath.Join(s.dir, storeDirName)})
	if err != nil {
		return s, err
	}
	s.closers = append(s.closers, func() { s.ns.Shutdown(); s.ns.WaitForShutdown() })
	if s.nc, err = nats.Connect(s.ns.ClientURL(), nats.Name("rollcall-demo")); err != nil {
		return s, err
	}
	s.closers = append(s.closers, s.nc.Close)
	if s.js, err = jetstream.New(s.nc); err != nil {
		return s, err
	}

	s.startSimulators()
	if err := s.writeConfig(); err != nil {
		return s, err
	}
	setupCtx, cancel := context.WithTimeout(ctx, startDeadline)
	defer cancel()
	if s.env, err = ops.Open(setupCtx, s.js, s.cfg); err != nil {
		return s, err
	}
	s.env.Operator = demoHolder
	// Spans are made (so every change has a trace id) and exported only
	// where the standard OTEL_* environment asks.
	if s.tel, err = telemetry.Setup(setupCtx, telemetry.Config{ServiceName: "rollcall-demo", Logger: s.log}); err != nil {
		return s, err
	}
	s.closers = append(s.closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.tel.Shutdown(sctx)
	})
	return s, s.startBinaries(ctx)
}

func (s *site) makeDir() error {
	if s.o.dataDir == "" {
		dir, err := os.MkdirTemp("", "rollcall-demo-")
		if err != nil {
			return err
		}
		s.dir, s.temp = dir, true
		return nil
	}
	if err := os.MkdirAll(s.o.dataDir, 0o700); err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	entries, err := os.ReadDir(s.o.dataDir)
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	if len(entries) > 0 {
		// The simulators start afresh every run; NATS's cursors, snapshots
		// and applied versions from an earlier run would not match them.
		return fmt.Errorf("-data %s: not empty; the simulators start afresh on every run, so the store must too", s.o.dataDir)
	}
	abs, err := filepath.Abs(s.o.dataDir)
	if err != nil {
		return err
	}
	s.dir = abs
	return nil
}

func (s *site) openLog(stderr io.Writer) error {
	if s.o.verbose {
		s.log = telemetry.NewLogger(stderr, slog.LevelInfo, "text")
		return nil
	}
	s.logPath = filepath.Join(s.dir, logFileName)
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.logFile = f
	s.log = telemetry.NewLogger(f, slog.LevelInfo, "json")
	return nil
}

func (s *site) startSimulators() {
	sz := s.size
	s.cls = classtest.New(classtest.Options{Seed: s.o.seed, Logger: s.log})
	s.cls.AddKey(springfieldKey)
	s.cls.AddKey(greenwoodKey)
	s.hub = datahubtest.New(datahubtest.Options{Seed: s.o.seed, ClientID: dataHubClientID, ClientSecret: dataHubSecret, Logger: s.log})
	s.hub.Populate(sz.dhTeachers, sz.dhStudents, sz.dhSections, sz.dhPerSection)
	s.mis = hubmistest.New(hubmistest.Options{Seed: s.o.seed, ClientID: hubmisClientID, ClientSecret: hubmisSecret,
		TimeScale: s.o.timeScale, Logger: s.log})
	s.mis.Populate(sz.hmStudents, sz.hmStaff, sz.hmSets, sz.hmLessons)
	s.closers = append(s.closers, s.cls.Close, s.hub.Close, s.mis.Close)
}

// writeConfig writes the configuration the poller, the worker and
// provisionctl share, and loads it as cmd/poller would.
func (s *site) writeConfig() error {
	yaml := fmt.Sprintf(`# Written by cmd/demo: its NATS and simulators, for provisionctl:
#   go run ./cmd/provisionctl -config %[1]s status
# The secrets are the demo's, for simulators on 127.0.0.1; the ${VAR:-default}
# form lets the environment override them as it would real ones.
# The demo's poller snapshots HUBmis every %[2]s, HUBmis's rate limit running
# %[3]gx faster than real time; a configuration file may say no less than 1m.
nats:
  url: %[4]s
admin:
  listen: "127.0.0.1:0"
lease_ttl: 5s
worker:
  concurrency: 16
  backoff_initial: 200ms
  backoff_max: 2s
tenants:
  - id: %[5]s
    # The demo deletes one section of a few; the default 0.2 would hold it
    # for approval in the smallest school.
    max_delete_share: 0.5
    class:
      base_url: %[6]s
      api_key: ${DEMO_SPRINGFIELD_CLASS_KEY:-%[7]s}
      timezone: %[8]s
    datahub:
      base_url: %[9]s
      client_id: %[10]s
      client_secret: ${DEMO_DATAHUB_SECRET:-%[11]s}
      poll_interval: 1s
  - id: %[12]s
    class:
      base_url: %[6]s
      api_key: ${DEMO_GREENWOOD_CLASS_KEY:-%[13]s}
      timezone: %[14]s
    hubmis:
      base_url: %[15]s
      client_id: %[16]s
      client_secret: ${DEMO_HUBMIS_SECRET:-%[17]s}
      realm: %[18]s
      snapshot_interval: 1m
      refresh_every_cycles: 1
`, filepath.Join(s.dir, configName), s.o.interval, s.o.timeScale, s.ns.ClientURL(),
		dataHubTenant, s.cls.URL(), springfieldKey, dataHubZone, s.hub.URL(), dataHubClientID, dataHubSecret,
		hubmisTenant, greenwoodKey, hubmisZone, s.mis.URL(), hubmisClientID, hubmisSecret, s.mis.Realm())
	s.cfgPath = filepath.Join(s.dir, configName)
	if err := os.WriteFile(s.cfgPath, []byte(yaml), 0o600); err != nil {
		return err
	}
	// Load as the binaries do, with the environment's overrides.
	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		return fmt.Errorf("the demo's configuration: %w", err)
	}
	// In this process only: snapshots as often as the fast-forwarded
	// HUBmis allows (the file keeps the shortest interval a file may say).
	for i := range cfg.Tenants {
		if h := cfg.Tenants[i].HUBmis; h != nil {
			h.SnapshotInterval = s.o.interval
		}
	}
	s.cfg = cfg
	return nil
}

// startBinaries runs the worker and the poller as their binaries do, and
// waits until both admin ports listen.
func (s *site) startBinaries(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.started = time.Now()
	admins := make(chan [2]string, 2)
	for _, b := range []struct {
		name string
		run  func(context.Context, *config.Config, app.Options) error
	}{{"worker", app.RunWorker}, {"poller", app.RunPoller}} {
		opts := app.Options{
			Logger: s.log, Telemetry: s.tel, Holder: demoHolder + "-" + b.name,
			AdminReady:      func(addr string) { admins <- [2]string{b.name, addr} },
			OnOutcome:       s.rec.observe,
			HUBmisTimeScale: s.o.timeScale,
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := b.run(runCtx, s.cfg, opts)
			if runCtx.Err() == nil {
				s.exited <- fmt.Errorf("the %s stopped: %v", b.name, err)
			}
		}()
	}
	deadline := time.NewTimer(startDeadline)
	defer deadline.Stop()
	for s.workerAdmin == "" || s.pollerAdmin == "" {
		select {
		case a := <-admins:
			if a[0] == "worker" {
				s.workerAdmin = a[1]
			} else {
				s.pollerAdmin = a[1]
			}
		case err := <-s.exited:
			return err
		case <-deadline.C:
			return fmt.Errorf("the poller and worker did not start within %s (see %s)", startDeadline, s.logWhere())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// stopBinaries ends the poller and the worker and waits for them.
func (s *site) stopBinaries() {
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
		s.cancel = nil
	}
}

// close stops everything; the data directory is removed if it is a
// temporary one and keep is false.
func (s *site) close(keep bool) {
	s.stopBinaries()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
	if s.logFile != nil {
		_ = s.logFile.Close()
	}
	if s.temp && !keep {
		_ = os.RemoveAll(s.dir)
	}
}

// logWhere says where the poller's and worker's logs are.
func (s *site) logWhere() string {
	if s.logPath == "" {
		return "stderr"
	}
	return s.logPath
}

func (s *site) skipKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skip[key] = true
}

func (s *site) skipped() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.skip))
	for k := range s.skip {
		out[k] = true
	}
	return out
}

// differences lists how Class differs from both sources now; none means
// equal.
func (s *site) differences() []string {
	st := s.cls.State()
	var out []string
	dh, err := simcheck.DataHubDesired(s.hub, dataHubTenant)
	if err != nil {
		return []string{dataHubTenant + ": reading the district: " + err.Error()}
	}
	for _, d := range simcheck.Compare(dh, st, dataHubPrefix, s.skipped()) {
		out = append(out, dataHubTenant+": "+d)
	}
	t, _ := s.cfg.Tenant(hubmisTenant)
	hm := simcheck.HUBmisDesired(s.mis, hubmisTenant, t.Class.Timezone, t.HUBmis.LessonWindow, time.Now())
	for _, d := range simcheck.Compare(hm, st, hubmisPrefix, nil) {
		out = append(out, hubmisTenant+": "+d)
	}
	return out
}

// pending counts the messages the workers have not settled, per tenant.
func (s *site) pending(ctx context.Context) (uint64, error) {
	var n uint64
	for _, t := range s.cfg.Tenants {
		c, err := s.env.Res.Stream.Consumer(ctx, events.WorkerConsumerName(t.ID))
		if err != nil {
			return 0, fmt.Errorf("tenant %s's consumer: %w", t.ID, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0, err
		}
		n += info.NumPending + uint64(info.NumAckPending)
	}
	return n, nil
}

// failed reports an early end of the poller or the worker.
func (s *site) failed() error {
	select {
	case err := <-s.exited:
		// Keep it for the next look.
		s.exited <- err
		return err
	default:
		return nil
	}
}

var errInterrupted = errors.New("interrupted")
