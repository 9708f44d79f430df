package config

import (
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic (the decoder walks YAML by
// reflection), that whatever it accepts also validates, and that a secret from the
// environment never reaches an error.
func FuzzParse(f *testing.F) {
	f.Add([]byte(designYAML))
	f.Add([]byte(fullYAML))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("x-a: &a {<<: *a}\nnats: {<<: *a}\n"))
	f.Add([]byte("tenants: [{<<: [{id: a}, {id: b}]}]\n"))
	f.Add([]byte("worker: {concurrency: ${A:-x}}\n"))
	vars := lookup(map[string]string{
		"SPRINGFIELD_CLASS_KEY":      "fuzz-secret-1",
		"SPRINGFIELD_DATAHUB_SECRET": "fuzz-secret-2",
		"GREENWOOD_CLASS_KEY":        "fuzz-secret-3",
		"GREENWOOD_HUBMIS_SECRET":    "fuzz-secret-4",
		"NATS_PASSWORD":              "fuzz-secret-5",
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, vars)
		if err != nil {
			msg := err.Error()
			for _, s := range []string{"fuzz-secret-1", "fuzz-secret-2", "fuzz-secret-3", "fuzz-secret-4", "fuzz-secret-5"} {
				if strings.Contains(msg, s) && !strings.Contains(string(data), s) {
					t.Fatalf("secret %s in error:\n%s", s, msg)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate refuses: %v", err)
		}
	})
}
