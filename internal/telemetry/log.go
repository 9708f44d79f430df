package telemetry

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode"

	"go.opentelemetry.io/otel/trace"

	"github.com/rollcall/rollcall/internal/httpx"
)

// Log attribute keys added by the trace handler.
const (
	LogKeyTraceID = "trace_id"
	LogKeySpanID  = "span_id"
)

// Redacted is what replaces a secret's value in a log line.
const Redacted = "[redacted]"

// EmailRedacted is what replaces an email address in a log line: the same
// as in a client's error text, which is often what is logged.
const EmailRedacted = httpx.EmailRedacted

// NewLogger returns the logger of a binary: JSON lines on w (format "text"
// gives slog's key=value text instead; anything else is JSON), at level and
// above, with secrets and email addresses redacted ([ReplaceAttr]) and the
// trace and span ids of the record's context added ([NewTraceHandler]).
func NewLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: ReplaceAttr}
	var h slog.Handler
	if strings.EqualFold(format, "text") {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(NewTraceHandler(h))
}

// ReplaceAttr is a [slog.HandlerOptions.ReplaceAttr] that keeps secrets and
// email addresses out of log lines, whatever the caller logged: the value of
// an attribute whose key (or enclosing group's name) looks like a secret
// becomes [Redacted], and every email address in the message or in a value
// (a string, an error's text, anything else as formatted) becomes
// [EmailRedacted]. A secret-looking key is one holding password, passwd,
// secret, token, apikey, authorization, credential or cookie, or the whole
// word key (api_key, X-Api-Key, key; not keyring): so name record
// identifiers "id" or "ref", not "key". Durations are written as text
// ("1.5s").
func ReplaceAttr(groups []string, a slog.Attr) slog.Attr {
	if secretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	for _, g := range groups {
		if secretKey(g) {
			return slog.String(a.Key, Redacted)
		}
	}
	switch a.Value.Kind() {
	case slog.KindDuration:
		// The JSON handler writes nanoseconds; "1.5s" is what an operator
		// reads, and what the configuration is written in.
		a.Value = slog.StringValue(a.Value.Duration().String())
	case slog.KindString:
		if s := a.Value.String(); strings.ContainsAny(s, "@%") {
			a.Value = slog.StringValue(RedactEmails(s))
		}
	case slog.KindAny:
		var s string
		switch v := a.Value.Any().(type) {
		case error:
			s = v.Error()
		default:
			s = fmt.Sprint(v)
		}
		// Only a value that holds an address is flattened to a string, so
		// structured values keep their shape in the JSON otherwise.
		if r := RedactEmails(s); r != s {
			a.Value = slog.StringValue(r)
		} else if _, isErr := a.Value.Any().(error); isErr {
			a.Value = slog.StringValue(s)
		}
	}
	return a
}

// RedactEmails replaces every word of s that holds an "@" or its
// percent-encoding by [EmailRedacted]. It is [httpx.RedactEmails]: the
// clients' errors and the log lines must agree on what an address is, and
// a pattern for "a real address" missed unicode, underscores and dotless
// domains.
func RedactEmails(s string) string { return httpx.RedactEmails(s) }

var secretFragments = []string{"password", "passwd", "secret", "token", "apikey", "authorization", "credential", "cookie"}

func secretKey(key string) bool {
	words := splitWords(key)
	joined := strings.Join(words, "")
	for _, f := range secretFragments {
		if strings.Contains(joined, f) {
			return true
		}
	}
	for _, w := range words {
		if w == "key" || w == "pwd" {
			return true
		}
	}
	return false
}

// splitWords splits a key into lower-case words at separators and at
// camelCase boundaries: "X-Api-Key" and "apiKey" both give [.. api key].
func splitWords(key string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	prevLower := false
	for _, r := range key {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			flush()
		}
		cur = append(cur, r)
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
	}
	flush()
	return words
}

// NewTraceHandler wraps h so that a record logged with a context holding a
// valid span gets trace_id and span_id attributes, which join a log line to
// its trace (and an audit record to the log). Like any attribute added at
// Handle time, they land inside the groups opened by WithGroup.
func NewTraceHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String(LogKeyTraceID, sc.TraceID().String()), slog.String(LogKeySpanID, sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// PersonHash is a keyed hash of a person's id for logs that must tell
// people apart without naming them: the first 12 hex digits of
// HMAC-SHA256(key, id). With a secret key, the hash cannot be reversed by
// hashing a list of known ids.
func PersonHash(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))[:12]
}
