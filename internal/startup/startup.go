// Package startup is what every rollcall binary does before its own work:
// the common flags, the JSON logger at the chosen level, and the
// configuration, loaded and validated, with exit code 2 and the bad settings
// named when any of that fails.
package startup

import (
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
// own), builds the logger and loads the configuration. On failure it prints
// why to stderr and returns ok false: the binary exits with [ExitUsage].
func Load(name string, fs *flag.FlagSet, args []string, stderr io.Writer) (cfg *config.Config, log *slog.Logger, ok bool) {
	fs.SetOutput(stderr)
	var f Flags
	fs.StringVar(&f.ConfigPath, "config", "", "path of the YAML configuration (or set "+config.EnvVar+")")
	fs.StringVar(&f.LogLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, nil, false
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
		fmt.Fprintf(stderr, "%s: -log-level: %v\n", name, err)
		return nil, nil, false
	}
	// JSON, secrets and emails redacted, trace ids added.
	log = telemetry.NewLogger(stderr, level, "json")
	path, err := config.PathFromEnv(f.ConfigPath)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, nil, false
	}
	cfg, err = config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration %s:\n%v\n", name, path, err)
		return nil, nil, false
	}
	return cfg, log, true
}
