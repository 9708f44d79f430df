// Package ops is what provisionctl does: replay, dead letters, explain,
// status, resync, approve and reject, pause, resume and offboard. Each
// operation takes an [Env] and returns a plain result that the command
// prints for people or as JSON; nothing here prints.
package ops

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/hubmissource"
	"github.com/rollcall/rollcall/internal/lease"
	"github.com/rollcall/rollcall/internal/valve"
)

// Env is what the operations work on.
type Env struct {
	JS        jetstream.JetStream
	Res       *events.Resources
	DataHub   *datahubsource.Stores
	Snapshots jetstream.ObjectStore
	Leases    jetstream.KeyValue
	Config    *config.Config
	// Class returns a tenant's Class; defaults to a client built from the
	// configuration.
	Class func(tenant string) (handlers.ClassAPI, error)
	// Operator names who acts, in tenant states and logs.
	Operator string
	// Progress, if set, is told how far a long operation got.
	Progress func(done, total int)
	Now      func() time.Time
}

// Open ensures the streams and buckets (the same settings as the binaries)
// and returns an Env over them.
func Open(ctx context.Context, js jetstream.JetStream, cfg *config.Config) (*Env, error) {
	res, err := events.EnsureResources(ctx, js, events.StreamSettings{
		MaxAge: cfg.NATS.StreamMaxAge, DuplicateWindow: cfg.NATS.DuplicateWindow, Replicas: cfg.NATS.StreamReplicas,
	})
	if err != nil {
		return nil, err
	}
	stores, err := datahubsource.EnsureStores(ctx, js, cfg.NATS.StreamReplicas)
	if err != nil {
		return nil, err
	}
	snaps, err := hubmissource.EnsureSnapshotStore(ctx, js, cfg.NATS.StreamReplicas)
	if err != nil {
		return nil, err
	}
	leases, err := lease.EnsureBucket(ctx, js, cfg.NATS.StreamReplicas)
	if err != nil {
		return nil, err
	}
	return &Env{JS: js, Res: res, DataHub: stores, Snapshots: snaps, Leases: leases, Config: cfg}, nil
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Env) progress(done, total int) {
	if e.Progress != nil {
		e.Progress(done, total)
	}
}

func (e *Env) held() *valve.Store { return e.DataHub.Held }

// ErrUnknownTenant means the tenant is not in the configuration.
var ErrUnknownTenant = errors.New("unknown tenant")

// Tenant returns a tenant's configuration.
func (e *Env) Tenant(id string) (*config.Tenant, error) {
	for i := range e.Config.Tenants {
		if e.Config.Tenants[i].ID == id {
			return &e.Config.Tenants[i], nil
		}
	}
	ids := make([]string, 0, len(e.Config.Tenants))
	for _, t := range e.Config.Tenants {
		ids = append(ids, t.ID)
	}
	return nil, fmt.Errorf("%w %q (configured: %s)", ErrUnknownTenant, id, strings.Join(ids, ", "))
}

func (e *Env) classOf(tenant string) (handlers.ClassAPI, error) {
	if e.Class != nil {
		return e.Class(tenant)
	}
	t, err := e.Tenant(tenant)
	if err != nil {
		return nil, err
	}
	return class.New(t.Class.BaseURL, t.Class.APIKey.Reveal())
}

// entity is one entity's desired state as the state bucket keeps it.
type entity struct {
	bucketKey string
	rec       handlers.KeyRecord
}

// states reads every state record of a tenant.
func (e *Env) states(ctx context.Context, tenant string) ([]entity, error) {
	w, err := e.Res.State.WatchFiltered(ctx, []string{tenant + ".>"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", events.StateBucket, err)
	}
	defer w.Stop() //nolint:errcheck // a watcher's stop has nothing to report
	var out []entity
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case u, ok := <-w.Updates():
			if !ok {
				return out, nil
			}
			if u == nil {
				slices.SortFunc(out, func(a, b entity) int { return compareEntities(a.rec.Kind, a.rec.Key, b.rec.Kind, b.rec.Key) })
				return out, nil
			}
			var ent entity
			ent.bucketKey = u.Key()
			if err := json.Unmarshal(u.Value(), &ent.rec); err != nil {
				return nil, fmt.Errorf("state record %s is corrupt: %w", u.Key(), err)
			}
			out = append(out, ent)
		}
	}
}

// kindRank orders kinds so that what others depend on comes first.
func kindRank(k events.Kind) int {
	if i := slices.Index(events.Kinds, k); i >= 0 {
		return i
	}
	return len(events.Kinds)
}

func compareEntities(ak events.Kind, akey string, bk events.Kind, bkey string) int {
	if c := kindRank(ak) - kindRank(bk); c != 0 {
		return c
	}
	return strings.Compare(akey, bkey)
}

// message rebuilds the change message of a state record's desired state.
func (ent entity) message(tenant string) (events.Message, bool) {
	d := ent.rec.Desired
	if d == nil {
		return events.Message{}, false
	}
	return events.Message{
		Tenant: tenant, Kind: ent.rec.Kind, Op: d.Op, Key: ent.rec.Key, Version: d.Version,
		Origin: d.Origin, State: d.State, Time: d.Version.Time,
	}, true
}

var base64URL = base64.RawURLEncoding
