package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/rollcall/rollcall/internal/handlers"
	"github.com/rollcall/rollcall/internal/simcheck"
)

// result is what a demo run found.
type result struct {
	stages []stageResult
	// differences list how Class differs from the sources at the end; none
	// means equal.
	differences []string
	took        time.Duration
}

// maxShownDifferences bounds the differences printed.
const maxShownDifferences = 20

// play runs the demo: start, the script, the summary, and -serve's wait.
func play(ctx context.Context, o options, stdout, stderr io.Writer) (res result, err error) {
	begin := time.Now()
	fmt.Fprintln(stdout, "rollcall demo: NATS, the Class, DataHub and HUBmis simulators, the poller and the worker, in this process")
	s, err := startSite(ctx, o, stderr)
	if err != nil {
		return res, fmt.Errorf("starting: %w", err)
	}
	keep := false
	defer func() {
		s.close(keep)
		if keep {
			fmt.Fprintf(stdout, "Kept %s for a look (NATS store, %s, %s).\n", s.dir, logFileName, configName)
		}
	}()
	s.describe(stdout)

	stages := s.script()
	p := &progress{w: stdout, tty: isTerminal(stdout), total: len(stages)}
	for i, st := range stages {
		r, err := s.runStage(ctx, p, i+1, st)
		if err != nil {
			res.differences = s.differences()
			printDifferences(stdout, res.differences)
			keep = s.temp && err != errInterrupted
			return res, err
		}
		res.stages = append(res.stages, r)
	}
	res.differences = s.differences()
	res.took = time.Since(begin)
	s.summary(ctx, stdout, res)
	if o.atEnd != nil {
		o.atEnd(s)
	}
	if len(res.differences) > 0 {
		printDifferences(stdout, res.differences)
		keep = s.temp
		return res, nil
	}
	if o.serve {
		s.serve(ctx, stdout)
	}
	return res, nil
}

func (s *site) describe(w io.Writer) {
	sz := s.size
	fmt.Fprintf(w, "  DataHub tenant %s: %d teachers, %d students, %d sections; polled every %s\n",
		dataHubTenant, sz.dhTeachers, sz.dhStudents, sz.dhSections, s.cfg.Tenants[0].DataHub.PollInterval)
	fmt.Fprintf(w, "  HUBmis tenant %s: %d staff, %d students, %d sets; HUBmis runs %g× faster than real time (a snapshot every %s)\n",
		hubmisTenant, sz.hmStaff, sz.hmStudents, sz.hmSets, s.o.timeScale, s.o.interval)
	where := s.dir + " (removed at exit; -data DIR keeps it)"
	if !s.temp {
		where = s.dir
	}
	fmt.Fprintf(w, "  data: %s\n  poller and worker logs: %s\n", where, s.logWhere())
}

func printDifferences(w io.Writer, diffs []string) {
	if len(diffs) == 0 {
		return
	}
	fmt.Fprintf(w, "Class differs from the sources in %d places:\n", len(diffs))
	for _, d := range diffs[:min(len(diffs), maxShownDifferences)] {
		fmt.Fprintf(w, "  %s\n", d)
	}
	if len(diffs) > maxShownDifferences {
		fmt.Fprintf(w, "  ... %d more\n", len(diffs)-maxShownDifferences)
	}
}

// summary prints what Class holds and what it took.
func (s *site) summary(ctx context.Context, w io.Writer, res result) {
	st := s.cls.State()
	c := s.rec.counts()
	fmt.Fprintf(w, "\nSummary (%s in all)\n", res.took.Round(100*time.Millisecond))
	dh, hm := simcheck.Count(st, dataHubPrefix), simcheck.Count(st, hubmisPrefix)
	fmt.Fprintf(w, "  Class holds      %s: %d users, %d classes, %d enrollments\n", dataHubTenant, dh.Users, dh.Classes, dh.Enrollments)
	fmt.Fprintf(w, "                   %s: %d users, %d classes, %d enrollments, %d class dates\n", hubmisTenant, hm.Users, hm.Classes, hm.Enrollments, hm.Dates)
	fmt.Fprintf(w, "  changes applied  %d from the sources, then %d re-applied by the replay (%d skipped as older)\n",
		c.results[handlers.ResultApplied], c.replayResults[handlers.ResultApplied], c.replayResults[handlers.ResultSkipped])
	fmt.Fprintf(w, "  retries          %d Class calls failed transiently (429, 5xx, no answer) and were retried; redeliveries after a delay: %d\n",
		c.transient, c.results[handlers.ResultRetry]+c.replayResults[handlers.ResultRetry])
	// Dead letters by subject and reason: the replay re-sends the refused
	// record, and Class refuses it again.
	total, byWhat, order := 0, map[string]int{}, []string{}
	for _, t := range s.cfg.Tenants {
		list, err := s.env.DLQList(ctx, t.ID, "")
		if err != nil {
			fmt.Fprintf(w, "  dead letters     %s: %v\n", t.ID, err)
			continue
		}
		total += len(list)
		for _, d := range list {
			what := d.OriginalSubject
			if d.Rejected {
				what = d.Subject + ", rejected by the poller"
			}
			what += ": " + truncate(d.Reason, 100)
			if byWhat[what] == 0 {
				order = append(order, what)
			}
			byWhat[what]++
		}
	}
	fmt.Fprintf(w, "  dead letters     %d in PROVISION_DLQ\n", total)
	for _, what := range order {
		fmt.Fprintf(w, "                   %d× %s\n", byWhat[what], what)
	}
	if n := c.replayResults[handlers.ResultDead]; n > 0 {
		fmt.Fprintf(w, "                   (%d of them the replay's: it re-sent what Class had refused, and Class refused it again)\n", n)
	}
	lags := slices.Clone(c.lags)
	slices.Sort(lags)
	fmt.Fprintf(w, "  event→applied    p50 %s, p99 %s over %d changes (from the source's event or snapshot time to Class's answer)\n",
		percentile(lags, 50).Round(time.Millisecond), percentile(lags, 99).Round(time.Millisecond), len(lags))
	if o := c.watched; o != nil {
		fmt.Fprintf(w, "  a trace          %s: the teacher change, %s %s of %s (Class calls: %d)\n", o.TraceID, o.Kind, o.Op, o.Key, len(o.Calls))
	}
	if len(res.differences) == 0 {
		fmt.Fprintln(w, "  Class equals both sources: yes")
	} else {
		fmt.Fprintf(w, "  Class equals both sources: NO (%d differences)\n", len(res.differences))
	}
}

// serve prints where everything listens and waits for Ctrl-C.
func (s *site) serve(ctx context.Context, w io.Writer) {
	fmt.Fprintf(w, `
Serving until Ctrl-C:
  Class     %s
  DataHub   %s
  HUBmis    %s (%g× faster than real time)
  NATS      %s
  metrics   http://%s/metrics (worker), http://%s/metrics (poller)
  config    %s
  try       go run ./cmd/provisionctl -config %s status
`, s.cls.URL(), s.hub.URL(), s.mis.URL(), s.o.timeScale, s.ns.ClientURL(), s.workerAdmin, s.pollerAdmin, s.cfgPath, s.cfgPath)
	<-ctx.Done()
	fmt.Fprintln(w, "Stopping.")
}
