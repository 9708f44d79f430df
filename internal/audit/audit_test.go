package audit_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/audit"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/natstest"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestWriterRecordsReadBackInOrder(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	if _, err := events.EnsureResources(ctx, js, events.StreamSettings{}); err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(js, quietLogger())
	for attempt := uint64(1); attempt <= 3; attempt++ {
		w.Write(audit.Record{Tenant: "t1", Kind: events.KindClass, Key: "datahub:t1:section:1", Attempt: attempt, Result: "retry"})
	}
	var got []audit.Record
	eventually.True(t, 10*time.Second, "three records", func() bool {
		var err error
		got, err = audit.History(ctx, js, "t1", events.KindClass, "datahub:t1:section:1")
		return err == nil && len(got) == 3
	})
	for i, r := range got {
		if r.Attempt != uint64(i+1) {
			t.Errorf("record %d has attempt %d", i, r.Attempt)
		}
	}
	if n := w.Failed(); n != 0 {
		t.Errorf("Failed() = %d", n)
	}
}

// TestWriterCountsAnUnansweredRecord: a record whose acknowledgement never
// comes counts as failed once the context's async timeout passes, instead
// of staying pending in nats.go for ever.
func TestWriterCountsAnUnansweredRecord(t *testing.T) {
	srv := natstest.Start(t)
	nc, _ := srv.Connect(t)
	// No audit stream: a plain subscriber takes the record and never
	// answers, as when an acknowledgement is lost.
	sub, err := nc.SubscribeSync("audit.>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(js, quietLogger())
	w.Write(audit.Record{Tenant: "t1", Kind: events.KindUser, Key: "datahub:t1:teacher:1", Attempt: 1, Result: "applied"})
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("the record was not published: %v", err)
	}
	eventually.True(t, 10*time.Second, "the unanswered record to count as failed", func() bool { return w.Failed() == 1 })
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Second):
		t.Fatalf("%d async publishes still pending after the timeout", js.PublishAsyncPending())
	}
}
