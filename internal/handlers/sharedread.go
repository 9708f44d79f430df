package handlers

import (
	"context"
	"sync"

	"github.com/rollcall/rollcall/internal/httpx"
)

// sharedRead lets callers that need the same read at the same time share one
// request, without ever answering a caller with a read that was sent before
// it asked.
//
// That rule is what makes sharing safe for the worker. An enrollment is
// applied by reading its class's enrollments and posting the person only if
// they are absent; a POST that took effect but answered 500 is found by the
// read of the next attempt. The next attempt of a key only starts after the
// last one ended (the key's claim), so any read sent after it asked sees
// that POST. A read already on its way when it asked might not.
//
// So callers gather behind the read in flight: the first of them (the
// round's leader) waits for that read to end, then sends one read for all of
// them.
//
// A caller with no earlier attempt to see (the first attempt of a key never
// applied before, by any worker) may instead take the answer of the read in
// flight: nothing it must see can be missing from it. That is the common
// case in a school's first sync, where the 25 enrollments of a class arrive
// together: they cost a few reads instead of 25, and wait for none longer
// than one read.
type sharedRead[T any] struct {
	mu   sync.Mutex
	keys map[string]*readQueue[T]
}

// readQueue is one key's reads: the one being sent and the one gathering
// callers until that ends.
type readQueue[T any] struct {
	sending, gathering *readRound[T]
}

// readRound is one read and the callers that share its answer.
type readRound[T any] struct {
	done    chan struct{}
	callers int // guarded by sharedRead.mu
	value   T
	err     error
	// calls are the HTTP calls of the read, for every caller's call log:
	// the leader's as they are, the others' marked shared.
	calls []httpx.Call
	// abandoned: the leader's own context ended before the read answered,
	// so err says nothing about the other callers' read.
	abandoned bool
}

// Do returns the answer of a call of read for key sent after Do was called,
// or, if anyInFlight, of one in flight when it was called, shared with the
// callers of Do for key at the same time. The value is shared: callers must
// not modify it. The read's HTTP calls go to every caller's call log
// ([httpx.WithCallLog]), marked shared in all but the leader's, so that an
// audit record shows the read its delivery used.
func (s *sharedRead[T]) Do(ctx context.Context, key string, anyInFlight bool, read func(context.Context) (T, error)) (T, error) {
	for {
		q, r, lead := s.join(key, anyInFlight)
		if lead {
			s.lead(ctx, key, q, r, read)
			httpx.AddCalls(ctx, r.calls...)
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
		if r.abandoned {
			if err := ctx.Err(); err != nil {
				var zero T
				return zero, err // this caller led, and gave up
			}
			continue // gather behind another leader
		}
		if !lead {
			for _, c := range r.calls {
				c.Shared = true
				httpx.AddCalls(ctx, c)
			}
		}
		return r.value, r.err
	}
}

// join adds the caller to the round in flight (if anyInFlight) or to key's
// gathering round, or starts one with the caller as its leader.
func (s *sharedRead[T]) join(key string, anyInFlight bool) (*readQueue[T], *readRound[T], bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]*readQueue[T]{}
	}
	q := s.keys[key]
	if q == nil {
		q = &readQueue[T]{}
		s.keys[key] = q
	}
	if anyInFlight && q.sending != nil {
		q.sending.callers++
		return q, q.sending, false
	}
	if q.gathering != nil {
		q.gathering.callers++
		return q, q.gathering, false
	}
	r := &readRound[T]{done: make(chan struct{}), callers: 1}
	q.gathering = r
	return q, r, true
}

// lead waits for the read in flight, then sends r's read. Until it is sent,
// callers keep joining r; after, they gather in a new round.
func (s *sharedRead[T]) lead(ctx context.Context, key string, q *readQueue[T], r *readRound[T], read func(context.Context) (T, error)) {
	s.mu.Lock()
	prev := q.sending
	s.mu.Unlock()
	if prev != nil {
		select {
		case <-prev.done:
		case <-ctx.Done():
			r.abandoned = true
			s.mu.Lock()
			q.gathering = nil
			s.forgetIdle(key, q)
			s.mu.Unlock()
			close(r.done)
			return
		}
	}
	s.mu.Lock()
	q.gathering, q.sending = nil, r
	s.mu.Unlock()

	readCtx, calls := httpx.WithCallLog(ctx)
	r.value, r.err = read(readCtx)
	r.calls = calls.Calls()
	r.abandoned = r.err != nil && ctx.Err() != nil

	s.mu.Lock()
	q.sending = nil
	s.forgetIdle(key, q)
	s.mu.Unlock()
	close(r.done)
}

// forgetIdle drops a key with no read in flight or gathering, so the map
// holds only the classes being worked on. s.mu must be held.
func (s *sharedRead[T]) forgetIdle(key string, q *readQueue[T]) {
	if q.sending == nil && q.gathering == nil && s.keys[key] == q {
		delete(s.keys, key)
	}
}
