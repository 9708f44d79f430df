// Package httpx holds the HTTP plumbing shared by the upstream clients
// (class, datahub, hubmis): a traced transport that keeps query strings,
// which may hold a pupil's or a teacher's email, out of every span
// ([NewTransport]); sending a request and reading its answer within bounds
// ([Send], with a bearer token renewed once on a 401 by [SendWithToken]);
// caching an OAuth 2 client-credentials token by the client's clock
// ([TokenCache]); and the mechanics of their errors: the message of an error
// answer with emails redacted ([ErrorMessage], [AnswerText]), Retry-After
// ([ParseRetryAfter]), a failure to get an answer ([TransportError]) and
// whether it is worth another try ([IsTransient]).
//
// Each client keeps its own error types and sentinels and decides what an
// answer means; this package holds only what they did alike.
package httpx

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// NewTransport returns a traced transport: otelhttp around base
// (http.DefaultTransport when nil), with spans named "<METHOD> <path>" and no
// query string anywhere in them, recording each call in the context's
// [CallLog] if it has one.
//
// otelhttp records the request's url.full attribute from req.URL, query
// included, and has no option to change that (WithSpanNameFormatter covers
// only the name). So the query is taken off the URL before otelhttp sees the
// request, carried in the request's context past it, and put back just before
// base sends the request. Every attribute otelhttp derives from the URL, now
// and in later versions (old and new semantic conventions alike), therefore
// lacks the query. opts are passed to otelhttp after the span name formatter
// (tests pass a tracer provider; a later WithSpanNameFormatter wins).
func NewTransport(base http.RoundTripper, opts ...otelhttp.Option) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	all := make([]otelhttp.Option, 0, len(opts)+1)
	all = append(all, otelhttp.WithSpanNameFormatter(spanName))
	all = append(all, opts...)
	return callRecorder{next: queryHider{next: otelhttp.NewTransport(queryRestorer{next: base}, all...)}}
}

func spanName(_ string, r *http.Request) string {
	return r.Method + " " + r.URL.Path
}

// hiddenQueryKey is the context key under which queryHider carries the query.
type hiddenQueryKey struct{}

// queryHider removes the query string from the request it passes on and
// carries it in the context for queryRestorer.
type queryHider struct{ next http.RoundTripper }

func (h queryHider) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL == nil || (r.URL.RawQuery == "" && !r.URL.ForceQuery) {
		return h.next.RoundTrip(r)
	}
	// Clone copies the URL, so the caller's request is left as it was, as a
	// RoundTripper must.
	hidden := r.Clone(context.WithValue(r.Context(), hiddenQueryKey{}, r.URL.RawQuery))
	hidden.URL.RawQuery = ""
	hidden.URL.ForceQuery = false
	return h.next.RoundTrip(hidden)
}

// queryRestorer puts back the query that queryHider took off.
type queryRestorer struct{ next http.RoundTripper }

func (q queryRestorer) RoundTrip(r *http.Request) (*http.Response, error) {
	raw, ok := r.Context().Value(hiddenQueryKey{}).(string)
	if !ok {
		return q.next.RoundTrip(r)
	}
	restored := r.Clone(r.Context())
	restored.URL.RawQuery = raw
	return q.next.RoundTrip(restored)
}
