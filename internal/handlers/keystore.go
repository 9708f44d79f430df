package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/events"
)

// KeyRecord is what the state bucket keeps per key: the newest desired state
// seen, the version last applied to Class, and the claim of the worker
// applying one now.
type KeyRecord struct {
	Kind      events.Kind    `json:"kind"`
	Key       string         `json:"key"`
	Desired   *DesiredState  `json:"desired,omitempty"`
	Applied   events.Version `json:"applied"`
	AppliedOp events.Op      `json:"applied_op,omitempty"`
	AppliedAt time.Time      `json:"applied_at,omitzero"`
	Claim     *Claim         `json:"claim,omitempty"`
}

// DesiredState is the newest message seen for a key, whether or not it has
// been applied yet: replay --all and resync rebuild Class from it.
type DesiredState struct {
	Op        events.Op       `json:"op"`
	Version   events.Version  `json:"version"`
	Origin    events.Origin   `json:"origin"`
	MessageID string          `json:"message_id"`
	State     json.RawMessage `json:"state"`
}

// Claim says a worker is applying a message of this key until Until. A
// claim outlives its holder only until then, so a crashed worker delays its
// keys by at most the claim's TTL.
type Claim struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// ErrStale means the message is not newer than what Class already has.
var ErrStale = errors.New("an equal or newer version was already applied")

// ErrClaimLost means the claim expired and another worker took the key while
// this one was applying it; the message must be applied again.
var ErrClaimLost = errors.New("key claim lost to another worker")

// KeyBusyError means another worker holds the key's claim.
type KeyBusyError struct{ Until time.Time }

func (e *KeyBusyError) Error() string {
	return fmt.Sprintf("key claimed by another worker until %s", e.Until.Format(time.RFC3339Nano))
}

// KeyStore serialises the application of each key across every worker and
// guards against applying an older version over a newer one. A version check
// alone would not do: two workers could both pass it and race their Class
// calls. So a worker claims the key with a compare-and-set on the key's
// record before calling Class, and releases it, with the applied version, by
// another compare-and-set on the revision it wrote.
type KeyStore struct {
	kv       jetstream.KeyValue
	holder   string
	claimTTL time.Duration
	now      func() time.Time

	// known remembers the record and revision this process last wrote per
	// key, so a claim can compare-and-set against it without reading first:
	// a stale entry only costs a failed write and a read. New keys are
	// created without a read for the same reason.
	mu    sync.Mutex
	known map[string]knownRecord
}

type knownRecord struct {
	rev uint64
	rec KeyRecord
}

// knownRecordsMax bounds the memory of [KeyStore.known]; past it the cache
// starts over, which costs one read per key.
const knownRecordsMax = 200_000

// NewKeyStore returns a store over the state bucket. holder identifies this
// worker process in claims.
func NewKeyStore(kv jetstream.KeyValue, holder string, claimTTL time.Duration, now func() time.Time) *KeyStore {
	return &KeyStore{kv: kv, holder: holder, claimTTL: claimTTL, now: now, known: map[string]knownRecord{}}
}

func (s *KeyStore) remember(bucketKey string, rev uint64, rec KeyRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.known) >= knownRecordsMax {
		clear(s.known)
	}
	s.known[bucketKey] = knownRecord{rev: rev, rec: rec}
}

func (s *KeyStore) forget(bucketKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.known, bucketKey)
}

func (s *KeyStore) lookup(bucketKey string) (knownRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.known[bucketKey]
	return k, ok
}

// Lease is a held claim.
type Lease struct {
	bucketKey string
	rev       uint64
	rec       KeyRecord
	msg       events.Message
	// created: this claim created the key's record, so no worker ever
	// attempted the key before (every attempt claims first).
	created bool
}

// FirstAttempt reports whether no attempt to apply the key came before this
// claim's, by any worker.
func (l *Lease) FirstAttempt() bool { return l.created }

// casAttempts bounds the compare-and-set loop; losing it this often means
// heavy contention, and the message is simply retried later.
const casAttempts = 8

// Claim claims m's key, recording m as the desired state if it is the newest
// seen. It returns [ErrStale] if an equal (unless m is a replay) or newer
// version was applied, or a [*KeyBusyError].
func (s *KeyStore) Claim(ctx context.Context, m events.Message) (*Lease, error) {
	bucketKey := events.StateKey(m.Tenant, m.Kind, m.Key)
	// First try without a read: against the record this process last wrote,
	// or as a new key. The compare-and-set fails if either guess is wrong,
	// and the loop then reads the record.
	known, guessed := s.lookup(bucketKey)
	create := !guessed
	for range casAttempts {
		rec, rev := known.rec, known.rev
		if !guessed && !create {
			rec, rev = KeyRecord{Kind: m.Kind, Key: m.Key}, 0
			entry, err := s.kv.Get(ctx, bucketKey)
			switch {
			case err == nil:
				if err := json.Unmarshal(entry.Value(), &rec); err != nil {
					return nil, fmt.Errorf("state of %s is corrupt: %w", bucketKey, err)
				}
				rev = entry.Revision()
			case errors.Is(err, jetstream.ErrKeyNotFound):
			default:
				return nil, fmt.Errorf("read state: %w", err)
			}
		}
		if create {
			rec, rev = KeyRecord{Kind: m.Kind, Key: m.Key}, 0
		}
		guessed, create = false, false
		now := s.now()
		if c := m.Version.Compare(rec.Applied); c < 0 || (c == 0 && !m.Replay) {
			return nil, ErrStale
		}
		if rec.Claim != nil && now.Before(rec.Claim.Until) {
			return nil, &KeyBusyError{Until: rec.Claim.Until}
		}
		rec.Claim = &Claim{Holder: s.holder, Until: now.Add(s.claimTTL)}
		if rec.Desired == nil || m.Version.Compare(rec.Desired.Version) >= 0 {
			rec.Desired = &DesiredState{Op: m.Op, Version: m.Version, Origin: m.Origin, MessageID: m.ID, State: m.State}
		}
		value, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		created := rev == 0
		if created {
			rev, err = s.kv.Create(ctx, bucketKey, value)
		} else {
			rev, err = s.kv.Update(ctx, bucketKey, value, rev)
		}
		if isConflict(err) {
			s.forget(bucketKey)
			continue
		}
		if err != nil {
			s.forget(bucketKey)
			return nil, fmt.Errorf("claim key: %w", err)
		}
		s.remember(bucketKey, rev, rec)
		return &Lease{bucketKey: bucketKey, rev: rev, rec: rec, msg: m, created: created}, nil
	}
	return nil, &KeyBusyError{Until: s.now().Add(time.Second)}
}

// Release gives the claim up; applied records the message's version as the
// one Class now has. [ErrClaimLost] means someone else took the key
// meanwhile, so the caller must apply the message again.
func (s *KeyStore) Release(ctx context.Context, l *Lease, applied bool) error {
	rec := l.rec
	rec.Claim = nil
	if applied {
		rec.Applied = l.msg.Version
		rec.AppliedOp = l.msg.Op
		rec.AppliedAt = s.now().UTC()
	}
	value, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	rev, err := s.kv.Update(ctx, l.bucketKey, value, l.rev)
	if err != nil {
		s.forget(l.bucketKey)
		if isConflict(err) {
			return ErrClaimLost
		}
		return fmt.Errorf("release key: %w", err)
	}
	s.remember(l.bucketKey, rev, rec)
	return nil
}

// Record reads a key's record; ok is false when the key was never seen.
func (s *KeyStore) Record(ctx context.Context, tenant string, kind events.Kind, key string) (rec KeyRecord, ok bool, err error) {
	entry, err := s.kv.Get(ctx, events.StateKey(tenant, kind, key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, err
	}
	return rec, true, json.Unmarshal(entry.Value(), &rec)
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
