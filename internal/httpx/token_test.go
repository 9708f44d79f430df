package httpx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/rollcall/rollcall/internal/eventually"
	"github.com/rollcall/rollcall/internal/fakeclock"
)

// testSecret has characters that query escaping changes, so that both of its
// forms can be looked for in error texts.
const testSecret = "s3cr&t/+=?"

// testClock is the injected clock tests move by hand.
type testClock = fakeclock.Clock

func newTestClock() *testClock { return fakeclock.New(time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)) }

// tokenEndpoint is a client-credentials token endpoint on loopback. Unless
// answer is set, it checks the credentials (HTTP Basic) and issues "tok-1",
// "tok-2", … with expiresIn as expires_in ("" for none): raw JSON, or a form
// value when form is set.
type tokenEndpoint struct {
	URL       string
	Client    *http.Client
	requests  atomic.Int64
	expiresIn string
	form      bool
	answer    func(w http.ResponseWriter, r *http.Request)
}

// newTokenEndpoint starts e, whose fields other than URL and Client are set.
func newTokenEndpoint(t *testing.T, e *tokenEndpoint) *tokenEndpoint {
	t.Helper()
	srv := serve(t, e.serveHTTP)
	e.URL, e.Client = srv.URL+"/oauth/token", srv.Client()
	return e
}

// answeringEndpoint starts an endpoint that gives every request to answer.
func answeringEndpoint(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *tokenEndpoint {
	t.Helper()
	return newTokenEndpoint(t, &tokenEndpoint{answer: answer})
}

func (e *tokenEndpoint) serveHTTP(w http.ResponseWriter, r *http.Request) {
	n := e.requests.Add(1)
	if e.answer != nil {
		e.answer(w, r)
		return
	}
	// oauth2 form-encodes the credentials before HTTP Basic, as RFC 6749 asks.
	id, secret, ok := r.BasicAuth()
	secret, _ = url.QueryUnescape(secret)
	if r.Method != http.MethodPost || r.URL.Path != "/oauth/token" || r.FormValue("grant_type") != "client_credentials" ||
		!ok || id != "client" || secret != testSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}
	if e.form {
		v := url.Values{"access_token": {fmt.Sprintf("tok-%d", n)}, "token_type": {"bearer"}}
		if e.expiresIn != "" {
			v.Set("expires_in", e.expiresIn)
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		_, _ = io.WriteString(w, v.Encode())
		return
	}
	body := fmt.Sprintf(`{"access_token":"tok-%d","token_type":"bearer"`, n)
	if e.expiresIn != "" {
		body += `,"expires_in":` + e.expiresIn
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body+"}")
}

// refusalError is what the test's RefusalFunc makes of a refusal.
type refusalError struct{ r TokenRefusal }

func (e *refusalError) Error() string {
	return fmt.Sprintf("test: %s %s: %d %s", e.r.Method, e.r.Path, e.r.Answer.Status, e.r.Message("(body)"))
}

var errTestMalformed = errors.New("no usable access token")

// testTokenConfig returns a config for e: HTTP Basic, the clock, a renewal
// at 80 % of a known life and never for an unknown one.
func testTokenConfig(e *tokenEndpoint, clock *testClock) TokenCacheConfig {
	return TokenCacheConfig{
		Credentials: clientcredentials.Config{ClientID: "client", ClientSecret: testSecret, TokenURL: e.URL,
			AuthStyle: oauth2.AuthStyleInHeader},
		HTTPClient: e.Client,
		Now:        clock.Now,
		RenewAfterFunc: func(life time.Duration, known bool) (time.Duration, bool) {
			return life * 8 / 10, known
		},
		RefusalFunc:   func(r TokenRefusal) error { return &refusalError{r} },
		MalformedFunc: func(where string) error { return fmt.Errorf("test: malformed %s: %w", where, errTestMalformed) },
		Prefix:        "test",
	}
}

func mustToken(t *testing.T, tc *TokenCache) *oauth2.Token {
	t.Helper()
	tok, err := tc.Token(t.Context())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func TestTokenCacheReusesToken(t *testing.T) {
	t.Parallel()
	e := newTokenEndpoint(t, &tokenEndpoint{expiresIn: "3600"})
	tc := NewTokenCache(testTokenConfig(e, newTestClock()))
	first := mustToken(t, tc)
	for range 3 {
		if tok := mustToken(t, tc); tok != first {
			t.Fatalf("token %q, want the cached %q", tok.AccessToken, first.AccessToken)
		}
	}
	if first.AccessToken != "tok-1" || e.requests.Load() != 1 {
		t.Errorf("token %q after %d requests, want tok-1 after 1", first.AccessToken, e.requests.Load())
	}
}

func TestTokenCacheRenewsByInjectedClock(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		expiresIn string
		form      bool // a form-encoded answer, whose values oauth2 reads as numbers where it can
		life      time.Duration
		known     bool
	}{
		{"number", `100`, false, 100 * time.Second, true},
		{"numeric string", `"100"`, false, 100 * time.Second, true},
		{"absent", ``, false, 0, false},
		{"zero", `0`, false, 0, false},
		{"beyond a year", `40000000`, false, 0, false},
		{"form", `100`, true, 100 * time.Second, true},
		{"form with spaces", ` 100 `, true, 100 * time.Second, true},
		{"form fraction", `100.5`, true, 100500 * time.Millisecond, true},
		{"form not a number", `soon`, true, 0, false},
		{"form negative", `-5`, true, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newTokenEndpoint(t, &tokenEndpoint{expiresIn: c.expiresIn, form: c.form})
			clock := newTestClock()
			cfg := testTokenConfig(e, clock)
			var gotLife time.Duration
			var gotKnown bool
			policy := cfg.RenewAfterFunc
			cfg.RenewAfterFunc = func(life time.Duration, known bool) (time.Duration, bool) {
				gotLife, gotKnown = life, known
				return policy(life, known)
			}
			tc := NewTokenCache(cfg)
			first := mustToken(t, tc)
			if gotLife != c.life || gotKnown != c.known {
				t.Fatalf("RenewAfterFunc got (%v, %v), want (%v, %v)", gotLife, gotKnown, c.life, c.known)
			}
			if !c.known {
				// The policy keeps a token of unknown life until refused.
				clock.Advance(365 * 24 * time.Hour)
				if tok := mustToken(t, tc); tok != first || e.requests.Load() != 1 {
					t.Errorf("after a year: %q after %d requests, want the first token", tok.AccessToken, e.requests.Load())
				}
				return
			}
			renewAfter := c.life * 8 / 10
			clock.Advance(renewAfter - time.Nanosecond)
			if tok := mustToken(t, tc); tok != first {
				t.Fatalf("just before the renewal: %q, want the cached %q", tok.AccessToken, first.AccessToken)
			}
			clock.Advance(time.Nanosecond)
			if tok := mustToken(t, tc); tok.AccessToken != "tok-2" || e.requests.Load() != 2 {
				t.Errorf("at the renewal: %q after %d requests, want tok-2 after 2", tok.AccessToken, e.requests.Load())
			}
		})
	}
}

// TestTokenCacheFetchesOneAtATime holds the first token request at the
// endpoint until every other caller is waiting in Token, so a cache that let
// a second fetch start would be seen doing it.
//
// Not parallel: it counts the goroutines waiting in any TokenCache.Token, so
// no other test may have any there.
func TestTokenCacheFetchesOneAtATime(t *testing.T) {
	const callers = 8
	arrived := make(chan struct{}, callers)
	release := make(chan struct{})
	var requests atomic.Int64
	e := answeringEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer"}`, n)
	})
	// Cleanups run last-registered first: the held request is released
	// before the server's Close waits for it.
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	tc := NewTokenCache(testTokenConfig(e, newTestClock()))

	tokens := make([]*oauth2.Token, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { tokens[i], errs[i] = tc.Token(t.Context()) })
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no token request arrived")
	}
	eventually.Holds(t, 10*time.Second, "the other callers waiting in Token", func() (bool, string) {
		n := goroutinesWaitingInToken()
		return n >= callers-1, fmt.Sprintf("%d waiting, want %d; requests so far %d", n, callers-1, requests.Load())
	})
	// A caller whose context ends while it waits gives up.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := tc.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Token with a cancelled context while a fetch runs: %v", err)
	}
	releaseOnce.Do(func() { close(release) })
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || tokens[i] != tokens[0] {
			t.Errorf("caller %d: %v, %v; want the one token of caller 0", i, tokens[i], errs[i])
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// goroutinesWaitingInToken counts the goroutines blocked in the select of a
// TokenCache.Token, from a dump of every stack as goleak reads them.
func goroutinesWaitingInToken() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		header, frames, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[select") && strings.Contains(frames, "httpx.(*TokenCache).Token(") {
			count++
		}
	}
	return count
}

func TestTokenCacheDropsRefusedToken(t *testing.T) {
	t.Parallel()
	e := newTokenEndpoint(t, &tokenEndpoint{expiresIn: "3600"})
	tc := NewTokenCache(testTokenConfig(e, newTestClock()))
	first := mustToken(t, tc)
	tc.Drop(first)
	second := mustToken(t, tc)
	if second.AccessToken != "tok-2" {
		t.Fatalf("after Drop: %q, want a new token tok-2", second.AccessToken)
	}
	// A caller that was refused the old token must not drop the new one.
	tc.Drop(first)
	if tok := mustToken(t, tc); tok != second || e.requests.Load() != 2 {
		t.Errorf("after dropping a stale token: %q after %d requests, want tok-2 after 2", tok.AccessToken, e.requests.Load())
	}
}

func TestTokenCacheAcquire(t *testing.T) {
	t.Parallel()
	t.Run("before each request, its life counted after the wait", func(t *testing.T) {
		t.Parallel()
		var acquired, done atomic.Int64
		var calls []string
		var mu sync.Mutex
		// inner issues the tokens; e checks that each request holds a slot.
		inner := &tokenEndpoint{expiresIn: "100"}
		e := answeringEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
			if acquired.Load() != done.Load()+1 {
				t.Errorf("request with %d acquired, %d done; want one slot held", acquired.Load(), done.Load())
			}
			inner.serveHTTP(w, r)
		})
		clock := newTestClock()
		cfg := testTokenConfig(e, clock)
		cfg.AcquireFunc = func(_ context.Context, method, path string) (func(), error) {
			mu.Lock()
			calls = append(calls, method+" "+path)
			mu.Unlock()
			acquired.Add(1)
			clock.Advance(30 * time.Second) // the wait for the rate limit
			return func() { done.Add(1) }, nil
		}
		tc := NewTokenCache(cfg)
		first := mustToken(t, tc)
		clock.Advance(80*time.Second - time.Nanosecond)
		if tok := mustToken(t, tc); tok != first {
			t.Fatalf("80 s less 1 ns after the wait: %q, want the cached %q", tok.AccessToken, first.AccessToken)
		}
		clock.Advance(time.Nanosecond)
		mustToken(t, tc)
		mu.Lock()
		defer mu.Unlock()
		if strings.Join(calls, ", ") != "POST /oauth/token, POST /oauth/token" || done.Load() != 2 || inner.requests.Load() != 2 {
			t.Errorf("acquire calls %v, %d done, %d requests; want 2 of each", calls, done.Load(), inner.requests.Load())
		}
	})
	t.Run("its error returned as it is, and nothing sent", func(t *testing.T) {
		t.Parallel()
		e := newTokenEndpoint(t, &tokenEndpoint{expiresIn: "100"})
		cfg := testTokenConfig(e, newTestClock())
		limited := errors.New("rate limit wait too long")
		cfg.AcquireFunc = func(context.Context, string, string) (func(), error) { return nil, limited }
		if _, err := NewTokenCache(cfg).Token(t.Context()); err != limited || e.requests.Load() != 0 {
			t.Errorf("Token = %v after %d requests, want the acquire error and none", err, e.requests.Load())
		}
	})
}

func TestTokenCacheRefusal(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name        string
		status      int
		header      map[string]string
		body        string
		wantStatus  int
		wantCode    string
		credentials bool
	}{
		{"invalid_client", 400, nil, `{"error":"invalid_client","error_description":"unknown client"}`, 400, "invalid_client", true},
		{"401 without a code", 401, nil, `nope`, 401, "", true},
		{"403", 403, nil, `{"message":"forbidden"}`, 403, "", true},
		{"2xx with an error", 200, nil, `{"error":"temporarily_unavailable"}`, http.StatusBadGateway, "temporarily_unavailable", false},
		{"503 with Retry-After", 503, map[string]string{"Retry-After": "7"}, `{"error":"temporarily_unavailable"}`, 503, "temporarily_unavailable", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := answeringEndpoint(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			})
			_, err := NewTokenCache(testTokenConfig(e, newTestClock())).Token(t.Context())
			re, ok := errors.AsType[*refusalError](err)
			if !ok {
				t.Fatalf("Token = %v, want a refusal", err)
			}
			r := re.r
			if r.Method != http.MethodPost || r.Path != "/oauth/token" || r.Answer.Status != c.wantStatus ||
				r.Code != c.wantCode || r.Credentials != c.credentials || string(r.Answer.Body) != c.body {
				t.Errorf("refusal %+v", r)
			}
			for k, v := range c.header {
				if r.Answer.Header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, r.Answer.Header.Get(k), v)
				}
			}
			if want := cmp.Or(c.wantCode, "(body)"); r.Message("(body)") != want {
				t.Errorf("Message = %q, want %q", r.Message("(body)"), want)
			}
		})
	}
}

func TestTokenCacheMalformedAnswer(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{"token_type":"bearer"}`, `<html>`} {
		e := answeringEndpoint(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		})
		_, err := NewTokenCache(testTokenConfig(e, newTestClock())).Token(t.Context())
		if !errors.Is(err, errTestMalformed) || err.Error() != "test: malformed token answer of POST /oauth/token: no usable access token" {
			t.Errorf("answer %s: Token = %v, want the malformed error", body, err)
		}
	}
}

// secretTeller is a transport that fails with the request's URL and the
// secret in both its forms in its error, as a careless proxy or dialer might.
type secretTeller struct{}

func (secretTeller) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("cannot send %s with %s (%s): %w", r.URL, testSecret, url.QueryEscape(testSecret), syscall.ECONNREFUSED)
}

func TestTokenCacheKeepsSecretOutOfErrors(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, err error, wantPrefix string) {
		t.Helper()
		if err == nil {
			t.Fatal("Token succeeded")
		}
		msg := err.Error()
		if strings.Contains(msg, testSecret) || strings.Contains(msg, url.QueryEscape(testSecret)) ||
			strings.Contains(msg, "http://") || !strings.HasPrefix(msg, wantPrefix) {
			t.Errorf("error text %q, want it to start %q and hold neither secret nor URL", msg, wantPrefix)
		}
		if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
			t.Errorf("error %q wraps oauth2's RetrieveError, whose text quotes the answer", msg)
		}
	}
	t.Run("transport error quoting the secret", func(t *testing.T) {
		t.Parallel()
		e := newTokenEndpoint(t, &tokenEndpoint{expiresIn: ""})
		cfg := testTokenConfig(e, newTestClock())
		cfg.HTTPClient = &http.Client{Transport: secretTeller{}}
		cfg.Redact = []string{url.QueryEscape(testSecret)}
		_, err := NewTokenCache(cfg).Token(t.Context())
		check(t, err, "test: POST /oauth/token: cannot send [redacted] with [redacted] ([redacted])")
		if _, ok := errors.AsType[*TransportError](err); !ok || !IsTransient(err) {
			t.Errorf("%v: want a transient *TransportError", err)
		}
	})
	t.Run("refusal echoing the request", func(t *testing.T) {
		t.Parallel()
		e := answeringEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
			_, escaped, _ := r.BasicAuth()
			secret, _ := url.QueryUnescape(escaped)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"error":"invalid_request","error_description":%s,"echo":%s}`,
				strconv.Quote(secret), strconv.Quote(escaped))
		})
		_, err := NewTokenCache(testTokenConfig(e, newTestClock())).Token(t.Context())
		check(t, err, "test: POST /oauth/token: 400 invalid_request")
	})
	t.Run("refusal echoing the secret without an error code", func(t *testing.T) {
		t.Parallel()
		e := answeringEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
			_, escaped, _ := r.BasicAuth()
			secret, _ := url.QueryUnescape(escaped)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprintf(w, `{"message":%s}`, strconv.Quote("no client with secret "+secret+" ("+escaped+")"))
		})
		cfg := testTokenConfig(e, newTestClock())
		cfg.Redact = []string{url.QueryEscape(testSecret)}
		// As the clients do: the message is read from the body.
		cfg.RefusalFunc = func(r TokenRefusal) error {
			return fmt.Errorf("test: %s %s: %d %s", r.Method, r.Path, r.Answer.Status, r.Message(ErrorMessage(r.Answer.Body, "message")))
		}
		_, err := NewTokenCache(cfg).Token(t.Context())
		check(t, err, "test: POST /oauth/token: 401 no client with secret [redacted]")
	})
	t.Run("refusal echoing the secret JSON-escaped", func(t *testing.T) {
		t.Parallel()
		// Go's encoder writes & as \u0026, and many write / as \/: the raw
		// answer then never holds the secret, but its decoded text does.
		escaped := strings.NewReplacer("&", `\u0026`, "/", `\/`).Replace(testSecret)
		for _, c := range []struct{ body, want string }{
			{`{"error_description":"client secret ` + escaped + ` is not valid"}`,
				"test: POST /oauth/token: 401 client secret [redacted] is not valid"},
			{`{"error":"` + escaped + `"}`, "test: POST /oauth/token: 401 [redacted]"},
			// A message cut to MessageMaxLen in the middle of the secret
			// keeps no part of it.
			{`{"message":"` + strings.Repeat("x", MessageMaxLen-5) + escaped + `"}`,
				"test: POST /oauth/token: 401 " + strings.Repeat("x", MessageMaxLen-5) + "[reda…"},
		} {
			e := answeringEndpoint(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, c.body)
			})
			cfg := testTokenConfig(e, newTestClock())
			// As the clients do: the message is read from the body.
			cfg.RefusalFunc = func(r TokenRefusal) error {
				msg := ErrorMessage(r.Answer.Body, "error_description", "message", "error")
				return fmt.Errorf("test: %s %s: %d %s", r.Method, r.Path, r.Answer.Status, r.Message(msg))
			}
			_, err := NewTokenCache(cfg).Token(t.Context())
			check(t, err, c.want)
			if err != nil && (err.Error() != c.want || strings.Contains(err.Error(), testSecret[:4])) {
				t.Errorf("body %s: error %q, want %q", c.body, err, c.want)
			}
		}
	})
	t.Run("answer broken off", func(t *testing.T) {
		t.Parallel()
		e := answeringEndpoint(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, `{"access_token":`)
		})
		_, err := NewTokenCache(testTokenConfig(e, newTestClock())).Token(t.Context())
		check(t, err, "test: POST /oauth/token: reading the token answer")
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%v: want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		t.Parallel()
		e := newTokenEndpoint(t, &tokenEndpoint{expiresIn: ""})
		cfg := testTokenConfig(e, newTestClock())
		srv := serve(t, func(http.ResponseWriter, *http.Request) {})
		cfg.Credentials.TokenURL = srv.URL + "/oauth/token"
		srv.Close()
		_, err := NewTokenCache(cfg).Token(t.Context())
		check(t, err, "test: POST /oauth/token: ")
		if !IsTransient(err) {
			t.Errorf("%v: want a transient error", err)
		}
	})
}

func TestNewTokenCacheRequires(t *testing.T) {
	t.Parallel()
	e := newTokenEndpoint(t, &tokenEndpoint{expiresIn: ""})
	for field, clear := range map[string]func(*TokenCacheConfig){
		"RenewAfterFunc": func(c *TokenCacheConfig) { c.RenewAfterFunc = nil },
		"RefusalFunc":    func(c *TokenCacheConfig) { c.RefusalFunc = nil },
		"MalformedFunc":  func(c *TokenCacheConfig) { c.MalformedFunc = nil },
		"Prefix":         func(c *TokenCacheConfig) { c.Prefix = "" },
	} {
		cfg := testTokenConfig(e, newTestClock())
		clear(&cfg)
		func() {
			defer func() {
				if p := recover(); !strings.Contains(fmt.Sprint(p), field+": required") {
					t.Errorf("without %s: panic %v", field, p)
				}
			}()
			NewTokenCache(cfg)
		}()
	}
}

func TestTokenLifeRefusesNaN(t *testing.T) {
	t.Parallel()
	for _, v := range []any{"NaN", "nan", "+Inf", math.NaN()} {
		tok := (&oauth2.Token{AccessToken: "x"}).WithExtra(map[string]any{"expires_in": v})
		if life, known := tokenLife(tok); known {
			t.Errorf("expires_in %v: life %s, known; want unknown", v, life)
		}
	}
}
