// Command provisionctl is the operator's tool: it answers "why is this
// student not in that class?", re-runs history after a fix, and recovers
// Class after an accident.
//
//	provisionctl [-config FILE] [--json] <command> [flags] [args]
//
// Commands: replay, dlq (list, show, redrive, drop), explain, status,
// resync, approve, reject, pause, resume, offboard. `provisionctl help
// <command>` or `<command> --help` describes each. Output is for people
// unless --json is given; exit status 0 means done, 1 that the operation
// failed, 2 a usage or configuration error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/natsconn"
	"github.com/rollcall/rollcall/internal/ops"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], ioStreams{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
}

type ioStreams struct {
	in       io.Reader
	out, err io.Writer
}

// cli is one invocation.
type cli struct {
	io       ioStreams
	json     bool
	yes      bool
	timeout  time.Duration
	cfgPath  string
	env      *ops.Env
	progress bool
	close    func()
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, c *cli, args []string) error
}

func commands() []command {
	return []command{
		{"status", "[--tenant T]", "per tenant: source position, pending messages and the oldest one's age, dead letters, held change sets, lease holder", runStatus},
		{"replay", "--tenant T [--kind K | --subject S] [--since T --until T | --from-seq N --to-seq N | --all] [--dry-run]", "re-apply the newest state of each entity in a range (--dry-run: show what would change)", runReplay},
		{"dlq", "list|show|redrive|drop ...", "dead letters: list, show one, redrive after a fix, drop", runDLQ},
		{"explain", "--tenant T <source id | email | Class id>", "the history of a person or class: messages, worker attempts, Class calls, trace ids", runExplain},
		{"resync", "--tenant T [--dry-run]", "publish the tenant's full desired state and remove what the source no longer has", runResync},
		{"approve", "--tenant T <held set id>", "release a change set held by the safety valve (shows its deletions first)", runApprove},
		{"reject", "--tenant T <held set id>", "discard a held change set: its entities stay in Class", runReject},
		{"pause", "--tenant T [--reason R]", "stop the tenant's polling and applying; nothing is lost", runPause},
		{"resume", "--tenant T", "start a paused tenant again", runResume},
		{"offboard", "--tenant T [--delete-from-class]", "stop a tenant for good, and optionally remove what this system created in its Class", runOffboard},
	}
}

func run(ctx context.Context, args []string, streams ioStreams) int {
	if helpAsked(args) {
		// Asked for, help is the output: `provisionctl help replay | less`.
		streams.err = streams.out
	}
	c := &cli{io: streams}
	fs := flag.NewFlagSet("provisionctl", flag.ContinueOnError)
	fs.SetOutput(streams.err)
	fs.StringVar(&c.cfgPath, "config", "", "path of the YAML configuration (or set "+config.EnvVar+")")
	fs.BoolVar(&c.json, "json", false, "print JSON instead of text")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Minute, "give up after this long")
	fs.Usage = func() { c.usage(fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		c.usage(fs)
		return exitUsage
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		streams.err = streams.out
		c.io.err = streams.out
		fs.SetOutput(streams.out)
		if len(rest) == 0 {
			c.usage(fs)
			return exitOK
		}
		name, rest = rest[0], []string{"--help"}
	}
	var cmd *command
	for _, k := range commands() {
		if k.name == name {
			cmd = &k
		}
	}
	if cmd == nil {
		fmt.Fprintf(streams.err, "provisionctl: unknown command %q\n", name)
		c.usage(fs)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := cmd.run(ctx, c, rest)
	if c.close != nil {
		c.close()
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(streams.err, "provisionctl %s: %v\n", name, err)
		return exitUsage
	default:
		fmt.Fprintf(streams.err, "provisionctl %s: %v\n", name, err)
		return exitFailed
	}
}

// helpAsked reports whether args ask for help with a flag (before "--"),
// or with the help command.
func helpAsked(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--h", "-help", "--help":
			return true
		}
	}
	return false
}

func (c *cli) usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintln(w, "usage: provisionctl [-config FILE] [--json] <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, k := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", k.name, k.summary)
	}
	fmt.Fprintln(w, "\nglobal flags:")
	fs.PrintDefaults()
	fmt.Fprintln(w, "\n`provisionctl help <command>` describes a command. Exit status: 0 done, 1 failed, 2 usage or configuration error.")
}

// flags returns a command's flag set, with the global output flags also
// accepted after the command name.
func (c *cli) flags(name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("provisionctl "+name, flag.ContinueOnError)
	fs.SetOutput(c.io.err)
	fs.BoolVar(&c.json, "json", c.json, "print JSON instead of text")
	fs.Usage = func() {
		fmt.Fprintf(c.io.err, "usage: provisionctl %s %s\n\n%s\n\nflags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and positional arguments in any order.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// open connects to NATS and the streams, once per invocation.
func (c *cli) open(ctx context.Context) (*ops.Env, error) {
	if c.env != nil {
		return c.env, nil
	}
	path, err := config.PathFromEnv(c.cfgPath)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, usageError{fmt.Sprintf("invalid configuration %s:\n%v", path, err)}
	}
	// The connection's own notices (reconnecting, closed at exit) are not
	// the operator's business; a failure reaches them as the command's error.
	log := slog.New(slog.NewTextHandler(c.io.err, &slog.HandlerOptions{Level: slog.LevelError}))
	nc, err := natsconn.Connect(cfg.NATS, "rollcall-provisionctl", log)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	env, err := ops.Open(ctx, js, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	env.Operator = operator()
	c.env, c.close = env, nc.Close
	if c.showProgress() {
		env.Progress = newProgressBar(c.io.err).update
	}
	return env, nil
}

func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "provisionctl:" + name + "@" + host
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (c *cli) showProgress() bool { return !c.json && isTerminal(c.io.err) }

// confirm asks before a change that deletes; --yes answers for scripts.
func (c *cli) confirm(question string) error {
	if c.yes {
		return nil
	}
	if !isTerminal(c.io.in) {
		return usagef("%s: refusing without --yes when not run from a terminal", question)
	}
	fmt.Fprintf(c.io.err, "%s Type yes to go on: ", question)
	var answer string
	_, _ = fmt.Fscanln(c.io.in, &answer)
	if strings.TrimSpace(answer) != "yes" {
		return errors.New("not confirmed; nothing was changed")
	}
	return nil
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.io.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cli) printf(format string, args ...any) { fmt.Fprintf(c.io.out, format, args...) }

// progressBar draws "[=====>    ] 12/40" on a terminal, at most ten times a
// second.
type progressBar struct {
	w    io.Writer
	last time.Time
}

func newProgressBar(w io.Writer) *progressBar { return &progressBar{w: w} }

func (p *progressBar) update(done, total int) {
	finished := total > 0 && done >= total
	if !finished && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	if total <= 0 {
		fmt.Fprintf(p.w, "\rread %d", done)
		return
	}
	const width = 30
	n := done * width / total
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	fmt.Fprintf(p.w, "\r[%s] %d/%d %3d%%", bar, done, total, done*100/total)
	if finished {
		fmt.Fprintln(p.w)
	}
}
