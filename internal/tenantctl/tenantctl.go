// Package tenantctl holds the operator's word on each tenant: active,
// paused, or offboarded. provisionctl writes it to the KV bucket
// PROVISION_TENANTS; every poller and worker watches the bucket and stops
// a tenant's work while it is not active. Stopping loses nothing: a stopped
// poller's cursor stays where it was, and a stopped worker's messages wait in
// the stream.
package tenantctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Status is a tenant's operating status.
type Status string

// The statuses.
const (
	Active     Status = "active"
	Paused     Status = "paused"
	Offboarded Status = "offboarded"
)

// State is what the operator said of a tenant, and when.
type State struct {
	Status Status    `json:"status"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// Stopped reports whether the tenant's work must wait.
func (s State) Stopped() bool { return s.Status == Paused || s.Status == Offboarded }

// Get reads a tenant's state; a tenant never mentioned is active.
func Get(ctx context.Context, kv jetstream.KeyValue, tenant string) (State, error) {
	e, err := kv.Get(ctx, tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return State{Status: Active}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read state of tenant %s: %w", tenant, err)
	}
	return decode(e.Value())
}

func decode(v []byte) (State, error) {
	var s State
	if err := json.Unmarshal(v, &s); err != nil {
		return State{}, fmt.Errorf("tenant state does not decode: %w", err)
	}
	if s.Status == "" {
		s.Status = Active
	}
	return s, nil
}

// Set records a tenant's state.
func Set(ctx context.Context, kv jetstream.KeyValue, tenant string, s State) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, tenant, v); err != nil {
		return fmt.Errorf("write state of tenant %s: %w", tenant, err)
	}
	return nil
}

// Watcher follows the bucket and knows every tenant's state.
type Watcher struct {
	log     *slog.Logger
	mu      sync.Mutex
	states  map[string]State
	changed chan struct{}
}

// Watch starts following the bucket until ctx ends. It returns once the
// current states are known, so the caller never starts a stopped tenant's
// work.
func Watch(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger) (*Watcher, error) {
	kw, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch tenant states: %w", err)
	}
	w := &Watcher{log: log, states: map[string]State{}, changed: make(chan struct{})}
	initial := make(chan struct{})
	go func() {
		defer kw.Stop() //nolint:errcheck // nothing to do about it
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-kw.Updates():
				if !ok {
					return
				}
				if e == nil {
					close(initial)
					continue
				}
				w.update(e)
			}
		}
	}()
	select {
	case <-initial:
		return w, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (w *Watcher) update(e jetstream.KeyValueEntry) {
	s := State{Status: Active}
	if e.Operation() == jetstream.KeyValuePut {
		var err error
		if s, err = decode(e.Value()); err != nil {
			// An unreadable entry stops the tenant: safer than running one
			// an operator may have paused.
			w.log.Error("tenant state unreadable; treating the tenant as paused", slog.String("tenant", e.Key()), slog.Any("error", err))
			s = State{Status: Paused, Reason: "unreadable state entry"}
		}
	}
	w.mu.Lock()
	prev := w.states[e.Key()]
	w.states[e.Key()] = s
	if prev.Stopped() != s.Stopped() {
		close(w.changed)
		w.changed = make(chan struct{})
	}
	w.mu.Unlock()
	if prev.Stopped() != s.Stopped() {
		w.log.Info("tenant state changed", slog.String("tenant", e.Key()), slog.String("status", string(s.Status)), slog.String("by", s.By))
	}
}

// State returns a tenant's state.
func (w *Watcher) State(tenant string) State {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.states[tenant]; ok {
		return s
	}
	return State{Status: Active}
}

// Changed returns a channel closed at the next change of any tenant between
// running and stopped.
func (w *Watcher) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// RunWhileActive runs fn for the tenant while it is active: it waits while
// the tenant is stopped, cancels fn's context when the tenant is stopped, and
// starts fn again when it is resumed. It returns when ctx ends or fn fails
// while the tenant is active.
func (w *Watcher) RunWhileActive(ctx context.Context, tenant string, fn func(context.Context) error) error {
	for {
		for {
			changed := w.Changed()
			if !w.State(tenant).Stopped() {
				break
			}
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			}
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			for {
				changed := w.Changed()
				if w.State(tenant).Stopped() {
					cancel()
					return
				}
				select {
				case <-done:
					return
				case <-changed:
				}
			}
		}()
		err := fn(runCtx)
		close(done)
		stopped := runCtx.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case stopped:
			w.log.Info("tenant stopped by an operator; its work waits", slog.String("tenant", tenant))
			continue
		default:
			return err
		}
	}
}
