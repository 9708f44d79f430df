package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/hubmissource"
	"github.com/rollcall/rollcall/internal/lease"
	"github.com/rollcall/rollcall/internal/tenantctl"
	"github.com/rollcall/rollcall/internal/valve"
)

// TenantStatus is one tenant's state of affairs.
type TenantStatus struct {
	Tenant string          `json:"tenant"`
	Source string          `json:"source"`
	State  tenantctl.State `json:"state"`
	// Cursor is a DataHub tenant's feed position.
	Cursor *datahubsource.Cursor `json:"cursor,omitempty"`
	// Snapshot is a HUBmis tenant's last committed snapshot.
	Snapshot *hubmissource.SnapshotInfo `json:"snapshot,omitempty"`
	// Pending counts the tenant's messages the workers have not settled:
	// not yet delivered, or delivered and not yet acknowledged.
	Pending uint64 `json:"pending"`
	// OldestUnapplied is when the oldest of them was stored.
	OldestUnapplied time.Time  `json:"oldest_unapplied,omitzero"`
	DeadLetters     uint64     `json:"dead_letters"`
	Rejected        uint64     `json:"rejected"`
	Held            []HeldSet  `json:"held,omitempty"`
	Lease           *LeaseInfo `json:"lease,omitempty"`
	// Egress is, for a HUBmis tenant, the lease of the pollers' egress
	// address: only its holder polls HUBmis, so a tenant no poller holds
	// may be one its holder does not serve.
	Egress *EgressInfo `json:"hubmis_egress,omitempty"`
}

// EgressInfo is who polls HUBmis from the configured egress address.
type EgressInfo struct {
	Name string `json:"name"`
	// Lease is nil when no poller holds the egress.
	Lease *LeaseInfo `json:"lease,omitempty"`
}

// HeldSet summarises a held change set.
type HeldSet struct {
	ID        string    `json:"id"`
	Created   time.Time `json:"created"`
	Reason    string    `json:"reason"`
	Deletions int       `json:"deletions"`
}

// LeaseInfo is who polls the tenant.
type LeaseInfo struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
	// Expired: nobody holds it now (the holder stopped without release).
	Expired bool `json:"expired"`
}

// readLease reads a poller lease; nil when nobody ever held it or it was
// released.
func (e *Env) readLease(ctx context.Context, name string) (*LeaseInfo, error) {
	rec, ok, err := lease.Read(ctx, e.Leases, name)
	if err != nil || !ok {
		return nil, err
	}
	return &LeaseInfo{Holder: rec.Holder, Until: rec.Until, Expired: e.now().After(rec.Until)}, nil
}

// Status reports on the given tenants, or on every configured one.
func (e *Env) Status(ctx context.Context, tenants ...string) ([]TenantStatus, error) {
	if len(tenants) == 0 {
		for _, t := range e.Config.Tenants {
			tenants = append(tenants, t.ID)
		}
	}
	var out []TenantStatus
	for _, id := range tenants {
		st, err := e.tenantStatus(ctx, id)
		if err != nil {
			return out, fmt.Errorf("tenant %s: %w", id, err)
		}
		out = append(out, st)
	}
	return out, nil
}

func (e *Env) tenantStatus(ctx context.Context, id string) (TenantStatus, error) {
	t, err := e.Tenant(id)
	if err != nil {
		return TenantStatus{}, err
	}
	st := TenantStatus{Tenant: id}
	if st.State, err = tenantctl.Get(ctx, e.Res.Tenants, id); err != nil {
		return st, err
	}
	leaseName := "datahub." + id
	if t.HUBmis != nil {
		st.Source, leaseName = "hubmis", "hubmis."+id
		info, ok, err := hubmissource.ReadSnapshotInfo(ctx, e.Snapshots, id)
		if err != nil {
			return st, err
		}
		if ok {
			st.Snapshot = &info
		}
	} else {
		st.Source = "datahub"
		c, ok, err := datahubsource.ReadCursor(ctx, e.DataHub.Cursors, id)
		if err != nil {
			return st, err
		}
		if ok {
			st.Cursor = &c
		}
	}
	if st.Lease, err = e.readLease(ctx, leaseName); err != nil {
		return st, err
	}
	if t.HUBmis != nil {
		st.Egress = &EgressInfo{Name: e.Config.HUBmisEgress}
		if st.Egress.Lease, err = e.readLease(ctx, lease.HUBmisEgressName(e.Config.HUBmisEgress)); err != nil {
			return st, err
		}
	}
	if err := e.pending(ctx, id, &st); err != nil {
		return st, err
	}
	if err := e.deadCounts(ctx, id, &st); err != nil {
		return st, err
	}
	sets, err := e.held().List(ctx, id)
	if err != nil {
		return st, err
	}
	for _, s := range sets {
		st.Held = append(st.Held, HeldSet{ID: s.ID, Created: s.Created, Reason: s.Reason, Deletions: len(s.Messages)})
	}
	return st, nil
}

// pending reads the tenant's worker consumer: what it has not delivered or
// not had acknowledged, and the oldest message past its ack floor.
func (e *Env) pending(ctx context.Context, tenant string, st *TenantStatus) error {
	subject := events.TenantSubjects(tenant)
	from := uint64(1)
	cons, err := e.Res.Stream.Consumer(ctx, events.WorkerConsumerName(tenant))
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		// No worker has started for the tenant: everything is pending.
		info, err := e.Res.Stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return err
		}
		for _, n := range info.State.Subjects {
			st.Pending += n
		}
	case err != nil:
		return err
	default:
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		st.Pending = info.NumPending + uint64(info.NumAckPending)
		from = info.AckFloor.Stream + 1
	}
	if st.Pending == 0 {
		return nil
	}
	raw, err := e.Res.Stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read oldest pending message: %w", err)
	}
	st.OldestUnapplied = raw.Time
	return nil
}

func (e *Env) deadCounts(ctx context.Context, tenant string, st *TenantStatus) error {
	info, err := e.Res.DLQ.Info(ctx, jetstream.WithSubjectFilter(events.SubjectRoot+"."+tenant+".>"))
	if err != nil {
		return err
	}
	for subject, n := range info.State.Subjects {
		if strings.HasSuffix(subject, ".rejected") {
			st.Rejected += n
		} else {
			st.DeadLetters += n
		}
	}
	return nil
}

// HeldDeletion is one deletion of a held change set.
type HeldDeletion struct {
	Kind events.Kind `json:"kind"`
	Key  string      `json:"key"`
}

// HeldDetail is a held change set with its deletions.
type HeldDetail struct {
	HeldSet
	Tenant    string         `json:"tenant"`
	Deletions []HeldDeletion `json:"deletions"`
}

// HeldSets lists a tenant's held change sets with their deletions.
func (e *Env) HeldSets(ctx context.Context, tenant string) ([]HeldDetail, error) {
	if _, err := e.Tenant(tenant); err != nil {
		return nil, err
	}
	sets, err := e.held().List(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]HeldDetail, 0, len(sets))
	for _, s := range sets {
		d := HeldDetail{HeldSet: HeldSet{ID: s.ID, Created: s.Created, Reason: s.Reason, Deletions: len(s.Messages)}, Tenant: tenant}
		for _, h := range s.Messages {
			kind, key, _ := strings.Cut(h.Key, "/")
			d.Deletions = append(d.Deletions, HeldDeletion{Kind: events.Kind(kind), Key: key})
		}
		out = append(out, d)
	}
	return out, nil
}

// HeldSet returns one held change set.
func (e *Env) HeldSet(ctx context.Context, tenant, id string) (HeldDetail, error) {
	sets, err := e.HeldSets(ctx, tenant)
	if err != nil {
		return HeldDetail{}, err
	}
	for _, s := range sets {
		if s.ID == id {
			return s, nil
		}
	}
	return HeldDetail{}, fmt.Errorf("%w: tenant %s has no held change set %q", valve.ErrNotFound, tenant, id)
}

// Approve publishes a held change set's deletions.
func (e *Env) Approve(ctx context.Context, tenant, id string) (int, error) {
	if _, err := e.HeldSet(ctx, tenant, id); err != nil {
		return 0, err
	}
	return e.held().Approve(ctx, e.JS, tenant, id)
}

// Reject discards a held change set: its entities stay in Class.
func (e *Env) Reject(ctx context.Context, tenant, id string) error {
	if _, err := e.HeldSet(ctx, tenant, id); err != nil {
		return err
	}
	return e.held().Reject(ctx, tenant, id)
}
