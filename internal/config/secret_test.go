package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const secretValue = "s3cr3t-value"

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := Secret(secretValue)
	if s.Reveal() != secretValue || !s.IsSet() || Secret("").IsSet() {
		t.Fatal("Reveal or IsSet is wrong")
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, &s))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(s), s.String(), s.GoString())
	j, _ := json.Marshal(map[string]Secret{"k": s})
	y, _ := yaml.Marshal(map[string]Secret{"k": s})
	txt, _ := s.MarshalText()
	outs = append(outs, string(j), string(y), string(txt), s.LogValue().String())
	for _, out := range outs {
		if strings.Contains(out, secretValue) || strings.Contains(out, fmt.Sprintf("%x", secretValue)) {
			t.Errorf("secret printed: %q", out)
		}
	}
	if got := fmt.Sprintf("%v", s); got != "[redacted]" {
		t.Errorf("%%v = %q, want [redacted]", got)
	}
}

// secretConfig parses a configuration every secret of which is secretValue.
func secretConfig(t *testing.T) *Config {
	t.Helper()
	doc := edit(t, fullYAML, "      webhook_secret: ${SPRINGFIELD_WEBHOOK}\n", "      webhook_secret: ${SPRINGFIELD_WEBHOOK}\n")
	vars := map[string]string{}
	for _, name := range []string{"NATS_PASSWORD", "SPRINGFIELD_CLASS_KEY", "SPRINGFIELD_DATAHUB_SECRET", "SPRINGFIELD_WEBHOOK", "GREENWOOD_CLASS_KEY", "GREENWOOD_HUBMIS_SECRET"} {
		vars[name] = secretValue
	}
	return mustParse(t, doc, vars)
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	cfg := secretConfig(t)
	if cfg.Tenants[0].DataHub.WebhookSecret.Reveal() != secretValue {
		t.Fatal("the test config does not hold the secret")
	}
	var outs []string
	tenantPtrs := []*Tenant{&cfg.Tenants[0], &cfg.Tenants[1]}
	for _, v := range []any{cfg, *cfg, &cfg.NATS, cfg.Tenants, tenantPtrs, cfg.Tenants[0], &cfg.Tenants[1].Class,
		*cfg.Tenants[0].DataHub, cfg.Tenants[0].DataHub, *cfg.Tenants[1].HUBmis, cfg.Tenants[1].HUBmis} {
		// %s and %q of a pointer are fmt's "bad verb" case, which skips the
		// String and Format methods of everything below it.
		outs = append(outs, fmt.Sprintf("%v %+v %#v %s %q %x %d", v, v, v, v, v, v, v))
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		y, err := yaml.Marshal(v)
		if err != nil {
			t.Fatalf("yaml.Marshal: %v", err)
		}
		outs = append(outs, string(j), string(y))
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("loaded", slog.Any("config", cfg), slog.Any("config_value", *cfg))
		log.Info("tenant", slog.Any("tenant", cfg.Tenants[0]), slog.Any("datahub", cfg.Tenants[0].DataHub),
			slog.Any("hubmis", cfg.Tenants[1].HUBmis), slog.Any("class", cfg.Tenants[1].Class), slog.Any("nats", cfg.NATS))
		outs = append(outs, buf.String())
	}
	for _, out := range outs {
		if strings.Contains(out, secretValue) {
			t.Errorf("secret printed in:\n%s", out)
		}
	}
}

func TestLogValueSummarisesTheConfig(t *testing.T) {
	t.Parallel()
	cfg := secretConfig(t)
	cfg.NATS.URL = "nats://user:" + secretValue + "@n1:4222,nats://n2:4222" // as if unvalidated
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "config", cfg)
	var line struct {
		Config struct {
			NATS struct {
				URL            string `json:"url"`
				StreamReplicas int    `json:"stream_replicas"`
				Password       bool   `json:"password"`
			} `json:"nats"`
			Tenants map[string]struct {
				Source string `json:"source"`
				Realm  string `json:"realm"`
			} `json:"tenants"`
		} `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %s: %v", buf.String(), err)
	}
	c := line.Config
	if c.NATS.URL != "nats://redacted@n1:4222,nats://n2:4222" || c.NATS.StreamReplicas != 3 || !c.NATS.Password {
		t.Errorf("nats in the log = %+v", c.NATS)
	}
	if c.Tenants["springfield"].Source != SourceDataHub || c.Tenants["greenwood-2"].Realm != "S999" {
		t.Errorf("tenants in the log = %+v", c.Tenants)
	}
	if strings.Contains(buf.String(), secretValue) {
		t.Errorf("secret in the log line: %s", buf.String())
	}
}

func TestErrorsNeverHoldSecrets(t *testing.T) {
	t.Parallel()
	// Every secret set, everything else wrong, including settings that take their
	// value from the same variables.
	doc := `
nats:
  url: nats://u:${PW}@n1:4222
  password: ${PW}
  stream_replicas: ${PW}
worker:
  concurrency: ${PW}
tenants:
  - id: ${PW}
    deletion_policy: ${PW}
    max_delete_share: ${PW}
    class:
      base_url: https://${PW}@class.example/?k=${PW}
      api_key: ${PW}
      timezone: ${PW}
    datahub:
      base_url: ${PW}
      client_secret: ${PW}
      webhook_secret: ${PW}
      poll_interval: ${PW}
      token_path: "https://x/${PW}"
    hubmis:
      client_secret: ${PW}
      realm: ${MISSING}
`
	_, err := Parse([]byte(doc), lookup(map[string]string{"PW": secretValue}))
	if err == nil {
		t.Fatal("Parse: no error")
	}
	if strings.Contains(err.Error(), secretValue) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), secretValue) {
		t.Errorf("a secret is in the error:\n%v", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n < 10 {
		t.Errorf("only %d problems reported:\n%v", n, err)
	}
}
