// Package deploy holds the deployment files; its test checks what can be
// checked without a container engine.
package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/rollcall/rollcall/internal/config"
)

func TestNATSConfigParsesWithSyncAlways(t *testing.T) {
	opts, err := server.ProcessConfigFile("nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || !opts.SyncAlways {
		t.Errorf("JetStream %v, SyncAlways %v: want both", opts.JetStream, opts.SyncAlways)
	}
}

func TestComposeMatchesTheProject(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Entrypoint  []string          `yaml:"entrypoint"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nats", "worker", "poller"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	example, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	needed := map[string]bool{}
	for _, line := range strings.Split(string(example), "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(line, -1) {
			needed[m[1]] = true
		}
	}
	for _, name := range []string{"worker", "poller"} {
		svc := compose.Services[name]
		bin := filepath.Base(svc.Entrypoint[len(svc.Entrypoint)-1])
		if _, err := os.Stat(filepath.Join("..", "cmd", bin)); err != nil {
			t.Errorf("service %s runs %s, which is not a command of this project", name, bin)
		}
		for v := range needed {
			if _, ok := svc.Environment[v]; !ok {
				t.Errorf("service %s does not pass %s, which the config needs", name, v)
			}
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			if strings.HasPrefix(v, "${") { // set by the operator's environment
				v = "value-of-" + strings.ToLower(k)
			}
			env[k] = v
		}
		if _, err := config.Parse(example, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
			t.Errorf("service %s: the mounted config does not load with its environment: %v", name, err)
		}
	}
}
