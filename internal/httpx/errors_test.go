package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	keys := []string{"error_description", "message", "error"}
	for body, want := range map[string]string{
		`{"error":"invalid_client","error_description":"Client unknown"}`: "Client unknown",
		`{"error":"invalid_client"}`:                                      "invalid_client",
		`{"error":{"code":5},"message":"  Too Many Requests  "}`:          "Too Many Requests",
		`{"message":"No such pupil: amelia.ahmed@school.example"}`:        "No such pupil: [email]",
		`{"message":""}`:                         "",
		`{"Message":"keys are matched exactly"}`: "",
		`<html>amelia@example.com</html>`:        "",
		`["amelia@example.com"]`:                 "",
		``:                                       "",
		`null`:                                   "",
		`{"message":"` + strings.Repeat("x", 400) + `"}`: strings.Repeat("x", MessageMaxLen) + "…",
	} {
		if got := ErrorMessage([]byte(body), keys...); got != want {
			t.Errorf("ErrorMessage(%.40s) = %q, want %q", body, got, want)
		}
	}
	if got := ErrorMessage([]byte(`{"error":"a","message":"b"}`), "message", "error"); got != "b" {
		t.Errorf("keys are not tried in order: %q", got)
	}
}

func TestMessageTextCutsOnARuneBoundary(t *testing.T) {
	t.Parallel()
	got := MessageText([]byte(`"` + strings.Repeat("é", 200) + `"`))
	if !strings.HasSuffix(got, "…") || len(got) > MessageMaxLen+len("…") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("MessageText = %q (%d bytes)", got, len(got))
	}
	if strings.ContainsRune(strings.TrimSuffix(got, "…"), '\uFFFD') {
		t.Errorf("a rune was cut in half: %q", got)
	}
}

func TestRedactEmails(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"user amelia.ahmed@school.example not found": "user [email] not found",
		"<a@b.c>, (x@y); 'p@q' \"r@s\"":              "<[email]>, ([email]); '[email]' \"[email]\"",
		"no address here":                            "no address here",
		"a lone @ sign":                              "a lone [email] sign",
		"":                                           "",
		// Percent-encoded, as an upstream echoing the query writes it.
		"GET /users?email=zoe.bronte%40school.example failed": "GET /users?email=[email] failed",
		"?email=ZOE%40SCHOOL.EXAMPLE&page=2":                  "?email=[email]&page=2",
		"encoded twice: zoe%2540school.example":               "encoded twice: [email]",
		// Any word with an @, whatever its letters.
		"user zoë.brontë@school.example not found": "user [email] not found",
		"pupil@schüle.de, amy@localhost":           "[email], [email]",
		"o_b@my_school.org":                        "[email]",
		"sean.o'brien@school.example left":         "[email] left",
		"'sean.o'brien@school.example'":            "'[email]'",
		"email=a@b.org&name=x":                     "email=[email]&name=x",
		"a@b.org\u00a0c@d.org":                     "[email]\u00a0[email]",
	} {
		if got := RedactEmails(in); got != want {
			t.Errorf("RedactEmails(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzRedactEmails(f *testing.F) {
	for _, s := range []string{"x@y.z", "a@b@c", "[@]", "é@é", "no at", "a%40b", "%%2540", "o'b@c'@d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := RedactEmails(s); strings.Contains(got, "@") || strings.Contains(got, "%40") {
			t.Fatalf("RedactEmails(%q) = %q holds an @ or a %%40", s, got)
		}
	})
}

func TestAnswerText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status     int
		message    string
		retryAfter time.Duration
		want       string
	}{
		{400, "invalid search token", 0, "datahub: GET /v1/events: 400 invalid search token"},
		{429, "", 5 * time.Second, "datahub: GET /v1/events: 429 Too Many Requests (retry after 5s)"},
		{503, "Down for maintenance", 90 * time.Second, "datahub: GET /v1/events: 503 Down for maintenance (retry after 1m30s)"},
		{599, "", 0, "datahub: GET /v1/events: 599 "},
	} {
		if got := AnswerText("datahub", "GET", "/v1/events", tc.status, tc.message, tc.retryAfter); got != tc.want {
			t.Errorf("AnswerText(%d, %q, %v)\n got %s\nwant %s", tc.status, tc.message, tc.retryAfter, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const limit = 7 * 24 * time.Hour
	for _, tc := range []struct {
		in     string
		limit  time.Duration
		want   time.Duration
		wantOK bool
	}{
		{"0", limit, 0, true},
		{"5", limit, 5 * time.Second, true},
		{" 120 ", limit, 2 * time.Minute, true},
		{"-1", limit, 0, false},
		{"", limit, 0, false},
		{"soon", limit, 0, false},
		{"99999999999999999", limit, limit, true},
		{"99999999999", 24 * time.Hour, 24 * time.Hour, true},
		{"7200", time.Hour, time.Hour, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), limit, 0, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), limit, 30 * time.Second, true},
		{now.Add(30 * 24 * time.Hour).Format(http.TimeFormat), limit, limit, true},
		{"Friday, 02-Jan-26 03:05:05 GMT", limit, time.Minute, true}, // RFC 850, which HTTP-date also allows
	} {
		got, ok := ParseRetryAfter(tc.in, now, tc.limit)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("ParseRetryAfter(%q, %v) = %v, %v; want %v, %v", tc.in, tc.limit, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestTransportErrorHoldsNoQuery(t *testing.T) {
	t.Parallel()
	u, err := url.Parse("https://api.example.org/v1/users?email=amelia.ahmed%40school.example&token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	// What net/http returns: a *url.Error whose text is the whole URL, around
	// a cause that quotes parts of it again.
	cause := fmt.Errorf("dial %s: %w", u.RawQuery, syscall.ECONNREFUSED)
	err = NewTransportError("class", http.MethodGet, u.Path, u, &url.Error{Op: "Get", URL: u.String(), Err: cause})

	const want = "class: GET /v1/users: dial [redacted]: connection refused"
	if err.Error() != want {
		t.Errorf("text\n got %s\nwant %s", err, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || !IsTransient(err) {
		t.Error("the cause is lost")
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		t.Error("the *url.Error is still wrapped")
	}

	// The unescaped query and emails in the cause are redacted too.
	e := &TransportError{Prefix: "datahub", Method: http.MethodPost, Path: "/token",
		Err: errors.New("refused client-secret for amelia@school.example"), Redact: []string{"", "client-secret"}}
	if got := e.Error(); got != "datahub: POST /token: refused [redacted] for [email]" {
		t.Errorf("text %q", got)
	}
}

func TestUnwrapURLError(t *testing.T) {
	t.Parallel()
	inner := errors.New("inner")
	if got := UnwrapURLError(&url.Error{Op: "Get", URL: "https://x/?q=1", Err: inner}); got != inner {
		t.Errorf("UnwrapURLError = %v", got)
	}
	if got := UnwrapURLError(fmt.Errorf("wrapped: %w", &url.Error{Op: "Get", URL: "u", Err: inner})); got != inner {
		t.Errorf("UnwrapURLError of a wrapped *url.Error = %v", got)
	}
	if got := UnwrapURLError(inner); got != inner {
		t.Errorf("UnwrapURLError of a plain error = %v", got)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestIsTransient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("x"), false},
		{"canceled", context.Canceled, false},
		{"canceled beside a timeout", errors.Join(context.Canceled, context.DeadlineExceeded), false},
		{"deadline", context.DeadlineExceeded, true},
		{"net timeout", &url.Error{Op: "Get", URL: "x", Err: timeoutErr{}}, true},
		{"refused", syscall.ECONNREFUSED, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"aborted", syscall.ECONNABORTED, true},
		{"broken pipe", syscall.EPIPE, true},
		{"eof", io.EOF, true},
		{"unexpected eof", &TransportError{Prefix: "p", Method: "GET", Path: "/", Err: io.ErrUnexpectedEOF}, true},
		{"closed", net.ErrClosed, true},
		{"dial", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route")}, true},
		{"bad URL", &url.Error{Op: "parse", URL: "x", Err: errors.New("invalid")}, false},
	} {
		if got := IsTransient(tc.err); got != tc.want {
			t.Errorf("%s: IsTransient = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCheckBaseURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://class.example.org":      "",
		"http://localhost:8080/prefix":   "",
		"ftp://class.example.org":        "scheme must be http or https",
		"https://":                       "no host",
		"https://user:pw@example.org":    "must not hold credentials",
		"https://example.org/?tenant=1":  "must not have a query or fragment",
		"https://example.org/?":          "must not have a query or fragment",
		"https://example.org/#fragment":  "must not have a query or fragment",
		"class.example.org/without/host": "scheme must be http or https",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if err := CheckBaseURL(u); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("CheckBaseURL(%s) = %q, want %q", raw, got, want)
		}
	}
}

// FuzzErrorMessage reads upstream error bodies as every client does: the
// message it returns is bounded, holds no "@" and comes only from a JSON
// object.
func FuzzErrorMessage(f *testing.F) {
	for _, s := range []string{
		`{"error":"invalid_client","error_description":"Client x@y.z unknown"}`,
		`{"message":"  Down for maintenance "}`, `{"error":{"code":1}}`, `"just a string"`, `<html>`, `{"error":"` + strings.Repeat("é", 400) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got := ErrorMessage(body, "error_description", "message", "error")
		if strings.Contains(got, "@") {
			t.Fatalf("message %q holds an @", got)
		}
		if len(got) > MessageMaxLen+len("…") {
			t.Fatalf("message of %d bytes", len(got))
		}
		if got != "" && (len(body) == 0 || bytes.TrimSpace(body)[0] != '{') {
			t.Fatalf("message %q from a body that is not an object", got)
		}
	})
}

// FuzzParseRetryAfter reads Retry-After values as the clients do: the delay
// is never negative nor beyond the limit.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"5", "0", "-1", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", " 7 ", "1.5", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now, time.Hour)
		if d < 0 || d > time.Hour || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", v, d, ok)
		}
	})
}

func TestRedactSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"s3cr&t/x", "s3cr%26t%2Fx"}
	for body, want := range map[string]string{
		`{"error":"bad s3cr&t/x"}`:                             `{"error":"bad [redacted]"}`,
		`{"error":"bad s3cr\u0026t\/x","n":12345678901234567}`: `{"error":"bad [redacted]","n":12345678901234567}`,
		`{"errors":[{"detail":"s3cr\u0026t\/x"}]}`:             `{"errors":[{"detail":"[redacted]"}]}`,
		`error=bad&secret=s3cr%26t%2Fx`:                        `error=bad&secret=[redacted]`,
		`{"error":"nothing to hide", "n": 1.50}`:               `{"error":"nothing to hide", "n": 1.50}`,
		`not json s3cr\u0026t\/x`:                              `not json s3cr\u0026t\/x`,
	} {
		if got := string(RedactSecrets([]byte(body), secrets)); got != want {
			t.Errorf("RedactSecrets(%s) = %s, want %s", body, got, want)
		}
	}
}

func FuzzRedactSecrets(f *testing.F) {
	for _, s := range []string{`{"a":"s3cr\u0026t"}`, `["s3cr&t"]`, `{"s3cr\u0026t":1}`, `"s3cr\u0026t"`, `s3cr&t`} {
		f.Add(s)
	}
	const secret = "s3cr&t"
	f.Fuzz(func(t *testing.T, body string) {
		got := RedactSecrets([]byte(body), []string{secret})
		var v any
		if bytes.Contains(got, []byte(secret)) || (json.Unmarshal(got, &v) == nil && strings.Contains(fmt.Sprint(v), secret)) {
			t.Fatalf("RedactSecrets(%q) = %q holds the secret", body, got)
		}
	})
}
