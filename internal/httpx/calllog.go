package httpx

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Call is one HTTP call as an audit record keeps it: no query string, no
// body, nothing personal.
type Call struct {
	Method string        `json:"method"`
	Path   string        `json:"path"`
	Status int           `json:"status,omitempty"` // 0 when no answer came
	Error  string        `json:"error,omitempty"`  // why no answer came
	Took   time.Duration `json:"took"`
	// Shared: another delivery sent this read, and this one used its
	// answer instead of sending its own (see the worker's shared reads).
	Shared bool `json:"shared,omitempty"`
}

// CallLog collects the calls made with a context from [WithCallLog].
type CallLog struct {
	mu    sync.Mutex
	calls []Call
}

// Calls returns the calls so far, oldest first.
func (l *CallLog) Calls() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Call(nil), l.calls...)
}

func (l *CallLog) add(c Call) {
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

type callLogKey struct{}

// AddCalls records calls made on ctx's behalf, under another context, in
// ctx's log; it does nothing if ctx has none.
func AddCalls(ctx context.Context, calls ...Call) {
	if log, ok := ctx.Value(callLogKey{}).(*CallLog); ok {
		for _, c := range calls {
			log.add(c)
		}
	}
}

// WithCallLog returns a context under which every call through a
// [NewTransport] transport is recorded in the returned log: the worker keeps
// them in its audit record, so `provisionctl explain` can say which Class
// calls a message caused and how they were answered.
func WithCallLog(ctx context.Context) (context.Context, *CallLog) {
	l := &CallLog{}
	return context.WithValue(ctx, callLogKey{}, l), l
}

// callRecorder records calls made under a context with a [CallLog].
type callRecorder struct{ next http.RoundTripper }

func (c callRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	log, ok := r.Context().Value(callLogKey{}).(*CallLog)
	if !ok {
		return c.next.RoundTrip(r)
	}
	start := time.Now()
	resp, err := c.next.RoundTrip(r)
	call := Call{Method: r.Method, Path: r.URL.Path, Took: time.Since(start)}
	if err != nil {
		// A transport's error may quote the URL, whose query may hold an
		// email.
		call.Error = UnwrapURLError(err).Error()
		if q := r.URL.RawQuery; q != "" {
			call.Error = strings.ReplaceAll(call.Error, q, "[query]")
		}
	} else {
		call.Status = resp.StatusCode
	}
	log.add(call)
	return resp, err
}
