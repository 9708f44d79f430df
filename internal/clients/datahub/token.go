package datahub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/rollcall/rollcall/internal/httpx"
)

// tokenCache holds the client's access token and fetches a new one when it is
// missing, about to expire, or was refused by the API.
//
// oauth2's own ReuseTokenSource cannot be told to drop a token the API
// refused, and it reads the wall clock; this cache does both: it drops a
// refused token, and judges expiry by [Config.Now] from the expires_in of the
// answer.
type tokenCache struct {
	conf     clientcredentials.Config
	http     *http.Client
	now      func() time.Time
	path     string // the token URL's path, for errors
	redact   []string
	fetching chan struct{} // a one-slot semaphore: one fetch at a time

	// cur and expiry are guarded by fetching.
	cur    *oauth2.Token
	expiry time.Time // zero: no expiry known, used until refused
}

func newTokenCache(tokenURL *url.URL, clientID, clientSecret string, hc *http.Client, now func() time.Time) *tokenCache {
	return &tokenCache{
		conf: clientcredentials.Config{
			ClientID:     clientID,
			ClientSecret: clientSecret,
			TokenURL:     tokenURL.String(),
			// The docs ask for HTTP Basic. Pinning the style also stops oauth2
			// from probing the other style (credentials in the body) after a
			// failure.
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		http:     hc,
		now:      now,
		path:     tokenURL.Path,
		redact:   []string{clientSecret},
		fetching: make(chan struct{}, 1),
	}
}

// Token returns the cached token, or fetches one when there is none or it
// expires within its renewal margin.
func (tc *tokenCache) Token(ctx context.Context) (*oauth2.Token, error) {
	select {
	case tc.fetching <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-tc.fetching }()
	if tc.cur != nil && (tc.expiry.IsZero() || tc.now().Before(tc.expiry)) {
		return tc.cur, nil
	}
	tc.cur = nil
	start := tc.now()
	tok, err := tc.conf.Token(context.WithValue(ctx, oauth2.HTTPClient, tc.http))
	if err != nil {
		return nil, tc.classify(err)
	}
	tc.cur = tok
	tc.expiry = time.Time{}
	if life := lifetime(tok); life > 0 {
		tc.expiry = start.Add(life - renewalMargin(life))
	}
	return tok, nil
}

// Drop forgets tok if it is still the cached token. A token refused by the
// API is dropped so the next call fetches a new one; comparing first keeps
// concurrent calls that were refused the same token from dropping the new one
// a sibling just fetched.
func (tc *tokenCache) Drop(tok *oauth2.Token) {
	tc.fetching <- struct{}{}
	defer func() { <-tc.fetching }()
	if tc.cur == tok {
		tc.cur = nil
	}
}

// lifetime reads expires_in from the token answer. oauth2's Token.Expiry is
// computed from the wall clock and clientcredentials leaves ExpiresIn unset,
// so the raw field is read; a number or a numeric string. 0 when absent.
func lifetime(tok *oauth2.Token) time.Duration {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case int64:
		secs = float64(v)
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0
		}
		secs = f
	default:
		if !tok.Expiry.IsZero() {
			return time.Until(tok.Expiry)
		}
		return 0
	}
	if secs <= 0 || secs > float64(365*24*time.Hour/time.Second) {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// renewalMargin is how long before its expiry a token is renewed: a tenth of
// its life, at most a minute, so that a call never goes out with a token that
// expires on the way.
func renewalMargin(life time.Duration) time.Duration {
	return min(life/10, time.Minute)
}

// classify turns an error of the token fetch into this package's errors: an
// answer of the token endpoint becomes an *APIError (a refusal of the
// credentials matches ErrUnauthorized), a failed connection a
// *httpx.TransportError. oauth2's own texts are never used: its RetrieveError
// quotes the whole answer.
func (tc *tokenCache) classify(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if _, ok := errors.AsType[*url.Error](err); !ok {
			return err
		}
	}
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		// A 2xx that carried an "error" counts as a bad gateway.
		a := httpx.Answer{Status: http.StatusBadGateway, Header: http.Header{}, Body: re.Body}
		if re.Response != nil {
			a.Header = re.Response.Header
			if re.Response.StatusCode >= 400 {
				a.Status = re.Response.StatusCode
			}
		}
		ae := newAPIError(http.MethodPost, tc.path, a, tc.now())
		if re.ErrorCode != "" {
			ae.Message = httpx.MessageText([]byte(strconv.Quote(re.ErrorCode)))
		}
		switch re.ErrorCode {
		case "invalid_client", "unauthorized_client", "invalid_grant", "unsupported_grant_type", "invalid_scope":
			ae.credentials = true
		}
		if a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden {
			ae.credentials = true
		}
		return ae
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return &httpx.TransportError{Prefix: "datahub", Method: http.MethodPost, Path: tc.path, Err: ue.Err,
			Redact: append([]string{ue.URL}, tc.redact...)}
	}
	if strings.HasPrefix(err.Error(), "oauth2: cannot fetch token:") {
		// The answer broke off while its body was read; oauth2 formats that
		// with %v, so the cause is lost, but it is a broken connection.
		return &httpx.TransportError{Prefix: "datahub", Method: http.MethodPost, Path: tc.path,
			Err: fmt.Errorf("reading the token answer: %w", io.ErrUnexpectedEOF)}
	}
	// oauth2's texts for an answer it could not parse, or one without an
	// access_token: not worth quoting, and asking again gets the same.
	return malformed("token answer of POST "+tc.path, "no usable access token")
}
