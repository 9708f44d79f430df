package datahub

import (
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/rollcall/rollcall/internal/httpx"
)

// newTokenCache is the client's token cache with DataHub's policies.
func newTokenCache(tokenURL *url.URL, clientID, clientSecret string, hc *http.Client, now func() time.Time) *httpx.TokenCache {
	conf := clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		TokenURL:     tokenURL.String(),
		// The docs ask for HTTP Basic. Pinning the style also stops oauth2
		// from probing the other style (credentials in the body) after a
		// failure.
		AuthStyle: oauth2.AuthStyleInHeader,
	}
	return httpx.NewTokenCache(httpx.TokenCacheConfig{
		Credentials:    conf,
		HTTPClient:     hc,
		Now:            now,
		RenewAfterFunc: renewAfter,
		RefusalFunc: func(r httpx.TokenRefusal) error {
			ae := newAPIError(r.Method, r.Path, r.Answer, now())
			ae.Message, ae.credentials = r.Message(ae.Message), r.Credentials
			return ae
		},
		MalformedFunc: func(where string) error { return malformed(where, "no usable access token") },
		Prefix:        "datahub",
	})
}

// renewAfter renews a token a tenth of its life before it expires, at most a
// minute, so that a call never goes out with a token that expires on the
// way. A token whose answer gave no expiry (or one below a nanosecond) is
// kept until the API refuses it.
func renewAfter(life time.Duration, known bool) (time.Duration, bool) {
	if !known || life <= 0 {
		return 0, false
	}
	return life - min(life/10, time.Minute), true
}
