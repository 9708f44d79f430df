package config

import (
	"strings"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	vars := lookup(map[string]string{
		"A":     "alpha",
		"EMPTY": "",
		"REF":   "${A}",
		"_X1":   "x",
	})
	tests := []struct {
		in, want string
		used     bool
		err      string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha", used: true},
		{in: "pre-${A}-post", want: "pre-alpha-post", used: true},
		{in: "${A}${_X1}", want: "alphax", used: true},
		{in: "${MISSING:-fallback}", want: "fallback", used: true},
		{in: "${EMPTY:-fallback}", want: "fallback", used: true},
		{in: "${A:-fallback}", want: "alpha", used: true},
		{in: "${MISSING:-}", want: "", used: true},
		{in: "${EMPTY}", want: "", used: true},
		{in: "${MISSING:-a:-b}", want: "a:-b", used: true},
		{in: "${REF}", want: "${A}", used: true}, // values are not expanded again
		{in: "$${A}", want: "${A}"},
		{in: "cost: $5 $A $", want: "cost: $5 $A $"},
		{in: "${MISSING}", err: "environment variable MISSING is not set"},
		{in: "${M1}/${A}/${M2}", err: "environment variables M1, M2 are not set"},
		{in: "${A", err: `unterminated "${"`},
		{in: "${}", err: "malformed environment reference"},
		{in: "${1A}", err: "malformed environment reference"},
		{in: "${A-hunter2}", err: "malformed environment reference"},
		{in: "${A B}", err: "malformed environment reference"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, used, err := expandEnv(tt.in, vars)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("expandEnv(%q) = %q, want error %q", tt.in, got, tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("expandEnv(%q) error %q, want %q", tt.in, err, tt.err)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "alpha") {
					t.Errorf("error %q repeats a value", err)
				}
				return
			}
			if err != nil || got != tt.want || used != tt.used {
				t.Errorf("expandEnv(%q) = %q, %v, %v; want %q, %v, nil", tt.in, got, used, err, tt.want, tt.used)
			}
		})
	}
}

func TestParseExpandsEnvironment(t *testing.T) {
	t.Parallel()
	t.Run("missing variable names key and variable", func(t *testing.T) {
		t.Parallel()
		vars := map[string]string{"SPRINGFIELD_CLASS_KEY": "s3cr3t-value"}
		msg := parseErr(t, designYAML, vars)
		want := strings.Join([]string{
			"tenants[0].datahub.client_secret: environment variable SPRINGFIELD_DATAHUB_SECRET is not set (line 14)",
			"tenants[1].class.api_key: environment variable GREENWOOD_CLASS_KEY is not set (line 19)",
			"tenants[1].hubmis.client_secret: environment variable GREENWOOD_HUBMIS_SECRET is not set (line 24)",
		}, "\n")
		// Exactly these: no "required" repeated for the keys whose expansion failed.
		if msg != want {
			t.Errorf("error\n%s\nwant\n%s", msg, want)
		}
	})
	t.Run("defaults and numbers from the environment", func(t *testing.T) {
		t.Parallel()
		doc := edit(t, designYAML, "  url: nats://127.0.0.1:4222\n",
			"  url: ${NATS_URL:-nats://127.0.0.1:4222}\nworker:\n  concurrency: ${WORKER_CONCURRENCY}\n  ack_wait: \"${ACK_WAIT:-}\"\n")
		cfg := mustParse(t, doc, merge(designEnv, map[string]string{"WORKER_CONCURRENCY": "8"}))
		if cfg.NATS.URL != "nats://127.0.0.1:4222" || cfg.Worker.Concurrency != 8 || cfg.Worker.AckWait != AckWaitDefault {
			t.Errorf("nats.url %q, concurrency %d, ack_wait %s", cfg.NATS.URL, cfg.Worker.Concurrency, cfg.Worker.AckWait)
		}
		cfg = mustParse(t, doc, merge(designEnv, map[string]string{"WORKER_CONCURRENCY": "8", "NATS_URL": "nats://n1:4222", "ACK_WAIT": "1m"}))
		if cfg.NATS.URL != "nats://n1:4222" || cfg.Worker.AckWait.String() != "1m0s" {
			t.Errorf("nats.url %q, ack_wait %s", cfg.NATS.URL, cfg.Worker.AckWait)
		}
	})
	t.Run("a bad value from the environment is not shown", func(t *testing.T) {
		t.Parallel()
		doc := edit(t, designYAML, "  url: nats://127.0.0.1:4222\n", "  url: nats://127.0.0.1:4222\nworker:\n  concurrency: ${SPRINGFIELD_CLASS_KEY}\n")
		msg := parseErr(t, doc, merge(designEnv, map[string]string{"SPRINGFIELD_CLASS_KEY": "s3cr3t-value"}))
		if want := "worker.concurrency: the value from the environment is not a whole number (line 5)"; msg != want {
			t.Errorf("error\n%s\nwant\n%s", msg, want)
		}
	})
	t.Run("a secret holding YAML syntax stays a value", func(t *testing.T) {
		t.Parallel()
		nasty := "x\n- y: {z: [\n\"'${A}#"
		cfg := mustParse(t, designYAML, merge(designEnv, map[string]string{"GREENWOOD_CLASS_KEY": nasty}))
		if got := cfg.Tenants[1].Class.APIKey.Reveal(); got != nasty {
			t.Errorf("api_key = %q, want %q", got, nasty)
		}
	})
	t.Run("a literal ${ is written $${", func(t *testing.T) {
		t.Parallel()
		doc := edit(t, designYAML, "realm: S999", "realm: $${S999}")
		if got := mustParse(t, doc, designEnv).Tenants[1].HUBmis.Realm; got != "${S999}" {
			t.Errorf("realm = %q", got)
		}
	})
	t.Run("keys are not expanded", func(t *testing.T) {
		t.Parallel()
		doc := edit(t, designYAML, "nats:\n", "${TOP}: 1\nnats:\n")
		wantContains(t, parseErr(t, doc, merge(designEnv, map[string]string{"TOP": "lease_ttl"})), "${TOP}: unknown key (line 2)")
	})
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
