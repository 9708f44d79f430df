package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	// Time zones are checked, and later used, from the binary's own copy of the
	// database, so a slim container without /usr/share/zoneinfo behaves as a laptop.
	_ "time/tzdata"
)

// KeyError is one problem with the configuration, naming the key it concerns as a path
// such as tenants[2].hubmis.realm. Its text never holds a secret's value or a value that
// came from the environment.
type KeyError struct {
	// Key is the key's path; empty for a problem with the file as a whole.
	Key string
	// Line is the key's line in the file, or 0 when it is not in the file (a
	// required key left out, a Config built in Go).
	Line int
	// Problem says what is wrong, for example "required".
	Problem string
}

func (e *KeyError) Error() string {
	var b strings.Builder
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	if e.Line > 0 {
		b.WriteString(" (line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(")")
	}
	return b.String()
}

// Limits checked by [Config.Validate].
const (
	maxTenantIDLen      = 64
	maxDistrictIDLen    = 64
	maxEgressLen        = 64
	maxConcurrency      = 4096
	maxPageSize         = 10000
	minDuplicateWindow  = time.Minute
	minPollInterval     = time.Second
	minSnapshotInterval = time.Minute
)

var tenantIDPattern = regexp.MustCompile(`^[a-z0-9-]+$`)

// districtIDPattern admits DataHub's ids (24 hex digits, or a GUID) and keeps
// the id one plain segment of the district's URLs: no slash, dot or space that
// could lead a request out of the district.
var districtIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// egressPattern keeps hubmis_egress a single token of a lease key.
var egressPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate checks every setting and returns all problems at once, joined with
// [errors.Join], each a [*KeyError] naming its key. It expects defaults to be filled
// already ([Config.WithDefaults]): a zero left where a default belongs is reported as
// out of range. It touches no file and no network.
func (c *Config) Validate() error {
	problems := c.problems(nil)
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// checks collects the problems found by one validation.
type checks struct {
	found []*KeyError
	// hidden reports the keys whose values came from the environment, which are
	// not repeated in messages. Nil for a Config built in Go.
	hidden func(key string) bool
}

// show renders the value of key for a message: quoted if a string, hidden if it came
// from the environment.
func (p *checks) show(key string, v any) string {
	if p.hidden != nil && p.hidden(key) {
		return "(value from the environment)"
	}
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case DeletionPolicy:
		return strconv.Quote(string(v))
	}
	return fmt.Sprint(v)
}

func (p *checks) add(key, format string, args ...any) {
	p.found = append(p.found, &KeyError{Key: key, Problem: fmt.Sprintf(format, args...)})
}

// required reports a missing value and returns whether the value is there.
func (p *checks) required(key string, set bool) bool {
	if !set {
		p.add(key, "required")
	}
	return set
}

func (p *checks) intRange(key string, v, lo, hi int) {
	if v < lo || v > hi {
		p.add(key, "must be between %d and %d, not %s", lo, hi, p.show(key, v))
	}
}

func (p *checks) atLeast(key string, v, lo int) {
	if v < lo {
		p.add(key, "must be at least %d, not %s", lo, p.show(key, v))
	}
}

func (p *checks) minDuration(key string, v, lo time.Duration) {
	if v < lo {
		p.add(key, "must be at least %s, not %s", lo, p.show(key, v))
	}
}

// httpURL checks a required absolute http(s) URL. The value is not quoted back: a URL
// may carry credentials or come from the environment.
func (p *checks) httpURL(key, s string) {
	if !p.required(key, s != "") {
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		p.add(key, "is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		p.add(key, "must be an absolute http:// or https:// URL")
	case u.Host == "":
		p.add(key, "has no host")
	case u.User != nil:
		p.add(key, "must not hold credentials; they belong in the secret settings")
	case u.RawQuery != "" || u.Fragment != "":
		p.add(key, "must not have a query or fragment")
	}
}

// problems validates c; hidden (may be nil) names the keys whose values must not be
// repeated in messages.
func (c *Config) problems(hidden func(key string) bool) []*KeyError {
	p := &checks{hidden: hidden}
	c.NATS.check(p)
	if c.Admin.Listen != "" && !validListen(c.Admin.Listen) {
		p.add("admin.listen", "must be host:port, such as 127.0.0.1:9090 or :9090")
	}
	p.minDuration("lease_ttl", c.LeaseTTL, time.Second)
	if len(c.HUBmisEgress) > maxEgressLen || !egressPattern.MatchString(c.HUBmisEgress) {
		p.add("hubmis_egress", "%s must be 1 to %d letters, digits, hyphens and underscores, such as office-nat",
			p.show("hubmis_egress", c.HUBmisEgress), maxEgressLen)
	}
	c.Worker.check(p)

	if len(c.Tenants) == 0 {
		p.add("tenants", "at least one tenant is required")
	}
	first := make(map[string]int, len(c.Tenants))
	for i := range c.Tenants {
		t := &c.Tenants[i]
		key := indexKey("tenants", i)
		t.check(p, key)
		if t.ID == "" {
			continue
		}
		if j, dup := first[t.ID]; dup {
			p.add(key+".id", "%s is already the id of tenants[%d]", p.show(key+".id", t.ID), j)
			continue
		}
		first[t.ID] = i
	}
	return p.found
}

func validListen(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

func (n *NATS) check(p *checks) {
	if p.required("nats.url", n.URL != "") {
		for part := range strings.SplitSeq(n.URL, ",") {
			u, err := url.Parse(strings.TrimSpace(part))
			switch {
			case err != nil || u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
				p.add("nats.url", "must be a nats://, tls://, ws:// or wss:// URL, or a comma-separated list of them")
			case u.Hostname() == "":
				p.add("nats.url", "has no host")
			case u.User != nil:
				p.add("nats.url", "must not hold credentials; use nats.creds_file or nats.user and nats.password")
			default:
				continue
			}
			break
		}
	}
	if n.User != "" && !n.Password.IsSet() {
		p.add("nats.password", "required with nats.user")
	}
	if n.Password.IsSet() && n.User == "" {
		p.add("nats.user", "required with nats.password")
	}
	if n.CredsFile != "" && (n.User != "" || n.Password.IsSet()) {
		p.add("nats.creds_file", "use either a credentials file or nats.user and nats.password, not both")
	}
	if t := n.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			p.add("nats.tls.cert_file", "required with nats.tls.key_file")
		} else {
			p.add("nats.tls.key_file", "required with nats.tls.cert_file")
		}
	}
	if n.StreamReplicas != 1 && n.StreamReplicas != 3 && n.StreamReplicas != 5 {
		p.add("nats.stream_replicas", "must be 1, 3 or 5, not %s", p.show("nats.stream_replicas", n.StreamReplicas))
	}
	p.minDuration("nats.stream_max_age", n.StreamMaxAge, time.Hour)
	p.minDuration("nats.duplicate_window", n.DuplicateWindow, minDuplicateWindow)
	if n.DuplicateWindow > n.StreamMaxAge && n.StreamMaxAge > 0 {
		// JetStream refuses a stream whose duplicate window outlasts its messages.
		p.add("nats.duplicate_window", "must not exceed nats.stream_max_age (%s)", p.show("nats.stream_max_age", n.StreamMaxAge))
	}
}

func (w *Worker) check(p *checks) {
	p.intRange("worker.concurrency", w.Concurrency, 1, maxConcurrency)
	p.minDuration("worker.ack_wait", w.AckWait, time.Second)
	p.atLeast("worker.max_attempts", w.MaxAttempts, 1)
	p.minDuration("worker.max_age", w.MaxAge, time.Second)
	p.minDuration("worker.backoff_initial", w.BackoffInitial, time.Millisecond)
	if w.BackoffMax < w.BackoffInitial {
		p.add("worker.backoff_max", "must be at least worker.backoff_initial (%s), not %s",
			p.show("worker.backoff_initial", w.BackoffInitial), p.show("worker.backoff_max", w.BackoffMax))
	}
	p.minDuration("worker.auth_probe_interval", w.AuthProbeInterval, time.Second)
	p.minDuration("worker.conflict_grace", w.ConflictGrace, time.Second)
	if w.ConflictGrace > w.MaxAge && w.MaxAge > 0 {
		p.add("worker.conflict_grace", "must not exceed worker.max_age (%s), not %s",
			p.show("worker.max_age", w.MaxAge), p.show("worker.conflict_grace", w.ConflictGrace))
	}
}

func (t *Tenant) check(p *checks, key string) {
	switch {
	case t.ID == "":
		p.add(key+".id", "required")
	case len(t.ID) > maxTenantIDLen:
		p.add(key+".id", "must be at most %d characters, not %d", maxTenantIDLen, len(t.ID))
	case !tenantIDPattern.MatchString(t.ID):
		p.add(key+".id", "%s must be lower-case letters, digits and hyphens (^[a-z0-9-]+$)", p.show(key+".id", t.ID))
	}

	source := t.Source()
	switch t.DeletionPolicy {
	case DeletePolicyDelete, DeletePolicyIgnore, DeletePolicyGrace:
	default:
		p.add(key+".deletion_policy", "must be delete, ignore or grace, not %s", p.show(key+".deletion_policy", t.DeletionPolicy))
	}
	grace := t.DeletionPolicy == DeletePolicyGrace
	switch {
	case t.GraceSnapshots != 0 && source == SourceDataHub:
		p.add(key+".grace_snapshots", "applies to hubmis tenants only; a datahub tenant uses grace_period")
	case t.GraceSnapshots != 0 && source == SourceHUBmis && !grace:
		p.add(key+".grace_snapshots", "applies only with deletion_policy: grace")
	case grace && source == SourceHUBmis:
		p.atLeast(key+".grace_snapshots", t.GraceSnapshots, 1)
	}
	switch {
	case t.GracePeriod != 0 && source == SourceHUBmis:
		p.add(key+".grace_period", "applies to datahub tenants only; a hubmis tenant uses grace_snapshots")
	case t.GracePeriod != 0 && source == SourceDataHub && !grace:
		p.add(key+".grace_period", "applies only with deletion_policy: grace")
	case grace && source == SourceDataHub:
		p.minDuration(key+".grace_period", t.GracePeriod, time.Minute)
	}
	if !(t.MaxDeleteShare > 0 && t.MaxDeleteShare <= 1) || math.IsNaN(t.MaxDeleteShare) {
		p.add(key+".max_delete_share", "must be above 0 and at most 1, not %s", p.show(key+".max_delete_share", t.MaxDeleteShare))
	}

	ck := key + ".class"
	p.httpURL(ck+".base_url", t.Class.BaseURL)
	p.required(ck+".api_key", t.Class.APIKey.IsSet())
	if t.Class.Timezone == "" {
		if source == SourceDataHub {
			p.add(ck+".timezone", "required for a datahub tenant")
		}
	} else if t.Class.Timezone == "Local" {
		p.add(ck+".timezone", `must name an IANA time zone such as Europe/London, not "Local"`)
	} else if _, err := time.LoadLocation(t.Class.Timezone); err != nil {
		p.add(ck+".timezone", "unknown time zone %s", p.show(ck+".timezone", t.Class.Timezone))
	}

	switch {
	case t.DataHub != nil && t.HUBmis != nil, t.DataHub == nil && t.HUBmis == nil:
		p.add(key, "exactly one source (datahub or hubmis) is required")
	}
	if dh := t.DataHub; dh != nil {
		dk := key + ".datahub"
		p.httpURL(dk+".base_url", dh.BaseURL)
		p.required(dk+".client_id", dh.ClientID != "")
		p.required(dk+".client_secret", dh.ClientSecret.IsSet())
		if p.required(dk+".token_path", dh.TokenPath != "") {
			u, err := url.Parse(dh.TokenPath)
			if err != nil || u.Scheme != "" || u.Host != "" || u.RawQuery != "" || u.Fragment != "" {
				p.add(dk+".token_path", "must be a path relative to datahub.base_url, such as oauth/token")
			}
		}
		p.minDuration(dk+".poll_interval", dh.PollInterval, minPollInterval)
		switch id := dh.DistrictID; {
		case id == "":
		case len(id) > maxDistrictIDLen:
			p.add(dk+".district_id", "must be at most %d characters, not %d", maxDistrictIDLen, len(id))
		case !districtIDPattern.MatchString(id):
			p.add(dk+".district_id", "%s must be letters, digits, hyphens and underscores (^[A-Za-z0-9_-]+$), such as 4fd43cc56d11340000000005",
				p.show(dk+".district_id", id))
		}
	}
	if hm := t.HUBmis; hm != nil {
		hk := key + ".hubmis"
		p.httpURL(hk+".base_url", hm.BaseURL)
		p.required(hk+".client_id", hm.ClientID != "")
		p.required(hk+".client_secret", hm.ClientSecret.IsSet())
		p.required(hk+".realm", hm.Realm != "")
		p.minDuration(hk+".snapshot_interval", hm.SnapshotInterval, minSnapshotInterval)
		p.intRange(hk+".page_size", hm.PageSize, 1, maxPageSize)
		p.minDuration(hk+".lesson_window", hm.LessonWindow, time.Hour)
		p.atLeast(hk+".refresh_every_cycles", hm.RefreshEveryCycles, 1)
		p.atLeast(hk+".request_budget", hm.RequestBudget, 1)
	}
}
