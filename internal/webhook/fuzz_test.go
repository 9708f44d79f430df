package webhook_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/internal/webhook"
)

// FuzzVerify sends any signature header and body to the handler: a poll is
// triggered only when the header is the body's signature under the tenant's
// secret (its hex in any case) and the body is a JSON object, and the answer is always
// one of the documented statuses.
func FuzzVerify(f *testing.F) {
	secret := []byte("s3cret")
	body := []byte(`{"event":"students.updated","id":"42"}`)
	f.Add(webhook.Sign(secret, body), body)
	f.Add(webhook.Sign(secret, []byte(`[]`)), []byte(`[]`))
	f.Add(webhook.Sign([]byte("other"), body), body)
	f.Add("sha256=", body)
	f.Add("sha256=zz", []byte(`{}`))
	f.Add("SHA256="+webhook.Sign(secret, body)[7:], body)
	f.Add("", []byte(nil))
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		triggered := 0
		h := webhook.NewHandler([]webhook.Tenant{{ID: "alpha", Secret: secret, Trigger: func() { triggered++ }}},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		req := httptest.NewRequest(http.MethodPost, "/webhooks/datahub/alpha", bytes.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		// Hex digits may come in either case: the MAC is what is compared.
		want := webhook.Sign(secret, body)
		signed := strings.HasPrefix(sig, "sha256=") && strings.EqualFold(sig, want)
		switch rec.Code {
		case http.StatusAccepted:
			if !signed || triggered != 1 {
				t.Fatalf("accepted (triggered %d) a notification signed %q", triggered, sig)
			}
		case http.StatusUnauthorized, http.StatusBadRequest:
			if triggered != 0 {
				t.Fatalf("answered %d but triggered a poll", rec.Code)
			}
			if rec.Code == http.StatusUnauthorized && signed {
				t.Fatalf("refused a correctly signed notification")
			}
		default:
			t.Fatalf("answered %d", rec.Code)
		}
		if bytes.Contains(rec.Body.Bytes(), secret) {
			t.Fatal("the answer holds the secret")
		}
	})
}
