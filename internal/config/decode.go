package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Decoding walks the YAML node tree itself rather than handing it to yaml.v3's struct
// decoder, for three reasons: ${ENV} references are expanded in scalar values before any
// typed decoding (so a number may come from the environment, and a secret holding YAML
// syntax cannot change the document's shape); yaml.v3 forgets KnownFields when decoding
// from a node, and its messages name a line but not the key; and a value that came from
// the environment must never be echoed in an error.

// decoder holds what one decoding pass learnt about the file.
type decoder struct {
	lookupEnv func(string) (string, bool)
	errs      []error
	// lines maps the key paths present in the file to their line, to point
	// validation errors at it.
	lines map[string]int
	// bad holds the key paths that already have an error.
	bad map[string]bool
	// fromEnv holds the scalars whose value came (at least partly) from the
	// environment, and envKeys the keys decoded from them: those values are not
	// quoted in errors.
	fromEnv map[*yaml.Node]bool
	envKeys map[string]bool
}

// decode parses data into cfg. The returned error is for a document that cannot be read
// at all (a YAML syntax error, an empty file); problems with keys and values are
// collected in the decoder's errs.
func decode(data []byte, lookupEnv func(string) (string, bool), cfg *Config) (*decoder, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the configuration is empty")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the configuration must be a single YAML document")
	}
	d := &decoder{
		lookupEnv: lookupEnv,
		lines:     map[string]int{},
		bad:       map[string]bool{},
		fromEnv:   map[*yaml.Node]bool{},
		envKeys:   map[string]bool{},
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the configuration must be a mapping of keys such as nats: and tenants:", root.Line)
	}
	d.expandTree(root, "")
	d.decodeValue(root, reflect.ValueOf(cfg).Elem(), "")
	return d, nil
}

func (d *decoder) fail(key string, line int, format string, args ...any) {
	d.errs = append(d.errs, &KeyError{Key: key, Line: line, Problem: fmt.Sprintf(format, args...)})
	d.bad[key] = true
}

// isFromEnv reports whether the value of key came from the environment.
func (d *decoder) isFromEnv(key string) bool { return d.envKeys[key] }

// hasErrorAt reports whether key, or a key it belongs to, already has an error.
func (d *decoder) hasErrorAt(key string) bool {
	for k := key; k != ""; k = parentKey(k) {
		if d.bad[k] {
			return true
		}
	}
	return false
}

// parentKey returns "a.b" for "a.b.c" and "a.b" for "a.b[2]".
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexKey(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

func isMergeKey(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!merge" }

// isNull reports whether the file leaves the value out (`key:`, `key: ~`, `key: null`).
// A value that became empty through ${ENV} expansion keeps its string tag.
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// expandTree expands ${ENV} references in every scalar value of the tree, in place.
// Aliases are skipped: their anchor is expanded where it stands, once.
func (d *decoder) expandTree(n *yaml.Node, key string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			vkey := key
			if !isMergeKey(k) {
				vkey = joinKey(key, k.Value)
			}
			d.expandTree(v, vkey)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			d.expandTree(v, indexKey(key, i))
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, used, err := expandEnv(n.Value, d.lookupEnv)
		if err != nil {
			d.fail(key, n.Line, "%v", err)
			return
		}
		n.Value = v
		if used {
			d.fromEnv[n] = true
		}
	}
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeValue decodes n into v, which is settable.
func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, key string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	// A section written with nothing under it (`tls:`) is present, not absent: for
	// tls that enables TLS, for a source it makes the missing keys show up as required.
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if isNull(n) {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(key, n.Line, "must be a mapping of keys, not %s", describeKind(n))
			return
		}
		d.decodeStruct(n, v, key)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(key, n.Line, "must be a list, not %s", describeKind(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			ikey := indexKey(key, i)
			d.lines[ikey] = item.Line
			d.decodeValue(item, s.Index(i), ikey)
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			d.fail(key, n.Line, "must be a single value, not %s", describeKind(n))
			return
		}
		d.decodeScalar(n, v, key)
	}
}

func describeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value"
}

// structDecoding is the state of decoding one mapping into one struct.
type structDecoding struct {
	v      reflect.Value
	key    string
	fields map[string]int
	// seen maps each key already decoded to its line: explicit keys win over
	// merged ones, and a key written twice is an error.
	seen map[string]int
	// merged holds the mappings already merged in, so a mapping merged twice
	// (directly or through nested merges) is walked once.
	merged map[*yaml.Node]bool
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, key string) {
	s := &structDecoding{v: v, key: key, fields: yamlFields(v.Type()), seen: map[string]int{}, merged: map[*yaml.Node]bool{n: true}}
	d.decodePairs(s, n, true)
}

// decodePairs decodes the pairs of mapping n into s.v: its own keys first, then those of
// the mappings it merges with `<<:`, which fill only what is still unset (YAML's merge
// semantics).
func (d *decoder) decodePairs(s *structDecoding, n *yaml.Node, explicit bool) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			merges = append(merges, val)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(s.key, k.Line, "keys must be plain names, not %s", describeKind(k))
			continue
		}
		fkey := joinKey(s.key, k.Value)
		if first, dup := s.seen[k.Value]; dup {
			if explicit {
				d.fail(fkey, k.Line, "written twice, first at line %d", first)
			}
			continue
		}
		s.seen[k.Value] = k.Line
		idx, known := s.fields[k.Value]
		if !known {
			// Top-level keys starting with "x-" are ignored, as in Compose files,
			// so that they can hold YAML anchors shared by several tenants.
			if s.key == "" && strings.HasPrefix(k.Value, "x-") {
				continue
			}
			d.fail(fkey, k.Line, "unknown key")
			continue
		}
		d.lines[fkey] = k.Line
		d.decodeValue(val, s.v.Field(idx), fkey)
	}
	for _, m := range merges {
		d.merge(s, m)
	}
}

func (d *decoder) merge(s *structDecoding, m *yaml.Node) {
	for m.Kind == yaml.AliasNode && m.Alias != nil {
		m = m.Alias
	}
	switch m.Kind {
	case yaml.MappingNode:
		if s.merged[m] {
			return
		}
		s.merged[m] = true
		d.decodePairs(s, m, false)
	case yaml.SequenceNode:
		for _, item := range m.Content {
			d.merge(s, item)
		}
	default:
		d.fail(s.key, m.Line, "<< must merge a mapping or a list of mappings")
	}
}

// yamlFields maps the yaml tag names of t's fields to their index.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

// decodeScalar decodes a scalar into a string, number, duration or bool field. Numbers
// and durations are parsed from the text whatever YAML thinks the scalar's type is, so
// quoting and values from the environment behave alike. Every number and duration of
// this configuration is valid only above zero, and zero is what "unset" means in the
// structs, so an explicit zero is refused here instead of silently becoming the
// default.
func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, key string) {
	if d.fromEnv[n] {
		d.envKeys[key] = true
	}
	text := n.Value
	if v.Kind() == reflect.String {
		v.SetString(text)
		return
	}
	if strings.TrimSpace(text) == "" {
		// Empty, typically from ${VAR:-}: the setting takes its default.
		return
	}
	text = strings.TrimSpace(text)
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(text)
		if err != nil {
			d.fail(key, n.Line, "%s is not a duration such as 90s, 15m or 24h", d.show(n))
			return
		}
		if dur == 0 {
			d.failZero(key, n.Line)
			return
		}
		v.SetInt(int64(dur))
	case v.CanInt():
		i, err := strconv.ParseInt(text, 10, v.Type().Bits())
		if err != nil {
			d.fail(key, n.Line, "%s is not a whole number", d.show(n))
			return
		}
		if i == 0 {
			d.failZero(key, n.Line)
			return
		}
		v.SetInt(i)
	case v.CanFloat():
		f, err := strconv.ParseFloat(text, v.Type().Bits())
		if err != nil {
			d.fail(key, n.Line, "%s is not a number such as 0.2", d.show(n))
			return
		}
		if f == 0 {
			d.failZero(key, n.Line)
			return
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			d.fail(key, n.Line, "%s is not true or false", d.show(n))
			return
		}
		v.SetBool(b)
	default:
		// A field type added to the structs without teaching the decoder: a bug
		// that every test of a full file catches.
		panic(fmt.Sprintf("config: no decoding for %s at %s", v.Type(), key))
	}
}

func (d *decoder) failZero(key string, line int) {
	d.fail(key, line, "must be greater than 0 (leave the key out for the default)")
}

// show quotes a scalar for an error message, unless its value came from the
// environment: then it may be a secret put in the wrong place, and is not shown.
func (d *decoder) show(n *yaml.Node) string {
	if d.fromEnv[n] {
		return "the value from the environment"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return strconv.Quote(v)
}
