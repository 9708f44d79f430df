// Command demo runs the whole system in one process, with nothing to
// install, and plays a scripted school year through it:
//
//	go run ./cmd/demo [-serve] [-data DIR] [-v] [-small] [-hubmis-time-scale 100]
//
// It starts an in-process nats-server with JetStream (in a temporary
// directory removed at exit, or in -data DIR), the Class, DataHub and HUBmis
// simulators on 127.0.0.1, and the poller and the worker as cmd/poller and
// cmd/worker run them (internal/app), for two tenants: "springfield" on
// DataHub and "greenwood" on HUBmis. HUBmis's rate limit (12 requests a
// minute) is fast-forwarded, simulator and client alike, so a snapshot takes
// a second instead of minutes; the output says by how much.
//
// Then it plays the year in stages: the initial sync, new students, a
// teacher change, a lesson moved (HUBmis), a section deleted, a Class
// outage of 503s, a teacher whose email Class refuses (dead-lettered), and a
// replay of every message. Each stage waits, under a deadline, until Class
// equals both sources and nothing is pending; a stage that times out fails
// the demo. The summary counts what Class holds, the changes applied, the
// retries and dead letters, the event-to-applied latency and one trace id.
// The exit status is 0 only if Class ends equal to both sources (as their
// mappers map them); otherwise the differences are printed and it is 1.
//
// With -serve everything keeps running after the summary, and the demo
// prints the addresses and a provisionctl configuration file to try
// `go run ./cmd/provisionctl -config <file> status` against, until Ctrl-C.
//
// The poller's and worker's logs go to demo.log in the data directory
// (stderr with -v).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rollcall/rollcall/internal/startup"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Defaults of the flags.
const (
	HUBmisTimeScaleDefault = 100
	HUBmisIntervalDefault  = 2 * time.Second
	StageTimeoutDefault    = 60 * time.Second
	OutageDefault          = 3 * time.Second
	SeedDefault            = 7
)

// options are the demo's flags, parsed.
type options struct {
	dataDir      string
	serve        bool
	verbose      bool
	small        bool
	seed         int64
	timeScale    float64
	interval     time.Duration
	stageTimeout time.Duration
	outage       time.Duration

	// atEnd, if set, looks at the running system after the summary (tests).
	atEnd func(*site)
}

// sizes are the schools and the scale of the script's changes.
type sizes struct {
	dhTeachers, dhStudents, dhSections, dhPerSection int
	hmStaff, hmStudents, hmSets, hmLessons           int
	newStudents                                      int
}

func (o options) sizes() sizes {
	if o.small {
		return sizes{dhTeachers: 4, dhStudents: 24, dhSections: 6, dhPerSection: 4,
			hmStaff: 4, hmStudents: 12, hmSets: 3, hmLessons: 2, newStudents: 2}
	}
	return sizes{dhTeachers: 8, dhStudents: 120, dhSections: 12, dhPerSection: 20,
		hmStaff: 8, hmStudents: 60, hmSets: 10, hmLessons: 3, newStudents: 3}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: demo [flags]

Runs NATS, the Class, DataHub and HUBmis simulators, the poller and the worker
in this process and plays a scripted school year through them. Exits 0 only if
Class ends equal to both sources.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.dataDir, "data", "", "keep NATS's store, the logs and the provisionctl config in `DIR` (new or empty); default: a temporary directory removed at exit")
	fs.BoolVar(&o.serve, "serve", false, "keep everything running after the summary, print the addresses, and stop at Ctrl-C")
	fs.BoolVar(&o.verbose, "v", false, "write the poller's and worker's logs to stderr instead of demo.log")
	fs.BoolVar(&o.small, "small", false, "a small school and a short outage (the tests use it)")
	fs.Int64Var(&o.seed, "seed", SeedDefault, "seed of the generated schools and of the simulators")
	fs.Float64Var(&o.timeScale, "hubmis-time-scale", HUBmisTimeScaleDefault, "how many times faster than real time HUBmis's rate limit runs (simulator and client)")
	fs.DurationVar(&o.interval, "hubmis-interval", HUBmisIntervalDefault, "time between two HUBmis snapshots")
	fs.DurationVar(&o.stageTimeout, "stage-timeout", StageTimeoutDefault, "how long a stage may wait for Class to equal the sources before the demo fails")
	fs.DurationVar(&o.outage, "outage", OutageDefault, "how long Class answers 503s in the outage stage")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if o.timeScale < 1 {
		errs = append(errs, errors.New("-hubmis-time-scale: at least 1"))
	}
	if o.interval < 100*time.Millisecond {
		errs = append(errs, errors.New("-hubmis-interval: at least 100ms"))
	}
	if o.stageTimeout <= 0 {
		errs = append(errs, errors.New("-stage-timeout: must be positive"))
	}
	if o.outage <= 0 {
		errs = append(errs, errors.New("-outage: must be positive"))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.small && !set["outage"] {
		o.outage = time.Second
	}
	return o, errors.Join(errs...)
}

// run runs the demo and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return startup.ExitUsage
	}
	code, _ := execute(ctx, o, stdout, stderr)
	return code
}

// execute plays the demo and returns its exit status and result.
func execute(ctx context.Context, o options, stdout, stderr io.Writer) (int, result) {
	res, err := play(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1, res
	}
	if len(res.differences) > 0 {
		return 1, res
	}
	return 0, res
}
