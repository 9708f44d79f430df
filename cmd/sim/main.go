// Command sim serves the three API simulators (Class, DataHub, HUBmis) on
// addresses of your choice, seeded with a small school on each source, for
// docker-compose and other deployments that want a self-contained system:
//
//	sim [-class-listen 0.0.0.0:8081] [-datahub-listen 0.0.0.0:8082] [-hubmis-listen 0.0.0.0:8083]
//
// The credentials it accepts come from the environment, named by flags, so
// they match the ${VAR}s of the configuration the poller and worker load
// (deploy/compose.config.yaml): secrets never appear on a command line, where
// ps would show them, and sim prints the variables' names, never their values.
// SIGINT or SIGTERM stops it.
//
// The simulators are the packages the tests use (classtest, datahubtest,
// hubmistest); each still listens on a loopback port of its own, unused here:
// sim serves their handlers on its own listeners.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/startup"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// options are sim's flags, parsed.
type options struct {
	classListen, dataHubListen, hubmisListen string
	logLevel                                 string

	seed int64
	// Sizes of the DataHub district and the HUBmis school.
	dhTeachers, dhStudents, dhSections, dhPerSection int
	hmStaff, hmStudents, hmSets, hmLessons           int

	// Names of the environment variables holding the secrets; ids are not secret.
	classKeyEnvs     string
	dataHubClientID  string
	dataHubSecretEnv string
	hubmisClientID   string
	hubmisSecretEnv  string
	hubmisRealm      string
	hubmisTimeScale  float64
}

// Defaults matching deploy/compose.config.yaml.
const (
	ClassListenDefault      = "0.0.0.0:8081"
	DataHubListenDefault    = "0.0.0.0:8082"
	HUBmisListenDefault     = "0.0.0.0:8083"
	ClassKeyEnvsDefault     = "SPRINGFIELD_CLASS_KEY,GREENWOOD_CLASS_KEY"
	DataHubClientIDDefault  = "springfield-demo"
	DataHubSecretEnvDefault = "SPRINGFIELD_DATAHUB_SECRET"
	HUBmisClientIDDefault   = "greenwood-demo"
	HUBmisSecretEnvDefault  = "GREENWOOD_HUBMIS_SECRET"
	HUBmisRealmDefault      = hubmistest.RealmDefault
)

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.classListen, "class-listen", ClassListenDefault, "address of the Class simulator")
	fs.StringVar(&o.dataHubListen, "datahub-listen", DataHubListenDefault, "address of the DataHub simulator")
	fs.StringVar(&o.hubmisListen, "hubmis-listen", HUBmisListenDefault, "address of the HUBmis simulator")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error (debug logs every request: method, path, status)")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the generated schools and of the simulators' ids")
	fs.IntVar(&o.dhTeachers, "datahub-teachers", 8, "teachers of the DataHub district")
	fs.IntVar(&o.dhStudents, "datahub-students", 120, "students of the DataHub district")
	fs.IntVar(&o.dhSections, "datahub-sections", 12, "sections of the DataHub district")
	fs.IntVar(&o.dhPerSection, "datahub-per-section", 20, "students per DataHub section")
	fs.IntVar(&o.hmStaff, "hubmis-staff", 8, "staff of the HUBmis school (about one in eight is support staff)")
	fs.IntVar(&o.hmStudents, "hubmis-students", 60, "students of the HUBmis school")
	fs.IntVar(&o.hmSets, "hubmis-sets", 10, "subject sets of the HUBmis school")
	fs.IntVar(&o.hmLessons, "hubmis-lessons", 3, "weekly lessons of each HUBmis subject set")
	fs.StringVar(&o.classKeyEnvs, "class-key-env", ClassKeyEnvsDefault, "comma-separated environment variables, each holding a Class API key to accept (every scope)")
	fs.StringVar(&o.dataHubClientID, "datahub-client-id", DataHubClientIDDefault, "the DataHub client id to accept")
	fs.StringVar(&o.dataHubSecretEnv, "datahub-secret-env", DataHubSecretEnvDefault, "environment variable holding the DataHub client secret")
	fs.StringVar(&o.hubmisClientID, "hubmis-client-id", HUBmisClientIDDefault, "the HUBmis client id to accept")
	fs.StringVar(&o.hubmisSecretEnv, "hubmis-secret-env", HUBmisSecretEnvDefault, "environment variable holding the HUBmis client secret")
	fs.StringVar(&o.hubmisRealm, "hubmis-realm", HUBmisRealmDefault, "the HUBmis school's realm")
	fs.Float64Var(&o.hubmisTimeScale, "hubmis-time-scale", 1, "speed-up of HUBmis's rate-limit refill (1 is the documented 12 a minute per IP)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for name, n := range map[string]int{
		"datahub-teachers": o.dhTeachers, "datahub-students": o.dhStudents, "datahub-sections": o.dhSections,
		"datahub-per-section": o.dhPerSection, "hubmis-staff": o.hmStaff, "hubmis-students": o.hmStudents,
		"hubmis-sets": o.hmSets, "hubmis-lessons": o.hmLessons,
	} {
		if n < 0 {
			return o, fmt.Errorf("-%s: must not be negative", name)
		}
	}
	if o.hmLessons > 40 {
		return o, errors.New("-hubmis-lessons: at most 40 (a week has 5 days of 8 periods)")
	}
	return o, nil
}

// credentials are the secrets read from the environment.
type credentials struct {
	classKeys     []string
	dataHubSecret string
	hubmisSecret  string
}

// readCredentials reads the variables o names; the error names every missing one.
func readCredentials(o options, lookupEnv func(string) (string, bool)) (credentials, error) {
	var c credentials
	var missing []string
	get := func(name string) string {
		v, ok := lookupEnv(name)
		if !ok || v == "" {
			missing = append(missing, name)
		}
		return v
	}
	for _, name := range strings.Split(o.classKeyEnvs, ",") {
		if name = strings.TrimSpace(name); name != "" {
			c.classKeys = append(c.classKeys, get(name))
		}
	}
	c.dataHubSecret = get(o.dataHubSecretEnv)
	c.hubmisSecret = get(o.hubmisSecretEnv)
	switch {
	case len(missing) > 0:
		return c, fmt.Errorf("environment variables not set: %s", strings.Join(missing, ", "))
	case len(c.classKeys) == 0:
		return c, errors.New("-class-key-env: names no variable")
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "sim: %v\n", err)
		}
		return startup.ExitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "sim: -log-level: %v\n", err)
		return startup.ExitUsage
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	creds, err := readCredentials(o, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "sim: %v\n", err)
		return startup.ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := start(o, creds, log)
	if err != nil {
		log.Error("sim: start", slog.Any("error", err))
		return 1
	}
	s.describe(stdout, o)
	<-ctx.Done()
	log.Info("sim stopping")
	s.Close()
	return 0
}

// sims are the three simulators and the servers that expose them.
type sims struct {
	class   *classtest.Server
	datahub *datahubtest.Server
	hubmis  *hubmistest.Server

	servers []*http.Server
	done    []chan struct{}
	// Addresses actually listened on (a :0 port resolved).
	classAddr, dataHubAddr, hubmisAddr string
}

// start builds and seeds the simulators and serves each on its address.
func start(o options, c credentials, log *slog.Logger) (*sims, error) {
	s := &sims{
		class: classtest.New(classtest.Options{Seed: o.seed, Logger: log}),
		datahub: datahubtest.New(datahubtest.Options{
			Seed: o.seed, ClientID: o.dataHubClientID, ClientSecret: c.dataHubSecret, Logger: log,
		}),
		hubmis: hubmistest.New(hubmistest.Options{
			Seed: o.seed, ClientID: o.hubmisClientID, ClientSecret: c.hubmisSecret, Realm: o.hubmisRealm,
			TimeScale: o.hubmisTimeScale, Logger: log,
			// The poller's client pages with page_size 100; the document names no
			// maximum, so the simulator's default (100) stands.
		}),
	}
	for _, k := range c.classKeys {
		s.class.AddKey(k)
	}
	s.datahub.Populate(o.dhTeachers, o.dhStudents, o.dhSections, o.dhPerSection)
	s.hubmis.Populate(o.hmStudents, o.hmStaff, o.hmSets, o.hmLessons)

	for _, l := range []struct {
		name, addr string
		h          http.Handler
		out        *string
	}{
		{"class", o.classListen, s.class, &s.classAddr},
		{"datahub", o.dataHubListen, s.datahub, &s.dataHubAddr},
		{"hubmis", o.hubmisListen, s.hubmis, &s.hubmisAddr},
	} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("-%s-listen: %w", l.name, err)
		}
		*l.out = ln.Addr().String()
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 10 * time.Second}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				log.Error("sim: serve", slog.String("simulator", l.name), slog.Any("error", err))
			}
		}()
		s.servers = append(s.servers, srv)
		s.done = append(s.done, done)
	}
	return s, nil
}

// Close stops the listeners, lets requests in flight finish for a few seconds,
// then closes the simulators (which ends any request still waiting).
func (s *sims) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
	for _, d := range s.done {
		<-d
	}
	s.class.Close()
	s.datahub.Close()
	s.hubmis.Close()
}

// describe prints where each simulator listens and which variables hold the
// secrets it accepts; never the secrets.
func (s *sims) describe(w io.Writer, o options) {
	fmt.Fprintf(w, "Class    http://%s  API keys from $%s (every scope)\n",
		s.classAddr, strings.Join(strings.Split(o.classKeyEnvs, ","), ", $"))
	fmt.Fprintf(w, "DataHub  http://%s  client_id %s, client_secret from $%s; district %s, %d teachers, %d students, %d sections\n",
		s.dataHubAddr, o.dataHubClientID, o.dataHubSecretEnv, s.datahub.DistrictID(), o.dhTeachers, o.dhStudents, o.dhSections)
	fmt.Fprintf(w, "HUBmis   http://%s  client_id %s, client_secret from $%s; realm %s, %d staff, %d students, %d sets\n",
		s.hubmisAddr, o.hubmisClientID, o.hubmisSecretEnv, o.hubmisRealm, o.hmStaff, o.hmStudents, o.hmSets)
}
