package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/events"
)

// DeadLetter is one record of PROVISION_DLQ.
type DeadLetter struct {
	Seq     uint64    `json:"seq"`
	Subject string    `json:"subject"`
	Tenant  string    `json:"tenant"`
	Stored  time.Time `json:"stored"`
	// Rejected marks a source record the poller could not turn into change
	// messages; the rest are messages the worker could not apply.
	Rejected bool `json:"rejected"`
	// OriginalSubject is the change message's subject (not for rejected
	// records).
	OriginalSubject string `json:"original_subject,omitempty"`
	OriginalSeq     string `json:"original_seq,omitempty"`
	MessageID       string `json:"message_id,omitempty"`
	Reason          string `json:"reason"`
	Attempts        string `json:"attempts,omitempty"`
	Source          string `json:"source,omitempty"`
	// Header and Data are the original message (shown by `dlq show` only:
	// they hold personal data).
	Header nats.Header `json:"header,omitempty"`
	Data   []byte      `json:"data,omitempty"`
}

func deadLetterOf(seq uint64, subject string, stored time.Time, h nats.Header, data []byte, full bool) DeadLetter {
	d := DeadLetter{
		Seq: seq, Subject: subject, Stored: stored,
		Rejected:        strings.HasSuffix(subject, ".rejected"),
		OriginalSubject: h.Get(events.HeaderDeadSubject),
		OriginalSeq:     h.Get(events.HeaderDeadSequence),
		MessageID:       h.Get(events.HeaderID),
		Reason:          h.Get(events.HeaderDeadReason),
		Attempts:        h.Get(events.HeaderDeadAttempts),
		Source:          h.Get(events.HeaderSource),
	}
	if tokens := strings.Split(subject, "."); len(tokens) > 1 {
		d.Tenant = tokens[1]
	}
	if full {
		d.Header, d.Data = h, data
	}
	return d
}

// DLQSelector chooses dead letters: by sequence, or all of a tenant's
// (optionally those whose original subject matches a filter).
type DLQSelector struct {
	Tenant string
	Seqs   []uint64
	// Subject is a filter on the dead letter's subject, e.g.
	// provision.<tenant>.dead.enrollment.*, or on the change message's
	// subject, provision.<tenant>.enrollment.*, which means the same; empty
	// means all of the tenant's.
	Subject string
	All     bool
}

func (s DLQSelector) check() error {
	if !events.ValidTenant(s.Tenant) {
		return fmt.Errorf("--tenant %q is not a tenant id", s.Tenant)
	}
	if len(s.Seqs) == 0 && !s.All && s.Subject == "" {
		return errors.New("name dead letters by sequence, or give --subject or --all")
	}
	return checkDeadFilter(s.Tenant, s.Subject)
}

func checkDeadFilter(tenant, subject string) error {
	if subject != "" && !strings.HasPrefix(subject, events.SubjectRoot+"."+tenant+".") {
		return fmt.Errorf("--subject %q is not within the tenant's dead letters %s.%s.>", subject, events.SubjectRoot, tenant)
	}
	return nil
}

// deadFilter turns a filter on change messages' subjects
// (provision.<tenant>.<kind>.<op>, what `dlq list` shows) into the filter
// on their dead letters' (provision.<tenant>.dead.<kind>.<op>); any other
// filter is taken as it is.
func deadFilter(tenant, subject string) string {
	tokens := strings.Split(subject, ".")
	if len(tokens) == 4 && tokens[0] == events.SubjectRoot && tokens[1] == tenant && tokens[2] != "dead" && tokens[2] != "rejected" {
		return events.SubjectRoot + "." + tenant + ".dead." + tokens[2] + "." + tokens[3]
	}
	return subject
}

// DLQList lists a tenant's dead letters, oldest first, without their
// bodies.
func (e *Env) DLQList(ctx context.Context, tenant, subject string) ([]DeadLetter, error) {
	if !events.ValidTenant(tenant) {
		return nil, fmt.Errorf("--tenant %q is not a tenant id", tenant)
	}
	if err := checkDeadFilter(tenant, subject); err != nil {
		return nil, err
	}
	subject = deadFilter(tenant, subject)
	if subject == "" {
		subject = events.SubjectRoot + "." + tenant + ".>"
	}
	var out []DeadLetter
	err := events.ReadStream(ctx, e.JS, events.DLQStreamName, []string{subject}, jetstream.DeliverAllPolicy, func(m jetstream.Msg) error {
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		out = append(out, deadLetterOf(md.Sequence.Stream, m.Subject(), md.Timestamp, m.Headers(), nil, false))
		return nil
	})
	return out, err
}

// DLQShow returns one dead letter with the original message.
func (e *Env) DLQShow(ctx context.Context, seq uint64) (DeadLetter, error) {
	raw, err := e.Res.DLQ.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("no dead letter %d (dropped or redriven already?)", seq)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	return deadLetterOf(raw.Sequence, raw.Subject, raw.Time, raw.Header, raw.Data, true), nil
}

func (e *Env) selectDead(ctx context.Context, sel DLQSelector) ([]DeadLetter, error) {
	if err := sel.check(); err != nil {
		return nil, err
	}
	if len(sel.Seqs) == 0 {
		return e.DLQList(ctx, sel.Tenant, sel.Subject)
	}
	var out []DeadLetter
	for _, seq := range sel.Seqs {
		d, err := e.DLQShow(ctx, seq)
		if err != nil {
			return nil, err
		}
		if d.Tenant != sel.Tenant {
			return nil, fmt.Errorf("dead letter %d is tenant %s's, not %s's", seq, d.Tenant, sel.Tenant)
		}
		out = append(out, d)
	}
	return out, nil
}

// RedriveResult says what a redrive did.
type RedriveResult struct {
	Redriven []uint64 `json:"redriven"`
	// Refused are rejected source records: they are not change messages,
	// so the fix is at the source, and the next poll or a resync publishes
	// them.
	Refused []uint64 `json:"refused,omitempty"`
}

// DLQRedrive publishes the chosen dead letters' original messages to their
// original subjects, then removes them from the dead-letter stream. A
// redrive interrupted between the two is safe to repeat: the message id is
// the dead letter's, so the stream drops a second publish.
func (e *Env) DLQRedrive(ctx context.Context, sel DLQSelector) (RedriveResult, error) {
	dead, err := e.selectDead(ctx, sel)
	if err != nil {
		return RedriveResult{}, err
	}
	var res RedriveResult
	for i, d := range dead {
		e.progress(i, len(dead))
		if d.Rejected || d.OriginalSubject == "" {
			res.Refused = append(res.Refused, d.Seq)
			continue
		}
		full := d
		if full.Data == nil {
			if full, err = e.DLQShow(ctx, d.Seq); err != nil {
				return res, err
			}
		}
		msg := nats.NewMsg(full.OriginalSubject)
		msg.Data = full.Data
		for k, v := range full.Header {
			// The dead letter's own headers, and NATS's (its message id,
			// its expected stream), are not the message's.
			if strings.HasPrefix(k, "rollcall-dead-") || strings.HasPrefix(k, "Nats-") {
				continue
			}
			msg.Header[k] = v
		}
		if _, err := e.JS.PublishMsg(ctx, msg, jetstream.WithMsgID("redrive:"+strconv.FormatUint(d.Seq, 10)),
			jetstream.WithExpectStream(events.StreamName)); err != nil {
			return res, fmt.Errorf("redrive dead letter %d: %w", d.Seq, err)
		}
		if err := e.Res.DLQ.DeleteMsg(ctx, d.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return res, fmt.Errorf("remove redriven dead letter %d: %w", d.Seq, err)
		}
		res.Redriven = append(res.Redriven, d.Seq)
	}
	e.progress(len(dead), len(dead))
	return res, nil
}

// DLQDrop removes the chosen dead letters for good.
func (e *Env) DLQDrop(ctx context.Context, sel DLQSelector) ([]uint64, error) {
	dead, err := e.selectDead(ctx, sel)
	if err != nil {
		return nil, err
	}
	var dropped []uint64
	for _, d := range dead {
		if err := e.Res.DLQ.DeleteMsg(ctx, d.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return dropped, fmt.Errorf("drop dead letter %d: %w", d.Seq, err)
		}
		dropped = append(dropped, d.Seq)
	}
	return dropped, nil
}
