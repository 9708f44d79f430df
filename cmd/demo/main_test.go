package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/clients/class/classtest"
	"github.com/rollcall/rollcall/internal/config"
	"github.com/rollcall/rollcall/internal/simcheck"
)

// TestShortDemoEndsWithClassEqualToTheSources plays the whole script on a
// small school and checks the exit status, every stage, the summary, and,
// after the summary, Class against both sources once more, with what the
// script left behind: the refused teacher in the DLQ and no duplicate side
// effect in Class.
func TestShortDemoEndsWithClassEqualToTheSources(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	o, err := parseFlags([]string{"-small", "-data", dir, "-stage-timeout", "45s"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var checked bool
	o.atEnd = func(s *site) {
		checked = true
		if diff := s.differences(); len(diff) > 0 {
			t.Errorf("Class differs from the sources after the summary: %s", strings.Join(diff, "\n"))
		}
		// Counted independently of the demo's own comparison: each tenant's
		// classes are exactly the source's.
		st := s.cls.State()
		if got, want := simcheck.Count(st, dataHubPrefix).Classes, len(s.hub.Sections()); got != want {
			t.Errorf("springfield: %d classes in Class, %d sections at DataHub", got, want)
		}
		if got, want := simcheck.Count(st, hubmisPrefix).Classes, len(s.mis.Sets()); got != want {
			t.Errorf("greenwood: %d classes in Class, %d sets at HUBmis", got, want)
		}
		if d := s.cls.Duplicates(); len(d) > 0 {
			t.Errorf("duplicate side effects in Class: %+v", d)
		}
		dead, err := s.env.DLQList(context.Background(), dataHubTenant, "")
		if err != nil || len(dead) == 0 {
			t.Errorf("no dead letter for the refused teacher (%v)", err)
		}
		checkDifferencesHoldNoPersonalData(t, s)
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, res := execute(ctx, o, &out, &errb)
	t.Logf("output:\n%s%s", out.String(), errb.String())
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	if !checked {
		t.Fatal("the demo ended before its summary")
	}
	if len(res.differences) > 0 {
		t.Errorf("differences: %v", res.differences)
	}
	if len(res.stages) != 8 {
		t.Errorf("%d stages ran, want 8", len(res.stages))
	}
	for _, want := range []string{"HUBmis runs 100× faster than real time", "Class equals both sources: yes", "a trace ", "event→applied", filepath.Join(dir, logFileName)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The data directory keeps what -data promises, and the configuration
	// written for provisionctl loads as the binaries load it.
	for _, name := range []string{logFileName, configName, storeDirName} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("data directory: %v", err)
		}
	}
	if _, err := config.Load(filepath.Join(dir, configName)); err != nil {
		t.Errorf("provisionctl's configuration: %v", err)
	}
}

func TestFlags(t *testing.T) {
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"-help"}, &bytes.Buffer{}, &errb); code != 0 {
		t.Errorf("-help: exit %d", code)
	}
	if !strings.Contains(errb.String(), "-serve") {
		t.Errorf("-help does not describe -serve:\n%s", errb.String())
	}
	for _, args := range [][]string{{"-hubmis-time-scale", "0.5"}, {"extra"}, {"-outage", "0s"}} {
		if code := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run(context.Background(), []string{"-data", dir}, &bytes.Buffer{}, &errb); code != 1 || !strings.Contains(errb.String(), "not empty") {
		t.Errorf("-data with a used directory: exit %d, %s", code, errb.String())
	}
}

// checkDifferencesHoldNoPersonalData changes a pupil's enrollment in a copy
// of Class's state and compares it with the district as the demo does when
// a stage times out, which prints the differences: they name the
// enrollment's key and the fields that differ, never the email or the name.
func checkDifferencesHoldNoPersonalData(t *testing.T, s *site) {
	t.Helper()
	st := s.cls.State()
	st.Classes = slices.Clone(st.Classes)
	for i, c := range st.Classes {
		j := slices.IndexFunc(c.Enrollments, func(e classtest.Enrollment) bool { return e.Role == "student" })
		if !strings.HasPrefix(c.ExtClassID, dataHubPrefix) || j < 0 {
			continue
		}
		e := c.Enrollments[j]
		st.Classes[i].Enrollments = slices.Clone(c.Enrollments)
		changed := &st.Classes[i].Enrollments[j]
		changed.Email, changed.FirstName, changed.LastName = "changed."+e.Email, e.FirstName+"x", e.LastName+"x"
		d, err := simcheck.DataHubDesired(s.hub, dataHubTenant)
		if err != nil {
			t.Fatal(err)
		}
		diff := simcheck.Compare(d, st, dataHubPrefix, s.skipped())
		want := []string{"enrollment " + c.ExtClassID + "#" + e.ExtPersonID + " differs: email; first_name; last_name"}
		if !slices.Equal(diff, want) {
			t.Errorf("differences %q, want %q", diff, want)
		}
		local, _, _ := strings.Cut(e.Email, "@")
		for _, l := range diff {
			for _, leak := range []string{local, e.FirstName, e.LastName} {
				if strings.Contains(l, leak) {
					t.Errorf("difference %q holds %q of the pupil", l, leak)
				}
			}
		}
		return
	}
	t.Error("no pupil enrolled in a DataHub class")
}
