package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestMetricsExposition records a value on every instrument, scrapes the
// handler and finds each under the name dashboards and alerts use (the list
// in the Metrics doc comment).
func TestMetricsExposition(t *testing.T) {
	clearOTELEnv(t)
	tel := setup(t, Config{ServiceName: "worker"})
	m, err := NewMetrics(tel.Meter(InstrumentationName))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	m.SourceEvents(ctx, "springfield", SourceDataHub, 3)
	m.ChangePublished(ctx, "springfield", "user", "upsert")
	m.MessageProcessed(ctx, "springfield", "user", "upsert", ResultApplied)
	m.MessageDeadLettered(ctx, "springfield", "enrollment", "upsert", ReasonPermanent)
	m.ClassRequest(ctx, "springfield", http.MethodGet, "/api/v1/users?email=ann.pupil@school.example", 200, 30*time.Millisecond)
	m.ClassRequest(ctx, "springfield", http.MethodPatch, "/api/v1/classes/8e1f0c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b", 0, 2*time.Second)
	m.ChangeApplied(ctx, "springfield", "user", 1500*time.Millisecond)
	m.HUBmisBudget(ctx, "greenwood", 4200)
	m.HUBmisSnapshot(ctx, "greenwood", 120, 90*time.Second)
	regs := []interface{ Unregister() error }{}
	reg, err := m.ObserveConsumerPending(func(context.Context) map[string]int64 { return map[string]int64{"springfield": 7} })
	if err != nil {
		t.Fatal(err)
	}
	regs = append(regs, reg)
	reg, err = m.ObserveValveHeldSets(func(context.Context) map[string]int64 { return map[string]int64{"greenwood": 2} })
	if err != nil {
		t.Fatal(err)
	}
	regs = append(regs, reg)
	reg, err = m.ObserveTenantsPaused(func(context.Context) map[string]PauseReason {
		return map[string]PauseReason{"greenwood": PauseAuth}
	})
	if err != nil {
		t.Fatal(err)
	}
	regs = append(regs, reg)
	reg, err = m.ObserveDataHubCursorAge(func(context.Context) map[string]time.Duration {
		return map[string]time.Duration{"springfield": 36 * time.Hour}
	})
	if err != nil {
		t.Fatal(err)
	}
	regs = append(regs, reg)

	body := scrape(t, tel)
	for _, want := range []string{
		`rollcall_source_events_total{otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",source="datahub",tenant="springfield"} 3`,
		`rollcall_changes_published_total{kind="user",op="upsert",`,
		`rollcall_messages_processed_total{kind="user",op="upsert",otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",result="applied",tenant="springfield"} 1`,
		`rollcall_messages_processed_total{kind="enrollment",op="upsert",otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",result="dead",tenant="springfield"} 1`,
		`rollcall_messages_dead_lettered_total{kind="enrollment",otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",reason_class="permanent",tenant="springfield"} 1`,
		`rollcall_class_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",`,
		`url_template="/api/v1/users",le="0.05"} 1`,
		`rollcall_class_request_duration_seconds_count{error_type="no_response",http_request_method="PATCH",`,
		`url_template="/api/v1/classes/{id}"} 1`,
		`rollcall_class_request_duration_seconds_sum{`,
		`rollcall_change_lag_seconds_bucket{kind="user",`,
		`rollcall_change_lag_seconds_sum{kind="user",otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",tenant="springfield"} 1.5`,
		`rollcall_consumer_pending{otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",tenant="springfield"} 7`,
		`rollcall_hubmis_budget_remaining{otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",tenant="greenwood"} 4200`,
		`rollcall_hubmis_snapshot_requests_sum{otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",tenant="greenwood"} 120`,
		`rollcall_hubmis_snapshot_duration_seconds_sum{otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",tenant="greenwood"} 90`,
		`rollcall_valve_held_sets{otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",tenant="greenwood"} 2`,
		`rollcall_tenant_paused{otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",reason="auth",tenant="greenwood"} 1`,
		`rollcall_datahub_cursor_age_seconds{otel_scope_name="github.com/rollcall/rollcall",otel_scope_schema_url="",otel_scope_version="",tenant="springfield"} 129600`,
		"# TYPE rollcall_consumer_pending gauge",
		"# TYPE rollcall_class_request_duration_seconds histogram",
		"# TYPE rollcall_messages_dead_lettered_total counter",
		`target_info{`,
		`service_name="worker"`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	for _, leak := range []string{"ann.pupil", "school.example", "8e1f0c2a"} {
		if strings.Contains(body, leak) {
			t.Errorf("exposition holds %q", leak)
		}
	}

	// An unregistered callback's series leaves the exposition.
	for _, r := range regs {
		if err := r.Unregister(); err != nil {
			t.Fatal(err)
		}
	}
	if body := scrape(t, tel); strings.Contains(body, "rollcall_consumer_pending{") {
		t.Error("rollcall_consumer_pending still exposed after Unregister")
	}
}

func TestMessageProcessedDeadCountsDeadLetter(t *testing.T) {
	clearOTELEnv(t)
	tel := setup(t, Config{})
	m, err := NewMetrics(tel.Meter(InstrumentationName))
	if err != nil {
		t.Fatal(err)
	}
	m.MessageProcessed(t.Context(), "springfield", "class", "delete", ResultDead)
	m.MessageDeadLettered(t.Context(), "springfield", "class", "delete", ReasonClass("made-up"))
	body := scrape(t, tel)
	if !strings.Contains(body, `reason_class="other",tenant="springfield"} 2`) {
		t.Errorf("dead letters by reason other != 2:\n%s", grep(body, "dead_lettered"))
	}
	if !strings.Contains(body, `result="dead",tenant="springfield"} 2`) {
		t.Errorf("processed result=dead != 2:\n%s", grep(body, "processed"))
	}
}

func scrape(t *testing.T, tel *Telemetry) string {
	t.Helper()
	srv := httptest.NewServer(tel.MetricsHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, b)
	}
	return string(b)
}

func grep(body, sub string) string {
	var out []string
	for l := range strings.Lines(body) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
