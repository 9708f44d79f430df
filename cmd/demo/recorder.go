package main

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/rollcall/rollcall/internal/handlers"
)

// recorder counts the worker's delivery outcomes (app.Options.OnOutcome)
// for the progress lines and the summary. It is called from the worker's
// goroutines.
type recorder struct {
	mu sync.Mutex
	// results counts deliveries by result; replayResults those of the
	// replay's messages.
	results, replayResults map[handlers.Result]int
	// transient counts Class calls that failed in a way worth retrying
	// (429, 5xx, no answer): each was retried, in the delivery or after.
	transient int
	// lags are the event-to-applied times of changes from the sources.
	lags []time.Duration
	// watch picks the applied change whose trace the summary shows.
	watch   func(handlers.Outcome) bool
	watched *handlers.Outcome
}

func newRecorder() *recorder {
	return &recorder{results: map[handlers.Result]int{}, replayResults: map[handlers.Result]int{}}
}

func (r *recorder) observe(o handlers.Outcome) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if o.Replay {
		r.replayResults[o.Result]++
	} else {
		r.results[o.Result]++
	}
	for _, c := range o.Calls {
		if c.Status == 0 || c.Status == 429 || c.Status >= 500 {
			r.transient++
		}
	}
	if o.Result != handlers.ResultApplied || o.Replay {
		return
	}
	if !o.Observed.IsZero() {
		r.lags = append(r.lags, now.Sub(o.Observed))
	}
	if r.watched == nil && r.watch != nil && o.TraceID != "" && r.watch(o) {
		r.watched = &o
	}
}

// watchFor makes the first applied change that f accepts the one whose
// trace the summary shows.
func (r *recorder) watchFor(f func(handlers.Outcome) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watch, r.watched = f, nil
}

// snapshot is a copy of the counts.
type counts struct {
	results, replayResults map[handlers.Result]int
	transient              int
	lags                   []time.Duration
	watched                *handlers.Outcome
}

func (r *recorder) counts() counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := counts{results: map[handlers.Result]int{}, replayResults: map[handlers.Result]int{},
		transient: r.transient, lags: slices.Clone(r.lags), watched: r.watched}
	for k, v := range r.results {
		c.results[k] = v
	}
	for k, v := range r.replayResults {
		c.replayResults[k] = v
	}
	return c
}

// replaySettled is how many of the replay's messages reached a final
// result: applied, skipped or dead-lettered.
func (c counts) replaySettled() int {
	return c.replayResults[handlers.ResultApplied] + c.replayResults[handlers.ResultSkipped] + c.replayResults[handlers.ResultDead]
}

// percentile is the nearest-rank percentile p (0..100) of sorted ds.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
