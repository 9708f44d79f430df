package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exampleFile is the sample configuration shipped for operators.
const exampleFile = "../../deploy/config.example.yaml"

func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"SPRINGFIELD_CLASS_KEY":      "k1",
		"SPRINGFIELD_DATAHUB_SECRET": "s1",
		"GREENWOOD_CLASS_KEY":        "k2",
		"GREENWOOD_HUBMIS_SECRET":    "s2",
	}
	cfg, err := load(exampleFile, lookup(vars))
	if err != nil {
		t.Fatalf("load %s: %v", exampleFile, err)
	}
	if cfg.NATS.URL != "nats://127.0.0.1:4222" || cfg.NATS.CredsFile != "" || cfg.Admin.Listen != "" {
		t.Errorf("nats/admin = %+v / %+v", cfg.NATS, cfg.Admin)
	}
	spring, ok := cfg.Tenant("springfield")
	if !ok || spring.Source() != SourceDataHub || spring.Class.Timezone != "America/Chicago" ||
		spring.DataHub.ClientSecret.Reveal() != "s1" || spring.DataHub.WebhookSecret.IsSet() {
		t.Errorf("springfield = %+v", spring)
	}
	green, ok := cfg.Tenant("greenwood")
	if !ok || green.Source() != SourceHUBmis || green.HUBmis.Realm != "S999" || green.DeletionPolicy != DeletePolicyGrace ||
		green.GraceSnapshots != 3 || green.HUBmis.LessonWindow != 336*time.Hour || green.Class.APIKey.Reveal() != "k2" {
		t.Errorf("greenwood = %+v", green)
	}

	// Without its secrets the example names each missing variable and its key.
	_, err = load(exampleFile, lookup(nil))
	if err == nil {
		t.Fatal("load without the environment: no error")
	}
	wantContains(t, err.Error(),
		"configuration ../../deploy/config.example.yaml:\n",
		"tenants[0].class.api_key: environment variable SPRINGFIELD_CLASS_KEY is not set",
		"tenants[1].hubmis.client_secret: environment variable GREENWOOD_HUBMIS_SECRET is not set",
	)
}

// These tests set process environment variables, so they do not run in parallel.

func TestLoadReadsTheEnvironment(t *testing.T) {
	t.Setenv("SPRINGFIELD_CLASS_KEY", "k1")
	t.Setenv("SPRINGFIELD_DATAHUB_SECRET", "s1")
	t.Setenv("GREENWOOD_CLASS_KEY", "k2")
	t.Setenv("GREENWOOD_HUBMIS_SECRET", "s2")
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(designYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := cfg.Tenants[1].HUBmis.ClientSecret.Reveal(); got != "s2" {
		t.Errorf("greenwood client_secret = %q, want s2", got)
	}

	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestPathFromEnv(t *testing.T) {
	t.Setenv(EnvVar, "/etc/rollcall/from-env.yaml")
	if got, err := PathFromEnv("/tmp/flag.yaml"); got != "/tmp/flag.yaml" || err != nil {
		t.Errorf("with a flag: %q, %v", got, err)
	}
	if got, err := PathFromEnv(""); got != "/etc/rollcall/from-env.yaml" || err != nil {
		t.Errorf("from the environment: %q, %v", got, err)
	}
	t.Setenv(EnvVar, "")
	got, err := PathFromEnv("")
	if err == nil || got != "" {
		t.Fatalf("with neither: %q, %v", got, err)
	}
	wantContains(t, err.Error(), "-config", EnvVar)
	if !strings.Contains(err.Error(), "PROVISION_CONFIG") {
		t.Errorf("error %q does not name PROVISION_CONFIG", err)
	}
}
