package httpx

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// Answer is an HTTP answer read in full.
type Answer struct {
	// Status is the HTTP status code.
	Status int
	// Header is the answer's header.
	Header http.Header
	// Body is the whole body of a 2xx answer, or the first [ErrorBodyLimit]
	// bytes of any other.
	Body []byte
}

// OK reports whether the answer's status is 2xx.
func (a Answer) OK() bool { return a.Status >= 200 && a.Status <= 299 }

// BodyTooLargeError is a 2xx answer whose body is longer than the limit
// given to [Send]. The upstream has acted, and asking again gets the same
// body: clients treat it as a payload they cannot decode, not as a transient
// fault.
type BodyTooLargeError struct {
	// Limit is the limit the body exceeded, in bytes.
	Limit int64
}

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("body exceeds %d bytes", e.Limit)
}

// Send sends req with hc and reads its answer: a 2xx body in full, up to
// limit bytes, and of any other answer the first [ErrorBodyLimit] bytes. A
// longer 2xx body is a [*BodyTooLargeError], returned with the answer's
// status and header but no body. An error answer is an Answer, not an error:
// what its status means is the client's to say.
//
// A failure to get an answer, or a 2xx body that breaks off, is returned as
// net/http gave it; the caller wraps it, with [NewTransportError], so that no
// URL reaches its text.
func Send(hc *http.Client, req *http.Request, limit int64) (Answer, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	a := Answer{Status: resp.StatusCode, Header: resp.Header}
	if !a.OK() {
		// A read error here still leaves the status, which is what matters.
		a.Body, _ = io.ReadAll(io.LimitReader(resp.Body, ErrorBodyLimit))
		// Drain a little so that the connection can be reused, but never a
		// whole oversized body.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		return a, nil
	}
	if a.Body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1)); err != nil {
		// The answer broke off: the connection failed, so this is as
		// retryable as any other connection failure.
		return Answer{}, err
	}
	if int64(len(a.Body)) > limit {
		return Answer{Status: a.Status, Header: a.Header}, &BodyTooLargeError{Limit: limit}
	}
	return a, nil
}

// Tokens is a cache of OAuth access tokens: Token returns the cached token,
// or fetches one when there is none or it is about to expire, and Drop
// forgets tok if it is still the cached one.
type Tokens interface {
	Token(ctx context.Context) (*oauth2.Token, error)
	Drop(tok *oauth2.Token)
}

// SendWithToken calls send with the cached token of tokens. A 401 answer
// drops that token and calls send once more with a freshly fetched one: a
// token can be revoked, or expire earlier than its answer said. The second
// answer is returned as it is; a 401 to it means the credentials do not work,
// which the caller turns into its own error.
//
// The access token becomes "[redacted]" in the body of an answer that is not
// OK: an API refusing a token may quote it, and the caller builds its error's
// text from that body.
func SendWithToken(ctx context.Context, tokens Tokens, send func(context.Context, *oauth2.Token) (Answer, error)) (Answer, error) {
	tok, err := tokens.Token(ctx)
	if err != nil {
		return Answer{}, err
	}
	a, err := send(ctx, tok)
	if err != nil || a.Status != http.StatusUnauthorized {
		return withoutToken(a, tok), err
	}
	tokens.Drop(tok)
	if tok, err = tokens.Token(ctx); err != nil {
		return Answer{}, err
	}
	a, err = send(ctx, tok)
	return withoutToken(a, tok), err
}

func withoutToken(a Answer, tok *oauth2.Token) Answer {
	if !a.OK() && len(a.Body) > 0 {
		a.Body = RedactSecrets(a.Body, []string{tok.AccessToken})
	}
	return a
}
