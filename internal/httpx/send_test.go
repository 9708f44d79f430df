package httpx

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// serve starts a test server that answers every request with h.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/p?q=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSend(t *testing.T) {
	t.Parallel()
	t.Run("success", func(t *testing.T) {
		t.Parallel()
		srv := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Test", "yes")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"ok":true}`)
		})
		a, err := Send(srv.Client(), get(t, srv), 1<<10)
		if err != nil || !a.OK() || a.Status != http.StatusCreated || string(a.Body) != `{"ok":true}` || a.Header.Get("X-Test") != "yes" {
			t.Fatalf("Send = %+v, %v", a, err)
		}
	})
	t.Run("error answer is an answer, its body bounded", func(t *testing.T) {
		t.Parallel()
		srv := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, strings.Repeat("x", ErrorBodyLimit+10<<10))
		})
		a, err := Send(srv.Client(), get(t, srv), 1<<10)
		if err != nil || a.OK() || a.Status != http.StatusBadGateway || len(a.Body) != ErrorBodyLimit {
			t.Fatalf("Send = status %d, %d bytes, %v", a.Status, len(a.Body), err)
		}
	})
	t.Run("success body too large", func(t *testing.T) {
		t.Parallel()
		srv := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("x", 101))
		})
		a, err := Send(srv.Client(), get(t, srv), 100)
		tooLarge, ok := errors.AsType[*BodyTooLargeError](err)
		if !ok || tooLarge.Limit != 100 || err.Error() != "body exceeds 100 bytes" {
			t.Fatalf("err = %v", err)
		}
		if a.Status != http.StatusOK || a.Body != nil {
			t.Errorf("answer = %+v, want the status without a body", a)
		}
		if IsTransient(err) {
			t.Error("a body too large is transient")
		}
	})
	t.Run("body at the limit", func(t *testing.T) {
		t.Parallel()
		srv := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("x", 100))
		})
		if a, err := Send(srv.Client(), get(t, srv), 100); err != nil || len(a.Body) != 100 {
			t.Fatalf("Send = %d bytes, %v", len(a.Body), err)
		}
	})
	t.Run("body breaks off", func(t *testing.T) {
		t.Parallel()
		srv := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "short")
		})
		_, err := Send(srv.Client(), get(t, srv), 1<<10)
		if !errors.Is(err, io.ErrUnexpectedEOF) || !IsTransient(err) {
			t.Fatalf("err = %v, want a transient unexpected EOF", err)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/p?email=a%40b.c", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Send(http.DefaultClient, req, 1<<10)
		if err == nil || !IsTransient(err) {
			t.Fatalf("err = %v, want a transient error", err)
		}
		wrapped := NewTransportError("test", req.Method, req.URL.Path, req.URL, err)
		if strings.Contains(wrapped.Error(), "a%40b.c") || strings.Contains(wrapped.Error(), "a@b.c") {
			t.Errorf("the query survived: %v", wrapped)
		}
	})
}

// tokenStub hands out numbered tokens and records what was dropped.
type tokenStub struct {
	issued  int
	dropped []string
	err     error
}

func (s *tokenStub) Token(context.Context) (*oauth2.Token, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.issued++
	return &oauth2.Token{AccessToken: "t" + strconv.Itoa(s.issued)}, nil
}

func (s *tokenStub) Drop(tok *oauth2.Token) { s.dropped = append(s.dropped, tok.AccessToken) }

func TestSendWithToken(t *testing.T) {
	t.Parallel()
	// answers sends the given statuses in turn, recording the tokens used.
	answers := func(used *[]string, statuses ...int) func(context.Context, *oauth2.Token) (Answer, error) {
		return func(_ context.Context, tok *oauth2.Token) (Answer, error) {
			*used = append(*used, tok.AccessToken)
			status := statuses[0]
			statuses = statuses[1:]
			return Answer{Status: status}, nil
		}
	}
	for _, tc := range []struct {
		name     string
		statuses []int
		want     int
		used     string
		dropped  string
	}{
		{"accepted", []int{200}, 200, "t1", ""},
		{"other refusal kept", []int{403}, 403, "t1", ""},
		{"refused once", []int{401, 200}, 200, "t1 t2", "t1"},
		{"refused twice", []int{401, 401}, 401, "t1 t2", "t1"},
	} {
		tokens := &tokenStub{}
		var used []string
		a, err := SendWithToken(t.Context(), tokens, answers(&used, tc.statuses...))
		if err != nil || a.Status != tc.want || strings.Join(used, " ") != tc.used || strings.Join(tokens.dropped, " ") != tc.dropped {
			t.Errorf("%s: status %d, %v; used %v, dropped %v", tc.name, a.Status, err, used, tokens.dropped)
		}
	}

	t.Run("token error", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("token endpoint down")
		var used []string
		if _, err := SendWithToken(t.Context(), &tokenStub{err: boom}, answers(&used, 200)); !errors.Is(err, boom) || len(used) > 0 {
			t.Errorf("err = %v, used %v", err, used)
		}
	})
	t.Run("token quoted in a refusal", func(t *testing.T) {
		t.Parallel()
		tokens := &tokenStub{}
		for _, status := range []int{http.StatusForbidden, http.StatusUnauthorized} {
			a, err := SendWithToken(t.Context(), tokens, func(_ context.Context, tok *oauth2.Token) (Answer, error) {
				// Escaped as Go's encoder would, and plain.
				return Answer{Status: status, Body: []byte(`{"error":"bearer ` + tok.AccessToken + `/\u0026 refused","token":"` + tok.AccessToken + `"}`)}, nil
			})
			if err != nil || strings.Contains(string(a.Body), "t1") || strings.Contains(string(a.Body), "t2") || strings.Contains(string(a.Body), "t3") || !strings.Contains(string(a.Body), "[redacted]") {
				t.Errorf("%d: body %s, %v", status, a.Body, err)
			}
		}
	})
	t.Run("send error", func(t *testing.T) {
		t.Parallel()
		tokens := &tokenStub{}
		_, err := SendWithToken(t.Context(), tokens, func(context.Context, *oauth2.Token) (Answer, error) {
			return Answer{}, io.ErrUnexpectedEOF
		})
		if !errors.Is(err, io.ErrUnexpectedEOF) || tokens.issued != 1 || len(tokens.dropped) > 0 {
			t.Errorf("err = %v, issued %d, dropped %v", err, tokens.issued, tokens.dropped)
		}
	})
}
