package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadStream reads the messages of a stream on the given subjects (all when
// none), from where policy says, up to the last message present when it
// started, calling fn for each in order. It uses an ordered consumer, which
// leaves nothing behind on the server.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, policy jetstream.DeliverPolicy, fn func(jetstream.Msg) error, opts ...func(*jetstream.OrderedConsumerConfig)) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: policy}
	for _, o := range opts {
		o(&cfg)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	last := info.State.LastSeq
	if last == 0 || (cfg.DeliverPolicy == jetstream.DeliverByStartSequencePolicy && cfg.OptStartSeq > last) {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	for {
		batch, err := c.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			if md.Sequence.Stream > last {
				return nil
			}
			if err := fn(m); err != nil {
				return err
			}
			if md.NumPending == 0 || md.Sequence.Stream == last {
				return nil
			}
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if n == 0 {
			// Nothing matched before the end of the stream.
			return nil
		}
	}
}
