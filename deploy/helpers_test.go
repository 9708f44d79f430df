package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rollcall/rollcall/internal/config"
)

// repoRoot is the module's root, relative to this package.
const repoRoot = ".."

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// envRefs returns the variables a configuration file refers to without a
// default (${NAME}), outside comments: the ones that must be provided.
func envRefs(doc string) []string {
	var names []string
	for _, line := range strings.Split(doc, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, m := range envRefRE.FindAllStringSubmatch(line, -1) {
			if m[2] == "" && !slices.Contains(names, m[1]) {
				names = append(names, m[1])
			}
		}
	}
	return names
}

// loadConfig parses a configuration file with the binaries' own strict
// parser and the given environment.
func loadConfig(t *testing.T, path string, env map[string]string) *config.Config {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range envRefs(string(raw)) {
		if _, ok := env[v]; !ok {
			t.Errorf("%s refers to ${%s}, which the deployment does not set", path, v)
		}
	}
	cfg, err := config.Parse(raw, lookup(env))
	if err != nil {
		t.Fatalf("%s does not load as the binaries load it:\n%v", path, err)
	}
	return cfg
}

// adminPort returns the port of admin.listen.
func adminPort(t *testing.T, cfg *config.Config) string {
	t.Helper()
	_, port, err := net.SplitHostPort(cfg.Admin.Listen)
	if err != nil || port == "" || port == "0" {
		t.Fatalf("admin.listen %q: want host:port with a fixed port, for probes and scraping", cfg.Admin.Listen)
	}
	return port
}

// An image reference: [host[:port]/]path[:tag][@digest].
type imageRef struct{ host, path, tag, digest string }

func parseImage(ref string) imageRef {
	var r imageRef
	ref, r.digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, r.tag = ref[:i], ref[i+1:]
	}
	if first, rest, ok := strings.Cut(ref, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.host, ref = first, rest
	}
	r.path = ref
	return r
}

// exactVersion matches a tag that names one release: 2.15.2, v3.5.0,
// 1.26.8, 2.15.2-alpine; not 2, 2.15, latest or alpine.
var exactVersion = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-.][a-z0-9.]+)?$`)

// checkPinnedOfficial checks an image pulled from elsewhere: no registry host
// (official images by their short names) and a tag naming one release.
func checkPinnedOfficial(t *testing.T, where, ref string) {
	t.Helper()
	r := parseImage(ref)
	switch {
	case r.host != "":
		t.Errorf("%s: image %q names a registry host; use the image's official short name", where, ref)
	case r.tag == "" && r.digest == "":
		t.Errorf("%s: image %q has no tag: pin a version", where, ref)
	case r.tag == "latest":
		t.Errorf("%s: image %q is latest: pin a version", where, ref)
	case r.tag != "" && !exactVersion.MatchString(r.tag):
		t.Errorf("%s: image %q: tag %q does not name one release (want e.g. 2.15.2-alpine)", where, ref, r.tag)
	}
}

// checkCommand checks that bin is a command of this module and that every flag
// in args is one it defines.
func checkCommand(t *testing.T, where, bin string, args []string) {
	t.Helper()
	name := filepath.Base(bin)
	if _, err := os.Stat(filepath.Join(repoRoot, "cmd", name, "main.go")); err != nil {
		t.Errorf("%s runs %s, which is not a command of this project (cmd/%s)", where, bin, name)
		return
	}
	defined := flagsOf(t, name)
	for _, a := range args {
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		f, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !defined[f] {
			t.Errorf("%s passes %s, a flag %s does not define (it has %v)", where, a, name, keys(defined))
		}
	}
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	usageMu   sync.Mutex
	usage     = map[string]map[string]bool{}
)

// commandsUsed are the commands the deployment files run; built once per test
// binary, so a command still being written elsewhere in cmd/ cannot break
// these tests.
var commandsUsed = []string{"poller", "worker", "sim"}

// flagsOf builds the commands once and returns the flags cmd's usage lists.
func flagsOf(t *testing.T, cmd string) map[string]bool {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "rollcall-deploy-bin")
		if buildErr != nil {
			return
		}
		pkgs := []string{"build", "-o", binDir + string(filepath.Separator)}
		for _, c := range commandsUsed {
			pkgs = append(pkgs, "./cmd/"+c)
		}
		out, err := runIn(repoRoot, "go", pkgs...)
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	usageMu.Lock()
	defer usageMu.Unlock()
	if f, ok := usage[cmd]; ok {
		return f
	}
	if !slices.Contains(commandsUsed, cmd) {
		t.Fatalf("cmd/%s is not in commandsUsed; add it there", cmd)
	}
	// -h makes flag.FlagSet print every flag and exit; the code is 0 or 2.
	out, _ := runIn(repoRoot, filepath.Join(binDir, cmd), "-h")
	flags := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	re := regexp.MustCompile(`^\s+-([A-Za-z0-9][A-Za-z0-9_.-]*)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			flags[m[1]] = true
		}
	}
	if len(flags) == 0 {
		t.Fatalf("%s -h listed no flags:\n%s", cmd, out)
	}
	usage[cmd] = flags
	return flags
}

func runIn(dir, name string, args ...string) ([]byte, error) {
	c := exec.Command(name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	return c.CombinedOutput()
}

// flagValue returns the value of -name in args (as "-name v" or "-name=v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		a = "-" + strings.TrimLeft(a, "-")
		if a == "-"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// yamlDocs reads every document of a YAML file as generic maps.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []map[string]any
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

// get walks a generic YAML value by keys (string) and indexes (int).
func get(v any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[p]
		case int:
			s, ok := v.([]any)
			if !ok || p >= len(s) {
				return nil
			}
			v = s[p]
		}
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func strs(v any) []string {
	s, _ := v.([]any)
	out := make([]string, 0, len(s))
	for _, e := range s {
		out = append(out, str(e))
	}
	return out
}

// noPlaceholders fails on text left to fill in.
func noPlaceholders(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"TODO", "FIXME", "XXX", "CHANGE-ME", "<metric>", "REPLACE"} {
		if bytes.Contains(raw, []byte(p)) {
			t.Errorf("%s holds the placeholder %q", path, p)
		}
	}
}
