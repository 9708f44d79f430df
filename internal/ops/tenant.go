package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/clients/class"
	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/tenantctl"
)

// SetTenantState pauses, resumes or offboards a tenant's work: every
// poller and worker follows the change within moments. Pausing loses
// nothing: the poller's cursor and the tenant's messages wait.
func (e *Env) SetTenantState(ctx context.Context, tenant string, status tenantctl.Status, reason string) (tenantctl.State, error) {
	if _, err := e.Tenant(tenant); err != nil {
		return tenantctl.State{}, err
	}
	st := tenantctl.State{Status: status, Reason: reason, By: e.Operator, At: e.now().UTC()}
	return st, tenantctl.Set(ctx, e.Res.Tenants, tenant, st)
}

// classLister is what listing a tenant's Class needs; *class.Client has it.
type classLister interface {
	ListClasses(ctx context.Context) ([]class.ClassInfo, error)
	ListUsers(ctx context.Context, page, limit int) ([]class.User, class.Pagination, error)
}

// Ours reports whether an external id is one this system gave for the
// tenant: "<source>:<tenant>:<kind>:<id>". Nothing else is ever deleted by
// resync or offboard, so what people made by hand stays.
func Ours(extID, tenant string) bool {
	parts := strings.SplitN(extID, ":", 4)
	return len(parts) == 4 && (parts[0] == "datahub" || parts[0] == "hubmis") && parts[1] == tenant && parts[3] != ""
}

// Created lists what this system created in a tenant's Class: the classes
// and users with its namespaced external ids, read from Class itself and
// from the state bucket.
type Created struct {
	Classes []string `json:"classes"`
	Users   []string `json:"users"`
}

// Count is the number of entities.
func (c Created) Count() int { return len(c.Classes) + len(c.Users) }

// CreatedInClass lists what this system created in a tenant's Class.
func (e *Env) CreatedInClass(ctx context.Context, tenant string) (Created, error) {
	var out Created
	api, err := e.classOf(tenant)
	if err != nil {
		return out, err
	}
	classes, users := map[string]bool{}, map[string]bool{}
	if l, ok := api.(classLister); ok {
		list, err := l.ListClasses(ctx)
		if err != nil {
			return out, fmt.Errorf("list Class classes: %w", err)
		}
		for _, c := range list {
			if Ours(c.ExtClassID, tenant) {
				classes[c.ExtClassID] = true
			}
		}
		for page := 1; ; page++ {
			list, p, err := l.ListUsers(ctx, page, 1000)
			if err != nil {
				return out, fmt.Errorf("list Class users: %w", err)
			}
			for _, u := range list {
				if Ours(u.ExtUserID, tenant) {
					users[u.ExtUserID] = true
				}
			}
			if p.NextPage == nil || len(list) == 0 {
				break
			}
		}
	}
	ents, err := e.states(ctx, tenant)
	if err != nil {
		return out, err
	}
	for _, ent := range ents {
		if ent.rec.Desired == nil || ent.rec.Desired.Op != events.OpUpsert || !Ours(ent.rec.Key, tenant) {
			continue
		}
		switch ent.rec.Kind {
		case events.KindClass:
			// A class the state says exists, unless Class said otherwise.
			if _, err := api.GetClass(ctx, class.ClassRef{ExtClassID: ent.rec.Key}); err == nil {
				classes[ent.rec.Key] = true
			} else if _, err := api.GetDeferredClass(ctx, class.ClassRef{ExtClassID: ent.rec.Key}); err == nil {
				classes[ent.rec.Key] = true
			}
		case events.KindUser:
			if _, err := api.GetUser(ctx, class.UserRef{ExtUserID: ent.rec.Key}); err == nil {
				users[ent.rec.Key] = true
			}
		}
	}
	for k := range classes {
		out.Classes = append(out.Classes, k)
	}
	for k := range users {
		out.Users = append(out.Users, k)
	}
	slices.Sort(out.Classes)
	slices.Sort(out.Users)
	return out, nil
}

// OffboardResult says what offboarding did.
type OffboardResult struct {
	State   tenantctl.State `json:"state"`
	Deleted Created         `json:"deleted"`
	// Forgotten counts the state and class-id records removed, so that the
	// tenant, onboarded again, starts afresh.
	Forgotten int `json:"forgotten"`
}

// Offboard stops a tenant for good. With remove set (from
// [Env.CreatedInClass], shown to the operator first) it then deletes those
// classes (their enrollments and dates go with them) and users from Class,
// and forgets the tenant's state records.
func (e *Env) Offboard(ctx context.Context, tenant string, remove *Created) (OffboardResult, error) {
	var res OffboardResult
	st, err := e.SetTenantState(ctx, tenant, tenantctl.Offboarded, "offboarded")
	if err != nil {
		return res, err
	}
	res.State = st
	if remove == nil {
		return res, nil
	}
	// The workers stop pulling at once; a message already in a worker's
	// hands could still create what is deleted below, so wait for them.
	if err := e.waitInFlight(ctx, tenant, 2*time.Minute); err != nil {
		return res, err
	}
	api, err := e.classOf(tenant)
	if err != nil {
		return res, err
	}
	total := remove.Count()
	for i, ext := range remove.Classes {
		e.progress(i, total)
		if !Ours(ext, tenant) {
			continue
		}
		err := api.DeleteClass(ctx, class.ClassRef{ExtClassID: ext})
		if errors.Is(err, class.ErrNotFound) {
			var d class.DeferredClass
			if d, err = api.GetDeferredClass(ctx, class.ClassRef{ExtClassID: ext}); err == nil {
				err = api.DeleteClass(ctx, class.ClassRef{ClassDeferredID: d.ClassDeferredID})
			}
		}
		if err != nil && !errors.Is(err, class.ErrNotFound) {
			return res, fmt.Errorf("delete class %s: %w", ext, err)
		}
		res.Deleted.Classes = append(res.Deleted.Classes, ext)
	}
	for i, ext := range remove.Users {
		e.progress(len(remove.Classes)+i, total)
		if !Ours(ext, tenant) {
			continue
		}
		if err := api.DeleteUser(ctx, class.UserRef{ExtUserID: ext}); err != nil && !errors.Is(err, class.ErrNotFound) {
			return res, fmt.Errorf("delete user %s: %w", ext, err)
		}
		res.Deleted.Users = append(res.Deleted.Users, ext)
	}
	e.progress(total, total)
	for _, kv := range []jetstream.KeyValue{e.Res.State, e.Res.ClassIDs} {
		keys, err := kv.ListKeysFiltered(ctx, tenant+".>")
		if err != nil {
			return res, err
		}
		for k := range keys.Keys() {
			if err := kv.Purge(ctx, k); err != nil {
				return res, fmt.Errorf("forget %s: %w", k, err)
			}
			res.Forgotten++
		}
	}
	return res, nil
}

// waitInFlight waits until no message of the tenant is in a worker's hands.
func (e *Env) waitInFlight(ctx context.Context, tenant string, limit time.Duration) error {
	cons, err := e.Res.Stream.Consumer(ctx, events.WorkerConsumerName(tenant))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d messages of tenant %s still in workers' hands after %s; run offboard again", info.NumAckPending, tenant, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
