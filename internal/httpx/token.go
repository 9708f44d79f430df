package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TokenCacheConfig describes a [TokenCache]. What differs between upstreams
// (how the credentials are sent, when a token is renewed, whether a token
// request waits for a rate limit, what error a refusal becomes) is given
// here; the cache itself is the same for every client.
type TokenCacheConfig struct {
	// Credentials are the client id, secret and token URL. Its AuthStyle
	// should be pinned: with the default, oauth2 probes the other style after
	// a failure, which costs a second request and hides the first answer.
	Credentials clientcredentials.Config
	// HTTPClient sends the token requests. Defaults to http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock by which a token's expiry is judged. Defaults to
	// time.Now.
	Now func() time.Time
	// RenewAfterFunc says how long after its request a token is renewed,
	// given the life its answer's expires_in gave (known false, life 0, when
	// the answer had no usable expires_in). renew false keeps the token until
	// the API refuses it. Required.
	RenewAfterFunc func(life time.Duration, known bool) (after time.Duration, renew bool)
	// AcquireFunc, when set, is called before each token request, for an
	// upstream whose rate limit counts the token's requests too; done is
	// called once the answer is in. Its error is returned as it is, and no
	// request is sent.
	AcquireFunc func(ctx context.Context, method, path string) (done func(), err error)
	// RefusalFunc turns an answer of the token endpoint that carried no token
	// into the client's own error. Required.
	RefusalFunc func(TokenRefusal) error
	// MalformedFunc returns the client's error for a 2xx answer of the token
	// endpoint that holds no usable access token: asking again gets the same.
	// where names the answer: "token answer of POST <path>". Required.
	MalformedFunc func(where string) error
	// Prefix starts the text of a [TransportError] of a token request: the
	// client's name, e.g. "datahub". Required.
	Prefix string
	// Redact holds forms of the client secret, besides the secret itself,
	// that must not reach an error's text, e.g. its query escape for a secret
	// sent in the body.
	Redact []string
}

// TokenRefusal is an answer of the token endpoint that carried no token: a
// status of 400 or above, or a 2xx with an OAuth "error".
type TokenRefusal struct {
	// Method and Path name the token request; Path has no query string.
	Method, Path string
	// Answer is the answer, its body bounded as oauth2 bounds it. A 2xx that
	// carried an "error" has the status 502 Bad Gateway here, and an answer
	// without a header an empty one.
	Answer Answer
	// Code is the answer's OAuth error code, e.g. "invalid_client"; "" when
	// it had none.
	Code string
	// Credentials reports whether the answer refused the client's
	// credentials, whatever status it used for that (RFC 6749 says 400
	// invalid_client; many servers say 401): a client treats that as
	// permanent until its credentials are fixed.
	Credentials bool

	redact []string // the secret and its other forms, for Message
}

// Message returns the message a client's error shows for the refusal: the
// OAuth error code when the answer had one, since that is what the endpoint
// meant, bounded and with emails redacted ([MessageText]); else fromBody, the
// message the client read from the body. Either way the client secret
// becomes "[redacted]": the code is oauth2's decoding of the answer, and
// fromBody may come from a decoding other than the one the cache cleaned.
func (r TokenRefusal) Message(fromBody string) string {
	if r.Code == "" {
		return redactText(fromBody, r.redact)
	}
	return MessageText([]byte(strconv.Quote(redactText(r.Code, r.redact))))
}

// TokenCache holds a client's OAuth 2 client-credentials access token and
// fetches a new one when it is missing, due for renewal, or was refused by
// the API. It is safe for concurrent use, and fetches one token at a time:
// callers that find no usable token wait for the one fetch in progress.
//
// oauth2's own ReuseTokenSource cannot be told to drop a token the API
// refused, and it reads the wall clock; this cache does both: [TokenCache.Drop]
// drops a refused token, and expiry is judged by [TokenCacheConfig.Now] from
// the expires_in of the answer.
type TokenCache struct {
	cfg      TokenCacheConfig
	path     string        // the token URL's path, for errors
	redact   []string      // the secret and its other forms
	fetching chan struct{} // a one-slot semaphore: one fetch at a time

	// cur, renews and renewAt are guarded by fetching.
	cur     *oauth2.Token
	renews  bool // false: cur is used until refused
	renewAt time.Time
}

// NewTokenCache returns a cache for cfg. It does no I/O: the first
// [TokenCache.Token] fetches the token. It panics when a required field of
// cfg is missing or the token URL does not parse, which are mistakes of the
// calling code, not of its configuration.
func NewTokenCache(cfg TokenCacheConfig) *TokenCache {
	switch {
	case cfg.RenewAfterFunc == nil:
		panic("httpx: TokenCacheConfig.RenewAfterFunc: required")
	case cfg.RefusalFunc == nil:
		panic("httpx: TokenCacheConfig.RefusalFunc: required")
	case cfg.MalformedFunc == nil:
		panic("httpx: TokenCacheConfig.MalformedFunc: required")
	case cfg.Prefix == "":
		panic("httpx: TokenCacheConfig.Prefix: required")
	}
	u, err := url.Parse(cfg.Credentials.TokenURL)
	if err != nil {
		panic("httpx: TokenCacheConfig.Credentials.TokenURL: not a URL")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &TokenCache{
		cfg:      cfg,
		path:     u.Path,
		redact:   append([]string{cfg.Credentials.ClientSecret}, cfg.Redact...),
		fetching: make(chan struct{}, 1),
	}
}

// Token returns the cached token, or fetches one when there is none or it is
// due for renewal by [TokenCacheConfig.RenewAfterFunc].
func (tc *TokenCache) Token(ctx context.Context) (*oauth2.Token, error) {
	select {
	case tc.fetching <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-tc.fetching }()
	if tc.cur != nil && (!tc.renews || tc.cfg.Now().Before(tc.renewAt)) {
		return tc.cur, nil
	}
	tc.cur = nil
	done := func() {}
	if tc.cfg.AcquireFunc != nil {
		var err error
		if done, err = tc.cfg.AcquireFunc(ctx, http.MethodPost, tc.path); err != nil {
			return nil, err
		}
	}
	// The life starts when the request goes out, after any wait for the
	// rate limit: the endpoint counts it from its answer, a little later.
	start := tc.cfg.Now()
	tok, err := tc.cfg.Credentials.Token(context.WithValue(ctx, oauth2.HTTPClient, tc.cfg.HTTPClient))
	done()
	if err != nil {
		return nil, tc.classify(err)
	}
	tc.cur = tok
	life, known := tokenLife(tok)
	after, renews := tc.cfg.RenewAfterFunc(life, known)
	tc.renews, tc.renewAt = renews, start.Add(after)
	return tok, nil
}

// TokenURL is where the cache fetches tokens.
func (tc *TokenCache) TokenURL() string { return tc.cfg.Credentials.TokenURL }

// Drop forgets tok if it is still the cached token. A token refused by the
// API is dropped so the next call fetches a new one; comparing first keeps
// concurrent calls that were refused the same token from dropping the new one
// a sibling just fetched.
func (tc *TokenCache) Drop(tok *oauth2.Token) {
	tc.fetching <- struct{}{}
	defer func() { <-tc.fetching }()
	if tc.cur == tok {
		tc.cur = nil
	}
}

// tokenLife reads expires_in from the token answer. oauth2's Token.Expiry is
// computed from the wall clock and clientcredentials leaves ExpiresIn unset,
// so the raw field is read: a number or a numeric string. known is false when
// it is absent, unreadable, not positive or beyond a year.
func tokenLife(tok *oauth2.Token) (life time.Duration, known bool) {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case int64:
		secs = float64(v)
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, false
		}
		secs = f
	default:
		return 0, false
	}
	if math.IsNaN(secs) || secs <= 0 || secs > float64(365*24*time.Hour/time.Second) {
		return 0, false
	}
	return time.Duration(secs * float64(time.Second)), true
}

// classify turns an error of the token fetch into the client's errors: an
// answer of the token endpoint goes to [TokenCacheConfig.RefusalFunc] or
// [TokenCacheConfig.MalformedFunc], a failed connection becomes a
// [*TransportError]. oauth2's own texts are never used: its RetrieveError
// quotes the whole answer, and its other texts are not worth quoting.
func (tc *TokenCache) classify(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller's own context ended before a request went out; one that
		// ended during the request is a *url.Error, a transport error below.
		if _, ok := errors.AsType[*url.Error](err); !ok {
			return err
		}
	}
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		// An endpoint may echo what it was sent: the secret never reaches
		// the client's error through the body.
		r := TokenRefusal{Method: http.MethodPost, Path: tc.path, Code: re.ErrorCode, redact: tc.redact,
			Answer: Answer{Status: http.StatusBadGateway, Header: http.Header{}, Body: RedactSecrets(re.Body, tc.redact)}}
		if re.Response != nil {
			r.Answer.Header = re.Response.Header
			if re.Response.StatusCode >= 400 {
				r.Answer.Status = re.Response.StatusCode
			}
		}
		switch re.ErrorCode {
		case "invalid_client", "unauthorized_client", "invalid_grant", "unsupported_grant_type", "invalid_scope":
			r.Credentials = true
		}
		if r.Answer.Status == http.StatusUnauthorized || r.Answer.Status == http.StatusForbidden {
			r.Credentials = true
		}
		return tc.cfg.RefusalFunc(r)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return &TransportError{Prefix: tc.cfg.Prefix, Method: http.MethodPost, Path: tc.path, Err: ue.Err,
			Redact: append([]string{ue.URL}, tc.redact...)}
	}
	if strings.HasPrefix(err.Error(), "oauth2: cannot fetch token:") {
		// The answer broke off while its body was read; oauth2 formats that
		// with %v, so the cause is lost, but it is a broken connection.
		return &TransportError{Prefix: tc.cfg.Prefix, Method: http.MethodPost, Path: tc.path,
			Err: fmt.Errorf("reading the token answer: %w", io.ErrUnexpectedEOF)}
	}
	// oauth2's texts for an answer it could not parse, or one without an
	// access_token.
	return tc.cfg.MalformedFunc("token answer of " + http.MethodPost + " " + tc.path)
}
