package hubmis

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

const (
	// tokenLifeDefault is the life of a token whose answer has no usable
	// expires_in: the docs' text says tokens expire after 15 minutes.
	tokenLifeDefault = 15 * time.Minute
	// tokenRenewAt is the share of its life after which a token is renewed,
	// so that no call goes out with a token that expires on the way.
	tokenRenewAt = 0.8
)

// tokenCache holds the client's access token and fetches a new one when it is
// missing, about to expire, or was refused by the API.
//
// oauth2's own ReuseTokenSource cannot be told to drop a token the API
// refused, and it reads the wall clock; this cache does both: it drops a
// refused token, and judges expiry by [Config.Now] from the expires_in of the
// answer. The token request is rate limited like any other (acquire), since
// HUBmis's per-IP limit counts every request.
type tokenCache struct {
	conf     clientcredentials.Config
	http     *http.Client
	now      func() time.Time
	scale    float64
	path     string // the token URL's path, for errors
	redact   []string
	acquire  func(ctx context.Context, method, path string) (func(), error)
	fetching chan struct{} // a one-slot semaphore: one fetch at a time

	// cur and expiry are guarded by fetching.
	cur    *oauth2.Token
	expiry time.Time
}

func newTokenCache(c *Client, tokenURL *url.URL, clientID, clientSecret string) *tokenCache {
	return &tokenCache{
		conf: clientcredentials.Config{
			ClientID:     clientID,
			ClientSecret: clientSecret,
			TokenURL:     tokenURL.String(),
			// The docs' example posts grant_type, client_id and client_secret
			// form-encoded in the body, not HTTP Basic. Pinning the style
			// also stops oauth2 from probing the other style after a failure,
			// which would spend a second request of the budget.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		http:     c.http,
		now:      c.now,
		scale:    c.scale,
		path:     tokenURL.Path,
		redact:   []string{clientSecret, url.QueryEscape(clientSecret)},
		acquire:  c.acquire,
		fetching: make(chan struct{}, 1),
	}
}

// Token returns the cached token, or fetches one when there is none or it
// has passed tokenRenewAt of its life.
func (tc *tokenCache) Token(ctx context.Context) (*oauth2.Token, error) {
	select {
	case tc.fetching <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-tc.fetching }()
	if tc.cur != nil && tc.now().Before(tc.expiry) {
		return tc.cur, nil
	}
	tc.cur = nil
	done, err := tc.acquire(ctx, http.MethodPost, tc.path)
	if err != nil {
		return nil, err
	}
	start := tc.now()
	tok, err := tc.conf.Token(context.WithValue(ctx, oauth2.HTTPClient, tc.http))
	done()
	if err != nil {
		return nil, tc.classify(err)
	}
	tc.cur = tok
	tc.expiry = start.Add(time.Duration(float64(lifetime(tok)) * tokenRenewAt))
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

// lifetime reads expires_in from the token answer, trusted as it is: the
// docs' samples say 86400 and 900 where the text says 15 minutes. oauth2's
// Token.Expiry is computed from the wall clock and clientcredentials leaves
// ExpiresIn unset, so the raw field is read; a number or a numeric string.
// Without a usable one, tokenLifeDefault.
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
			return tokenLifeDefault
		}
		secs = f
	default:
		return tokenLifeDefault
	}
	if secs <= 0 || secs > float64(365*24*time.Hour/time.Second) {
		return tokenLifeDefault
	}
	return time.Duration(secs * float64(time.Second))
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
		ae := newAPIError(http.MethodPost, tc.path, a, tc.now(), tc.scale)
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
		return &httpx.TransportError{Prefix: "hubmis", Method: http.MethodPost, Path: tc.path, Err: ue.Err,
			Redact: append([]string{ue.URL}, tc.redact...)}
	}
	if strings.HasPrefix(err.Error(), "oauth2: cannot fetch token:") {
		// The answer broke off while its body was read; oauth2 formats that
		// with %v, so the cause is lost, but it is a broken connection.
		return &httpx.TransportError{Prefix: "hubmis", Method: http.MethodPost, Path: tc.path,
			Err: fmt.Errorf("reading the token answer: %w", io.ErrUnexpectedEOF)}
	}
	// oauth2's texts for an answer it could not parse, or one without an
	// access_token: not worth quoting, and asking again gets the same.
	return malformed("token answer of POST "+tc.path, "no usable access token")
}
