package simhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var httpClient = &http.Client{Timeout: 5 * time.Second}

// delayed is a server whose handler waits for latency, counts what it served or
// abandoned, and answers the body it read.
type delayed struct {
	srv     *Server
	latency time.Duration
	counts  Counter
}

func startDelayed(t *testing.T, latency time.Duration, logger *slog.Logger) *delayed {
	t.Helper()
	d := &delayed{latency: latency}
	d.srv = Start(Config{
		Name:        "simhttptest",
		Handler:     http.HandlerFunc(d.serve),
		Unavailable: JSON(http.StatusServiceUnavailable, map[string]string{"error": "closing"}),
		Logger:      logger,
	})
	t.Cleanup(d.srv.Close)
	return d
}

func (d *delayed) serve(w http.ResponseWriter, r *http.Request) {
	endpoint := r.Method + " " + r.URL.Path
	if !d.srv.Delay(w, r, d.latency, 16) {
		d.counts.Abandon(endpoint)
		panic(http.ErrAbortHandler)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16))
	rep := JSON(http.StatusOK, map[string]string{"body": string(body)})
	if err != nil {
		rep = JSON(http.StatusBadRequest, map[string]string{"error": "body too large"})
	}
	d.counts.Count(endpoint, rep.Status, false)
	d.srv.Answer(w, r, slog.String("path", r.URL.Path), rep, false)
}

func (d *delayed) inflight() int {
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	return d.srv.inflight
}

func post(t *testing.T, ctx context.Context, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return httpClient.Do(req)
}

func TestDelayWaitsThenServesTheBody(t *testing.T) {
	t.Parallel()
	d := startDelayed(t, 50*time.Millisecond, nil)

	start := time.Now()
	resp, err := post(t, t.Context(), d.srv.URL()+"/x?q=1", "hello")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if since := time.Since(start); since < 50*time.Millisecond {
		t.Errorf("answered after %v, want at least the latency", since)
	}
	if resp.StatusCode != http.StatusOK || string(b) != `{"body":"hello"}`+"\n" {
		t.Errorf("answer %d %q, want 200 with the body read before the wait", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestDelayKeepsTheBodyReadError(t *testing.T) {
	t.Parallel()
	d := startDelayed(t, time.Millisecond, nil)
	resp, err := post(t, t.Context(), d.srv.URL()+"/x", strings.Repeat("x", 17))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status = %d, want 400 for a body over the limit", resp.StatusCode)
	}
}

func TestDelayEndsWhenTheCallerGivesUp(t *testing.T) {
	t.Parallel()
	d := startDelayed(t, time.Minute, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if resp, err := post(t, ctx, d.srv.URL()+"/x", "abc"); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("request with a short deadline: %v, want deadline exceeded", err)
	}
	// The handler gives up soon after the caller: Close does not wait the minute.
	d.srv.Close()
	c := d.counts.Counts()
	if c.Requests != 1 || c.ByEndpoint["POST /x"] != 1 || len(c.ByStatus) != 0 {
		t.Errorf("counts = %+v, want one abandoned request without a status", c)
	}
}

func TestCloseEndsWaitingRequests(t *testing.T) {
	t.Parallel()
	d := startDelayed(t, time.Minute, nil)
	errc := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(t.Context(), "GET", d.srv.URL()+"/x", nil)
		if err != nil {
			errc <- err
			return
		}
		resp, err := http.DefaultClient.Do(req) // no client timeout: only Close can end it
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		errc <- err
	}()
	for deadline := time.Now().Add(2 * time.Second); d.inflight() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the server")
		}
	}

	closed := make(chan struct{})
	go func() {
		d.srv.Close()
		d.srv.Close() // a second Close is harmless
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end a request waiting on latency")
	}
	if err := <-errc; err == nil || strings.HasPrefix(err.Error(), "answered") {
		t.Errorf("request cut by Close: %v, want a connection error", err)
	}
	if n := d.inflight(); n != 0 {
		t.Errorf("%d requests in flight after Close", n)
	}
}

func TestRequestsArrivingWhileClosingAreUnavailable(t *testing.T) {
	t.Parallel()
	d := startDelayed(t, 0, nil)
	d.srv.Close()
	// The listener is gone; a request that had got through it meets the closed server.
	rec := httptest.NewRecorder()
	d.srv.serve(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != `{"error":"closing"}`+"\n" {
		t.Errorf("answer %d %q, want the Unavailable reply", rec.Code, rec.Body)
	}
	if c := d.counts.Counts(); c.Requests != 0 {
		t.Errorf("the handler ran: %+v", c)
	}
}

func TestAnswerLogsNoQueryOrBody(t *testing.T) {
	t.Parallel()
	// Read only after Close, which waits for the handlers that write to it.
	var buf bytes.Buffer
	d := startDelayed(t, 0, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	resp, err := post(t, t.Context(), d.srv.URL()+"/x?email=anne@demo.com", "secret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	d.srv.Close()

	out := buf.String()
	for _, want := range []string{"msg=\"simhttptest request\"", "method=POST", "path=/x", "status=200", "fault=false"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{"anne", "email", "secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
}
