package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/natstest"
)

func TestRunRejectsBadConfigNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	bad := `nats:
  url: nats://127.0.0.1:4222
worker:
  concurrency: -3
tenants:
  - id: Bad_ID
    class:
      base_url: https://x.class.example
      api_key: k
      timezone: Mars/Base
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"-config", path}, &stderr); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	for _, want := range []string{"worker.concurrency", "tenants[0].id", "tenants[0].class.timezone"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("error output does not name %s:\n%s", want, stderr.String())
		}
	}
	stderr.Reset()
	t.Setenv(config.EnvVar, "")
	if code := run(nil, &stderr); code != 2 || !strings.Contains(stderr.String(), config.EnvVar) {
		t.Errorf("no config: exit %d, output %q; want 2 and a hint about %s", code, stderr.String(), config.EnvVar)
	}
	stderr.Reset()
	if code := run([]string{"--help"}, &stderr); code != 0 || !strings.Contains(stderr.String(), "-config") {
		t.Errorf("--help: exit %d, output %q; want 0 and the flags", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"--bogus"}, &stderr); code != 2 {
		t.Errorf("--bogus: exit %d, output %q; want 2", code, stderr.String())
	}
}

func TestServeAppliesMessagesAndStopsCleanly(t *testing.T) {
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	sim := classtest.New(classtest.Options{Seed: 1})
	t.Cleanup(sim.Close)
	sim.AddKey("secret-key")
	yaml := fmt.Sprintf(`nats:
  url: %s
tenants:
  - id: springfield
    class:
      base_url: %s
      api_key: ${CLASS_KEY}
      timezone: America/Chicago
    datahub:
      base_url: https://datahub.example.org
      client_id: abc
      client_secret: s
`, ns.ClientURL(), sim.URL())
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) {
		if k == "CLASS_KEY" {
			return "secret-key", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncWriter{w: &bytes.Buffer{}}
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil))) }()

	host := events.Person{ExtPersonID: "t1", Email: "teacher@springfield.example.org", FirstName: "Tea", LastName: "Cher"}
	m, err := events.NewMessage("springfield", events.OpUpsert,
		events.ClassState{ExtClassID: "datahub:springfield:section:1", Name: "Maths", Host: host},
		events.Version{Time: time.Now()}, events.Origin{Source: "test", ID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	m.ID = "test-1"
	pubCtx, pubCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pubCancel()
	// The worker creates the streams; publish once they exist.
	for {
		if _, err = events.Publish(pubCtx, js, m); err == nil || pubCtx.Err() != nil {
			break
		}
		select {
		case <-pubCtx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, ok := sim.FindClass("datahub:springfield:section:1"); ok && c.Name == "Maths" && c.Timezone == "America/Chicago" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("class not created in Class within 30s")
		}
		<-tick.C
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after cancel")
	}
	if strings.Contains(logs.String(), "secret-key") {
		t.Error("the Class API key appears in the logs")
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.(*bytes.Buffer).String()
}
