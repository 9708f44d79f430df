package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/natstest"
	"github.com/rollcall/rollcall/internal/telemetry"
)

// lockedBuffer collects the logs of both binaries.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const (
	classKey      = "class-key-7f3a9c1e"
	datahubSecret = "datahub-secret-5b2d8e"
	webhookSecret = "webhook-secret-0c4f6a"
)

// TestEndToEndObservability runs a poller and a worker in one process over
// a DataHub tenant and a HUBmis tenant, and checks what an operator's tools
// see: one trace from the poll to the Class calls, the metrics on /metrics,
// /readyz following NATS, and logs without a secret or an email.
func TestEndToEndObservability(t *testing.T) {
	ns := natstest.Start(t)
	hub := datahubtest.New(datahubtest.Options{Seed: 21, ClientSecret: datahubSecret})
	t.Cleanup(hub.Close)
	hub.Populate(3, 18, 4, 4)
	mis := hubmistest.New(hubmistest.Options{Seed: 22})
	t.Cleanup(mis.Close)
	mis.Populate(6, 2, 2, 2) // small enough for HUBmis's burst of 12
	cls := classtest.New(classtest.Options{Seed: 23})
	t.Cleanup(cls.Close)
	cls.AddKey(classKey)

	yaml := fmt.Sprintf(`nats: {url: %s}
admin: {listen: "127.0.0.1:0"}
lease_ttl: 2s
worker: {backoff_initial: 50ms, backoff_max: 200ms, max_attempts: 3}
tenants:
  - id: springfield
    class: {base_url: %s, api_key: "${CLASS_KEY}", timezone: America/Chicago}
    datahub:
      base_url: %s
      client_id: %s
      client_secret: "${DATAHUB_SECRET}"
      webhook_secret: "${WEBHOOK_SECRET}"
      poll_interval: 1s
  - id: greenwood
    class: {base_url: %s, api_key: "${CLASS_KEY}", timezone: Europe/London}
    hubmis:
      base_url: %s
      client_id: %s
      client_secret: %s
      realm: %s
`, ns.ClientURL(), cls.URL(), hub.URL(), datahubtest.ClientIDDefault, cls.URL(), mis.URL(), mis.ClientID(), mis.ClientSecret(), mis.Realm())
	env := map[string]string{"CLASS_KEY": classKey, "DATAHUB_SECRET": datahubSecret, "WEBHOOK_SECRET": webhookSecret}
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}

	spans := tracetest.NewInMemoryExporter()
	ctx, cancel := context.WithCancel(context.Background())
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "rollcall-test", SpanProcessor: sdktrace.NewSimpleSpanProcessor(spans)})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	log := telemetry.NewLogger(&logs, -8, "json") // every level, debug included
	admins := make(chan string, 2)
	var wg sync.WaitGroup
	for _, run := range []func(context.Context, *config.Config, Options) error{RunPoller, RunWorker} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx, cfg, Options{Logger: log, Telemetry: tel, AdminReady: func(a string) { admins <- a }}); err != nil {
				t.Errorf("run: %v", err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait(); _ = tel.Shutdown(context.Background()) })
	adminAddr := <-admins
	<-admins

	eventually.Holds(t, 60*time.Second, "both tenants provisioned", func() (bool, string) {
		n := len(cls.State().Classes)
		return n == len(hub.Sections())+2, strconv.Itoa(n) + " classes"
	})

	// A change at DataHub, under 20 % Class faults, and a teacher whose
	// email Class refuses.
	cls.SetFaults(classtest.Faults{Rate503: 0.2, RetryAfter: time.Millisecond})
	sec := hub.Sections()[0]
	st, _ := hub.AddStudent(datahubtest.Student{Name: datahubtest.Name{First: "Tracy", Last: "Trace"}, Email: "tracy.trace@pupils.example"})
	hub.Enroll(sec.ID, st.ID)
	bad, _ := hub.AddTeacher(datahubtest.Teacher{Name: datahubtest.Name{First: "Bad", Last: "Address"}, Email: "bad.address@@staff.example"})
	hub.SetSectionTeacher(hub.Sections()[1].ID, bad.ID)
	classExt := events.ExternalID("datahub", "springfield", "section", sec.ID)
	eventually.Holds(t, 60*time.Second, "the enrollment applied", func() (bool, string) {
		c, _ := cls.FindClass(classExt)
		for _, e := range c.Enrollments {
			if strings.HasSuffix(e.ExtPersonID, ":"+st.ID) {
				return true, ""
			}
		}
		return false, "not enrolled"
	})
	// A message whose class never comes is retried, never lost.
	orphan, err := events.NewMessage("springfield", events.OpUpsert, events.EnrollmentState{
		ExtClassID: events.ExternalID("datahub", "springfield", "section", "never"),
		Person:     events.Person{ExtPersonID: events.ExternalID("datahub", "springfield", "student", st.ID), FirstName: "Tracy", LastName: "Trace"},
		Role:       events.RoleStudent,
	}, events.Version{Time: time.Now(), Seq: "orphan"}, events.Origin{Source: "test", ID: "orphan"})
	if err != nil {
		t.Fatal(err)
	}
	orphan.ID = "test:orphan"
	_, js := ns.Connect(t)
	if _, err := events.Publish(ctx, js, orphan); err != nil {
		t.Fatal(err)
	}
	eventually.Holds(t, 30*time.Second, "the orphan retried", func() (bool, string) {
		_, body := get(t, "http://"+adminAddr+"/metrics")
		return regexp.MustCompile(`rollcall_messages_processed_total{[^}]*result="retry"[^}]*tenant="springfield"`).MatchString(body), "no retry yet"
	})
	// The class whose host's email Class refuses is dead-lettered, not
	// retried for ever.
	eventually.Holds(t, 30*time.Second, "the refused teacher's class dead-lettered", func() (bool, string) {
		_, body := get(t, "http://"+adminAddr+"/metrics")
		return regexp.MustCompile(`rollcall_messages_dead_lettered_total{[^}]*tenant="springfield"`).MatchString(body), "no dead letter yet"
	})
	cls.SetFaults(classtest.Faults{})

	t.Run("one trace from poll to Class", func(t *testing.T) {
		want := regexp.MustCompile(`^POST /api/v1/class/enrollments < apply provision\.springfield\.enrollment\.upsert < publish provision\.springfield\.enrollment\.upsert < datahub\.(page < datahub\.poll|poll)$`)
		var all []tracetest.SpanStub
		// The spans of a delivery end after its Class call: wait for a
		// whole chain.
		eventually.Holds(t, 20*time.Second, "a Class call traced back to its poll", func() (bool, string) {
			all = spans.GetSpans()
			byID := map[trace.SpanID]tracetest.SpanStub{}
			for _, s := range all {
				byID[s.SpanContext.SpanID()] = s
			}
			var seen []string
			for _, call := range all {
				if call.Name != "POST /api/v1/class/enrollments" || call.SpanKind != trace.SpanKindClient {
					continue
				}
				// Walk up from the Class call to its root.
				var chain []string
				sameTrace := true
				for s, ok := call, true; ok; s, ok = byID[s.Parent.SpanID()] {
					sameTrace = sameTrace && s.SpanContext.TraceID() == call.SpanContext.TraceID()
					chain = append(chain, s.Name)
				}
				got := strings.Join(chain, " < ")
				if sameTrace && want.MatchString(got) {
					return true, ""
				}
				seen = append(seen, got)
			}
			return false, fmt.Sprintf("%d spans; chains: %q", len(all), seen)
		})
		for _, s := range all {
			for _, a := range s.Attributes {
				if strings.Contains(a.Value.Emit(), "@") {
					t.Errorf("span %s attribute %s holds an email", s.Name, a.Key)
				}
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		_, body := get(t, "http://"+adminAddr+"/metrics")
		for _, series := range []string{
			`rollcall_source_events_total{.*source="datahub".*tenant="springfield"`,
			`rollcall_changes_published_total{.*kind="enrollment".*op="upsert".*tenant="springfield"`,
			`rollcall_changes_published_total{.*tenant="greenwood"`,
			`rollcall_messages_processed_total{.*result="applied".*tenant="springfield"`,
			`rollcall_messages_processed_total{.*result="retry".*tenant="springfield"`,
			`rollcall_messages_dead_lettered_total{.*tenant="springfield"`,
			`rollcall_class_request_duration_seconds_count{.*http_request_method="POST".*http_response_status_code="200"`,
			`rollcall_change_lag_seconds_count{.*kind="enrollment".*tenant="springfield"`,
			`rollcall_hubmis_snapshot_requests_count{.*tenant="greenwood"`,
			`rollcall_hubmis_snapshot_duration_seconds_count{.*tenant="greenwood"`,
			`rollcall_hubmis_budget_remaining{.*tenant="greenwood"`,
			`rollcall_datahub_cursor_age_seconds{.*tenant="springfield"`,
		} {
			re := regexp.MustCompile(`(?m)^` + series + `[^}]*} ([0-9.e+-]+)$`)
			m := re.FindStringSubmatch(body)
			if m == nil {
				t.Errorf("no series %s", series)
				continue
			}
			if v, _ := strconv.ParseFloat(m[1], 64); v <= 0 {
				t.Errorf("%s = %s, want > 0", series, m[1])
			}
		}
		for _, present := range []string{`rollcall_consumer_pending{`, `rollcall_valve_held_sets{`} {
			if !strings.Contains(body, present) {
				t.Errorf("no series %s...}", present)
			}
		}
	})

	t.Run("logs hold no secret and no email", func(t *testing.T) {
		text := logs.String()
		if !strings.Contains(text, `"msg":"poller started"`) || !strings.Contains(text, "dead-lettered") {
			t.Fatalf("the logs miss the run:\n%.2000s", text)
		}
		secrets := []string{classKey, datahubSecret, webhookSecret, mis.ClientSecret()}
		for _, s := range hub.Students() {
			secrets = append(secrets, s.Email)
		}
		for _, s := range hub.Teachers() {
			secrets = append(secrets, s.Email)
		}
		for _, s := range mis.Students() {
			secrets = append(secrets, s.Email)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("the logs hold %q", s)
			}
		}
		if m := regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}`).FindString(text); m != "" {
			t.Errorf("the logs hold an email address: %s", m)
		}
	})

	t.Run("readyz follows NATS", func(t *testing.T) {
		if code, body := get(t, "http://"+adminAddr+"/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz %d before the outage: %s", code, body)
		}
		ns.Stop()
		eventually.Holds(t, 20*time.Second, "/readyz 503 while NATS is down", func() (bool, string) {
			code, body := get(t, "http://"+adminAddr+"/readyz")
			return code == http.StatusServiceUnavailable, strconv.Itoa(code) + " " + body
		})
		if code, _ := get(t, "http://"+adminAddr+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz %d while NATS is down; the process is alive", code)
		}
		ns.StartAgain()
		eventually.Holds(t, 30*time.Second, "/readyz 200 once NATS is back", func() (bool, string) {
			code, body := get(t, "http://"+adminAddr+"/readyz")
			return code == http.StatusOK, strconv.Itoa(code) + " " + body
		})
	})
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
