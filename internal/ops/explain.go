package ops

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/audit"
	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/httpx"
)

// Explanation is the history of the entities a query matched.
type Explanation struct {
	Tenant string `json:"tenant"`
	// Query is what was asked, with an email shown as "[email]": the
	// answer is pasted into tickets.
	Query    string          `json:"query"`
	Entities []EntityHistory `json:"entities"`
}

// EntityHistory is one entity's history.
type EntityHistory struct {
	Kind events.Kind `json:"kind"`
	Key  string      `json:"key"`
	// Desired and Applied are from the state bucket: the newest state seen
	// and the version Class has.
	DesiredOp      events.Op      `json:"desired_op,omitempty"`
	DesiredVersion events.Version `json:"desired_version"`
	Applied        events.Version `json:"applied"`
	AppliedAt      time.Time      `json:"applied_at,omitzero"`
	ClassID        string         `json:"class_id,omitempty"`
	Messages       []MessageStory `json:"messages"`
}

// MessageStory is one change message of an entity and what the workers did
// with it.
type MessageStory struct {
	StreamSeq uint64         `json:"stream_seq"`
	Subject   string         `json:"subject"`
	MessageID string         `json:"message_id"`
	Version   events.Version `json:"version"`
	Origin    events.Origin  `json:"origin"`
	// Source and Observed are the message's ce-source and ce-time, when the
	// stream still holds it.
	Source   string         `json:"source,omitempty"`
	Observed time.Time      `json:"observed,omitzero"`
	Stored   time.Time      `json:"stored,omitzero"`
	Replay   bool           `json:"replay,omitempty"`
	Attempts []audit.Record `json:"attempts"`
}

// Explain finds the entities of a tenant that a query names — a source id,
// an external id or key, an email, or a Class class id or user id — and
// tells each one's history in order: the message and its source event or
// snapshot, every worker attempt with its outcome, its Class calls and
// their statuses, and its trace id.
func (e *Env) Explain(ctx context.Context, tenant, query string) (Explanation, error) {
	out := Explanation{Tenant: tenant, Query: httpx.RedactEmails(query)}
	if _, err := e.Tenant(tenant); err != nil {
		return out, err
	}
	query = strings.TrimSpace(query)
	if query == "" {
		return out, errors.New("say whom or what to explain: a source id, an email, or a Class id")
	}
	ents, err := e.states(ctx, tenant)
	if err != nil {
		return out, err
	}
	extClass, extUser := e.resolveClassIDs(ctx, tenant, query)
	for _, ent := range ents {
		if !matches(ent, query, extClass, extUser) {
			continue
		}
		h, err := e.history(ctx, tenant, ent)
		if err != nil {
			return out, err
		}
		out.Entities = append(out.Entities, h)
	}
	return out, nil
}

// resolveClassIDs turns a Class id into the external ids it stands for: a
// class id through the class-id cache (or Class), a numeric user id through
// Class.
func (e *Env) resolveClassIDs(ctx context.Context, tenant, query string) (extClass, extUser string) {
	if strings.ContainsAny(query, ":@#") {
		return "", ""
	}
	if w, err := e.Res.ClassIDs.WatchFiltered(ctx, []string{tenant + ".>"}, jetstream.IgnoreDeletes()); err == nil {
		for u := range w.Updates() {
			if u == nil {
				break
			}
			if string(u.Value()) == query {
				if k, err := decodeClassIDKey(tenant, u.Key()); err == nil {
					extClass = k
				}
			}
		}
		_ = w.Stop()
	}
	api, err := e.classOf(tenant)
	if err != nil {
		return extClass, ""
	}
	if extClass == "" {
		if info, err := api.GetClass(ctx, class.ClassRef{ClassID: query}); err == nil {
			extClass = info.ExtClassID
		}
	}
	if id, err := strconv.ParseInt(query, 10, 64); err == nil {
		if u, err := api.GetUser(ctx, class.UserRef{ID: id}); err == nil {
			extUser = u.ExtUserID
		}
	}
	return extClass, extUser
}

func decodeClassIDKey(tenant, key string) (string, error) {
	enc, ok := strings.CutPrefix(key, tenant+".")
	if !ok {
		return "", errors.New("not the tenant's")
	}
	b, err := base64URL.DecodeString(enc)
	return string(b), err
}

// matches reports whether an entity is one the query names.
func matches(ent entity, q, extClass, extUser string) bool {
	key := ent.rec.Key
	parts := strings.Split(key, "#") // an enrollment's key is class#person
	for _, p := range parts {
		if p == q || strings.HasSuffix(p, ":"+q) || p == extClass || p == extUser {
			return true
		}
	}
	if key == q {
		return true
	}
	if !strings.Contains(q, "@") || ent.rec.Desired == nil {
		return false
	}
	var withEmail struct {
		Email string `json:"email"`
	}
	if err := json.Unmarshal(ent.rec.Desired.State, &withEmail); err != nil {
		return false
	}
	return strings.EqualFold(withEmail.Email, q)
}

func (e *Env) history(ctx context.Context, tenant string, ent entity) (EntityHistory, error) {
	h := EntityHistory{Kind: ent.rec.Kind, Key: ent.rec.Key, Applied: ent.rec.Applied, AppliedAt: ent.rec.AppliedAt}
	if d := ent.rec.Desired; d != nil {
		h.DesiredOp, h.DesiredVersion = d.Op, d.Version
	}
	if ent.rec.Kind == events.KindClass || ent.rec.Kind == events.KindSchedule {
		if v, err := e.Res.ClassIDs.Get(ctx, events.ClassIDKey(tenant, ent.rec.Key)); err == nil {
			h.ClassID = string(v.Value())
		}
	}
	recs, err := audit.History(ctx, e.JS, tenant, ent.rec.Kind, ent.rec.Key)
	if err != nil {
		return h, err
	}
	bySeq := map[uint64]int{}
	for _, r := range recs {
		i, ok := bySeq[r.StreamSeq]
		if !ok {
			i = len(h.Messages)
			bySeq[r.StreamSeq] = i
			story := MessageStory{StreamSeq: r.StreamSeq, Subject: r.Subject, MessageID: r.MessageID,
				Version: r.Version, Origin: r.Origin, Replay: r.Replay}
			if raw, err := e.Res.Stream.GetMsg(ctx, r.StreamSeq); err == nil {
				story.Source = raw.Header.Get(events.HeaderSource)
				story.Observed, _ = time.Parse(time.RFC3339Nano, raw.Header.Get(events.HeaderTime))
				story.Stored = raw.Time
			}
			h.Messages = append(h.Messages, story)
		}
		h.Messages[i].Attempts = append(h.Messages[i].Attempts, r)
	}
	return h, nil
}
