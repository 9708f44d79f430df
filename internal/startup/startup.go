// Package startup is what every rollcall binary does before its own work:
// the common flags, the JSON logger at the chosen level, and the
// configuration, loaded and validated, with exit code 2 and the bad settings
// named when any of that fails.
package startup

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/telemetry"
)

// ExitUsage is the exit code of a bad flag or configuration.
const ExitUsage = 2

// Flags are the common flags, parsed.
type Flags struct {
	ConfigPath string
	LogLevel   string
}

// Load parses args with fs (which the binary may have given flags of its
// own), builds the logger and loads the configuration. When ok is false the
// binary exits with exit: 0 after -help, [ExitUsage] after printing to
// stderr what was wrong.
func Load(name string, fs *flag.FlagSet, args []string, stderr io.Writer) (cfg *config.Config, log *slog.Logger, exit int, ok bool) {
	fs.SetOutput(stderr)
	var f Flags
	fs.StringVar(&f.ConfigPath, "config", "", "path of the YAML configuration (or set "+config.EnvVar+")")
	fs.StringVar(&f.LogLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, 0, false // as flag.ExitOnError does
		}
		return nil, nil, ExitUsage, false
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
		fmt.Fprintf(stderr, "%s: -log-level: %v\n", name, err)
		return nil, nil, ExitUsage, false
	}
	// JSON, secrets and emails redacted, trace ids added.
	log = telemetry.NewLogger(stderr, level, "json")
	path, err := config.PathFromEnv(f.ConfigPath)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, nil, ExitUsage, false
	}
	cfg, err = config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration %s:\n%v\n", name, path, err)
		return nil, nil, ExitUsage, false
	}
	return cfg, log, 0, true
}
