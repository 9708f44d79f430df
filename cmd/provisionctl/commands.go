package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rollcall/rollcall/internal/events"
	"github.com/rollcall/rollcall/internal/ops"
	"github.com/rollcall/rollcall/internal/tenantctl"
)

// timeValue is a flag of a time: RFC 3339, or a duration meaning that long
// ago ("90m").
type timeValue struct{ t *time.Time }

func (v timeValue) String() string {
	if v.t == nil || v.t.IsZero() {
		return ""
	}
	return v.t.Format(time.RFC3339)
}

func (v timeValue) Set(s string) error {
	if d, err := time.ParseDuration(s); err == nil {
		*v.t = time.Now().Add(-d)
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("%q is neither an RFC 3339 time nor a duration ago", s)
	}
	*v.t = t
	return nil
}

func requireTenant(tenant string) error {
	if tenant == "" {
		return usagef("--tenant is required")
	}
	return nil
}

// start parses a command's flags and arguments, checks them (--tenant is
// required when tenant is not nil; then each check on the positional
// arguments), and only then connects: a usage error costs no connection.
func (c *cli) start(ctx context.Context, fs *flag.FlagSet, args []string, tenant *string, checks ...func(pos []string) error) ([]string, *ops.Env, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if tenant != nil {
		if err := requireTenant(*tenant); err != nil {
			return nil, nil, err
		}
	}
	for _, check := range checks {
		if err := check(pos); err != nil {
			return nil, nil, err
		}
	}
	env, err := c.open(ctx)
	return pos, env, err
}

func (c *cli) table() *tabwriter.Writer { return tabwriter.NewWriter(c.io.out, 2, 4, 2, ' ', 0) }

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func runStatus(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("status", "[--tenant T]", "Per tenant: the source's position (DataHub cursor, or HUBmis's last snapshot and the requests it took), the messages pending for the workers and the age of the oldest, dead letters, held change sets, the poller lease's holder, and whether an operator paused it.")
	tenant := fs.String("tenant", "", "one tenant (default: every configured tenant)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	env, err := c.open(ctx)
	if err != nil {
		return err
	}
	var ids []string
	if *tenant != "" {
		ids = append(ids, *tenant)
	}
	all, err := env.Status(ctx, ids...)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(all)
	}
	for _, s := range all {
		c.printf("tenant %s (%s): %s", s.Tenant, s.Source, s.State.Status)
		if s.State.Stopped() {
			c.printf(" by %s %s", s.State.By, ago(s.State.At))
			if s.State.Reason != "" {
				c.printf(": %s", s.State.Reason)
			}
		}
		c.printf("\n")
		switch {
		case s.Cursor != nil:
			c.printf("  cursor        last event %s, moved %s, full resyncs %d\n", s.Cursor.LastEventID, ago(s.Cursor.Updated), s.Cursor.Resyncs)
		case s.Snapshot != nil:
			c.printf("  snapshot      taken %s, %d requests\n", ago(s.Snapshot.Taken), s.Snapshot.Requests)
		default:
			c.printf("  source        not read yet\n")
		}
		c.printf("  pending       %d messages, oldest stored %s\n", s.Pending, ago(s.OldestUnapplied))
		c.printf("  dead letters  %d (and %d rejected source records)\n", s.DeadLetters, s.Rejected)
		c.printf("  held sets     %d\n", len(s.Held))
		for _, h := range s.Held {
			c.printf("    %s  %d deletions, held %s: %s\n", h.ID, h.Deletions, ago(h.Created), h.Reason)
		}
		c.printf("  poller lease  %s\n", leaseText(s.Lease))
		if s.Egress != nil {
			c.printf("  HUBmis egress %s: %s\n", s.Egress.Name, leaseText(s.Egress.Lease))
		}
	}
	return nil
}

// leaseText says who holds a poller lease.
func leaseText(l *ops.LeaseInfo) string {
	switch {
	case l == nil:
		return "not held (never taken, or released)"
	case l.Expired:
		return "expired (last held by " + l.Holder + ")"
	}
	return l.Holder
}

func runReplay(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("replay", "--tenant T [--kind K | --subject S] [--since T --until T | --from-seq N --to-seq N | --all] [--dry-run]",
		"Re-delivers the newest message of each entity in the range, even where it was applied before, so a wiped or damaged Class is repaired; a state older than what was applied is never re-applied. --all rebuilds from the desired-state bucket instead, so entities unchanged for longer than the stream's retention come back too. --dry-run applies nothing: it reads Class and prints what would change, entity by entity.")
	var o ops.ReplayOptions
	fs.StringVar(&o.Tenant, "tenant", "", "tenant id (required)")
	kind := fs.String("kind", "", "only this kind: user, class, enrollment or schedule")
	fs.StringVar(&o.Subject, "subject", "", "only messages on this subject filter, e.g. provision.<tenant>.enrollment.*")
	fs.Var(timeValue{&o.Since}, "since", "messages stored at or after this time (RFC 3339, or a duration ago like 2h)")
	fs.Var(timeValue{&o.Until}, "until", "messages stored at or before this time")
	fs.Uint64Var(&o.FromSeq, "from-seq", 0, "first stream sequence")
	fs.Uint64Var(&o.ToSeq, "to-seq", 0, "last stream sequence")
	fs.BoolVar(&o.All, "all", false, "every entity's newest desired state, from the desired-state bucket")
	fs.BoolVar(&o.DryRun, "dry-run", false, "change nothing; print what would change")
	fs.StringVar(&o.RunID, "run-id", "", "id of this run; repeat one to resume it without publishing twice")
	_, env, err := c.start(ctx, fs, args, &o.Tenant)
	if err != nil {
		return err
	}
	o.Kind = events.Kind(*kind)
	res, err := env.Replay(ctx, o)
	if errors.Is(err, ops.ErrBadOptions) {
		return usageError{err.Error()}
	}
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(res)
	}
	if o.DryRun {
		for _, it := range res.Items {
			switch {
			case it.Skipped != "":
				c.printf("%s %s: skipped, %s\n", it.Kind, it.Key, it.Skipped)
			case it.Error != "":
				c.printf("%s %s: cannot apply: %s\n", it.Kind, it.Key, it.Error)
			}
			for _, ch := range it.Changes {
				c.printf("%s\n", ch)
			}
		}
		c.printf("dry run %s: %d messages read, %d entities, %d differ from Class (%d changes), %d skipped, %d errors; nothing was changed\n",
			res.RunID, res.Scanned, res.Entities, res.Differing, res.Changes, res.Skipped, res.Errors)
		return nil
	}
	c.printf("replay %s: %d messages read (%d invalid), %d entities, %d re-published, %d skipped (newer applied)\n",
		res.RunID, res.Scanned, res.Invalid, res.Entities, res.Published, res.Skipped)
	return nil
}

func seqArgs(args []string) ([]uint64, error) {
	var seqs []uint64
	for _, a := range args {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			return nil, usagef("%q is not a dead letter's sequence number", a)
		}
		seqs = append(seqs, n)
	}
	return seqs, nil
}

// dlqUsage is each dlq command's arguments and summary.
var dlqUsage = map[string][2]string{
	"list":    {"--tenant T [--subject S]", "Lists the tenant's dead letters, oldest first: sequence, when, the message's subject, attempts and the reason."},
	"show":    {"<seq>", "Shows one dead letter: the reason, the attempts, and the original message's headers and body."},
	"redrive": {"--tenant T (<seq>... | --subject S | --all)", "Publishes the dead letters' original messages again (after the cause was fixed) and removes the dead letters once published. The worker applies them as new deliveries, never over a newer version."},
	"drop":    {"--tenant T (<seq>... | --subject S | --all) [--yes]", "Removes dead letters for good. Asks for confirmation unless --yes."},
}

func runDLQ(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(c.io.err, `usage: provisionctl dlq <list|show|redrive|drop> ...

  dlq list    --tenant T [--subject S]           the dead letters, with reason and attempts
  dlq show    <seq>                              one dead letter with its original message
  dlq redrive --tenant T (<seq>... | --subject S | --all)
                                                 publish the original messages again, after a fix
  dlq drop    --tenant T (<seq>... | --subject S | --all) [--yes]
                                                 remove dead letters for good`)
		if len(args) == 0 {
			return usagef("name a dlq command")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	usage, ok := dlqUsage[sub]
	if !ok {
		return usagef("unknown dlq command %q (list, show, redrive, drop)", sub)
	}
	fs := c.flags("dlq "+sub, usage[0], usage[1])
	var sel ops.DLQSelector
	const subjectHelp = "only dead letters of messages on this subject filter, as `dlq list` shows them, e.g. provision.<tenant>.enrollment.* (provision.<tenant>.dead.enrollment.* means the same)"
	if sub != "show" {
		fs.StringVar(&sel.Tenant, "tenant", "", "tenant id (required)")
		fs.StringVar(&sel.Subject, "subject", "", subjectHelp)
	}
	if sub == "redrive" || sub == "drop" {
		fs.BoolVar(&sel.All, "all", false, "all of the tenant's dead letters")
	}
	if sub == "drop" {
		fs.BoolVar(&c.yes, "yes", false, "do not ask for confirmation")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if sub == "list" && len(pos) > 0 {
		return usagef("dlq list takes no arguments; did you mean dlq show %s?", pos[0])
	}
	if sub != "show" {
		if err := requireTenant(sel.Tenant); err != nil {
			return err
		}
	}
	if sel.Seqs, err = seqArgs(pos); err != nil {
		return err
	}
	if sub == "show" && len(sel.Seqs) != 1 {
		return usagef("dlq show takes one sequence number")
	}
	if (sub == "redrive" || sub == "drop") && len(sel.Seqs) == 0 && !sel.All && sel.Subject == "" {
		return usagef("dlq %s needs sequence numbers, --subject or --all", sub)
	}
	env, err := c.open(ctx)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		list, err := env.DLQList(ctx, sel.Tenant, sel.Subject)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(list)
		}
		tw := c.table()
		fmt.Fprintln(tw, "SEQ\tSTORED\tSUBJECT\tATTEMPTS\tREASON")
		for _, d := range list {
			subject := d.OriginalSubject
			if d.Rejected {
				subject = d.Subject + " (source record)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.Seq, d.Stored.UTC().Format(time.RFC3339), subject, orDash(d.Attempts), d.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		c.printf("%d dead letters\n", len(list))
		return nil
	case "show":
		d, err := env.DLQShow(ctx, sel.Seqs[0])
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(d)
		}
		c.printf("dead letter %d of tenant %s, stored %s\n", d.Seq, d.Tenant, d.Stored.UTC().Format(time.RFC3339))
		c.printf("reason:    %s\n", d.Reason)
		if d.Rejected {
			c.printf("what:      a source record the poller could not turn into change messages (%s)\n", d.Source)
		} else {
			c.printf("message:   %s on %s (stream sequence %s), %s attempts\n", d.MessageID, d.OriginalSubject, d.OriginalSeq, d.Attempts)
		}
		c.printf("headers:\n")
		for _, k := range slices.Sorted(maps.Keys(d.Header)) {
			c.printf("  %s: %s\n", k, strings.Join(d.Header[k], ", "))
		}
		c.printf("body:\n%s\n", d.Data)
		return nil
	case "redrive":
		res, err := env.DLQRedrive(ctx, sel)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(res)
		}
		c.printf("redriven %d dead letters %v\n", len(res.Redriven), res.Redriven)
		if len(res.Refused) > 0 {
			c.printf("not redriven %v: rejected source records are fixed at the source; the next poll or `provisionctl resync` publishes them\n", res.Refused)
		}
		return nil
	default: // drop
		if err := c.confirm(fmt.Sprintf("Drop dead letters of tenant %s for good?", sel.Tenant)); err != nil {
			return err
		}
		dropped, err := env.DLQDrop(ctx, sel)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"dropped": dropped})
		}
		c.printf("dropped %d dead letters %v\n", len(dropped), dropped)
		return nil
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runExplain(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("explain", "--tenant T <source id | external id | email | Class id>",
		"The history of a person or class, in order: each change message with its source event or snapshot, each worker attempt with its outcome, its Class calls and their statuses, and its trace id.")
	tenant := fs.String("tenant", "", "tenant id (required)")
	pos, env, err := c.start(ctx, fs, args, tenant, func(pos []string) error {
		if len(pos) != 1 {
			return usagef("explain takes one source id, external id, email or Class id")
		}
		return nil
	})
	if err != nil {
		return err
	}
	ex, err := env.Explain(ctx, *tenant, pos[0])
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(ex)
	}
	if len(ex.Entities) == 0 {
		c.printf("nothing of tenant %s matches %q: no message about it was ever applied or tried\n", ex.Tenant, ex.Query)
		return nil
	}
	for _, h := range ex.Entities {
		c.printf("%s %s\n", h.Kind, h.Key)
		applied := "never"
		if !h.Applied.IsZero() {
			applied = h.Applied.String()
		}
		c.printf("  newest desired: %s at version %s; applied to Class: %s", orDash(string(h.DesiredOp)), h.DesiredVersion, applied)
		if !h.AppliedAt.IsZero() {
			c.printf(" (%s)", h.AppliedAt.UTC().Format(time.RFC3339))
		}
		if h.ClassID != "" {
			c.printf("; Class class_id %s", h.ClassID)
		}
		c.printf("\n")
		for _, m := range h.Messages {
			c.printf("  message %s on %s (stream %d)", m.MessageID, m.Subject, m.StreamSeq)
			if m.Replay {
				c.printf(" [replay]")
			}
			c.printf("\n    from %s %s, version %s", m.Origin.Source, m.Origin.ID, m.Version)
			if !m.Observed.IsZero() {
				c.printf(", observed %s", m.Observed.UTC().Format(time.RFC3339))
			}
			c.printf("\n")
			for _, a := range m.Attempts {
				c.printf("    attempt %d at %s by %s: %s", a.Attempt, a.Time.UTC().Format(time.RFC3339), orDash(a.Worker), a.Result)
				if a.Error != "" {
					c.printf(" (%s)", a.Error)
				}
				c.printf(", trace %s\n", orDash(a.TraceID))
				for _, call := range a.Calls {
					status := strconv.Itoa(call.Status)
					if call.Status == 0 {
						status = "no answer: " + call.Error
					}
					shared := ""
					if call.Shared {
						shared = " (shared: sent for another enrollment of the class)"
					}
					c.printf("      %s %s -> %s in %s%s\n", call.Method, call.Path, status, tookText(call.Took), shared)
				}
			}
		}
	}
	return nil
}

func runResync(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("resync", "--tenant T [--dry-run]",
		"Publishes the tenant's full desired state from its source (DataHub: read now; HUBmis: the poller's last snapshot, since HUBmis's rate limit is shared with the poller), and removes from Class what this system created for the tenant that the source no longer has: only entities with this system's namespaced external ids, never anything made by hand. The deletion policy and the safety valve decide as they do for the poller.")
	var o ops.ResyncOptions
	fs.StringVar(&o.Tenant, "tenant", "", "tenant id (required)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "publish nothing; print what would be published and deleted")
	fs.StringVar(&o.RunID, "run-id", "", "id of this run; repeat one to resume it without publishing twice")
	_, env, err := c.start(ctx, fs, args, &o.Tenant)
	if err != nil {
		return err
	}
	res, err := env.Resync(ctx, o)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(res)
	}
	for _, d := range res.Deletions {
		c.printf("delete %s %s\n", d.Kind, d.Key)
	}
	verb := "published"
	if res.DryRun {
		verb = "would publish"
	}
	c.printf("resync %s of %s from %s (version %s): %s %d upserts; %d deletions: %s",
		res.RunID, o.Tenant, res.From, res.Version, verb, res.Upserts, len(res.Deletions), res.DeletionsHow)
	if res.HeldReason != "" {
		c.printf(" (%s)", res.HeldReason)
	}
	if res.HeldID != "" {
		c.printf("; approve with: provisionctl approve --tenant %s %s", o.Tenant, res.HeldID)
	}
	c.printf("\n")
	return nil
}

func (c *cli) showHeld(h ops.HeldDetail) {
	c.printf("held change set %s of tenant %s, held %s: %s\n", h.ID, h.Tenant, ago(h.Created), h.Reason)
	for _, d := range h.Deletions {
		c.printf("  delete %s %s\n", d.Kind, d.Key)
	}
	c.printf("%d deletions\n", len(h.Deletions))
}

func heldCommand(ctx context.Context, c *cli, name, summary string, args []string) (*ops.Env, ops.HeldDetail, error) {
	fs := c.flags(name, "--tenant T <held set id>", summary)
	tenant := fs.String("tenant", "", "tenant id (required)")
	fs.BoolVar(&c.yes, "yes", false, "do not ask for confirmation")
	pos, env, err := c.start(ctx, fs, args, tenant)
	if err != nil {
		return nil, ops.HeldDetail{}, err
	}
	if len(pos) != 1 {
		sets, err := env.HeldSets(ctx, *tenant)
		if err != nil {
			return nil, ops.HeldDetail{}, err
		}
		for _, s := range sets {
			c.showHeld(s)
		}
		return nil, ops.HeldDetail{}, usagef("name one held change set (tenant %s has %d)", *tenant, len(sets))
	}
	h, err := env.HeldSet(ctx, *tenant, pos[0])
	if err != nil {
		return nil, h, err
	}
	if !c.json {
		c.showHeld(h)
	}
	return env, h, nil
}

func runApprove(ctx context.Context, c *cli, args []string) error {
	env, h, err := heldCommand(ctx, c, "approve", "Releases a change set held by the safety valve: its deletions are published and applied. The deletions are shown first.", args)
	if err != nil {
		return err
	}
	if err := c.confirm(fmt.Sprintf("Apply these %d deletions?", len(h.Deletions))); err != nil {
		return err
	}
	n, err := env.Approve(ctx, h.Tenant, h.ID)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"approved": h, "published": n})
	}
	c.printf("approved: %d deletions published\n", n)
	return nil
}

func runReject(ctx context.Context, c *cli, args []string) error {
	env, h, err := heldCommand(ctx, c, "reject", "Discards a held change set: its entities stay in Class. If the source really lost them, they will be held again at the next poll or snapshot.", args)
	if err != nil {
		return err
	}
	if err := c.confirm(fmt.Sprintf("Discard these %d deletions?", len(h.Deletions))); err != nil {
		return err
	}
	if err := env.Reject(ctx, h.Tenant, h.ID); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"rejected": h})
	}
	c.printf("rejected: nothing deleted\n")
	return nil
}

func setState(ctx context.Context, c *cli, name, summary string, status tenantctl.Status, args []string) error {
	fs := c.flags(name, "--tenant T", summary)
	tenant := fs.String("tenant", "", "tenant id (required)")
	reason := fs.String("reason", "", "why, for status and the logs")
	_, env, err := c.start(ctx, fs, args, tenant)
	if err != nil {
		return err
	}
	st, err := env.SetTenantState(ctx, *tenant, status, *reason)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(st)
	}
	c.printf("tenant %s is %s\n", *tenant, st.Status)
	return nil
}

func runPause(ctx context.Context, c *cli, args []string) error {
	return setState(ctx, c, "pause", "Stops the tenant's polling and applying within moments. Nothing is lost: the cursor stays, and messages wait in the stream until resume.", tenantctl.Paused, args)
}

func runResume(ctx context.Context, c *cli, args []string) error {
	return setState(ctx, c, "resume", "Starts a paused or offboarded tenant again: the poller goes on from its cursor and the workers apply what waited.", tenantctl.Active, args)
}

func runOffboard(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("offboard", "--tenant T [--delete-from-class]",
		"Stops a tenant for good (remove it from the configuration afterwards). With --delete-from-class it then deletes, after showing them, the classes (with their enrollments and dates) and users this system created in the tenant's Class: only those with its namespaced external ids.")
	tenant := fs.String("tenant", "", "tenant id (required)")
	del := fs.Bool("delete-from-class", false, "also remove what this system created in the tenant's Class")
	fs.BoolVar(&c.yes, "yes", false, "do not ask for confirmation")
	_, env, err := c.start(ctx, fs, args, tenant)
	if err != nil {
		return err
	}
	var remove *ops.Created
	if *del {
		created, err := env.CreatedInClass(ctx, *tenant)
		if err != nil {
			return err
		}
		if !c.json {
			for _, k := range created.Classes {
				c.printf("delete class %s\n", k)
			}
			for _, k := range created.Users {
				c.printf("delete user %s\n", k)
			}
		}
		if err := c.confirm(fmt.Sprintf("Offboard tenant %s and delete these %d classes and %d users from its Class?", *tenant, len(created.Classes), len(created.Users))); err != nil {
			return err
		}
		remove = &created
	} else if err := c.confirm(fmt.Sprintf("Offboard tenant %s?", *tenant)); err != nil {
		return err
	}
	res, err := env.Offboard(ctx, *tenant, remove)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(res)
	}
	c.printf("tenant %s is offboarded", *tenant)
	if remove != nil {
		c.printf("; deleted %d classes and %d users from Class; forgot %d records", len(res.Deleted.Classes), len(res.Deleted.Users), res.Forgotten)
	}
	c.printf("\n")
	return nil
}

func tookText(d time.Duration) string {
	if d < time.Millisecond {
		return "<1ms"
	}
	return d.Round(time.Millisecond).String()
}
