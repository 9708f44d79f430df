package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup starts sim on loopback ports with the compose defaults' credentials.
func setup(t *testing.T) (*sims, credentials) {
	t.Helper()
	o, err := parseFlags([]string{
		"-class-listen", "127.0.0.1:0", "-datahub-listen", "127.0.0.1:0", "-hubmis-listen", "127.0.0.1:0",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"SPRINGFIELD_CLASS_KEY":      "key-springfield",
		"GREENWOOD_CLASS_KEY":        "key-greenwood",
		"SPRINGFIELD_DATAHUB_SECRET": "dh-secret",
		"GREENWOOD_HUBMIS_SECRET":    "hm-secret",
	}
	creds, err := readCredentials(o, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	s, err := start(o, creds, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, creds
}

func do(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func newRequest(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func token(t *testing.T, body []byte) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token answer %s: %v", body, err)
	}
	return tok.AccessToken
}

func TestSimServesEachAPIWithTheConfiguredCredentials(t *testing.T) {
	s, creds := setup(t)

	t.Run("class", func(t *testing.T) {
		u := "http://" + s.classAddr + "/api/v1/classes?ext_class_id=none"
		if code, _ := do(t, newRequest(t, http.MethodGet, u, nil)); code != http.StatusUnauthorized {
			t.Errorf("without a key: %d, want 401", code)
		}
		for _, key := range creds.classKeys {
			req := newRequest(t, http.MethodGet, u, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			if code, body := do(t, req); code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
				t.Errorf("with a configured key: %d %s", code, body)
			}
		}
	})

	t.Run("datahub", func(t *testing.T) {
		req := newRequest(t, http.MethodPost, "http://"+s.dataHubAddr+"/datahub/oauth/token",
			strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(DataHubClientIDDefault, creds.dataHubSecret)
		code, body := do(t, req)
		if code != http.StatusOK {
			t.Fatalf("token: %d %s", code, body)
		}
		req = newRequest(t, http.MethodGet, "http://"+s.dataHubAddr+"/datahub/services/v1/sections", nil)
		req.Header.Set("Authorization", "Bearer "+token(t, body))
		code, body = do(t, req)
		var list struct {
			Paging struct{ Count int } `json:"paging"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &list) != nil || list.Paging.Count != 12 {
			t.Errorf("sections: %d, count %d, want 200 and the 12 seeded", code, list.Paging.Count)
		}
	})

	t.Run("hubmis", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {HUBmisClientIDDefault}, "client_secret": {creds.hubmisSecret}}
		req := newRequest(t, http.MethodPost, "http://"+s.hubmisAddr+"/api/v1/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		code, body := do(t, req)
		if code != http.StatusOK {
			t.Fatalf("token: %d %s", code, body)
		}
		req = newRequest(t, http.MethodGet, "http://"+s.hubmisAddr+"/api/v1/students?page[size]=100", nil)
		req.Header.Set("Authorization", "Bearer "+token(t, body))
		req.Header.Set("Realm", HUBmisRealmDefault)
		code, body = do(t, req)
		var students []json.RawMessage
		if code != http.StatusOK || json.Unmarshal(body, &students) != nil || len(students) != 60 {
			t.Errorf("students: %d, %d of them, want 200 and the 60 seeded", code, len(students))
		}
	})
}

func TestSimRefusesToStartWithoutItsSecrets(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = readCredentials(o, func(k string) (string, bool) {
		return "set", k != "GREENWOOD_CLASS_KEY" && k != "GREENWOOD_HUBMIS_SECRET"
	})
	if err == nil || !strings.Contains(err.Error(), "GREENWOOD_CLASS_KEY, GREENWOOD_HUBMIS_SECRET") {
		t.Errorf("error %v, want both missing variables named", err)
	}
}

func TestSimPrintsVariableNamesNotSecrets(t *testing.T) {
	s, creds := setup(t)
	var out bytes.Buffer
	o, _ := parseFlags(nil, io.Discard)
	s.describe(&out, o)
	for _, secret := range append(creds.classKeys, creds.dataHubSecret, creds.hubmisSecret) {
		if strings.Contains(out.String(), secret) {
			t.Errorf("the start-up text holds a secret:\n%s", out.String())
		}
	}
	for _, name := range []string{"$SPRINGFIELD_CLASS_KEY", "$GREENWOOD_CLASS_KEY", "$SPRINGFIELD_DATAHUB_SECRET", "$GREENWOOD_HUBMIS_SECRET", s.hubmisAddr} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("the start-up text does not name %s:\n%s", name, out.String())
		}
	}
}
