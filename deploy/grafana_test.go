package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/telemetry"
)

// exposedNames records one value of every instrument the binaries have and
// returns the metric names their /metrics serves, suffixes included.
func exposedNames(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "deploy-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(ctx) })
	m, err := telemetry.NewMetrics(tel.Meter(telemetry.InstrumentationName))
	if err != nil {
		t.Fatal(err)
	}
	m.SourceEvents(ctx, "t", telemetry.SourceDataHub, 1)
	m.ChangePublished(ctx, "t", "user", "upsert")
	m.MessageProcessed(ctx, "t", "user", "upsert", telemetry.ResultApplied)
	m.MessageDeadLettered(ctx, "t", "user", "upsert", telemetry.ReasonPermanent)
	m.ClassRequest(ctx, "t", "GET", "/api/v1/users", 200, time.Millisecond)
	m.ChangeApplied(ctx, "t", "user", time.Second)
	m.HUBmisBudget(ctx, "t", 3)
	m.HUBmisSnapshot(ctx, "t", 10, time.Second)
	one := func(context.Context) map[string]int64 { return map[string]int64{"t": 1} }
	if _, err := m.ObserveConsumerPending(one); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ObserveValveHeldSets(one); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ObserveTenantsPaused(func(context.Context) map[string]telemetry.PauseReason {
		return map[string]telemetry.PauseReason{"t": telemetry.PauseAuth}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ObserveDataHubCursorAge(func(context.Context) map[string]time.Duration {
		return map[string]time.Duration{"t": time.Hour}
	}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	names := map[string]bool{"up": true}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`).FindString(line)] = true
	}
	return names
}

var metricRef = regexp.MustCompile(`\b(up|rollcall_[a-z0-9_]+)\b`)

// The dashboard and the alert rules query only series the binaries serve:
// a renamed instrument breaks this test, not a dashboard in production.
func TestDashboardAndAlertsQueryExposedSeries(t *testing.T) {
	names := exposedNames(t)
	raw, err := os.ReadFile("grafana/rollcall.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	queried := map[string]bool{}
	check := func(where, expr string) {
		refs := metricRef.FindAllString(expr, -1)
		if len(refs) == 0 {
			t.Errorf("%s: %q queries no rollcall series", where, expr)
		}
		for _, r := range refs {
			queried[r] = true
			if !names[r] {
				t.Errorf("%s: %s is not served on /metrics", where, r)
			}
		}
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check("dashboard panel "+p.Title, tg.Expr)
		}
	}
	alerts, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(alerts), "\n") {
		if strings.Contains(line, "rollcall_") && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			check("alerts.yml", line)
		}
	}
	// Every instrument of the system is on the dashboard.
	for name := range names {
		if !strings.HasPrefix(name, "rollcall_") {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !queried[name] && !queried[base+"_bucket"] && !queried[base+"_sum"] && !queried[base+"_count"] && !queried[base] {
			t.Errorf("%s is not on the dashboard", name)
		}
	}
}
