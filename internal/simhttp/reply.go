package simhttp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Reply is an answer before it is written. Its body is encoded when it is built, under
// the simulator's lock, so it shares nothing with the simulator's store.
type Reply struct {
	// Status is the HTTP status.
	Status int
	// Body is a JSON document; it is written with a trailing newline.
	Body []byte
	// Header holds headers besides Content-Type, which is always application/json.
	Header http.Header
}

// JSON returns an answer of status with v encoded as its body. It panics if v cannot be
// encoded: a simulator builds bodies from plain values, so that is a simulator bug.
func JSON(status int, v any) Reply {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("simhttp: encode reply: %v", err))
	}
	return Reply{Status: status, Body: b}
}

// SetHeader sets the header k of the answer to v.
func (r *Reply) SetHeader(k, v string) {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.Header.Set(k, v)
}

// Write writes the answer to w.
func (r Reply) Write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	for k, vs := range r.Header {
		h[k] = vs
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write(append(r.Body, '\n'))
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header (the scheme
// in any case, the token trimmed), or "" when r carries none.
func BearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
