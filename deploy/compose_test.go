package deploy

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type composeService struct {
	Build       any               `yaml:"build"`
	Image       string            `yaml:"image"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   any               `yaml:"depends_on"`
}

func readCompose(t *testing.T) map[string]composeService {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Services
}

// composeValue interpolates a value as docker compose does with an empty
// environment: ${VAR:-default} and ${VAR-default} give the default; ${VAR}
// and ${VAR:?msg} must be set by the operator, and are given a stand-in.
func composeValue(name, v string) string {
	re := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*)|(:?\?)[^}]*)?\}`)
	return re.ReplaceAllStringFunc(v, func(m string) string {
		sub := re.FindStringSubmatch(m)
		if sub[2] != "" {
			return sub[3]
		}
		return "operator-value-of-" + strings.ToLower(sub[1])
	})
}

// mounts maps a service's container paths to the repository files mounted there.
func mounts(t *testing.T, svcName string, svc composeService) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue // a named volume
		}
		host := filepath.Join(repoRoot, parts[0])
		if _, err := os.Stat(host); err != nil {
			t.Errorf("service %s mounts %s, which does not exist", svcName, parts[0])
		}
		m[parts[1]] = host
	}
	return m
}

func isBuiltHere(svc composeService) bool {
	switch b := svc.Build.(type) {
	case string:
		return b == "."
	case map[string]any:
		ctx, _ := b["context"].(string)
		df, _ := b["dockerfile"].(string)
		return (ctx == "." || ctx == "") && (df == "" || df == "Dockerfile")
	}
	return false
}

func TestComposeImagesAreBuiltHereOrPinned(t *testing.T) {
	services := readCompose(t)
	for _, name := range []string{"nats", "sim", "poller", "worker", "jaeger", "prometheus"} {
		if _, ok := services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	for name, svc := range services {
		switch {
		case svc.Build != nil:
			if !isBuiltHere(svc) {
				t.Errorf("service %s is built from %v, not from the repository's Dockerfile", name, svc.Build)
			}
			if r := parseImage(svc.Image); svc.Image != "" && (r.host != "" || r.tag == "" || r.tag == "latest") {
				t.Errorf("service %s tags its build %q: want a local name with a tag other than latest", name, svc.Image)
			}
		case svc.Image == "":
			t.Errorf("service %s has neither build nor image", name)
		default:
			checkPinnedOfficial(t, "service "+name, svc.Image)
		}
	}
}

func TestComposeCommandsAndFlagsExist(t *testing.T) {
	for name, svc := range readCompose(t) {
		if svc.Build == nil {
			continue
		}
		if len(svc.Entrypoint) != 1 {
			t.Errorf("service %s: entrypoint %q: want the binary alone, its flags in command", name, svc.Entrypoint)
			continue
		}
		checkCommand(t, "service "+name, svc.Entrypoint[0], svc.Command)
		if !strings.HasPrefix(svc.Entrypoint[0], "/usr/local/bin/") {
			t.Errorf("service %s runs %s; the Dockerfile installs binaries in /usr/local/bin", name, svc.Entrypoint[0])
		}
	}
}

// The poller and worker load the mounted configuration with the environment
// compose gives them; the sim accepts the same credentials.
func TestComposeConfigLoadsAndMatchesTheSim(t *testing.T) {
	services := readCompose(t)
	sim := services["sim"]
	simListen := map[string]string{} // class|datahub|hubmis → port
	for _, api := range []string{"class", "datahub", "hubmis"} {
		v, ok := flagValue(sim.Command, api+"-listen")
		if !ok {
			t.Fatalf("sim: no -%s-listen in its command", api)
		}
		_, port, err := net.SplitHostPort(v)
		if err != nil {
			t.Fatalf("sim -%s-listen %q: %v", api, v, err)
		}
		simListen[api] = port
	}
	// The variables the sim reads its credentials from: its flags' defaults
	// (compose passes no -*-env flag).
	simEnvNames := []string{"SPRINGFIELD_CLASS_KEY", "GREENWOOD_CLASS_KEY", "SPRINGFIELD_DATAHUB_SECRET", "GREENWOOD_HUBMIS_SECRET"}
	for _, f := range []string{"class-key-env", "datahub-secret-env", "hubmis-secret-env", "datahub-client-id", "hubmis-client-id", "hubmis-realm"} {
		if _, ok := flagValue(sim.Command, f); ok {
			t.Errorf("sim: -%s is set in compose; this test assumes the defaults, which compose.config.yaml follows", f)
		}
	}

	for _, name := range []string{"poller", "worker"} {
		svc := services[name]
		env := map[string]string{}
		for k, v := range svc.Environment {
			env[k] = composeValue(k, v)
		}
		for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"} {
			if env[k] == "" {
				t.Errorf("service %s: %s not set", name, k)
			}
		}
		if u, err := url.Parse(env["OTEL_EXPORTER_OTLP_ENDPOINT"]); err != nil || services[u.Hostname()].Image == "" {
			t.Errorf("service %s: OTEL_EXPORTER_OTLP_ENDPOINT %q is not a service of the compose file", name, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
		}
		for _, k := range simEnvNames {
			if composeValue(k, sim.Environment[k]) != env[k] || env[k] == "" {
				t.Errorf("service %s: %s differs from the sim's (or is unset): the sim would refuse it", name, k)
			}
		}
		path, _ := flagValue(svc.Command, "config")
		host, ok := mounts(t, name, svc)[path]
		if !ok {
			t.Errorf("service %s: -config %q is not a file mounted from the repository", name, path)
			continue
		}
		cfg := loadConfig(t, host, env)
		if name != "poller" {
			continue // one check of the tenants' addresses is enough
		}
		for _, tn := range cfg.Tenants {
			check := func(api, raw string) {
				u, err := url.Parse(raw)
				if err != nil || u.Hostname() != "sim" || u.Port() != simListen[api] {
					t.Errorf("tenant %s: %s base_url %q: want http://sim:%s, where the sim serves it", tn.ID, api, raw, simListen[api])
				}
			}
			check("class", tn.Class.BaseURL)
			if tn.DataHub != nil {
				check("datahub", tn.DataHub.BaseURL)
				if tn.DataHub.ClientID != "springfield-demo" {
					t.Errorf("tenant %s: datahub.client_id %q is not the sim's (-datahub-client-id default)", tn.ID, tn.DataHub.ClientID)
				}
			}
			if tn.HUBmis != nil {
				check("hubmis", tn.HUBmis.BaseURL)
				if tn.HUBmis.ClientID != "greenwood-demo" || tn.HUBmis.Realm != "S999" {
					t.Errorf("tenant %s: hubmis client_id %q, realm %q: not the sim's defaults", tn.ID, tn.HUBmis.ClientID, tn.HUBmis.Realm)
				}
			}
		}
		if u, err := url.Parse(strings.Split(cfg.NATS.URL, ",")[0]); err != nil || services[u.Hostname()].Image == "" {
			t.Errorf("nats.url %q is not a service of the compose file", cfg.NATS.URL)
		}
	}
}

func TestComposeNATSUsesTheSyncAlwaysConfig(t *testing.T) {
	nats := readCompose(t)["nats"]
	path, ok := flagValue(nats.Command, "c")
	if !ok {
		t.Fatalf("nats: no -c <config> in %q", nats.Command)
	}
	host, ok := mounts(t, "nats", nats)[path]
	if !ok || filepath.Base(host) != "nats.conf" {
		t.Errorf("nats: -c %s is not deploy/nats.conf mounted", path)
	}
	if !slices.ContainsFunc(nats.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") && !strings.HasPrefix(v, ".") }) {
		t.Errorf("nats: JetStream's store (/data) is not on a named volume")
	}
}

// Prometheus scrapes admin.listen of the poller and worker and loads the
// alert rules; the rules use only metrics the binaries expose.
func TestComposePrometheusScrapesAndAlerts(t *testing.T) {
	services := readCompose(t)
	prom := services["prometheus"]
	m := mounts(t, "prometheus", prom)
	cfgPath, ok := m["/etc/prometheus/prometheus.yml"]
	if !ok {
		t.Fatal("prometheus: deploy/prometheus/prometheus.yml is not mounted at /etc/prometheus/prometheus.yml")
	}
	docs := yamlDocs(t, cfgPath)
	cfg := docs[0]
	for _, rf := range strs(cfg["rule_files"]) {
		if _, ok := m[rf]; !ok {
			t.Errorf("prometheus.yml loads %s, which is not mounted", rf)
		}
	}
	if len(strs(cfg["rule_files"])) == 0 {
		t.Error("prometheus.yml loads no rule files")
	}

	worker := services["worker"]
	path, _ := flagValue(worker.Command, "config")
	env := map[string]string{}
	for k, v := range worker.Environment {
		env[k] = composeValue(k, v)
	}
	port := adminPort(t, loadConfig(t, mounts(t, "worker", worker)[path], env))
	scraped := map[string]bool{}
	for i := range len(get(cfg, "scrape_configs").([]any)) {
		sc := get(cfg, "scrape_configs", i)
		for j := range len(strs(get(sc, "dns_sd_configs"))) {
			d := get(sc, "dns_sd_configs", j)
			for _, n := range strs(get(d, "names")) {
				if _, ok := services[n]; !ok {
					t.Errorf("prometheus scrapes %s, not a service", n)
				}
				if str(get(d, "port")) != port {
					t.Errorf("prometheus scrapes %s on port %v; admin.listen is on %s", n, get(d, "port"), port)
				}
				scraped[n] = true
			}
		}
		for j := range len(strs(get(sc, "static_configs"))) {
			for _, target := range strs(get(sc, "static_configs", j, "targets")) {
				h, p, _ := net.SplitHostPort(target)
				if (h == "poller" || h == "worker") && p != port {
					t.Errorf("prometheus scrapes %s; admin.listen is on %s", target, port)
				}
				scraped[h] = true
			}
		}
	}
	for _, n := range []string{"poller", "worker"} {
		if !scraped[n] {
			t.Errorf("prometheus does not scrape %s", n)
		}
	}
	checkAlerts(t, m["/etc/prometheus/alerts.yml"])
}

// exposedMetrics are the names the binaries' /metrics serve (internal/telemetry).
var exposedMetrics = []string{
	"up",
	"rollcall_messages_processed_total",
	"rollcall_messages_dead_lettered_total",
	"rollcall_consumer_pending",
	"rollcall_datahub_cursor_age_seconds",
	"rollcall_tenant_paused",
	"rollcall_valve_held_sets",
	"rollcall_hubmis_budget_remaining",
	"rollcall_change_lag_seconds_bucket",
}

func checkAlerts(t *testing.T, path string) {
	t.Helper()
	if path == "" {
		t.Fatal("prometheus: deploy/prometheus/alerts.yml is not mounted")
	}
	noPlaceholders(t, path)
	doc := yamlDocs(t, path)[0]
	used := map[string]bool{}
	metricRE := regexp.MustCompile(`\b(up|rollcall_[a-z0-9_]+)\b`)
	names := map[string]bool{}
	for g := range len(strs(doc["groups"])) {
		rules := get(doc, "groups", g, "rules")
		for r := range len(strs(rules)) {
			rule := get(rules, r)
			name, expr := str(get(rule, "alert")), str(get(rule, "expr"))
			if name == "" || strings.TrimSpace(expr) == "" {
				t.Errorf("alerts.yml: rule %d of group %d lacks alert or expr", r, g)
				continue
			}
			names[name] = true
			if sev := str(get(rule, "labels", "severity")); sev != "warning" && sev != "critical" {
				t.Errorf("alert %s: severity %q", name, sev)
			}
			if str(get(rule, "annotations", "summary")) == "" {
				t.Errorf("alert %s: no summary", name)
			}
			if strings.Count(expr, "(") != strings.Count(expr, ")") {
				t.Errorf("alert %s: unbalanced parentheses in %q", name, expr)
			}
			for _, m := range metricRE.FindAllString(expr, -1) {
				if !slices.Contains(exposedMetrics, m) {
					t.Errorf("alert %s uses %s, which the binaries do not expose", name, m)
				}
				used[m] = true
			}
		}
	}
	// What the operator must hear about, each by the metric that tells it.
	for _, want := range []struct{ what, metric, in string }{
		{"dead letters growing", "rollcall_messages_processed_total", `result="dead"`},
		{"messages pending too long", "rollcall_consumer_pending", ""},
		{"cursor nearing the 30-day horizon", "rollcall_datahub_cursor_age_seconds", ""},
		{"tenant paused by auth failures", "rollcall_tenant_paused", `reason="auth"`},
		{"a held change set", "rollcall_valve_held_sets", ""},
		{"HUBmis budget exhausted", "rollcall_hubmis_budget_remaining", ""},
	} {
		raw, _ := os.ReadFile(path)
		if !used[want.metric] || !strings.Contains(string(raw), want.in) {
			t.Errorf("no alert on %s (%s %s)", want.what, want.metric, want.in)
		}
	}
}

func TestDockerfileBuildsEveryCommandStaticAndNonRoot(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	var user string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			froms = append(froms, f[1])
		}
		if len(f) >= 2 && strings.EqualFold(f[0], "USER") {
			user = f[1]
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a runtime stage", len(froms))
	}
	for _, img := range froms {
		if img != "scratch" {
			checkPinnedOfficial(t, "Dockerfile FROM", img)
		}
	}
	if last := froms[len(froms)-1]; last != "scratch" && !strings.Contains(last, "distroless") {
		t.Errorf("Dockerfile: the runtime stage is %s; want scratch or distroless", last)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("Dockerfile: USER %q; want a numeric non-root user", user)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/..."} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("Dockerfile does not contain %q", want)
		}
	}
}
