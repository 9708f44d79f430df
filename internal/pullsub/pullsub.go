// Package pullsub is a watermill [message.Subscriber] over durable JetStream
// pull consumers, written for the worker because neither subscriber of
// watermill-nats v2 fits it:
//
//   - pkg/jetstream keeps one message in flight per subscription, naks only
//     by delivery count (so Retry-After and per-error backoff cannot be
//     honoured), never applies its ConfigureConsumer setting, dereferences nil
//     when a message fails to unmarshal, and logs every message at Info;
//   - pkg/nats uses push consumers, measured at about 1k msg/s on 2 cores.
//
// This subscriber keeps up to Concurrency messages in flight, shared fairly by
// every topic it serves (one topic per tenant: Go serves blocked channel
// senders in FIFO order, so a tenant with a large backlog waits its turn
// behind the others instead of starving them). A handler chooses the fate of
// its message through metadata: Nack with a watermill delay
// ([delay.Message]) naks with that delay, Ack with [Terminate] terms it (after
// the handler has dead-lettered it), and a plain Ack is a double ack, so the
// handler's effects are confirmed before the message is forgotten. A topic can
// be paused: its messages stay in the stream, undelivered, until it resumes.
package pullsub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Metadata keys the subscriber sets on every message, beside the NATS
// headers (first value of each).
const (
	MetaSubject      = "nats_subject"
	MetaStreamSeq    = "nats_stream_seq"
	MetaNumDelivered = "nats_num_delivered"
	MetaTimestamp    = "nats_timestamp"
	// metaTerminate carries the reason a handler gave to [Terminate].
	metaTerminate = "pullsub_terminate"
)

// Defaults of [Config].
const (
	ConcurrencyDefault    = 32
	AckWaitDefault        = 30 * time.Second
	NakDelayDefault       = time.Second
	SettleTimeoutDefault  = 5 * time.Second
	handlerTimeoutPercent = 80
)

// ConsumerFunc returns the durable consumer a topic reads from, creating or
// updating it as the caller defines it.
type ConsumerFunc func(ctx context.Context, topic string) (jetstream.Consumer, error)

// Config configures a [Subscriber].
type Config struct {
	// Consumer is called once per Subscribe. Required.
	Consumer ConsumerFunc
	// Concurrency is the number of messages in flight over all topics.
	// Defaults to [ConcurrencyDefault].
	Concurrency int
	// AckWait must equal the consumers' AckWait. A handler's context ends at
	// 80 % of it, so a slow handler gives up before JetStream redelivers its
	// message to someone else. Defaults to [AckWaitDefault].
	AckWait time.Duration
	// NakDelay is used when a handler nacks without a delay: a plain nak is
	// redelivered at once and would spin. Defaults to [NakDelayDefault].
	NakDelay time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Subscriber is a watermill subscriber over JetStream pull consumers.
type Subscriber struct {
	cfg    Config
	log    *slog.Logger
	slots  chan struct{}
	closed chan struct{}
	once   sync.Once

	mu     sync.Mutex
	topics map[string]*topic

	loops    sync.WaitGroup // one per Subscribe
	inFlight sync.WaitGroup // one per message between pull and settle
}

type topic struct {
	paused bool
	resume chan struct{} // closed and replaced on Resume
	iter   jetstream.MessagesContext
}

// New returns a subscriber; it pulls nothing until Subscribe.
func New(cfg Config) (*Subscriber, error) {
	if cfg.Consumer == nil {
		return nil, errors.New("pullsub: Config.Consumer is required")
	}
	cfg.Concurrency = cmp.Or(cfg.Concurrency, ConcurrencyDefault)
	cfg.AckWait = cmp.Or(cfg.AckWait, AckWaitDefault)
	cfg.NakDelay = cmp.Or(cfg.NakDelay, NakDelayDefault)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Subscriber{
		cfg:    cfg,
		log:    cfg.Logger,
		slots:  make(chan struct{}, cfg.Concurrency),
		closed: make(chan struct{}),
		topics: map[string]*topic{},
	}, nil
}

// Terminate marks msg, before the handler acks it, to be terminated rather
// than acked: the handler has dead-lettered it and it must not come back.
func Terminate(msg *message.Message, reason string) {
	msg.Metadata.Set(metaTerminate, reason)
}

// NumDelivered is how many times JetStream delivered msg, this time included.
func NumDelivered(msg *message.Message) uint64 {
	n, _ := strconv.ParseUint(msg.Metadata.Get(MetaNumDelivered), 10, 64)
	return n
}

// StoredAt is when msg was stored in the stream.
func StoredAt(msg *message.Message) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, msg.Metadata.Get(MetaTimestamp))
	return t
}

// Header rebuilds the NATS headers of msg from its metadata.
func Header(msg *message.Message) nats.Header {
	h := nats.Header{}
	for k, v := range msg.Metadata {
		switch k {
		case MetaSubject, MetaStreamSeq, MetaNumDelivered, MetaTimestamp, metaTerminate,
			delay.DelayedForKey, delay.DelayedUntilKey:
			continue
		}
		h.Set(k, v)
	}
	return h
}

func (s *Subscriber) topic(name string) *topic {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	if !ok {
		t = &topic{resume: make(chan struct{})}
		s.topics[name] = t
	}
	return t
}

// Pause stops pulling the topic's messages; those already pulled and not yet
// handed to a handler are given back to the stream at once. The messages stay
// in the stream and no delivery attempts are spent while paused.
func (s *Subscriber) Pause(name string) {
	t := s.topic(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.paused {
		return
	}
	t.paused = true
	if t.iter != nil {
		t.iter.Drain()
	}
}

// Resume starts pulling a paused topic again.
func (s *Subscriber) Resume(name string) {
	t := s.topic(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !t.paused {
		return
	}
	t.paused = false
	close(t.resume)
	t.resume = make(chan struct{})
}

// Paused reports whether the topic is paused.
func (s *Subscriber) Paused(name string) bool {
	t := s.topic(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.paused
}

// Subscribe starts pulling the topic's consumer. The channel closes when ctx
// ends or the subscriber closes.
func (s *Subscriber) Subscribe(ctx context.Context, name string) (<-chan *message.Message, error) {
	select {
	case <-s.closed:
		return nil, errors.New("pullsub: subscriber is closed")
	default:
	}
	cons, err := s.cfg.Consumer(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("pullsub: consumer for %s: %w", name, err)
	}
	out := make(chan *message.Message)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.closed:
		case <-ctx.Done():
		}
		cancel()
		s.stopIter(name)
	}()
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		defer close(out)
		s.pullLoop(ctx, name, cons, out)
	}()
	return out, nil
}

func (s *Subscriber) stopIter(name string) {
	t := s.topic(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.iter != nil {
		t.iter.Drain()
	}
}

// pullLoop pulls while the topic is not paused, and waits while it is.
func (s *Subscriber) pullLoop(ctx context.Context, name string, cons jetstream.Consumer, out chan<- *message.Message) {
	t := s.topic(name)
	for ctx.Err() == nil {
		s.mu.Lock()
		paused, resume := t.paused, t.resume
		s.mu.Unlock()
		if paused {
			select {
			case <-resume:
				continue
			case <-ctx.Done():
				return
			}
		}
		// The buffer stays small: JetStream starts a message's AckWait when it
		// is pulled, not when a handler starts (watermill #609).
		it, err := cons.Messages(jetstream.PullMaxMessages(max(2, s.cfg.Concurrency/2)))
		if err != nil {
			s.log.Error("pull consumer failed; retrying", slog.String("topic", name), slog.Any("error", err))
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
			continue
		}
		s.mu.Lock()
		stopNow := t.paused || ctx.Err() != nil
		t.iter = it
		s.mu.Unlock()
		if stopNow {
			it.Drain()
		}
		s.drainIter(ctx, name, it, out)
		s.mu.Lock()
		if t.iter == it {
			t.iter = nil
		}
		s.mu.Unlock()
	}
}

// drainIter dispatches messages until the iterator is drained (pause, close)
// and gives back those that a handler never got.
func (s *Subscriber) drainIter(ctx context.Context, name string, it jetstream.MessagesContext, out chan<- *message.Message) {
	for {
		jm, err := it.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				s.log.Warn("pull failed", slog.String("topic", name), slog.Any("error", err))
				it.Stop()
			}
			return
		}
		if ctx.Err() != nil || s.Paused(name) {
			// Handed back at once, so another worker (or this one after the
			// pause) gets it without waiting for AckWait.
			_ = jm.Nak()
			continue
		}
		pulledAt := time.Now()
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			_ = jm.Nak()
			continue
		}
		if time.Since(pulledAt) > s.cfg.AckWait/3 {
			_ = jm.InProgress()
		}
		s.dispatch(ctx, name, jm, out)
	}
}

func (s *Subscriber) dispatch(ctx context.Context, name string, jm jetstream.Msg, out chan<- *message.Message) {
	wm, err := toWatermill(jm)
	if err != nil {
		// Metadata comes from the server; it failing to parse is a broken
		// connection, not a bad message. Give it back for later.
		s.log.Error("message metadata unreadable", slog.String("topic", name), slog.Any("error", err))
		_ = jm.NakWithDelay(s.cfg.NakDelay)
		<-s.slots
		return
	}
	// The handler's context outlives the subscription, so a shutdown lets
	// in-flight work finish instead of cutting a Class call in half; it ends
	// before AckWait so the message is not redelivered while still handled.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.AckWait*handlerTimeoutPercent/100)
	wm.SetContext(hctx)
	s.inFlight.Add(1)
	select {
	case out <- wm:
	case <-ctx.Done():
		cancel()
		_ = jm.Nak()
		<-s.slots
		s.inFlight.Done()
		return
	}
	go func() {
		defer s.inFlight.Done()
		defer func() { <-s.slots }()
		defer cancel()
		s.settle(jm, wm)
	}()
}

// settle tells JetStream what the handler decided.
func (s *Subscriber) settle(jm jetstream.Msg, wm *message.Message) {
	wait := time.NewTimer(s.cfg.AckWait)
	defer wait.Stop()
	select {
	case <-wm.Acked():
		if reason := wm.Metadata.Get(metaTerminate); reason != "" {
			if err := jm.TermWithReason(reason); err != nil {
				s.log.Warn("term failed; the message will be redelivered", slog.String("subject", jm.Subject()), slog.Any("error", err))
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), SettleTimeoutDefault)
		defer cancel()
		// A double ack: the handler's effects are only forgotten once the
		// server confirms, or the message comes back and is re-applied.
		if err := jm.DoubleAck(ctx); err != nil {
			s.log.Warn("ack not confirmed; the message will be redelivered", slog.String("subject", jm.Subject()), slog.Any("error", err))
		}
	case <-wm.Nacked():
		d := s.cfg.NakDelay
		if v, err := time.ParseDuration(wm.Metadata.Get(delay.DelayedForKey)); err == nil && v > 0 {
			d = v
		}
		if err := jm.NakWithDelay(d); err != nil {
			s.log.Warn("nak failed; the message will be redelivered after AckWait", slog.String("subject", jm.Subject()), slog.Any("error", err))
		}
	case <-wait.C:
		// The handler is still running past its own deadline; JetStream will
		// redeliver after AckWait, and the worker's key claim keeps the two
		// attempts from applying at once.
		s.log.Warn("handler did not settle its message within AckWait", slog.String("subject", jm.Subject()))
	}
}

func toWatermill(jm jetstream.Msg) (*message.Message, error) {
	md, err := jm.Metadata()
	if err != nil {
		return nil, err
	}
	meta := make(message.Metadata, len(jm.Headers())+4)
	for k, v := range jm.Headers() {
		if len(v) > 0 {
			meta[k] = v[0]
		}
	}
	meta[MetaSubject] = jm.Subject()
	meta[MetaStreamSeq] = strconv.FormatUint(md.Sequence.Stream, 10)
	meta[MetaNumDelivered] = strconv.FormatUint(md.NumDelivered, 10)
	meta[MetaTimestamp] = md.Timestamp.UTC().Format(time.RFC3339Nano)
	id := jm.Headers().Get(nats.MsgIdHdr)
	if id == "" {
		id = md.Stream + ":" + meta[MetaStreamSeq]
	}
	wm := message.NewMessage(id, jm.Data())
	wm.Metadata = meta
	return wm, nil
}

// Close stops pulling, gives back what no handler got, and waits (up to
// AckWait) for the messages in flight to be settled.
func (s *Subscriber) Close() error {
	s.once.Do(func() { close(s.closed) })
	s.mu.Lock()
	for _, t := range s.topics {
		if t.iter != nil {
			t.iter.Drain()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.loops.Wait()
		s.inFlight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(s.cfg.AckWait):
		return errors.New("pullsub: messages still in flight after AckWait")
	}
}
