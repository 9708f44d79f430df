// Package config loads, fills in and validates the one configuration file of rollcall.
//
// The file is YAML; its path comes from the -config flag or the PROVISION_CONFIG
// environment variable ([PathFromEnv]). Scalar values may refer to environment variables
// as ${NAME} or ${NAME:-default} ($${ is a literal "${"), which is how secrets get in: the
// file holds references, the environment holds values, and the values are held as
// [Secret]s, which print as "[redacted]" everywhere. Expansion happens on the parsed
// values, never on the raw text, so a value cannot change the document's structure, and
// a value that came from the environment is never repeated in an error. [Load] expands the references, decodes the file rejecting
// unknown keys, fills every unset setting from its named default (the constants ending in
// Default) and validates the result, reporting every problem at once, each naming its key:
//
//	tenants[2].hubmis.realm: required
//	tenants[0].class.timezone: unknown time zone "Mars/Base" (line 14)
//
// A configuration built in Go (tests, the demo) goes through the same steps by hand:
// [Config.WithDefaults], then [Config.Validate].
package config

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"
)

// EnvVar is the environment variable that names the configuration file when no -config
// flag is given.
const EnvVar = "PROVISION_CONFIG"

// Defaults of the settings. A setting left out of the file, or left at its zero value in
// a [Config] built in Go, takes these values in [Config.WithDefaults].
const (
	StreamReplicasDefault     = 1
	StreamMaxAgeDefault       = 30 * 24 * time.Hour
	DuplicateWindowDefault    = 2 * time.Hour
	LeaseTTLDefault           = 15 * time.Second
	ConcurrencyDefault        = 32
	AckWaitDefault            = 30 * time.Second
	MaxAttemptsDefault        = 25
	MaxAgeDefault             = 24 * time.Hour
	BackoffInitialDefault     = time.Second
	BackoffMaxDefault         = 5 * time.Minute
	AuthProbeIntervalDefault  = 30 * time.Second
	ConflictGraceDefault      = 15 * time.Minute
	DeletionPolicyDefault     = DeletePolicyDelete
	MaxDeleteShareDefault     = 0.2
	GraceSnapshotsDefault     = 3
	GracePeriodDefault        = 24 * time.Hour
	TokenPathDefault          = "oauth/token"
	PollIntervalDefault       = 5 * time.Second
	SnapshotIntervalDefault   = 15 * time.Minute
	PageSizeDefault           = 100
	LessonWindowDefault       = 336 * time.Hour
	RefreshEveryCyclesDefault = 4
	RequestBudgetDefault      = 500
	HUBmisEgressDefault       = "default"
)

// Names of the two sources, as [Tenant.Source] returns them and as they appear in
// subjects and external ids.
const (
	SourceDataHub = "datahub"
	SourceHUBmis  = "hubmis"
)

// Config is the whole configuration of every rollcall binary.
type Config struct {
	// NATS is the connection to the broker and the shape of the streams.
	NATS NATS `yaml:"nats"`
	// Admin is the HTTP listener for /healthz, /readyz and /metrics.
	Admin Admin `yaml:"admin"`
	// LeaseTTL is how long a poller's lease on a tenant lives without renewal; a hot
	// standby takes the tenant over at most this long after the active poller died.
	// Defaults to [LeaseTTLDefault].
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// HUBmisEgress names the network address the pollers reach HUBmis from. HUBmis
	// allows 12 requests a minute per address, whatever the tenant, and a process
	// can only pace its own requests: so of the pollers that share a name, one at a
	// time (holding a lease on the name) polls every HUBmis tenant, and another takes
	// over when it stops. Pollers behind different addresses set different names to
	// share the HUBmis tenants out. Defaults to [HUBmisEgressDefault].
	HUBmisEgress string `yaml:"hubmis_egress"`
	// Worker tunes the workers that apply changes to Class.
	Worker Worker `yaml:"worker"`
	// Tenants are the schools or districts to provision; at least one.
	Tenants []Tenant `yaml:"tenants"`
}

// NATS is the connection to the NATS server and the settings of the JetStream streams
// the system creates.
type NATS struct {
	// URL is the server URL, or a comma-separated list of them (nats://, tls://, ws://,
	// wss://). Required. Credentials never go in the URL: use CredsFile or
	// User/Password.
	URL string `yaml:"url"`
	// CredsFile is the path of a NATS user credentials file (JWT and NKey seed).
	// Optional.
	CredsFile string `yaml:"creds_file"`
	// User and Password authenticate with a user name and password instead of a
	// credentials file. Optional; both or neither.
	User     string `yaml:"user"`
	Password Secret `yaml:"password"`
	// TLS, when present (even empty, which means the system's roots), makes the
	// connection use TLS.
	TLS *TLS `yaml:"tls"`
	// StreamReplicas is the replica count of the streams and buckets: 1, 3 or 5.
	// Defaults to [StreamReplicasDefault].
	StreamReplicas int `yaml:"stream_replicas"`
	// StreamMaxAge is the retention of PROVISION, PROVISION_DLQ and PROVISION_AUDIT. The
	// messages hold pupils' names and emails, so it is bounded. Defaults to
	// [StreamMaxAgeDefault].
	StreamMaxAge time.Duration `yaml:"stream_max_age"`
	// DuplicateWindow is the stream's de-duplication window by Nats-Msg-Id; it must
	// outlast any re-publish horizon of the poller. Defaults to [DuplicateWindowDefault].
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
}

// TLS names the files of a TLS connection. Each is optional; CertFile and KeyFile go
// together.
type TLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Admin is the administrative HTTP listener.
type Admin struct {
	// Listen is the host:port of /healthz, /readyz and /metrics. Empty leaves the choice
	// to each binary.
	Listen string `yaml:"listen"`
}

// Worker tunes the workers.
type Worker struct {
	// Concurrency is the number of messages a worker applies at once, 1 to 4096.
	// Defaults to [ConcurrencyDefault].
	Concurrency int `yaml:"concurrency"`
	// AckWait is how long JetStream waits for an acknowledgement before redelivering.
	// Defaults to [AckWaitDefault].
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxAttempts is the number of transient failures of one message before it is
	// dead-lettered. Defaults to [MaxAttemptsDefault].
	MaxAttempts int `yaml:"max_attempts"`
	// MaxAge is the age after which a message that still fails, or whose class is
	// still missing, is dead-lettered. Defaults to [MaxAgeDefault].
	MaxAge time.Duration `yaml:"max_age"`
	// BackoffInitial is the first retry delay. Defaults to [BackoffInitialDefault].
	BackoffInitial time.Duration `yaml:"backoff_initial"`
	// BackoffMax caps the retry delay. Defaults to [BackoffMaxDefault].
	BackoffMax time.Duration `yaml:"backoff_max"`
	// AuthProbeInterval is how often a tenant paused for a refused key is tried again.
	// Defaults to [AuthProbeIntervalDefault].
	AuthProbeInterval time.Duration `yaml:"auth_probe_interval"`
	// ConflictGrace is how long a user whose email Class gives to a user of
	// another external id is retried before it is dead-lettered: the other may
	// be a teacher who left, whose delete is on its way. At most MaxAge.
	// Defaults to [ConflictGraceDefault].
	ConflictGrace time.Duration `yaml:"conflict_grace"`
}

// DeletionPolicy says what happens in Class when an entity disappears from the source.
type DeletionPolicy string

// The deletion policies.
const (
	// DeletePolicyDelete deletes at once (subject to the safety valve).
	DeletePolicyDelete DeletionPolicy = "delete"
	// DeletePolicyIgnore never deletes.
	DeletePolicyIgnore DeletionPolicy = "ignore"
	// DeletePolicyGrace deletes once the entity has been missing for
	// [Tenant.GraceSnapshots] snapshots (HUBmis) or [Tenant.GracePeriod] (DataHub).
	DeletePolicyGrace DeletionPolicy = "grace"
)

// Tenant is one school or district: one source feeding one Class account.
type Tenant struct {
	// ID names the tenant in subjects, external ids, metrics and logs: lower-case
	// letters, digits and hyphens, at most 64 characters, unique. Required.
	ID string `yaml:"id"`
	// DeletionPolicy is delete, ignore or grace. Defaults to [DeletionPolicyDefault].
	DeletionPolicy DeletionPolicy `yaml:"deletion_policy"`
	// GraceSnapshots is, for a HUBmis tenant with the grace policy, the number of
	// consecutive snapshots an entity must be missing from before it is deleted.
	// Defaults to [GraceSnapshotsDefault] there; set nowhere else.
	GraceSnapshots int `yaml:"grace_snapshots"`
	// GracePeriod is, for a DataHub tenant with the grace policy, how long after its
	// deletion event an entity is deleted. Defaults to [GracePeriodDefault] there; set
	// nowhere else.
	GracePeriod time.Duration `yaml:"grace_period"`
	// MaxDeleteShare is the share of the tenant's classes or enrollments, in (0, 1],
	// that one poll or snapshot may delete before its deletions are held for approval.
	// Defaults to [MaxDeleteShareDefault].
	MaxDeleteShare float64 `yaml:"max_delete_share"`
	// Class is the tenant's Class account.
	Class Class `yaml:"class"`
	// DataHub and HUBmis are the source; exactly one is set.
	DataHub *DataHub `yaml:"datahub"`
	HUBmis  *HUBmis  `yaml:"hubmis"`
}

// Class is a tenant's Class account.
type Class struct {
	// BaseURL is the absolute http(s) URL of the Class API. Required.
	BaseURL string `yaml:"base_url"`
	// APIKey is the bearer key. Required.
	APIKey Secret `yaml:"api_key"`
	// Timezone is the IANA time zone of the tenant's schedules. Required for DataHub
	// tenants; a HUBmis tenant without one uses the school's regional settings.
	Timezone string `yaml:"timezone"`
}

// DataHub is a DataHub source.
type DataHub struct {
	// BaseURL is the absolute http(s) URL of the DataHub API. Required.
	BaseURL string `yaml:"base_url"`
	// ClientID and ClientSecret are the OAuth2 client credentials. Required.
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// TokenPath is the token endpoint, relative to BaseURL. Defaults to
	// [TokenPathDefault].
	TokenPath string `yaml:"token_path"`
	// WebhookSecret verifies webhook calls, if DataHub is set up to send them.
	// Optional.
	WebhookSecret Secret `yaml:"webhook_secret"`
	// PollInterval is the pause between two reads of the event feed when it is caught
	// up. At least 1s; defaults to [PollIntervalDefault].
	PollInterval time.Duration `yaml:"poll_interval"`
	// DistrictID restricts the tenant to one district: its roster and feed are
	// read from DataHub's /v1/districts/{id}/ endpoints only. Optional; empty
	// means every district the credentials can see.
	DistrictID string `yaml:"district_id"`
}

// HUBmis is a HUBmis source.
type HUBmis struct {
	// BaseURL is the absolute http(s) URL of the HUBmis API. Required.
	BaseURL string `yaml:"base_url"`
	// ClientID and ClientSecret are the OAuth2 client credentials. Required.
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// Realm is the school's realm header. Required.
	Realm string `yaml:"realm"`
	// AcademicYearID pins the academic year; empty means the current one.
	AcademicYearID string `yaml:"academic_year_id"`
	// SnapshotInterval is the time between two snapshots. At least 1m; defaults to
	// [SnapshotIntervalDefault].
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
	// PageSize is page[size], 1 to 10000. Defaults to [PageSizeDefault].
	PageSize int `yaml:"page_size"`
	// LessonWindow is how far ahead timetable lessons are read and scheduled. Defaults
	// to [LessonWindowDefault].
	LessonWindow time.Duration `yaml:"lesson_window"`
	// RefreshEveryCycles is how many snapshots reuse the slow-changing parts (staff
	// timetables) before they are read again. At least 1; defaults to
	// [RefreshEveryCyclesDefault].
	RefreshEveryCycles int `yaml:"refresh_every_cycles"`
	// RequestBudget is the most requests one snapshot may spend. Defaults to
	// [RequestBudgetDefault].
	RequestBudget int `yaml:"request_budget"`
}

// PathFromEnv returns the configuration file's path: flagValue (the -config flag) if
// set, else $PROVISION_CONFIG, else an error telling the operator to set one of them.
func PathFromEnv(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p := os.Getenv(EnvVar); p != "" {
		return p, nil
	}
	return "", errors.New("no configuration file: pass -config <file> or set " + EnvVar)
}

// Load reads the file at path, expands ${ENV} references from the process's
// environment, decodes it, fills defaults and validates it. The error names the file and
// lists every problem, one a line.
func Load(path string) (*Config, error) {
	return load(path, os.LookupEnv)
}

func load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, err := Parse(data, lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("configuration %s:\n%w", path, err)
	}
	return cfg, nil
}

// Parse does what [Load] does with the file's content already read: it expands
// ${NAME} and ${NAME:-default} references through lookupEnv (nil means
// [os.LookupEnv]), decodes, fills defaults and validates. All problems are returned at
// once, joined with [errors.Join]; each problem with a key is a [*KeyError] (only a file
// that is not YAML, is empty or holds several documents fails with a plain error).
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	cfg := new(Config)
	d, err := decode(data, lookupEnv, cfg)
	if err != nil {
		return nil, err
	}
	cfg.WithDefaults()
	errs := d.errs
	for _, p := range cfg.problems(d.isFromEnv) {
		// A key that failed to expand or decode would only repeat itself here
		// ("required", out of range), so its first error stands alone.
		if d.hasErrorAt(p.Key) {
			continue
		}
		if p.Line == 0 {
			p.Line = d.lines[p.Key]
		}
		errs = append(errs, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// WithDefaults fills every unset (zero) setting with its default, in place. Defaults that
// depend on the source (the grace settings) are filled only for the tenant's source.
func (c *Config) WithDefaults() {
	c.NATS.StreamReplicas = cmp.Or(c.NATS.StreamReplicas, StreamReplicasDefault)
	c.NATS.StreamMaxAge = cmp.Or(c.NATS.StreamMaxAge, StreamMaxAgeDefault)
	c.NATS.DuplicateWindow = cmp.Or(c.NATS.DuplicateWindow, DuplicateWindowDefault)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, LeaseTTLDefault)
	c.HUBmisEgress = cmp.Or(c.HUBmisEgress, HUBmisEgressDefault)

	w := &c.Worker
	w.Concurrency = cmp.Or(w.Concurrency, ConcurrencyDefault)
	w.AckWait = cmp.Or(w.AckWait, AckWaitDefault)
	w.MaxAttempts = cmp.Or(w.MaxAttempts, MaxAttemptsDefault)
	w.MaxAge = cmp.Or(w.MaxAge, MaxAgeDefault)
	w.BackoffInitial = cmp.Or(w.BackoffInitial, BackoffInitialDefault)
	w.BackoffMax = cmp.Or(w.BackoffMax, BackoffMaxDefault)
	w.AuthProbeInterval = cmp.Or(w.AuthProbeInterval, AuthProbeIntervalDefault)
	w.ConflictGrace = cmp.Or(w.ConflictGrace, ConflictGraceDefault)

	for i := range c.Tenants {
		c.Tenants[i].withDefaults()
	}
}

func (t *Tenant) withDefaults() {
	t.DeletionPolicy = cmp.Or(t.DeletionPolicy, DeletionPolicyDefault)
	t.MaxDeleteShare = cmp.Or(t.MaxDeleteShare, MaxDeleteShareDefault)
	if t.DeletionPolicy == DeletePolicyGrace {
		if t.HUBmis != nil {
			t.GraceSnapshots = cmp.Or(t.GraceSnapshots, GraceSnapshotsDefault)
		}
		if t.DataHub != nil {
			t.GracePeriod = cmp.Or(t.GracePeriod, GracePeriodDefault)
		}
	}
	if dh := t.DataHub; dh != nil {
		dh.TokenPath = cmp.Or(dh.TokenPath, TokenPathDefault)
		dh.PollInterval = cmp.Or(dh.PollInterval, PollIntervalDefault)
	}
	if hm := t.HUBmis; hm != nil {
		hm.SnapshotInterval = cmp.Or(hm.SnapshotInterval, SnapshotIntervalDefault)
		hm.PageSize = cmp.Or(hm.PageSize, PageSizeDefault)
		hm.LessonWindow = cmp.Or(hm.LessonWindow, LessonWindowDefault)
		hm.RefreshEveryCycles = cmp.Or(hm.RefreshEveryCycles, RefreshEveryCyclesDefault)
		hm.RequestBudget = cmp.Or(hm.RequestBudget, RequestBudgetDefault)
	}
}

// Tenant returns the tenant with the given id. The pointer points into c.Tenants.
func (c *Config) Tenant(id string) (*Tenant, bool) {
	for i := range c.Tenants {
		if c.Tenants[i].ID == id {
			return &c.Tenants[i], true
		}
	}
	return nil, false
}

// Source returns [SourceDataHub] or [SourceHUBmis], whichever is configured, and ""
// when the tenant has neither or both (which [Config.Validate] rejects).
func (t Tenant) Source() string {
	switch {
	case t.DataHub != nil && t.HUBmis == nil:
		return SourceDataHub
	case t.HUBmis != nil && t.DataHub == nil:
		return SourceHUBmis
	}
	return ""
}

// LogValue summarises the configuration for a start-up log line: no secrets, no
// credentials in URLs, nothing about pupils.
func (c Config) LogValue() slog.Value {
	tenants := make([]slog.Attr, 0, len(c.Tenants))
	for _, t := range c.Tenants {
		tenants = append(tenants, slog.Any(cmp.Or(t.ID, "(no id)"), t))
	}
	return slog.GroupValue(
		slog.Group("nats",
			slog.String("url", redactURLs(c.NATS.URL)),
			slog.Bool("creds_file", c.NATS.CredsFile != ""),
			slog.Bool("password", c.NATS.Password.IsSet()),
			slog.Bool("tls", c.NATS.TLS != nil),
			slog.Int("stream_replicas", c.NATS.StreamReplicas),
			slog.Duration("stream_max_age", c.NATS.StreamMaxAge),
			slog.Duration("duplicate_window", c.NATS.DuplicateWindow),
		),
		slog.String("admin_listen", c.Admin.Listen),
		slog.Duration("lease_ttl", c.LeaseTTL),
		slog.String("hubmis_egress", c.HUBmisEgress),
		slog.Group("worker",
			slog.Int("concurrency", c.Worker.Concurrency),
			slog.Duration("ack_wait", c.Worker.AckWait),
			slog.Int("max_attempts", c.Worker.MaxAttempts),
			slog.Duration("max_age", c.Worker.MaxAge),
			slog.Duration("backoff_initial", c.Worker.BackoffInitial),
			slog.Duration("backoff_max", c.Worker.BackoffMax),
			slog.Duration("auth_probe_interval", c.Worker.AuthProbeInterval),
			slog.Duration("conflict_grace", c.Worker.ConflictGrace),
		),
		slog.Attr{Key: "tenants", Value: slog.GroupValue(tenants...)},
	)
}

// LogValue summarises the tenant without its secrets.
func (t Tenant) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", t.ID),
		slog.String("source", t.Source()),
		slog.String("deletion_policy", string(t.DeletionPolicy)),
		slog.Float64("max_delete_share", t.MaxDeleteShare),
		slog.String("class_base_url", redactURLs(t.Class.BaseURL)),
		slog.String("timezone", t.Class.Timezone),
	}
	if dh := t.DataHub; dh != nil {
		attrs = append(attrs,
			slog.String("datahub_base_url", redactURLs(dh.BaseURL)),
			slog.Duration("poll_interval", dh.PollInterval),
		)
	}
	if hm := t.HUBmis; hm != nil {
		attrs = append(attrs,
			slog.String("hubmis_base_url", redactURLs(hm.BaseURL)),
			slog.String("realm", hm.Realm),
			slog.Duration("snapshot_interval", hm.SnapshotInterval),
		)
	}
	return slog.GroupValue(attrs...)
}

// redactURLs returns a comma-separated list of URLs with any password replaced, and
// hides a part that does not parse, since it cannot be told what it holds.
func redactURLs(s string) string {
	if s == "" {
		return ""
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "[invalid URL]"
			continue
		}
		if u.User != nil {
			u.User = url.User("redacted")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
