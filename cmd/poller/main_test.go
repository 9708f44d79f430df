package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/clients/datahub/datahubtest"
	"github.com/rollcall/rollcall/internal/clients/hubmis/hubmistest"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/natstest"
	"github.com/rollcall/rollcall/internal/webhook"
)

func TestRunRejectsBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("nats:\n  url: nats://127.0.0.1:4222\ntenants:\n  - id: x\n    class: {base_url: https://c.example, api_key: k, timezone: UTC}\n    datahub: {base_url: https://d.example, client_id: a}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"-config", path}, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "tenants[0].datahub.client_secret") {
		t.Errorf("error does not name the missing secret:\n%s", stderr.String())
	}
}

func TestWebhookTriggersAPollLongBeforeTheInterval(t *testing.T) {
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	hub := datahubtest.New(datahubtest.Options{Seed: 3})
	t.Cleanup(hub.Close)
	hub.Populate(3, 20, 2, 5)
	cls := classtest.New(classtest.Options{Seed: 4})
	t.Cleanup(cls.Close)
	cls.AddKey("class-key")
	const secret = "hook-secret"
	yaml := fmt.Sprintf(`nats: {url: %s}
lease_ttl: 2s
tenants:
  - id: springfield
    class: {base_url: %s, api_key: class-key, timezone: America/Chicago}
    datahub:
      base_url: %s
      client_id: %s
      client_secret: %s
      webhook_secret: %s
      poll_interval: 1m
`, ns.ClientURL(), cls.URL(), hub.URL(), datahubtest.ClientIDDefault, datahubtest.ClientSecretDefault, secret)
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	addrCh := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, options{webhookListen: "127.0.0.1:0", webhookReady: func(a string) { addrCh <- a }}, quiet)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	addr := <-addrCh

	// The worker, applying what the poller publishes.
	cc, _ := class.New(cls.URL(), "class-key")
	var res *events.Resources
	eventually.True(t, 20*time.Second, "streams created by the poller", func() bool {
		r, err := events.EnsureResources(context.Background(), js, events.StreamSettings{})
		res = r
		return err == nil
	})
	w, err := handlers.New(handlers.Config{JS: js, Resources: res, Logger: quiet,
		Tenants: []handlers.Tenant{{ID: "springfield", Class: cc, Timezone: "America/Chicago"}}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan struct{})
	go func() { _ = w.Run(wctx); close(wdone) }()
	t.Cleanup(func() { wcancel(); <-wdone })

	sec := hub.Sections()[0]
	classID := events.ExternalID("datahub", "springfield", "section", sec.ID)
	eventually.True(t, 30*time.Second, "first sync reaches Class", func() bool {
		_, ok := cls.FindClass(classID)
		return ok
	})

	url := "http://" + addr + "/webhooks/datahub/springfield"
	body := []byte(`{"type":"sections.updated"}`)
	post := func(sig string) int {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if sig != "" {
			req.Header.Set(webhook.SignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(webhook.Sign([]byte("wrong-secret"), body)); code != http.StatusUnauthorized {
		t.Errorf("bad signature answered %d, want 401", code)
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Errorf("missing signature answered %d, want 401", code)
	}

	hub.UpdateSection(sec.ID, "Renamed by a pushed change", "")
	start := time.Now()
	if code := post(webhook.Sign([]byte(secret), body)); code != http.StatusAccepted {
		t.Fatalf("signed notification answered %d, want 202", code)
	}
	eventually.True(t, 20*time.Second, "the pushed change reaches Class", func() bool {
		c, ok := cls.FindClass(classID)
		return ok && c.Name == "Renamed by a pushed change"
	})
	took := time.Since(start)
	t.Logf("a pushed change reached Class %s after the notification (poll interval 1m)", took)
	if took > 30*time.Second {
		t.Errorf("took %s, not well before the 1m poll interval", took)
	}
}

func TestServeSnapshotsAHUBmisTenant(t *testing.T) {
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	mis := hubmistest.New(hubmistest.Options{Seed: 1})
	t.Cleanup(mis.Close)
	// Small enough for the first snapshot to fit HUBmis's burst of 12.
	mis.Populate(6, 2, 2, 2)
	cls := classtest.New(classtest.Options{Seed: 2})
	t.Cleanup(cls.Close)
	cls.AddKey("class-key")
	yaml := fmt.Sprintf(`nats: {url: %s}
lease_ttl: 2s
tenants:
  - id: greenwood
    class: {base_url: %s, api_key: class-key}
    hubmis:
      base_url: %s
      client_id: %s
      client_secret: %s
      realm: %s
`, ns.ClientURL(), cls.URL(), mis.URL(), mis.ClientID(), mis.ClientSecret(), mis.Realm())
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, options{}, quiet) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var res *events.Resources
	eventually.True(t, 20*time.Second, "streams created by the poller", func() bool {
		r, err := events.EnsureResources(context.Background(), js, events.StreamSettings{})
		res = r
		return err == nil
	})
	cc, _ := class.New(cls.URL(), "class-key")
	w, err := handlers.New(handlers.Config{JS: js, Resources: res, Logger: quiet, Tenants: []handlers.Tenant{{ID: "greenwood", Class: cc}}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan struct{})
	go func() { _ = w.Run(wctx); close(wdone) }()
	t.Cleanup(func() { wcancel(); <-wdone })
	eventually.True(t, 30*time.Second, "the school's sets reach Class with the school's time zone", func() bool {
		st := cls.State()
		if len(st.Classes) != 2 {
			return false
		}
		for _, c := range st.Classes {
			if c.Timezone != mis.Timezone() || len(c.Enrollments) < 2 {
				return false
			}
		}
		return true
	})
	if n := mis.Stats().TooMany; n != 0 {
		t.Errorf("%d 429s", n)
	}
}
