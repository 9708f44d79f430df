package hubmis

import (
	"net/url"
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

// newTokenCache returns c's token cache. The token request is rate limited
// like any other (c.acquire), since HUBmis's per-IP limit counts every
// request.
func newTokenCache(c *Client, tokenURL *url.URL, clientID, clientSecret string) *httpx.TokenCache {
	conf := clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		TokenURL:     tokenURL.String(),
		// The docs' example posts grant_type, client_id and client_secret
		// form-encoded in the body, not HTTP Basic. Pinning the style
		// also stops oauth2 from probing the other style after a failure,
		// which would spend a second request of the budget.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	return httpx.NewTokenCache(httpx.TokenCacheConfig{
		Credentials:    conf,
		HTTPClient:     c.http,
		Now:            c.now,
		RenewAfterFunc: renewAfter,
		AcquireFunc:    c.acquire,
		RefusalFunc: func(r httpx.TokenRefusal) error {
			ae := newAPIError(r.Method, r.Path, r.Answer, c.now(), c.scale)
			ae.Message, ae.credentials = r.Message(ae.Message), r.Credentials
			return ae
		},
		MalformedFunc: func(where string) error { return malformed(where, "no usable access token") },
		Prefix:        "hubmis",
		// The secret travels form-encoded in the body.
		Redact: []string{url.QueryEscape(clientSecret)},
	})
}

// renewAfter renews a token after tokenRenewAt of its life. The life in an
// answer is trusted as it is: the docs' samples say 86400 and 900 where the
// text says 15 minutes. Without a usable one, tokenLifeDefault.
func renewAfter(life time.Duration, known bool) (time.Duration, bool) {
	if !known {
		life = tokenLifeDefault
	}
	return time.Duration(float64(life) * tokenRenewAt), true
}
