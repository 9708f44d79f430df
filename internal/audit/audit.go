// Package audit keeps the worker's outcome record of every delivery of a
// change message in the PROVISION_AUDIT stream, one subject per entity, so
// that `provisionctl explain` can tell the history of a person or a class:
// which message, which attempt, which Class calls and answers, which trace.
// Records hold keys, versions and call paths, never names or emails.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/httpx"
)

// Record is one delivery's outcome.
type Record struct {
	Time      time.Time      `json:"time"`
	Tenant    string         `json:"tenant"`
	Kind      events.Kind    `json:"kind"`
	Op        events.Op      `json:"op"`
	Key       string         `json:"key"`
	MessageID string         `json:"message_id"`
	Subject   string         `json:"subject"`
	StreamSeq uint64         `json:"stream_seq"`
	Version   events.Version `json:"version"`
	Origin    events.Origin  `json:"origin"`
	Replay    bool           `json:"replay,omitempty"`
	Attempt   uint64         `json:"attempt"`
	// Result is applied, skipped, retry, dead or paused.
	Result  string        `json:"result"`
	Error   string        `json:"error,omitempty"`
	Calls   []httpx.Call  `json:"calls,omitempty"`
	TraceID string        `json:"trace_id,omitempty"`
	Worker  string        `json:"worker,omitempty"`
	Took    time.Duration `json:"took"`
}

// Writer publishes records without waiting for each acknowledgement: an
// audit record explains, it is not the effect, so a slow audit write must
// not slow the worker. Failures are counted and logged.
//
// Give the JetStream context an async publish timeout
// (jetstream.WithPublishAsyncTimeout): an acknowledgement lost with a
// connection otherwise never arrives, and nats.go keeps such a publish
// pending for ever, until its pending limit stalls every async publish of
// the process.
type Writer struct {
	js     jetstream.JetStream
	log    *slog.Logger
	failed atomic.Int64
}

// NewWriter returns a writer to the audit stream.
func NewWriter(js jetstream.JetStream, log *slog.Logger) *Writer {
	return &Writer{js: js, log: log}
}

// Write publishes rec.
func (w *Writer) Write(rec Record) {
	body, err := json.Marshal(rec)
	if err != nil {
		w.fail(err)
		return
	}
	msg := nats.NewMsg(events.AuditSubject(rec.Tenant, rec.Kind, rec.Key))
	msg.Data = body
	f, err := w.js.PublishMsgAsync(msg, jetstream.WithExpectStream(events.AuditStreamName))
	if err != nil {
		w.fail(err)
		return
	}
	go func() {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			w.fail(err)
		}
	}()
}

// Failed is the number of records that could not be written.
func (w *Writer) Failed() int64 { return w.failed.Load() }

func (w *Writer) fail(err error) {
	// One line per hundred failures: the audit stream being away must not
	// flood the logs.
	if n := w.failed.Add(1); n%100 == 1 {
		w.log.Warn("audit record not written", slog.Int64("failed_so_far", n), slog.Any("error", err))
	}
}

// History reads the records of one entity, oldest first.
func History(ctx context.Context, js jetstream.JetStream, tenant string, kind events.Kind, key string) ([]Record, error) {
	subject := events.AuditSubject(tenant, kind, key)
	var out []Record
	err := events.ReadStream(ctx, js, events.AuditStreamName, []string{subject}, jetstream.DeliverAllPolicy, func(m jetstream.Msg) error {
		var r Record
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			return fmt.Errorf("audit record on %s does not decode: %w", m.Subject(), err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}
