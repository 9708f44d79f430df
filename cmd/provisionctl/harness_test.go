package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/lease"
	"github.com/rollcall/rollcall/internal/natstest"
	"github.com/rollcall/rollcall/internal/tenantctl"
)

const (
	tenant   = "springfield"
	classKey = "class-key"
	tz       = "America/Chicago"
)

// site is a running system: nats-server, the DataHub and Class simulators,
// a poller and a worker wired as cmd/poller and cmd/worker wire them, and a
// configuration file for provisionctl.
type site struct {
	t       *testing.T
	ns      *natstest.Server
	js      jetstream.JetStream
	hub     *datahubtest.Server
	cls     *classtest.Server
	cfgPath string
	cfg     *config.Config
	res     *events.Resources
	log     *slog.Logger

	ctx        context.Context
	cancel     context.CancelFunc
	stopWorker func()
	worker     *handlers.Worker
}

type siteOpts struct {
	maxDeleteShare float64
	workerTimezone *string // nil: the configured one
}

func newSite(t *testing.T, o siteOpts) *site {
	t.Helper()
	s := &site{t: t, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s.ns = natstest.Start(t)
	_, s.js = s.ns.Connect(t)
	s.hub = datahubtest.New(datahubtest.Options{Seed: 11})
	t.Cleanup(s.hub.Close)
	s.hub.Populate(4, 24, 6, 4)
	s.cls = classtest.New(classtest.Options{Seed: 12})
	t.Cleanup(s.cls.Close)
	s.cls.AddKey(classKey)
	share := ""
	if o.maxDeleteShare > 0 {
		share = fmt.Sprintf("    max_delete_share: %v\n", o.maxDeleteShare)
	}
	yaml := fmt.Sprintf(`nats: {url: %s}
lease_ttl: 2s
worker: {backoff_initial: 50ms, backoff_max: 200ms}
tenants:
  - id: %s
%s    class: {base_url: %s, api_key: %s, timezone: %s}
    datahub:
      base_url: %s
      client_id: %s
      client_secret: %s
      poll_interval: 1s
`, s.ns.ClientURL(), tenant, share, s.cls.URL(), classKey, tz, s.hub.URL(), datahubtest.ClientIDDefault, datahubtest.ClientSecretDefault)
	s.cfgPath = filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(s.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if s.cfg, err = config.Load(s.cfgPath); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s.ctx, s.cancel = ctx, cancel
	if s.res, err = events.EnsureResources(ctx, s.js, events.StreamSettings{}); err != nil {
		t.Fatal(err)
	}
	s.startPoller()
	s.startWorker(o.workerTimezone)
	return s
}

// startPoller runs the tenant's DataHub source as cmd/poller does: under
// the operator's controls.
func (s *site) startPoller() {
	t := s.t
	stores, err := datahubsource.EnsureStores(s.ctx, s.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	tc := s.cfg.Tenants[0]
	client, err := datahub.New(datahub.Config{BaseURL: tc.DataHub.BaseURL, ClientID: tc.DataHub.ClientID, ClientSecret: tc.DataHub.ClientSecret.Reveal()})
	if err != nil {
		t.Fatal(err)
	}
	src := datahubsource.New(datahubsource.Config{Tenant: tenant, Client: client, JS: s.js, Stores: stores,
		PollInterval: 100 * time.Millisecond, MaxDeleteShare: tc.MaxDeleteShare, Logger: s.log})
	controls, err := tenantctl.Watch(s.ctx, s.res.Tenants, s.log)
	if err != nil {
		t.Fatal(err)
	}
	leases, err := lease.EnsureBucket(s.ctx, s.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lease.New(lease.Config{KV: leases, Name: "datahub." + tenant, Holder: "test-poller", TTL: 2 * time.Second, Logger: s.log})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := l.Hold(s.ctx, func(ctx context.Context) error { return controls.RunWhileActive(ctx, tenant, src.Run) })
		if err != nil && s.ctx.Err() == nil {
			t.Errorf("poller: %v", err)
		}
	}()
	t.Cleanup(func() { s.cancel(); <-done })
}

func (s *site) startWorker(timezone *string) {
	t := s.t
	c, err := class.New(s.cls.URL(), classKey)
	if err != nil {
		t.Fatal(err)
	}
	zone := tz
	if timezone != nil {
		zone = *timezone
	}
	w, err := handlers.New(handlers.Config{
		JS: s.js, Resources: s.res, Concurrency: 8, AckWait: 5 * time.Second,
		Retry:             handlers.RetryPolicy{BackoffInitial: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, MaxAttempts: 5},
		AuthProbeInterval: 100 * time.Millisecond, Logger: s.log, HolderID: "test-worker",
		Tenants:        []handlers.Tenant{{ID: tenant, Class: c, Timezone: zone}},
		TracerProvider: sdktrace.NewTracerProvider(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	s.worker = w
	s.stopWorker = func() { cancel(); <-done }
	t.Cleanup(s.stopWorker)
}

// ctl runs provisionctl and returns its exit status and output.
func (s *site) ctl(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	all := append([]string{"-config", s.cfgPath}, args...)
	code = run(s.ctx, all, ioStreams{in: strings.NewReader(""), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

// ctlJSON runs provisionctl --json, requires success and decodes its output.
func (s *site) ctlJSON(v any, args ...string) {
	s.t.Helper()
	code, out, errOut := s.ctl(append([]string{"--json"}, args...)...)
	if code != 0 {
		s.t.Fatalf("provisionctl %v: exit %d\n%s%s", args, code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("provisionctl %v: output does not decode: %v\n%s", args, err, out)
	}
}

// view is Class as the sources determine it: ids Class assigns are left
// out, so a Class rebuilt from scratch compares equal.
type view struct {
	Users   map[string]string
	Classes map[string]string
}

func classView(st classtest.State) view {
	v := view{Users: map[string]string{}, Classes: map[string]string{}}
	for _, u := range st.Users {
		v.Users[u.ExtUserID] = fmt.Sprintf("%s|%s|%v", u.Email, u.UserName, u.Roles)
	}
	for _, c := range st.Classes {
		var enr []string
		for _, e := range c.Enrollments {
			enr = append(enr, fmt.Sprintf("%s/%s/%s/%s %s", e.ExtPersonID, e.Email, e.Role, e.FirstName, e.LastName))
		}
		slices.Sort(enr)
		v.Classes[c.ExtClassID] = fmt.Sprintf("%s|%s|%s|%s|%v", c.Name, c.Description, c.HostEmail, c.Timezone, enr)
	}
	return v
}

func (v view) diff(o view) string {
	var out []string
	for _, pair := range []struct {
		name string
		a, b map[string]string
	}{{"user", v.Users, o.Users}, {"class", v.Classes, o.Classes}} {
		for k, a := range pair.a {
			if b, ok := pair.b[k]; !ok {
				out = append(out, pair.name+" "+k+" missing")
			} else if a != b {
				out = append(out, pair.name+" "+k+" differs:\n  want "+a+"\n  got  "+b)
			}
		}
		for k := range pair.b {
			if _, ok := pair.a[k]; !ok {
				out = append(out, pair.name+" "+k+" extra")
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// wantView is what Class should hold for the district now: every section
// with a teacher as a class hosted by that teacher, with its students and
// the teacher enrolled, and every teacher of a section as a user.
func (s *site) converged(timeout time.Duration) view {
	s.t.Helper()
	var last view
	var lastN int64
	stable := 0
	eventually.Holds(s.t, timeout, "Class to match the district", func() (bool, string) {
		v := classView(s.cls.State())
		if len(v.Classes) != len(s.hub.Sections()) {
			return false, fmt.Sprintf("%d classes, want %d", len(v.Classes), len(s.hub.Sections()))
		}
		n := s.worker.Counts().Applied
		// Settled: nothing pending for the workers and nothing applied
		// between two looks.
		st := s.status()
		if st.Pending != 0 || n != lastN || v.diff(last) != "" {
			last, lastN, stable = v, n, 0
			return false, fmt.Sprintf("pending %d, applied %d", st.Pending, n)
		}
		stable++
		return stable >= 3, "settling"
	})
	return last
}

type tenantStatus struct {
	Pending     uint64 `json:"pending"`
	DeadLetters uint64 `json:"dead_letters"`
	State       struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"state"`
	Held []struct {
		ID        string `json:"id"`
		Deletions int    `json:"deletions"`
	} `json:"held"`
	Lease *struct {
		Holder string `json:"holder"`
	} `json:"lease"`
	Cursor *struct {
		LastEventID string `json:"last_event_id"`
	} `json:"cursor"`
}

func (s *site) status() tenantStatus {
	s.t.Helper()
	var all []tenantStatus
	s.ctlJSON(&all, "status", "--tenant", tenant)
	if len(all) != 1 {
		s.t.Fatalf("status: %d tenants", len(all))
	}
	return all[0]
}

func datahubStudent(first, last string) datahubtest.Student {
	return datahubtest.Student{Name: datahubtest.Name{First: first, Last: last}, Email: strings.ToLower(first+"."+last) + "@pupils.example"}
}

func classtestUser(email string) classtest.User {
	return classtest.User{Email: email, UserName: "Hand Made", Roles: []string{"instructor"}}
}
