package pullsub_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/natstest"
	"github.com/rollcall/rollcall/internal/pullsub"
)

func setup(t *testing.T) (jetstream.JetStream, *pullsub.Subscriber) {
	t.Helper()
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	sub, err := pullsub.New(pullsub.Config{
		Consumer: func(ctx context.Context, topic string) (jetstream.Consumer, error) {
			return js.CreateOrUpdateConsumer(ctx, "T", jetstream.ConsumerConfig{Durable: topic, FilterSubject: "t." + topic, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Second})
		},
		Concurrency: 4, AckWait: 5 * time.Second, NakDelay: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return js, sub
}

func publish(t *testing.T, js jetstream.JetStream, topic string, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.Publish(context.Background(), "t."+topic, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
}

func next(t *testing.T, ch <-chan *message.Message, within time.Duration) *message.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(within):
		t.Fatalf("no message within %s", within)
		return nil
	}
}

func TestNackHonoursTheDelayAndAckIsFinal(t *testing.T) {
	js, sub := setup(t)
	ch, err := sub.Subscribe(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "a", 1)
	m := next(t, ch, 5*time.Second)
	if pullsub.NumDelivered(m) != 1 || m.Metadata.Get(pullsub.MetaSubject) != "t.a" {
		t.Fatalf("metadata %v", m.Metadata)
	}
	const wait = 400 * time.Millisecond
	delay.Message(m, delay.For(wait))
	nacked := time.Now()
	m.Nack()
	again := next(t, ch, 5*time.Second)
	if since := time.Since(nacked); since < wait {
		t.Errorf("redelivered after %s, before the %s delay", since, wait)
	}
	if pullsub.NumDelivered(again) != 2 {
		t.Errorf("delivery count %d, want 2", pullsub.NumDelivered(again))
	}
	again.Ack()
	select {
	case m := <-ch:
		t.Fatalf("acked message delivered again: %s", m.Payload)
	case <-time.After(300 * time.Millisecond): // a bounded check that nothing more arrives
	}
}

func TestTerminatedMessageIsNotRedelivered(t *testing.T) {
	js, sub := setup(t)
	ch, _ := sub.Subscribe(context.Background(), "b")
	publish(t, js, "b", 1)
	m := next(t, ch, 5*time.Second)
	pullsub.Terminate(m, "dead-lettered")
	m.Ack()
	cons, _ := js.Consumer(context.Background(), "T", "b")
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.AckFloor.Stream == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminated message still pending: %+v", info)
		}
		time.Sleep(10 * time.Millisecond) // polling the broker's state, with the deadline above
	}
}

func TestPausedTopicWaitsAndOthersGoOn(t *testing.T) {
	js, sub := setup(t)
	ctx := context.Background()
	chA, _ := sub.Subscribe(ctx, "pa")
	chB, _ := sub.Subscribe(ctx, "pb")
	sub.Pause("pa")
	publish(t, js, "pa", 3)
	publish(t, js, "pb", 3)
	for range 3 {
		next(t, chB, 5*time.Second).Ack()
	}
	select {
	case m := <-chA:
		t.Fatalf("paused topic delivered %s", m.Payload)
	case <-time.After(300 * time.Millisecond): // a bounded check that nothing arrives
	}
	cons, _ := js.Consumer(ctx, "T", "pa")
	info, _ := cons.Info(ctx)
	// Kept: none acknowledged, each either not yet delivered or delivered
	// and pending (a paused topic's message goes back with a delay, so one
	// may be pending and redelivered at once: NumRedelivered is a part of
	// NumAckPending, not beside it).
	if info.AckFloor.Stream != 0 || info.NumPending+uint64(info.NumAckPending) != 3 {
		t.Errorf("paused topic's messages: %+v, want all 3 kept", info)
	}
	sub.Resume("pa")
	var mu sync.Mutex
	got := map[string]bool{}
	for range 3 {
		m := next(t, chA, 5*time.Second)
		mu.Lock()
		got[string(m.Payload)] = true
		mu.Unlock()
		m.Ack()
	}
	if len(got) != 3 {
		t.Errorf("after resume got %v, want the 3 messages", got)
	}
}
