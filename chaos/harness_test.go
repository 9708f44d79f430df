package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/natsembed"
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

// roster is the district as DataHub has it now, read through the client's
// own decoders.
func (c *cluster) roster() (*datahubsource.Roster, error) {
	var teachers []datahub.Teacher
	for _, x := range c.hub.Teachers() {
		v, err := convert(x, datahub.DecodeTeacher)
		if err != nil {
			return nil, err
		}
		teachers = append(teachers, v)
	}
	var students []datahub.Student
	for _, x := range c.hub.Students() {
		v, err := convert(x, datahub.DecodeStudent)
		if err != nil {
			return nil, err
		}
		students = append(students, v)
	}
	var sections []datahub.Section
	for _, x := range c.hub.Sections() {
		v, err := convert(x, datahub.DecodeSection)
		if err != nil {
			return nil, err
		}
		sections = append(sections, v)
	}
	return datahubsource.RosterOf(teachers, students, sections), nil
}

func convert[T any](v any, decode func(json.RawMessage) (T, error)) (T, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(raw)
}

// wantView is what Class must hold for the district, by key: users with
// their email, name and roles; classes with their name and description;
// enrollments with email, names and role. States the mapping withholds and
// keys in skip (the poison) are left out, and so is the teacher enrollment
// of a class's host: Class enrolls the host itself when it creates the class,
// without an external id, and keeps that host when the primary teacher
// changes.
func wantView(states []events.KeyedState, hosts map[string]string, skip map[string]bool) map[string]string {
	v := map[string]string{}
	for _, s := range states {
		switch s := s.(type) {
		case events.UserState:
			if skip["user "+s.ExtUserID] {
				continue
			}
			roles := slices.Clone(s.Roles)
			slices.Sort(roles)
			v["user "+s.ExtUserID] = s.Email + "|" + s.FirstName + " " + s.LastName + "|" + strings.Join(roles, ",")
		case events.ClassState:
			v["class "+s.ExtClassID] = s.Name + "|" + s.Description
		case events.EnrollmentState:
			if s.Role == events.RoleTeacher && hosts[s.ExtClassID] == s.Email {
				continue
			}
			v["enrollment "+s.Key()] = s.Email + "|" + s.FirstName + "|" + s.LastName + "|" + s.Role
		}
	}
	return v
}

// classView is what Class holds, in the shape of wantView, and each class's
// host email.
func classView(st classtest.State) (view, hosts map[string]string) {
	view, hosts = map[string]string{}, map[string]string{}
	for _, u := range st.Users {
		roles := slices.Clone(u.Roles)
		slices.Sort(roles)
		view["user "+u.ExtUserID] = u.Email + "|" + u.UserName + "|" + strings.Join(roles, ",")
	}
	for _, c := range st.Classes {
		view["class "+c.ExtClassID] = c.Name + "|" + c.Description
		hosts[c.ExtClassID] = c.HostEmail
		for _, e := range c.Enrollments {
			if e.ExtPersonID == "" {
				continue // the host, enrolled by Class itself
			}
			view["enrollment "+events.EnrollmentKey(c.ExtClassID, e.ExtPersonID)] = e.Email + "|" + e.FirstName + "|" + e.LastName + "|" + e.Role
		}
	}
	return view, hosts
}

// difference lists how got differs from want, at most max lines.
func difference(want, got map[string]string, max int) []string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			out = append(out, k+" missing")
		} else if g != w {
			out = append(out, fmt.Sprintf("%s = %q, want %q", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, k+" unexpected")
		}
	}
	sort.Strings(out)
	if len(out) > max {
		out = append(out[:max], fmt.Sprintf("... %d more", len(out)-max))
	}
	return out
}

// mismatch compares Class with the district now; nil means equal.
func (c *cluster) mismatch(skip map[string]bool) ([]string, error) {
	r, err := c.roster()
	if err != nil {
		return nil, err
	}
	got, hosts := classView(c.cls.State())
	for id, sec := range r.Sections {
		if t, ok := r.Teachers[sec.Teacher]; !ok || t.Email == "" {
			// Without a primary teacher the mapping neither creates nor
			// deletes the class: whatever Class has stays.
			delete(got, "class "+events.ExternalID("datahub", tenant, "section", id))
		}
	}
	want := wantView(datahubsource.Mapper{Tenant: tenant}.States(r), hosts, skip)
	return difference(want, got, 8), nil
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
