package handlers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/fakeclock"
	"github.com/rollcall/rollcall/internal/handlers"
)

type fakeClock = fakeclock.Clock

func TestKeyStoreClaimsSerialiseAndNewestWins(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	clock := fakeclock.New(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC))
	a := handlers.NewKeyStore(b.res.State, "worker-a", 30*time.Second, clock.Now)
	other := handlers.NewKeyStore(b.res.State, "worker-b", 30*time.Second, clock.Now)
	s := newSchool("alpha", 1)
	u := events.UserState{ExtUserID: "u1", Email: "t@example.org", FirstName: "T"}
	v1 := s.emit(events.OpUpsert, u)
	v2 := s.emit(events.OpUpsert, u)

	lease, err := a.Claim(ctx, v2)
	if err != nil {
		t.Fatal(err)
	}
	var busy *handlers.KeyBusyError
	if _, err := other.Claim(ctx, v1); !errors.As(err, &busy) {
		t.Fatalf("second claim while held: %v, want KeyBusyError", err)
	}
	// The holder dies; after the TTL another worker takes the key over, and
	// the first one's late release is refused.
	clock.Advance(31 * time.Second)
	lease2, err := other.Claim(ctx, v2)
	if err != nil {
		t.Fatalf("claim after expiry: %v", err)
	}
	if err := a.Release(ctx, lease, true); !errors.Is(err, handlers.ErrClaimLost) {
		t.Fatalf("late release: %v, want ErrClaimLost", err)
	}
	if err := other.Release(ctx, lease2, true); err != nil {
		t.Fatal(err)
	}
	for _, ks := range []*handlers.KeyStore{a, other} {
		if _, err := ks.Claim(ctx, v1); !errors.Is(err, handlers.ErrStale) {
			t.Errorf("older version: %v, want ErrStale", err)
		}
		if _, err := ks.Claim(ctx, v2); !errors.Is(err, handlers.ErrStale) {
			t.Errorf("same version again: %v, want ErrStale", err)
		}
	}
	replay := v2
	replay.Replay = true
	l3, err := a.Claim(ctx, replay)
	if err != nil {
		t.Fatalf("a replay of the applied version must be applied again: %v", err)
	}
	if err := a.Release(ctx, l3, true); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := a.Record(ctx, "alpha", events.KindUser, "u1")
	if err != nil || !ok {
		t.Fatalf("record: %v %v", ok, err)
	}
	if rec.Applied.Compare(v2.Version) != 0 || rec.Desired == nil || rec.Desired.MessageID != v2.ID || rec.Claim != nil {
		t.Errorf("record = %+v, want applied and desired v2, no claim", rec)
	}
}
