// Package webhook turns a signed DataHub notification into an immediate poll
// of that tenant, so a change reaches Class without waiting for the next
// poll interval. The notification's content is not used: the poll reads the
// event feed as it always does, so a lost or forged-but-refused notification
// costs nothing but latency.
package webhook

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// SignatureHeader carries the notification's signature:
// "sha256=<hex of HMAC-SHA256(body, secret)>".
const SignatureHeader = "X-DataHub-Signature"

const signaturePrefix = "sha256="

// BodyMax is the largest notification body accepted, in bytes.
const BodyMax = 1 << 20

// Path is the route of a tenant's notifications; {tenant} is its id.
const Path = "/webhooks/datahub/{tenant}"

// Sign returns the [SignatureHeader] value DataHub sends with body.
func Sign(secret, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, body))
}

func mac(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// Tenant is a tenant whose notifications are accepted.
type Tenant struct {
	// ID is the tenant id, the {tenant} of [Path].
	ID string
	// Secret is shared with DataHub to sign notifications. A tenant without
	// one is not served.
	Secret []byte
	// Trigger asks for an immediate poll. It must not block, and should
	// coalesce bursts: [Coalescer.Trigger] does both. A tenant without one
	// is not served.
	Trigger func()
}

// Handler serves POST [Path]: it checks the notification's signature with
// the tenant's secret and, when it holds, triggers a poll of the tenant.
//
// Answers: 202 accepted (the poll is triggered), 404 unknown tenant or one
// without a secret, 405 not a POST, 401 signature missing or wrong, 413
// body over [BodyMax], 400 body not a JSON object. Bodies and secrets are
// never logged.
type Handler struct {
	mux     *http.ServeMux
	tenants map[string]Tenant
	log     *slog.Logger
}

// NewHandler returns a handler for tenants. logger defaults to
// slog.Default().
func NewHandler(tenants []Tenant, logger *slog.Logger) *Handler {
	h := &Handler{tenants: map[string]Tenant{}, log: cmp.Or(logger, slog.Default())}
	for _, t := range tenants {
		if len(t.Secret) == 0 || t.Trigger == nil {
			continue
		}
		t.Secret = bytes.Clone(t.Secret)
		h.tenants[t.ID] = t
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc(Path, h.notify)
	return h
}

// ServeHTTP routes the request; paths other than [Path] get 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) notify(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	t, ok := h.tenants[id]
	if !ok {
		h.answer(w, id, http.StatusNotFound, "unknown tenant")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.answer(w, id, http.StatusMethodNotAllowed, "not a POST")
		return
	}
	// A request without a well-formed signature is refused before its
	// body is read.
	sig, ok := parseSignature(r.Header.Get(SignatureHeader))
	if !ok {
		h.answer(w, id, http.StatusUnauthorized, "signature missing or malformed")
		return
	}
	if r.ContentLength > BodyMax {
		h.answer(w, id, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, BodyMax))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			h.answer(w, id, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		h.answer(w, id, http.StatusBadRequest, "body unreadable")
		return
	}
	if !hmac.Equal(sig, mac(t.Secret, body)) {
		h.answer(w, id, http.StatusUnauthorized, "signature wrong")
		return
	}
	// Only a signed body is parsed, and only to refuse what DataHub would
	// never send.
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		h.answer(w, id, http.StatusBadRequest, "body not a JSON object")
		return
	}
	t.Trigger()
	h.answer(w, id, http.StatusAccepted, "poll triggered")
}

// parseSignature returns the MAC of a [SignatureHeader] value.
func parseSignature(v string) ([]byte, bool) {
	hexMAC, ok := strings.CutPrefix(v, signaturePrefix)
	if !ok {
		return nil, false
	}
	sig, err := hex.DecodeString(hexMAC)
	if err != nil || len(sig) != sha256.Size {
		return nil, false
	}
	return sig, true
}

// tenantLogMax bounds a path's tenant id in the log: an unknown one is
// whatever the caller sent.
const tenantLogMax = 64

func (h *Handler) answer(w http.ResponseWriter, tenant string, status int, outcome string) {
	if len(tenant) > tenantLogMax {
		tenant = tenant[:tenantLogMax]
	}
	h.log.Debug("DataHub webhook", slog.String("tenant", tenant), slog.Int("status", status), slog.String("outcome", outcome))
	if status == http.StatusAccepted {
		w.WriteHeader(status)
		return
	}
	http.Error(w, http.StatusText(status), status)
}

// Coalescer turns any number of triggers into one pending poll: its channel
// holds at most one signal, so the triggers between two receives yield one
// receive.
type Coalescer struct {
	c chan struct{}
}

// NewCoalescer returns a coalescer with nothing pending.
func NewCoalescer() *Coalescer {
	return &Coalescer{c: make(chan struct{}, 1)}
}

// Trigger marks a poll as pending. It never blocks.
func (c *Coalescer) Trigger() {
	select {
	case c.c <- struct{}{}:
	default:
		// A poll is pending already; it will see this change too.
	}
}

// C delivers a signal when a poll is pending.
func (c *Coalescer) C() <-chan struct{} {
	return c.c
}
