package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/natstest"
)

func sampleEnrollment(t *testing.T) events.Message {
	t.Helper()
	m, err := events.NewMessage("springfield", events.OpUpsert, events.EnrollmentState{
		ExtClassID: "datahub:springfield:section:1",
		Person:     events.Person{ExtPersonID: "datahub:springfield:student:7", Email: "pupil@example.org", FirstName: "Ada", LastName: "Lovelace"},
		Role:       events.RoleStudent,
	}, events.Version{Time: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), Seq: "abc"}, events.Origin{Source: "datahub", ID: "evt1"})
	if err != nil {
		t.Fatal(err)
	}
	m.ID = events.DataHubMessageID("springfield", "evt1", 0)
	return m
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	m := sampleEnrollment(t)
	msg, err := events.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "provision.springfield.enrollment.upsert" {
		t.Errorf("subject = %q", msg.Subject)
	}
	for h, want := range map[string]string{
		events.HeaderSpecVersion: "1.0",
		events.HeaderID:          m.ID,
		nats.MsgIdHdr:            m.ID,
		events.HeaderType:        "com.rollcall.provision.enrollment.upsert",
		events.HeaderSubject:     m.Key,
		events.HeaderTime:        "2026-11-24T09:00:00Z",
		events.HeaderSource:      "/rollcall/datahub/springfield",
	} {
		if got := msg.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	got, err := events.Decode(msg.Subject, msg.Header, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != m.Key || got.Kind != m.Kind || got.Op != m.Op || got.ID != m.ID || got.Version.Compare(m.Version) != 0 {
		t.Errorf("decoded %+v, want %+v", got, m)
	}
	e, err := got.Enrollment()
	if err != nil || e.Email != "pupil@example.org" {
		t.Errorf("state = %+v, %v", e, err)
	}
}

func TestDecodeRejectsWithoutLeakingValues(t *testing.T) {
	m := sampleEnrollment(t)
	msg, _ := events.Encode(m)
	cases := map[string]struct {
		subject string
		body    string
	}{
		"bad subject":   {"provision.springfield.pupil.upsert", string(msg.Data)},
		"other tenant":  {"provision.shelbyville.enrollment.upsert", string(msg.Data)},
		"not json":      {msg.Subject, `{"tenant":"springfield","key":"pupil@example.org`},
		"wrong type":    {msg.Subject, `{"tenant":"springfield","key":"k","version":{"time":"2026-01-01T00:00:00Z"},"state":{"ext_class_id":1,"first_name":"Ada Secret"}}`},
		"key mismatch":  {msg.Subject, strings.Replace(string(msg.Data), `"key":"datahub:springfield:section:1#`, `"key":"other#`, 1)},
		"missing names": {msg.Subject, `{"tenant":"springfield","key":"c#p","version":{"time":"2026-01-01T00:00:00Z"},"state":{"ext_class_id":"c","ext_person_id":"p","email":"pupil@example.org","role":"student"}}`},
		"no version":    {msg.Subject, `{"tenant":"springfield","key":"c#p","state":{}}`},
		"unknown role":  {msg.Subject, `{"tenant":"springfield","key":"c#p","version":{"time":"2026-01-01T00:00:00Z"},"state":{"ext_class_id":"c","ext_person_id":"p","first_name":"Ada","last_name":"L","role":"janitor"}}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := events.Decode(tc.subject, msg.Header, []byte(tc.body))
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, secret := range []string{"pupil@example.org", "Ada Secret", "Lovelace"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks %q", err, secret)
				}
			}
		})
	}
}

func TestVersionOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := events.Version{Time: t0, Seq: "001"}
	b := events.Version{Time: t0, Seq: "002"}
	c := events.Version{Time: t0.Add(time.Nanosecond)}
	if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 || b.Compare(c) != -1 {
		t.Errorf("order wrong: a<b %d, b>a %d, a=a %d, b<c %d", a.Compare(b), b.Compare(a), a.Compare(a), b.Compare(c))
	}
}

func TestMessageIDsAreDeterministicAndDistinct(t *testing.T) {
	if events.DataHubMessageID("t", "e", 1) != events.DataHubMessageID("t", "e", 1) {
		t.Error("DataHub id not deterministic")
	}
	ids := map[string]bool{
		events.DataHubMessageID("t", "e", 0):                                    true,
		events.DataHubMessageID("t", "e", 1):                                    true,
		events.DataHubMessageID("u", "e", 0):                                    true,
		events.SnapshotMessageID("hubmis", "t", events.KindClass, "k", "snap1"): true,
		events.SnapshotMessageID("hubmis", "t", events.KindClass, "k", "snap2"): true,
		events.SnapshotMessageID("hubmis", "t", events.KindUser, "k", "snap1"):  true,
		events.RunMessageID("run1", events.KindUser, "k"):                       true,
		events.RunMessageID("run2", events.KindUser, "k"):                       true,
	}
	if len(ids) != 8 {
		t.Errorf("ids collide: %v", ids)
	}
}

func TestEnsureResourcesConcurrentAndIdempotent(t *testing.T) {
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = events.EnsureResources(ctx, js, events.StreamSettings{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("binary %d: %v", i, err)
		}
	}
	res, err := events.EnsureResources(ctx, js, events.StreamSettings{MaxAge: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	info, err := res.Stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAge != 48*time.Hour || info.Config.Duplicates < 2*time.Hour {
		t.Errorf("stream config MaxAge %s Duplicates %s", info.Config.MaxAge, info.Config.Duplicates)
	}
	// A re-publish of the same observation is dropped; a dead letter lands
	// in the DLQ stream, not in PROVISION.
	m := sampleEnrollment(t)
	for range 2 {
		if _, err := events.Publish(ctx, js, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, events.DeadSubject("springfield", events.KindEnrollment, events.OpUpsert), []byte("x")); err != nil {
		t.Fatalf("dead letter subject: %v", err)
	}
	if _, err := js.Publish(ctx, events.RejectedSubject("springfield"), []byte("x")); err != nil {
		t.Fatalf("rejected subject: %v", err)
	}
	if info, _ = res.Stream.Info(ctx); info.State.Msgs != 1 {
		t.Errorf("PROVISION holds %d messages, want 1 (the re-publish is a duplicate)", info.State.Msgs)
	}
	if dlq, _ := res.DLQ.Info(ctx); dlq.State.Msgs != 2 {
		t.Errorf("PROVISION_DLQ holds %d, want 2", dlq.State.Msgs)
	}
}

func FuzzDecode(f *testing.F) {
	m, _ := events.NewMessage("springfield", events.OpUpsert, events.ScheduleState{
		ExtClassID: "c", WindowStart: time.Unix(0, 0), WindowEnd: time.Unix(3600, 0),
		Sessions: []events.Session{{Start: time.Unix(60, 0), End: time.Unix(120, 0)}},
	}, events.Version{Time: time.Unix(1, 0)}, events.Origin{Source: "test"})
	body, _ := json.Marshal(m)
	f.Add("provision.springfield.schedule.upsert", body)
	f.Add("provision.springfield.user.delete", []byte(`{"tenant":"springfield","key":"u","version":{"time":"2026-01-01T00:00:00Z"},"state":{"ext_user_id":"u"}}`))
	f.Add("provision.x.class.upsert", []byte(`{"state":null}`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		got, err := events.Decode(subject, nats.Header{}, data)
		if err != nil {
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("decoded message does not validate: %v", err)
		}
	})
}

// Ensuring resources that are already as wanted sends no update (an update
// races consumer creation inside nats-server); a changed setting is applied.
func TestEnsureResourcesUpdatesOnlyWhatChanged(t *testing.T) {
	ns := natstest.Start(t)
	nc, js := ns.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := events.EnsureResources(ctx, js, events.StreamSettings{}); err != nil {
		t.Fatal(err) // creates them
	}
	const prefix = "$JS.API.STREAM.UPDATE."
	updates, err := nc.SubscribeSync(prefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := events.EnsureResources(ctx, js, events.StreamSettings{}); err != nil {
			t.Fatal(err)
		}
	}
	// Requests of one connection arrive in order: once this change's have
	// come, any update sent by the calls above would have come before them.
	res, err := events.EnsureResources(ctx, js, events.StreamSettings{MaxAge: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{events.StreamName: 1, events.DLQStreamName: 1, events.AuditStreamName: 1}
	got := map[string]int{}
	changed := fmt.Sprintf(`"max_age":%d`, int64(48*time.Hour))
	for {
		m, err := updates.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("updates seen %v, want %v: %v", got, want, err)
		}
		name := strings.TrimPrefix(m.Subject, prefix)
		got[name]++
		if name == events.AuditStreamName && strings.Contains(string(m.Data), changed) {
			break // the change's last update
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("stream updates %v, want %v (only the change's)", got, want)
	}
	if info, err := res.Stream.Info(ctx); err != nil || info.Config.MaxAge != 48*time.Hour {
		t.Errorf("PROVISION after the change: %v, %v", info, err)
	}
}
