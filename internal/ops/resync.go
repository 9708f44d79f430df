package ops

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/rollcall/rollcall/internal/clients/datahub"
	"github.com/rollcall/rollcall/internal/datahubsource"
	"github.com/rollcall/rollcall/internal/desired"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/hubmissource"
	"github.com/rollcall/rollcall/internal/valve"
)

// ResyncOptions choose a resync.
type ResyncOptions struct {
	Tenant string
	// DryRun publishes and holds nothing.
	DryRun bool
	RunID  string
}

// ResyncResult says what a resync did, or would do.
type ResyncResult struct {
	RunID  string `json:"run_id"`
	Source string `json:"source"`
	// From says where the desired state came from.
	From    string         `json:"from"`
	Version events.Version `json:"version"`
	Upserts int            `json:"upserts"`
	// Deletions are what this system made that the source no longer has.
	Deletions []HeldDeletion `json:"deletions"`
	// DeletionsHow is "published", "held" (by the safety valve or the grace
	// policy: see HeldID), "ignored" (deletion policy ignore) or "none".
	DeletionsHow string `json:"deletions_how"`
	HeldID       string `json:"held_id,omitempty"`
	HeldReason   string `json:"held_reason,omitempty"`
	Published    int    `json:"published"`
	DryRun       bool   `json:"dry_run"`
}

// Resync publishes the full desired state of a tenant from its source, and
// deletes what this system created for the tenant that the source no
// longer has. Only entities with this system's namespaced external ids are
// ever deleted, and the tenant's deletion policy and the safety valve
// decide as they do for the poller: a broken source must not empty Class.
//
// A DataHub tenant's roster is read from DataHub. A HUBmis tenant's is the
// poller's last committed snapshot: HUBmis's per-address rate limit is
// shared with the poller, and a full read of a school takes most of an
// hour.
func (e *Env) Resync(ctx context.Context, o ResyncOptions) (ResyncResult, error) {
	t, err := e.Tenant(o.Tenant)
	if err != nil {
		return ResyncResult{}, err
	}
	if o.RunID == "" {
		o.RunID = "resync-" + strconv.FormatInt(e.now().UnixNano(), 36)
	}
	res := ResyncResult{RunID: o.RunID, DryRun: o.DryRun}
	var want *desired.Set
	if t.HUBmis != nil {
		res.Source, res.From = "hubmis", "the last committed snapshot"
		want, res.Version, err = hubmissource.StoredDesired(ctx, e.Snapshots, t.ID, t.Class.Timezone)
	} else {
		res.Source, res.From = "datahub", "DataHub, read now"
		var client *datahub.Client
		client, err = datahub.New(datahub.Config{BaseURL: t.DataHub.BaseURL, ClientID: t.DataHub.ClientID,
			ClientSecret: t.DataHub.ClientSecret.Reveal(), TokenPath: t.DataHub.TokenPath, District: t.DataHub.DistrictID})
		var cursor datahubsource.Cursor
		if err == nil {
			cursor, _, err = datahubsource.ReadCursor(ctx, e.DataHub.Cursors, t.ID)
		}
		if err == nil {
			want, res.Version, err = datahubsource.ReadDesired(ctx, t.ID, client, cursor)
		}
	}
	if err != nil {
		return res, fmt.Errorf("read the desired state from %s: %w", res.Source, err)
	}
	origin := events.Origin{Source: "resync", ID: o.RunID}

	var upserts []*nats.Msg
	for _, s := range want.Sorted() {
		m, err := events.NewMessage(t.ID, events.OpUpsert, s, res.Version, origin)
		if err != nil {
			return res, fmt.Errorf("%s %s: %w", s.Kind(), s.Key(), err)
		}
		m.Replay, m.ID = true, events.RunMessageID(o.RunID, m.Kind, m.Key)
		nm, err := events.Encode(m)
		if err != nil {
			return res, err
		}
		upserts = append(upserts, nm)
	}
	res.Upserts = len(upserts)

	// Deletions: what the state bucket says this system made and still
	// wants, and what Class holds under this tenant's namespace, that the
	// source no longer has.
	ents, err := e.states(ctx, t.ID)
	if err != nil {
		return res, err
	}
	var totals valve.Totals
	var deletions []valve.Held
	seen := map[string]bool{}
	addDeletion := func(m events.Message) error {
		k := string(m.Kind) + "/" + m.Key
		if seen[k] {
			return nil
		}
		seen[k] = true
		m.Op, m.Version, m.Origin, m.Time = events.OpDelete, res.Version, origin, res.Version.Time
		m.Replay, m.ID = true, events.RunMessageID(o.RunID, m.Kind, m.Key)
		nm, err := events.Encode(m)
		if err != nil {
			return err
		}
		deletions = append(deletions, valve.NewHeld(nm, k))
		totals.Count(m.Kind)
		res.Deletions = append(res.Deletions, HeldDeletion{Kind: m.Kind, Key: m.Key})
		return nil
	}
	for _, ent := range ents {
		switch ent.rec.Kind {
		case events.KindClass:
			totals.Classes++
		case events.KindEnrollment:
			totals.Enrollments++
		}
		m, ok := ent.message(t.ID)
		k := string(ent.rec.Kind) + "/" + ent.rec.Key
		if !ok || m.Op != events.OpUpsert || want.Has(k) || want.Unknown[k] || !ownedKey(ent.rec.Kind, ent.rec.Key, t.ID) {
			continue
		}
		if err := addDeletion(m); err != nil {
			return res, err
		}
	}
	created, err := e.CreatedInClass(ctx, t.ID)
	if err != nil {
		return res, err
	}
	for _, ext := range created.Classes {
		k := string(events.KindClass) + "/" + ext
		if want.Has(k) || want.Unknown[k] {
			continue
		}
		m, err := events.NewMessage(t.ID, events.OpDelete, events.ClassState{ExtClassID: ext}, res.Version, origin)
		if err == nil {
			err = addDeletion(m)
		}
		if err != nil {
			return res, err
		}
	}
	for _, ext := range created.Users {
		k := string(events.KindUser) + "/" + ext
		if want.Has(k) || want.Unknown[k] {
			continue
		}
		m, err := events.NewMessage(t.ID, events.OpDelete, events.UserState{ExtUserID: ext}, res.Version, origin)
		if err == nil {
			err = addDeletion(m)
		}
		if err != nil {
			return res, err
		}
	}

	exceeds, why := totals.Exceeds(t.MaxDeleteShare)
	switch {
	case len(deletions) == 0:
		res.DeletionsHow = "none"
	case string(t.DeletionPolicy) == datahubsource.PolicyIgnore:
		res.DeletionsHow = "ignored"
	case string(t.DeletionPolicy) == datahubsource.PolicyGrace:
		res.DeletionsHow, res.HeldReason = "held", "the grace deletion policy: a resync cannot wait out the grace, so an operator decides"
	case exceeds:
		res.DeletionsHow, res.HeldReason = "held", why
	default:
		res.DeletionsHow = "published"
	}
	if o.DryRun {
		return res, nil
	}
	if err := events.PublishBatch(ctx, e.JS, upserts); err != nil {
		return res, err
	}
	res.Published = len(upserts)
	switch res.DeletionsHow {
	case "held":
		res.HeldID = o.RunID
		if err := e.held().Hold(ctx, valve.ChangeSet{ID: o.RunID, Tenant: t.ID, Created: e.now().UTC(),
			Reason: "resync: " + res.HeldReason, Messages: deletions}); err != nil {
			return res, err
		}
	case "published":
		msgs := make([]*nats.Msg, len(deletions))
		for i, h := range deletions {
			msgs[i] = &nats.Msg{Subject: h.Subject, Header: h.Header, Data: h.Data}
		}
		if err := events.PublishBatch(ctx, e.JS, msgs); err != nil {
			return res, err
		}
		res.Published += len(msgs)
	}
	return res, nil
}

// ownedKey reports whether every external id in a key is this system's for
// the tenant (an enrollment's key holds two).
func ownedKey(kind events.Kind, key, tenant string) bool {
	if kind != events.KindEnrollment {
		return Ours(key, tenant)
	}
	for i := range len(key) {
		if key[i] == '#' {
			return Ours(key[:i], tenant) && Ours(key[i+1:], tenant)
		}
	}
	return false
}
