// Package valve is the safety valve of the pollers: the deletions of one poll
// or snapshot that would remove more than a share of a tenant's classes or
// enrollments are held as a change set instead of published, while the feed
// goes on. A later upsert of a held entity cancels its deletion; an operator
// approves (publishes) or rejects (drops) the rest.
package valve

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/events"
)

// BucketName holds the held change sets, key "<tenant>.<set id>".
const BucketName = "PROVISION_HELD"

// MaxDeleteShareDefault is the share of a tenant's classes or enrollments one
// poll may delete before its deletions are held.
const MaxDeleteShareDefault = 0.2

// Held is one message of a held change set, kept as it would be published.
type Held struct {
	Subject string      `json:"subject"`
	Header  nats.Header `json:"header"`
	Data    []byte      `json:"data"`
	// Key is "<kind>/<key>", to cancel the deletion on a later upsert.
	Key string `json:"key"`
}

// ChangeSet is a held group of deletions.
type ChangeSet struct {
	ID       string    `json:"id"`
	Tenant   string    `json:"tenant"`
	Created  time.Time `json:"created"`
	Reason   string    `json:"reason"`
	Messages []Held    `json:"messages"`
}

// Totals counts a tenant's classes and enrollments before a poll, and the
// deletions the poll would make.
type Totals struct {
	Classes, Enrollments               int
	DeletedClasses, DeletedEnrollments int
}

// Exceeds reports whether the deletions pass the share, and says how. A
// tenant with a handful of classes may always lose one.
func (t Totals) Exceeds(share float64) (bool, string) {
	share = cmp.Or(share, MaxDeleteShareDefault)
	if t.DeletedClasses > 1 && float64(t.DeletedClasses) > share*float64(t.Classes) {
		return true, fmt.Sprintf("would delete %d of %d classes (more than %.0f%%)", t.DeletedClasses, t.Classes, share*100)
	}
	if t.DeletedEnrollments > 1 && float64(t.DeletedEnrollments) > share*float64(t.Enrollments) {
		return true, fmt.Sprintf("would delete %d of %d enrollments (more than %.0f%%)", t.DeletedEnrollments, t.Enrollments, share*100)
	}
	return false, ""
}

// Count counts one deletion of an entity of kind.
func (t *Totals) Count(kind events.Kind) {
	switch kind {
	case events.KindClass:
		t.DeletedClasses++
	case events.KindEnrollment:
		t.DeletedEnrollments++
	}
}

// Store keeps held change sets in a KV bucket.
type Store struct{ kv jetstream.KeyValue }

// EnsureStore creates or updates the bucket.
func EnsureStore(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	cfg := jetstream.KeyValueConfig{Bucket: BucketName, Description: "rollcall held deletions awaiting approval", History: 1, Storage: jetstream.FileStorage, Replicas: cmp.Or(replicas, 1)}
	kv, err := events.EnsureBucket(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv}, nil
}

// NewHeld turns an encoded change message into a held one.
func NewHeld(msg *nats.Msg, key string) Held {
	return Held{Subject: msg.Subject, Header: msg.Header, Data: msg.Data, Key: key}
}

// Hold stores a change set.
func (s *Store) Hold(ctx context.Context, set ChangeSet) error {
	value, err := json.Marshal(set)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, set.Tenant+"."+set.ID, value); err != nil {
		return fmt.Errorf("hold change set: %w", err)
	}
	return nil
}

// List returns a tenant's held change sets, oldest first.
func (s *Store) List(ctx context.Context, tenant string) ([]ChangeSet, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, tenant+".>")
	if err != nil {
		return nil, err
	}
	var out []ChangeSet
	for key := range lister.Keys() {
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var set ChangeSet
		if err := json.Unmarshal(e.Value(), &set); err != nil {
			return nil, fmt.Errorf("held change set %s is corrupt: %w", key, err)
		}
		out = append(out, set)
	}
	slices.SortFunc(out, func(a, b ChangeSet) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// Cancel removes the held deletions of keys that were upserted since, and
// drops sets left empty. It returns how many deletions it cancelled.
func (s *Store) Cancel(ctx context.Context, tenant string, upserted map[string]bool) (int, error) {
	if len(upserted) == 0 {
		return 0, nil
	}
	sets, err := s.List(ctx, tenant)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, set := range sets {
		before := len(set.Messages)
		set.Messages = slices.DeleteFunc(set.Messages, func(h Held) bool { return upserted[h.Key] })
		if len(set.Messages) == before {
			continue
		}
		n += before - len(set.Messages)
		if len(set.Messages) == 0 {
			err = s.kv.Delete(ctx, tenant+"."+set.ID)
		} else {
			err = s.Hold(ctx, set)
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Approve publishes a held set's deletions and removes the set.
func (s *Store) Approve(ctx context.Context, js jetstream.JetStream, tenant, id string) (int, error) {
	set, err := s.get(ctx, tenant, id)
	if err != nil {
		return 0, err
	}
	for _, h := range set.Messages {
		msg := &nats.Msg{Subject: h.Subject, Header: h.Header, Data: h.Data}
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(events.StreamName)); err != nil {
			return 0, fmt.Errorf("publish held deletion: %w", err)
		}
	}
	return len(set.Messages), s.kv.Delete(ctx, tenant+"."+id)
}

// Reject drops a held set.
func (s *Store) Reject(ctx context.Context, tenant, id string) error {
	if _, err := s.get(ctx, tenant, id); err != nil {
		return err
	}
	return s.kv.Delete(ctx, tenant+"."+id)
}

// ErrNotFound means no such held change set.
var ErrNotFound = errors.New("no such held change set")

func (s *Store) get(ctx context.Context, tenant, id string) (ChangeSet, error) {
	var set ChangeSet
	e, err := s.kv.Get(ctx, tenant+"."+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return set, fmt.Errorf("%w: %s/%s", ErrNotFound, tenant, id)
	}
	if err != nil {
		return set, err
	}
	return set, json.Unmarshal(e.Value(), &set)
}
