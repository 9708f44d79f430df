// Package deploy holds the deployment files; its tests check what can be
// checked without a container engine or a cluster: that every image is built
// here or pinned, every binary and flag exists, every configuration file loads
// with the strict parser the binaries use, and the files agree with each other
// (ports, paths, secrets, names).
package deploy

import (
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/rollcall/rollcall/internal/config"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func TestNATSConfigParsesWithSyncAlways(t *testing.T) {
	opts, err := server.ProcessConfigFile("nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || !opts.SyncAlways {
		t.Errorf("JetStream %v, SyncAlways %v: want both", opts.JetStream, opts.SyncAlways)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	raw, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, v := range envRefs(string(raw)) {
		env[v] = "value-of-" + strings.ToLower(v)
	}
	if _, err := config.Parse(raw, lookup(env)); err != nil {
		t.Errorf("config.example.yaml: %v", err)
	}
}

// The checks of the mounted configuration files rely on the parser refusing a
// key the binaries do not read; this keeps that assumption honest.
func TestConfigParserRejectsUnknownKeys(t *testing.T) {
	for _, doc := range []string{
		"nats: {url: nats://x:4222}\nbogus: 1\ntenants: [{id: a, class: {base_url: http://c, api_key: k, timezone: UTC}, datahub: {base_url: http://d, client_id: i, client_secret: s}}]\n",
		"nats: {url: nats://x:4222, bogus: 1}\ntenants: [{id: a, class: {base_url: http://c, api_key: k, timezone: UTC}, datahub: {base_url: http://d, client_id: i, client_secret: s}}]\n",
		"nats: {url: nats://x:4222}\ntenants: [{id: a, class: {base_url: http://c, api_key: k, timezone: UTC}, datahub: {base_url: http://d, client_id: i, client_secret: s, bogus: 1}}]\n",
	} {
		_, err := config.Parse([]byte(doc), lookup(nil))
		if err == nil || !strings.Contains(err.Error(), "bogus: unknown key") {
			t.Errorf("an unknown key is not refused by name: %v\n%s", err, doc)
		}
	}
}
