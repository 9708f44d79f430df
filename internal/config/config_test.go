package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// designYAML is the example of DESIGN.md's "Configuration" section, as written there.
const designYAML = `
nats:
  url: nats://127.0.0.1:4222
tenants:
  - id: springfield                 # [a-z0-9-]+, used in subjects and external ids
    deletion_policy: delete         # delete | ignore | grace
    class:
      base_url: https://springfield.class.com
      api_key: ${SPRINGFIELD_CLASS_KEY}
      timezone: America/Chicago
    datahub:
      base_url: https://datahub.example.org
      client_id: abc123
      client_secret: ${SPRINGFIELD_DATAHUB_SECRET}
      poll_interval: 5s
  - id: greenwood
    class:
      base_url: https://greenwood.class.com
      api_key: ${GREENWOOD_CLASS_KEY}
      timezone: Europe/London
    hubmis:
      base_url: https://api.hubmis.com
      client_id: client123
      client_secret: ${GREENWOOD_HUBMIS_SECRET}
      realm: S999
      snapshot_interval: 15m
`

// designEnv holds the variables designYAML refers to.
var designEnv = map[string]string{
	"SPRINGFIELD_CLASS_KEY":      "springfield-class-key",
	"SPRINGFIELD_DATAHUB_SECRET": "springfield-datahub-secret",
	"GREENWOOD_CLASS_KEY":        "greenwood-class-key",
	"GREENWOOD_HUBMIS_SECRET":    "greenwood-hubmis-secret",
}

// lookup returns a lookupEnv function over vars.
func lookup(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// edit returns doc with old replaced by new exactly once, failing the test if old is not
// in doc exactly once (so a table entry cannot silently test nothing).
func edit(t *testing.T, doc, old, new string) string {
	t.Helper()
	if n := strings.Count(doc, old); n != 1 {
		t.Fatalf("edit: %q occurs %d times in the document, want 1", old, n)
	}
	return strings.Replace(doc, old, new, 1)
}

// mustParse parses doc and fails the test on any error.
func mustParse(t *testing.T, doc string, vars map[string]string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(doc), lookup(vars))
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return cfg
}

// parseErr parses doc, fails the test if it succeeds, and returns the error's text.
func parseErr(t *testing.T, doc string, vars map[string]string) string {
	t.Helper()
	cfg, err := Parse([]byte(doc), lookup(vars))
	if err == nil {
		t.Fatalf("Parse: no error, want one; got config %+v", cfg)
	}
	if cfg != nil {
		t.Errorf("Parse returned a config with an error")
	}
	return err.Error()
}

// keyErrors returns the keys of the [*KeyError]s joined in err.
func keyErrors(t *testing.T, err error) []string {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v is not a joined error", err)
	}
	var keys []string
	for _, e := range joined.Unwrap() {
		var ke *KeyError
		if !errors.As(e, &ke) {
			t.Fatalf("error %q is not a *KeyError", e)
		}
		keys = append(keys, ke.Key)
	}
	return keys
}

func wantContains(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("error does not contain %q; it is:\n%s", w, got)
		}
	}
}

func TestParseDesignExampleFillsDefaults(t *testing.T) {
	t.Parallel()
	got := mustParse(t, designYAML, designEnv)
	want := &Config{
		NATS: NATS{
			URL:             "nats://127.0.0.1:4222",
			StreamReplicas:  StreamReplicasDefault,
			StreamMaxAge:    StreamMaxAgeDefault,
			DuplicateWindow: DuplicateWindowDefault,
		},
		LeaseTTL: LeaseTTLDefault, HUBmisEgress: HUBmisEgressDefault,
		Worker: Worker{
			Concurrency:       ConcurrencyDefault,
			AckWait:           AckWaitDefault,
			MaxAttempts:       MaxAttemptsDefault,
			MaxAge:            MaxAgeDefault,
			BackoffInitial:    BackoffInitialDefault,
			BackoffMax:        BackoffMaxDefault,
			AuthProbeInterval: AuthProbeIntervalDefault,
			ConflictGrace:     ConflictGraceDefault,
		},
		Tenants: []Tenant{
			{
				ID:             "springfield",
				DeletionPolicy: DeletePolicyDelete,
				MaxDeleteShare: MaxDeleteShareDefault,
				Class: Class{
					BaseURL:  "https://springfield.class.com",
					APIKey:   "springfield-class-key",
					Timezone: "America/Chicago",
				},
				DataHub: &DataHub{
					BaseURL:      "https://datahub.example.org",
					ClientID:     "abc123",
					ClientSecret: "springfield-datahub-secret",
					TokenPath:    TokenPathDefault,
					PollInterval: 5 * time.Second,
				},
			},
			{
				ID:             "greenwood",
				DeletionPolicy: DeletionPolicyDefault,
				MaxDeleteShare: MaxDeleteShareDefault,
				Class: Class{
					BaseURL:  "https://greenwood.class.com",
					APIKey:   "greenwood-class-key",
					Timezone: "Europe/London",
				},
				HUBmis: &HUBmis{
					BaseURL:            "https://api.hubmis.com",
					ClientID:           "client123",
					ClientSecret:       "greenwood-hubmis-secret",
					Realm:              "S999",
					SnapshotInterval:   15 * time.Minute,
					PageSize:           PageSizeDefault,
					LessonWindow:       LessonWindowDefault,
					RefreshEveryCycles: RefreshEveryCyclesDefault,
					RequestBudget:      RequestBudgetDefault,
				},
			},
		},
	}
	assertConfig(t, got, want)

	if err := got.Validate(); err != nil {
		t.Errorf("Validate of a parsed config: %v", err)
	}
	if s := got.Tenants[0].Source(); s != SourceDataHub {
		t.Errorf("springfield Source() = %q, want %q", s, SourceDataHub)
	}
	if s := got.Tenants[1].Source(); s != SourceHUBmis {
		t.Errorf("greenwood Source() = %q, want %q", s, SourceHUBmis)
	}
}

// assertConfig compares two configs, revealing secrets in the report since fmt redacts
// them (test values only).
func assertConfig(t *testing.T, got, want *Config) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	t.Errorf("config differs\n got: %s\nwant: %s", dump(got), dump(want))
}

// dump prints a config with its secrets revealed (test values only), one section a line.
func dump(c *Config) string {
	lines := []string{
		fmt.Sprintf("nats=%+v tls=%+v password=%q", c.NATS, c.NATS.TLS, c.NATS.Password.Reveal()),
		fmt.Sprintf("admin=%+v lease_ttl=%s hubmis_egress=%s worker=%+v", c.Admin, c.LeaseTTL, c.HUBmisEgress, c.Worker),
	}
	for i, t := range c.Tenants {
		lines = append(lines, fmt.Sprintf("tenants[%d]=%+v api_key=%q", i, t, t.Class.APIKey.Reveal()))
		if dh := t.DataHub; dh != nil {
			lines = append(lines, fmt.Sprintf("  datahub=%+v secret=%q webhook=%q", *dh, dh.ClientSecret.Reveal(), dh.WebhookSecret.Reveal()))
		}
		if hm := t.HUBmis; hm != nil {
			lines = append(lines, fmt.Sprintf("  hubmis=%+v secret=%q", *hm, hm.ClientSecret.Reveal()))
		}
	}
	return strings.Join(lines, "\n      ")
}

const fullYAML = `
nats:
  url: nats://a.example:4222, tls://b.example:4222
  user: rollcall
  password: ${NATS_PASSWORD}
  tls: {ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem}
  stream_replicas: 3
  stream_max_age: 240h
  duplicate_window: 3h
admin:
  listen: 127.0.0.1:9191
lease_ttl: 20s
hubmis_egress: office-nat
worker:
  concurrency: 64
  ack_wait: 45s
  max_attempts: 10
  max_age: 12h
  backoff_initial: 2s
  backoff_max: 10m
  auth_probe_interval: 1m
  conflict_grace: 1h
tenants:
  - id: springfield
    deletion_policy: grace
    grace_period: 48h
    max_delete_share: 0.5
    class:
      base_url: https://springfield.class.com
      api_key: ${SPRINGFIELD_CLASS_KEY}
      timezone: America/Chicago
    datahub:
      base_url: https://datahub.example.org/
      client_id: abc123
      client_secret: ${SPRINGFIELD_DATAHUB_SECRET}
      token_path: oauth/auth
      webhook_secret: ${SPRINGFIELD_WEBHOOK}
      poll_interval: 10s
      district_id: 4fd43cc56d11340000000005
  - id: greenwood-2
    deletion_policy: ignore
    max_delete_share: 1
    class:
      base_url: http://127.0.0.1:8080
      api_key: ${GREENWOOD_CLASS_KEY}
    hubmis:
      base_url: https://api.hubmis.com
      client_id: client123
      client_secret: ${GREENWOOD_HUBMIS_SECRET}
      realm: S999
      academic_year_id: "2025"
      snapshot_interval: 30m
      page_size: 250
      lesson_window: 168h
      refresh_every_cycles: 2
      request_budget: 400
`

func TestParseFullFileKeepsEverySetting(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"NATS_PASSWORD":              "nats-pw",
		"SPRINGFIELD_CLASS_KEY":      "k1",
		"SPRINGFIELD_DATAHUB_SECRET": "s1",
		"SPRINGFIELD_WEBHOOK":        "w1",
		"GREENWOOD_CLASS_KEY":        "k2",
		"GREENWOOD_HUBMIS_SECRET":    "s2",
	}
	got := mustParse(t, fullYAML, vars)
	want := &Config{
		NATS: NATS{
			URL:             "nats://a.example:4222, tls://b.example:4222",
			User:            "rollcall",
			Password:        "nats-pw",
			TLS:             &TLS{CAFile: "/etc/ca.pem", CertFile: "/etc/c.pem", KeyFile: "/etc/k.pem"},
			StreamReplicas:  3,
			StreamMaxAge:    240 * time.Hour,
			DuplicateWindow: 3 * time.Hour,
		},
		Admin:    Admin{Listen: "127.0.0.1:9191"},
		LeaseTTL: 20 * time.Second, HUBmisEgress: "office-nat",
		Worker: Worker{
			Concurrency:       64,
			AckWait:           45 * time.Second,
			MaxAttempts:       10,
			MaxAge:            12 * time.Hour,
			BackoffInitial:    2 * time.Second,
			BackoffMax:        10 * time.Minute,
			AuthProbeInterval: time.Minute,
			ConflictGrace:     time.Hour,
		},
		Tenants: []Tenant{
			{
				ID:             "springfield",
				DeletionPolicy: DeletePolicyGrace,
				GracePeriod:    48 * time.Hour,
				MaxDeleteShare: 0.5,
				Class:          Class{BaseURL: "https://springfield.class.com", APIKey: "k1", Timezone: "America/Chicago"},
				DataHub: &DataHub{
					BaseURL:       "https://datahub.example.org/",
					ClientID:      "abc123",
					ClientSecret:  "s1",
					TokenPath:     "oauth/auth",
					WebhookSecret: "w1",
					PollInterval:  10 * time.Second,
					DistrictID:    "4fd43cc56d11340000000005",
				},
			},
			{
				ID:             "greenwood-2",
				DeletionPolicy: DeletePolicyIgnore,
				MaxDeleteShare: 1,
				Class:          Class{BaseURL: "http://127.0.0.1:8080", APIKey: "k2"},
				HUBmis: &HUBmis{
					BaseURL:            "https://api.hubmis.com",
					ClientID:           "client123",
					ClientSecret:       "s2",
					Realm:              "S999",
					AcademicYearID:     "2025",
					SnapshotInterval:   30 * time.Minute,
					PageSize:           250,
					LessonWindow:       168 * time.Hour,
					RefreshEveryCycles: 2,
					RequestBudget:      400,
				},
			},
		},
	}
	assertConfig(t, got, want)
}

func TestParseGraceDefaultsFollowTheSource(t *testing.T) {
	t.Parallel()
	doc := edit(t, designYAML, "    deletion_policy: delete ", "    deletion_policy: grace ")
	doc = edit(t, doc, "  - id: greenwood\n", "  - id: greenwood\n    deletion_policy: grace\n")
	cfg := mustParse(t, doc, designEnv)
	if got := cfg.Tenants[0]; got.GracePeriod != GracePeriodDefault || got.GraceSnapshots != 0 {
		t.Errorf("datahub tenant: grace_period %s, grace_snapshots %d; want %s and 0", got.GracePeriod, got.GraceSnapshots, GracePeriodDefault)
	}
	if got := cfg.Tenants[1]; got.GraceSnapshots != GraceSnapshotsDefault || got.GracePeriod != 0 {
		t.Errorf("hubmis tenant: grace_snapshots %d, grace_period %s; want %d and 0", got.GraceSnapshots, got.GracePeriod, GraceSnapshotsDefault)
	}
}

func TestParseNamesEachMissingRequiredKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key      string // the key reported
		old, new string // the edit of designYAML that drops it
	}{
		{"nats.url", "  url: nats://127.0.0.1:4222\n", ""},
		{"tenants[0].id", "  - id: springfield                 # [a-z0-9-]+, used in subjects and external ids\n    deletion_policy", "  - deletion_policy"},
		{"tenants[0].class.base_url", "      base_url: https://springfield.class.com\n", ""},
		{"tenants[0].class.api_key", "      api_key: ${SPRINGFIELD_CLASS_KEY}\n", ""},
		{"tenants[0].class.timezone", "      timezone: America/Chicago\n", ""},
		{"tenants[0].datahub.base_url", "      base_url: https://datahub.example.org\n", ""},
		{"tenants[0].datahub.client_id", "      client_id: abc123\n", ""},
		{"tenants[0].datahub.client_secret", "      client_secret: ${SPRINGFIELD_DATAHUB_SECRET}\n", ""},
		{"tenants[1].id", "  - id: greenwood\n    class:", "  - class:"},
		{"tenants[1].class.base_url", "      base_url: https://greenwood.class.com\n", ""},
		{"tenants[1].class.api_key", "      api_key: ${GREENWOOD_CLASS_KEY}\n", ""},
		{"tenants[1].hubmis.base_url", "      base_url: https://api.hubmis.com\n", ""},
		{"tenants[1].hubmis.client_id", "      client_id: client123\n", ""},
		{"tenants[1].hubmis.client_secret", "      client_secret: ${GREENWOOD_HUBMIS_SECRET}\n", ""},
		{"tenants[1].hubmis.realm", "      realm: S999\n", ""},
		// An empty value is as good as none.
		{"tenants[1].hubmis.realm", "      realm: S999\n", "      realm: \"\"\n"},
		{"tenants[0].class.api_key", "      api_key: ${SPRINGFIELD_CLASS_KEY}\n", "      api_key: ${EMPTY}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"EMPTY": ""}
			for k, v := range designEnv {
				vars[k] = v
			}
			msg := parseErr(t, edit(t, designYAML, tt.old, tt.new), vars)
			if want := tt.key + ": required"; !strings.Contains(msg, want) {
				t.Errorf("error does not name %q; it is:\n%s", want, msg)
			}
			if n := strings.Count(msg, "\n") + 1; n != 1 {
				t.Errorf("want exactly one problem, got %d:\n%s", n, msg)
			}
		})
	}
}

func TestParseReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	const doc = `
nats: {}
worker:
  concurrency: 5000
tenants:
  - class: {}
    hubmis: {}
  - id: Bad_ID
    class:
      base_url: ftp://x.example
      api_key: k
      timezone: Mars/Base
`
	_, err := Parse([]byte(doc), lookup(nil))
	if err == nil {
		t.Fatal("Parse: no error")
	}
	got := keyErrors(t, err)
	want := []string{
		"nats.url",
		"worker.concurrency",
		"tenants[0].id",
		"tenants[0].class.base_url",
		"tenants[0].class.api_key",
		"tenants[0].hubmis.base_url",
		"tenants[0].hubmis.client_id",
		"tenants[0].hubmis.client_secret",
		"tenants[0].hubmis.realm",
		"tenants[1].id",
		"tenants[1].class.base_url",
		"tenants[1].class.timezone",
		"tenants[1]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems reported for keys\n%q\nwant\n%q\nerror:\n%v", got, want, err)
	}
	wantContains(t, err.Error(),
		"nats.url: required",
		"worker.concurrency: must be between 1 and 4096, not 5000 (line 4)",
		"tenants[0].hubmis.realm: required",
		`tenants[1].class.timezone: unknown time zone "Mars/Base" (line 12)`,
		"tenants[1]: exactly one source (datahub or hubmis) is required (line 8)",
	)
}

func TestParseRejectsUnknownKeysNamingTheLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{"top level", "nats:\n", "natz: {}\nnats:\n", "natz: unknown key (line 2)"},
		{"in nats", "  url: nats://127.0.0.1:4222\n", "  url: nats://127.0.0.1:4222\n  urls: nats://x\n", "nats.urls: unknown key (line 4)"},
		{"in a tenant's class", "      timezone: Europe/London\n", "      timezone: Europe/London\n      time_zone: UTC\n", "tenants[1].class.time_zone: unknown key (line 21)"},
		{"a key of the other source", "      snapshot_interval: 15m\n", "      snapshot_interval: 15m\n      poll_interval: 5s\n", "tenants[1].hubmis.poll_interval: unknown key (line 27)"},
		{"written twice", "      realm: S999\n", "      realm: S999\n      realm: S998\n", "tenants[1].hubmis.realm: written twice, first at line 25 (line 26)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := parseErr(t, edit(t, designYAML, tt.old, tt.new), designEnv)
			if msg != tt.want {
				t.Errorf("error\n%s\nwant\n%s", msg, tt.want)
			}
		})
	}
}

func TestParseChecksTenantIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		want string // "" for a valid id
	}{
		{"springfield", ""},
		{"a", ""},
		{"district-9", ""},
		{strings.Repeat("a", 64), ""},
		{strings.Repeat("a", 65), "tenants[0].id: must be at most 64 characters, not 65"},
		{"Springfield", `tenants[0].id: "Springfield" must be lower-case letters, digits and hyphens`},
		{"spring_field", `tenants[0].id: "spring_field" must be`},
		{"spring.field", `tenants[0].id: "spring.field" must be`},
		{`"spring field"`, `tenants[0].id: "spring field" must be`},
		{`""`, "tenants[0].id: required"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			doc := edit(t, designYAML, "  - id: springfield ", "  - id: "+tt.id+" ")
			_, err := Parse([]byte(doc), lookup(designEnv))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("id %s refused: %v", tt.id, err)
			case tt.want != "" && err == nil:
				t.Errorf("id %s accepted, want %q", tt.id, tt.want)
			case tt.want != "":
				wantContains(t, err.Error(), tt.want)
			}
		})
	}
}

func TestParseRejectsDuplicateTenantIDs(t *testing.T) {
	t.Parallel()
	doc := edit(t, designYAML, "  - id: greenwood\n", "  - id: springfield\n")
	msg := parseErr(t, doc, designEnv)
	if want := `tenants[1].id: "springfield" is already the id of tenants[0] (line 16)`; msg != want {
		t.Errorf("error\n%s\nwant\n%s", msg, want)
	}
}

func TestParseWantsExactlyOneSource(t *testing.T) {
	t.Parallel()
	const hubmis = `    hubmis:
      base_url: https://api.hubmis.com
      client_id: client123
      client_secret: ${GREENWOOD_HUBMIS_SECRET}
      realm: S999
      snapshot_interval: 15m
`
	tests := []struct {
		name     string
		old, new string
	}{
		{"neither", hubmis, ""},
		{"both", "      poll_interval: 5s\n", "      poll_interval: 5s\n" + hubmis},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := parseErr(t, edit(t, designYAML, tt.old, tt.new), designEnv)
			wantContains(t, msg, "exactly one source (datahub or hubmis) is required")
			if n := strings.Count(msg, "\n") + 1; n != 1 {
				t.Errorf("want exactly one problem, got %d:\n%s", n, msg)
			}
		})
	}
	t.Run("empty section", func(t *testing.T) {
		t.Parallel()
		// A source written with nothing under it is present: its keys are required.
		msg := parseErr(t, edit(t, designYAML, hubmis, "    hubmis:\n"), designEnv)
		wantContains(t, msg, "tenants[1].hubmis.base_url: required", "tenants[1].hubmis.realm: required")
		if strings.Contains(msg, "exactly one source") {
			t.Errorf("an empty hubmis: section counted as no source:\n%s", msg)
		}
	})
}

func TestParseChecksTimezones(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tz   string
		want string
	}{
		{"Europe/London", ""},
		{"UTC", ""},
		{"Mars/Base", `tenants[1].class.timezone: unknown time zone "Mars/Base" (line 20)`},
		{"../../etc/passwd", `tenants[1].class.timezone: unknown time zone "../../etc/passwd" (line 20)`},
		{"Local", `tenants[1].class.timezone: must name an IANA time zone such as Europe/London, not "Local" (line 20)`},
	}
	for _, tt := range tests {
		t.Run(tt.tz, func(t *testing.T) {
			t.Parallel()
			doc := edit(t, designYAML, "timezone: Europe/London", "timezone: "+tt.tz)
			_, err := Parse([]byte(doc), lookup(designEnv))
			if tt.want == "" {
				if err != nil {
					t.Errorf("time zone %s refused: %v", tt.tz, err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %s", err, tt.want)
			}
		})
	}
	t.Run("optional for hubmis", func(t *testing.T) {
		t.Parallel()
		cfg := mustParse(t, edit(t, designYAML, "      timezone: Europe/London\n", ""), designEnv)
		if tz := cfg.Tenants[1].Class.Timezone; tz != "" {
			t.Errorf("timezone = %q, want empty", tz)
		}
	})
}

func TestParseChecksURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want string // "" for a valid URL
	}{
		{"https://greenwood.class.com", ""},
		{"http://127.0.0.1:8080/class", ""},
		{"greenwood.class.com", "must be an absolute http:// or https:// URL"},
		{"ftp://greenwood.class.com", "must be an absolute http:// or https:// URL"},
		{"https://", "has no host"},
		{"https://user:hunter2@greenwood.class.com", "must not hold credentials"},
		{"https://greenwood.class.com/?key=hunter2", "must not have a query or fragment"},
		{"'https://greenwood class.com:x'", "is not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			doc := edit(t, designYAML, "base_url: https://greenwood.class.com", "base_url: "+tt.url)
			_, err := Parse([]byte(doc), lookup(designEnv))
			if tt.want == "" {
				if err != nil {
					t.Errorf("URL %s refused: %v", tt.url, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("URL %s accepted", tt.url)
			}
			wantContains(t, err.Error(), "tenants[1].class.base_url: "+tt.want)
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats the URL's credentials: %v", err)
			}
		})
	}
}

func TestParseChecksNATSURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want string
	}{
		{"nats://127.0.0.1:4222", ""},
		{"nats://a:4222,nats://b:4222", ""},
		{"tls://nats.example:4222", ""},
		{"127.0.0.1:4222", "nats.url: must be a nats://"},
		{"http://nats.example", "nats.url: must be a nats://"},
		{"nats://u:hunter2@nats.example:4222", "nats.url: must not hold credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			doc := edit(t, designYAML, "url: nats://127.0.0.1:4222", "url: "+tt.url)
			_, err := Parse([]byte(doc), lookup(designEnv))
			if tt.want == "" {
				if err != nil {
					t.Errorf("URL %s refused: %v", tt.url, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("URL %s accepted", tt.url)
			}
			wantContains(t, err.Error(), tt.want)
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats the URL's credentials: %v", err)
			}
		})
	}
}

func TestParseChecksRangesAndValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{"not a number", "nats:\n", "worker:\n  concurrency: lots\nnats:\n", `worker.concurrency: "lots" is not a whole number (line 3)`},
		{"not a duration", "poll_interval: 5s", "poll_interval: 5", `tenants[0].datahub.poll_interval: "5" is not a duration such as 90s, 15m or 24h (line 15)`},
		{"explicit zero", "poll_interval: 5s", "poll_interval: 0s", "tenants[0].datahub.poll_interval: must be greater than 0 (leave the key out for the default) (line 15)"},
		{"explicit zero share", "    deletion_policy: delete ", "    max_delete_share: 0\n    deletion_policy: delete ", "tenants[0].max_delete_share: must be greater than 0"},
		{"poll too fast", "poll_interval: 5s", "poll_interval: 500ms", "tenants[0].datahub.poll_interval: must be at least 1s, not 500ms (line 15)"},
		{"snapshot too fast", "snapshot_interval: 15m", "snapshot_interval: 30s", "tenants[1].hubmis.snapshot_interval: must be at least 1m0s, not 30s (line 26)"},
		{"share above 1", "    deletion_policy: delete ", "    max_delete_share: 1.5\n    deletion_policy: delete ", "tenants[0].max_delete_share: must be above 0 and at most 1, not 1.5 (line 6)"},
		{"negative share", "    deletion_policy: delete ", "    max_delete_share: -0.1\n    deletion_policy: delete ", "tenants[0].max_delete_share: must be above 0 and at most 1, not -0.1"},
		{"unknown policy", "deletion_policy: delete", "deletion_policy: purge", `tenants[0].deletion_policy: must be delete, ignore or grace, not "purge" (line 6)`},
		{"grace snapshots on datahub", "    deletion_policy: delete ", "    grace_snapshots: 2\n    deletion_policy: grace ", "tenants[0].grace_snapshots: applies to hubmis tenants only"},
		{"grace period on hubmis", "  - id: greenwood\n", "  - id: greenwood\n    deletion_policy: grace\n    grace_period: 1h\n", "tenants[1].grace_period: applies to datahub tenants only"},
		{"grace snapshots without grace", "  - id: greenwood\n", "  - id: greenwood\n    grace_snapshots: 2\n", "tenants[1].grace_snapshots: applies only with deletion_policy: grace"},
		{"page size", "snapshot_interval: 15m", "snapshot_interval: 15m\n      page_size: 20000", "tenants[1].hubmis.page_size: must be between 1 and 10000, not 20000"},
		{"replicas", "nats:\n", "nats:\n  stream_replicas: 2\n", "nats.stream_replicas: must be 1, 3 or 5, not 2 (line 3)"},
		{"duplicate window short", "nats:\n", "nats:\n  duplicate_window: 30s\n", "nats.duplicate_window: must be at least 1m0s, not 30s"},
		{"duplicate window beyond retention", "nats:\n", "nats:\n  stream_max_age: 2h\n  duplicate_window: 3h\n", "nats.duplicate_window: must not exceed nats.stream_max_age (2h0m0s)"},
		{"backoff", "nats:\n", "worker:\n  backoff_initial: 10s\n  backoff_max: 5s\nnats:\n", "worker.backoff_max: must be at least worker.backoff_initial (10s), not 5s (line 4)"},
		{"conflict grace beyond max age", "nats:\n", "worker:\n  max_age: 1h\n  conflict_grace: 2h\nnats:\n", "worker.conflict_grace: must not exceed worker.max_age (1h0m0s), not 2h0m0s (line 4)"},
		{"admin listen", "nats:\n", "admin:\n  listen: localhost\nnats:\n", "admin.listen: must be host:port"},
		{"token path", "poll_interval: 5s", "poll_interval: 5s\n      token_path: https://evil.example/token", "tenants[0].datahub.token_path: must be a path relative to datahub.base_url"},
		{"district id out of its segment", "poll_interval: 5s", "poll_interval: 5s\n      district_id: ../teachers", `tenants[0].datahub.district_id: "../teachers" must be letters, digits, hyphens and underscores (^[A-Za-z0-9_-]+$)`},
		{"district id with a space", "poll_interval: 5s", "poll_interval: 5s\n      district_id: \"4fd4 3cc5\"", `tenants[0].datahub.district_id: "4fd4 3cc5" must be letters`},
		{"district id too long", "poll_interval: 5s", "poll_interval: 5s\n      district_id: " + strings.Repeat("a", 65), "tenants[0].datahub.district_id: must be at most 64 characters, not 65"},
		{"hubmis egress with a dot", "nats:\n", "hubmis_egress: office.nat\nnats:\n", `hubmis_egress: "office.nat" must be 1 to 64 letters, digits, hyphens and underscores`},
		{"password without user", "nats:\n", "nats:\n  password: p\n", "nats.user: required with nats.password"},
		{"tls key without cert", "nats:\n", "nats:\n  tls: {key_file: k.pem}\n", "nats.tls.cert_file: required with nats.tls.key_file"},
		{"section of the wrong shape", "nats:\n", "worker: 32\nnats:\n", "worker: must be a mapping of keys, not a single value (line 2)"},
		{"list of the wrong shape", "      realm: S999", "      realm: [S999]", "tenants[1].hubmis.realm: must be a single value, not a list (line 25)"},
		{"tenants not a list", "tenants:\n", "tenants: {}\nx-old:\n", "tenants: must be a list, not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := parseErr(t, edit(t, designYAML, tt.old, tt.new), designEnv)
			wantContains(t, msg, tt.want)
		})
	}
}

func TestParseWholeDocumentErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, want string
	}{
		{"empty", "", "the configuration is empty"},
		{"comments only", "# nothing\n", "the configuration is empty"},
		{"a list", "- nats\n", "line 1: the configuration must be a mapping"},
		{"two documents", designYAML + "---\nnats: {}\n", "must be a single YAML document"},
		{"syntax", "nats:\n  url: [\n", "yaml: "},
		{"no tenants", "nats:\n  url: nats://127.0.0.1:4222\n", "tenants: at least one tenant is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantContains(t, parseErr(t, tt.doc, designEnv), tt.want)
		})
	}
}

func TestParseMergesAnchorsAndIgnoresXKeys(t *testing.T) {
	t.Parallel()
	const doc = `
x-class: &class
  base_url: https://shared.class.com
  api_key: ${CLASS_KEY}
  timezone: Europe/London
x-hubmis: &hubmis
  base_url: https://api.hubmis.com
  client_id: client123
  client_secret: ${HUBMIS_SECRET}
nats:
  url: nats://127.0.0.1:4222
tenants:
  - id: one
    class: *class
    hubmis:
      <<: *hubmis
      realm: S1
  - id: two
    class:
      <<: *class
      timezone: Europe/Dublin
    hubmis:
      <<: [*hubmis]
      realm: S2
      client_id: other
`
	cfg := mustParse(t, doc, map[string]string{"CLASS_KEY": "ck", "HUBMIS_SECRET": "hs"})
	one, two := cfg.Tenants[0], cfg.Tenants[1]
	if one.Class.BaseURL != "https://shared.class.com" || one.Class.APIKey.Reveal() != "ck" || one.Class.Timezone != "Europe/London" {
		t.Errorf("tenant one's class = %+v", one.Class)
	}
	if two.Class.BaseURL != "https://shared.class.com" || two.Class.Timezone != "Europe/Dublin" {
		t.Errorf("tenant two's class = %+v; an explicit key must win over a merged one", two.Class)
	}
	if one.HUBmis.ClientID != "client123" || one.HUBmis.Realm != "S1" || one.HUBmis.ClientSecret.Reveal() != "hs" {
		t.Errorf("tenant one's hubmis = %+v", *one.HUBmis)
	}
	if two.HUBmis.ClientID != "other" || two.HUBmis.Realm != "S2" {
		t.Errorf("tenant two's hubmis = %+v", *two.HUBmis)
	}

	t.Run("unknown key in an anchor", func(t *testing.T) {
		t.Parallel()
		bad := strings.Replace(doc, "  timezone: Europe/London\n", "  timezone: Europe/London\n  colour: blue\n", 1)
		msg := parseErr(t, bad, map[string]string{"CLASS_KEY": "ck", "HUBMIS_SECRET": "hs"})
		wantContains(t, msg, "tenants[0].class.colour: unknown key (line 6)", "tenants[1].class.colour: unknown key (line 6)")
	})
}

func TestValidateAGoBuiltConfig(t *testing.T) {
	t.Parallel()
	var empty Config
	err := empty.Validate()
	if err == nil {
		t.Fatal("Validate of an empty config: no error")
	}
	wantContains(t, err.Error(),
		"nats.url: required",
		"nats.stream_replicas: must be 1, 3 or 5, not 0",
		"worker.concurrency: must be between 1 and 4096, not 0",
		"tenants: at least one tenant is required",
	)

	cfg := Config{
		NATS: NATS{URL: "nats://127.0.0.1:4222"},
		Tenants: []Tenant{{
			ID:      "demo",
			Class:   Class{BaseURL: "http://127.0.0.1:1", APIKey: "k"},
			HUBmis:  &HUBmis{BaseURL: "http://127.0.0.1:2", ClientID: "c", ClientSecret: "s", Realm: "R"},
			DataHub: nil,
		}},
	}
	if err := cfg.Validate(); err == nil {
		t.Error("Validate without defaults: no error")
	}
	cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate after WithDefaults: %v", err)
	}
	if cfg.Tenants[0].HUBmis.PageSize != PageSizeDefault || cfg.Worker.BackoffMax != BackoffMaxDefault {
		t.Errorf("WithDefaults left zeros: %+v", cfg)
	}
	// WithDefaults keeps what is set.
	cfg.Worker.Concurrency = 7
	cfg.WithDefaults()
	if cfg.Worker.Concurrency != 7 {
		t.Errorf("WithDefaults overwrote concurrency 7 with %d", cfg.Worker.Concurrency)
	}
}

func TestConfigTenant(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, designYAML, designEnv)
	tn, ok := cfg.Tenant("greenwood")
	if !ok || tn.ID != "greenwood" || tn.Source() != SourceHUBmis {
		t.Fatalf("Tenant(greenwood) = %+v, %v", tn, ok)
	}
	tn.HUBmis.Realm = "S1000"
	if cfg.Tenants[1].HUBmis.Realm != "S1000" {
		t.Error("Tenant does not point into the config")
	}
	if _, ok := cfg.Tenant("shelbyville"); ok {
		t.Error("Tenant(shelbyville) found")
	}
	if s := (Tenant{}).Source(); s != "" {
		t.Errorf("Source of a tenant without source = %q", s)
	}
	if s := (Tenant{DataHub: &DataHub{}, HUBmis: &HUBmis{}}).Source(); s != "" {
		t.Errorf("Source of a tenant with both = %q", s)
	}
}
