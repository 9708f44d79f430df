package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

const (
	plantedSecret = "s3cr3t-Planted-Value"
	plantedEmail  = "ann.pupil@school.example.org"
)

type person struct{ Name, Email string }

// TestLoggerRedacts logs the planted secret and email every way a caller
// might, in both formats, and fails if either reaches the output.
func TestLoggerRedacts(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log := NewLogger(&buf, slog.LevelDebug, format)
			log = log.With(slog.String("client_secret", plantedSecret))
			log.Info("looked up "+plantedEmail,
				slog.String("password", plantedSecret),
				slog.String("token", plantedSecret),
				slog.String("accessToken", plantedSecret),
				slog.String("X-Api-Key", plantedSecret),
				slog.String("api_key", plantedSecret),
				slog.String("key", plantedSecret),
				slog.String("Authorization", "Bearer "+plantedSecret),
				slog.Group("credentials", slog.String("value", plantedSecret)),
				slog.String("url", "/api/v1/users?email="+strings.ReplaceAll(plantedEmail, "@", "%40")),
				slog.String("email", plantedEmail),
				slog.Any("error", fmt.Errorf("class: GET /api/v1/users: no user %s: %w", plantedEmail, errors.New("not found"))),
				slog.Any("who", person{"Ann Pupil", plantedEmail}),
				slog.Any("emails", []string{plantedEmail}),
				slog.Group("pupil", slog.String("contact", plantedEmail)),
				slog.String("tenant", "springfield"),
			)
			log.WithGroup("req").Warn("retry", slog.String("to", plantedEmail), slog.String("secret", plantedSecret))
			out := buf.String()
			for _, leak := range []string{plantedSecret, "ann.pupil", "school.example"} {
				if strings.Contains(out, leak) {
					t.Errorf("output holds %q:\n%s", leak, out)
				}
			}
			for _, keep := range []string{"springfield", EmailRedacted, Redacted, "not found", "looked up"} {
				if !strings.Contains(out, keep) {
					t.Errorf("output lost %q:\n%s", keep, out)
				}
			}
		})
	}
}

func TestLoggerKeepsOrdinaryAttributes(t *testing.T) {
	var buf bytes.Buffer
	NewLogger(&buf, slog.LevelInfo, "").Info("applied",
		slog.String("tenant", "springfield"), slog.String("keyring", "k1"), slog.String("monkey", "m1"),
		slog.Any("ids", []string{"u-1", "u-2"}), slog.Int("count", 3), slog.Duration("in", 1500*time.Millisecond))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	if rec["tenant"] != "springfield" || rec["keyring"] != "k1" || rec["monkey"] != "m1" || rec["count"] != float64(3) || rec["in"] != "1.5s" {
		t.Errorf("attributes changed: %v", rec)
	}
	if ids, ok := rec["ids"].([]any); !ok || len(ids) != 2 {
		t.Errorf("a structured value without an address lost its shape: %#v", rec["ids"])
	}
	if _, ok := rec[LogKeyTraceID]; ok {
		t.Error("trace_id without a span in the context")
	}
}

func TestSecretKey(t *testing.T) {
	for key, want := range map[string]bool{
		"password": true, "db_password": true, "client_secret": true, "clientSecret": true,
		"token": true, "refresh_token": true, "api_key": true, "apiKey": true, "APIKey": true,
		"X-Api-Key": true, "key": true, "authorization": true, "credentials": true, "Cookie": true,
		"tenant": false, "keyring": false, "monkey": false, "kind": false, "id": false, "url": false,
	} {
		if got := secretKey(key); got != want {
			t.Errorf("secretKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestRedactEmails(t *testing.T) {
	for in, want := range map[string]string{
		"no address here":                      "no address here",
		"to a.b+c@x.example.com, cc d@e.org":   "to [email], cc [email]",
		"/users?email=first.last%40school.org": "/users?email=[email]",
		"/users?email=first.last%40SCHOOL.ORG": "/users?email=[email]",
		// Whatever letters an address has, it is one: the log must not be
		// the place where a pupil with an accent in their name leaks.
		"user zoë.brontë@school.example gone": "user [email] gone",
		"pupil@schüle.de and amy@localhost":   "[email] and [email]",
		"o_b@my_school.org":                   "[email]",
		"sean.o'brien@school.example":         "[email]",
		"@handle":                             "[email]",
	} {
		if got := RedactEmails(in); got != want {
			t.Errorf("RedactEmails(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTraceHandlerAddsIDs(t *testing.T) {
	clearOTELEnv(t)
	exp := tracetest.NewInMemoryExporter()
	tel := setup(t, Config{SpanProcessor: sdktrace.NewSimpleSpanProcessor(exp)})
	ctx, span := tel.Tracer("test").Start(t.Context(), "apply")
	var buf bytes.Buffer
	NewLogger(&buf, slog.LevelInfo, "json").InfoContext(ctx, "applied", slog.String("tenant", "springfield"))
	span.End()
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	sc := span.SpanContext()
	if rec[LogKeyTraceID] != sc.TraceID().String() || rec[LogKeySpanID] != sc.SpanID().String() {
		t.Errorf("trace_id/span_id = %v/%v, want %s/%s", rec[LogKeyTraceID], rec[LogKeySpanID], sc.TraceID(), sc.SpanID())
	}
}

func TestPersonHash(t *testing.T) {
	key := []byte("log-hash-key")
	a, b := PersonHash(key, "pupil-1"), PersonHash(key, "pupil-2")
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(a) {
		t.Fatalf("PersonHash = %q, want 12 hex digits", a)
	}
	if a == b {
		t.Error("two people hash alike")
	}
	if a != PersonHash(key, "pupil-1") {
		t.Error("PersonHash is not stable")
	}
	if a == PersonHash([]byte("other-key"), "pupil-1") {
		t.Error("PersonHash ignores the key")
	}
}
