package simhttp

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestReplyWrite(t *testing.T) {
	t.Parallel()
	rep := JSON(http.StatusCreated, map[string]any{"id": 1})
	rep.SetHeader("allow", "GET")
	rec := httptest.NewRecorder()
	rep.Write(rec)
	if rec.Code != http.StatusCreated || rec.Body.String() != `{"id":1}`+"\n" {
		t.Errorf("wrote %d %q", rec.Code, rec.Body)
	}
	if h := rec.Header(); h.Get("Content-Type") != "application/json" || h.Get("Allow") != "GET" {
		t.Errorf("headers = %v", h)
	}
}

func TestJSONPanicsOnAnUnencodableBody(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("JSON encoded a channel")
		}
	}()
	JSON(http.StatusOK, make(chan int))
}
