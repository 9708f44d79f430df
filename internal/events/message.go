// Package events is the message contract between the pollers and the workers:
// subjects, CloudEvents headers, deterministic message ids, the JSON body and
// the desired-state payloads of each kind, and the JetStream streams and
// key-value buckets that carry them.
//
// Messages are level-triggered: each carries the desired state of one entity,
// not a delta, so applying one twice, or an older one after a newer one (which
// the worker skips), leaves Class as the newest says.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Kind is the kind of entity a message describes.
type Kind string

// The kinds of entity the worker provisions into Class.
const (
	KindUser       Kind = "user"
	KindClass      Kind = "class"
	KindEnrollment Kind = "enrollment"
	KindSchedule   Kind = "schedule"
)

// Kinds lists every kind, in the order a first sync should apply them.
var Kinds = []Kind{KindUser, KindClass, KindEnrollment, KindSchedule}

// Op is what the message asks for: that the entity exist as described, or not
// exist.
type Op string

// The two operations: every message is one or the other.
const (
	OpUpsert Op = "upsert"
	OpDelete Op = "delete"
)

func (k Kind) valid() bool {
	switch k {
	case KindUser, KindClass, KindEnrollment, KindSchedule:
		return true
	}
	return false
}

func (o Op) valid() bool { return o == OpUpsert || o == OpDelete }

// tenantPattern is the shape of a tenant id: it is a subject token and a part
// of every external id, so it may hold neither dots nor colons.
var tenantPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// ValidTenant reports whether id can be used as a tenant id.
func ValidTenant(id string) bool { return tenantPattern.MatchString(id) }

// Version orders the observations of one key. Time comes from the source (a
// DataHub event's time, a HUBmis snapshot's time); Seq breaks ties between
// observations with the same time and is compared byte-wise, so producers make
// it order-preserving (DataHub event ids are time-ordered hex; indexes are
// zero-padded).
type Version struct {
	Time time.Time `json:"time"`
	Seq  string    `json:"seq,omitempty"`
}

// Compare returns -1, 0 or +1 as v is older than, the same as, or newer than o.
func (v Version) Compare(o Version) int {
	if c := v.Time.Compare(o.Time); c != 0 {
		return c
	}
	return strings.Compare(v.Seq, o.Seq)
}

// IsZero reports whether v was never set.
func (v Version) IsZero() bool { return v.Time.IsZero() && v.Seq == "" }

func (v Version) String() string {
	if v.Seq == "" {
		return v.Time.UTC().Format(time.RFC3339Nano)
	}
	return v.Time.UTC().Format(time.RFC3339Nano) + "/" + v.Seq
}

// Origin names the observation a message came from.
type Origin struct {
	// Source is "datahub", "hubmis", "replay", "resync" or "test".
	Source string `json:"source"`
	// ID is the DataHub event id, the HUBmis snapshot id, or the run id.
	ID string `json:"id"`
}

// Message is one change message: the desired state of one entity.
type Message struct {
	// Tenant, Kind and Op are also in the subject; the body repeats the
	// tenant so a message read out of its subject still says whose it is.
	Tenant string `json:"tenant"`
	Kind   Kind   `json:"-"`
	Op     Op     `json:"-"`
	// Key is the entity's stable identity within the tenant (see the Key
	// functions), the unit of "one at a time, newest wins".
	Key     string          `json:"key"`
	Version Version         `json:"version"`
	Origin  Origin          `json:"origin"`
	State   json.RawMessage `json:"state"`

	// ID is the CloudEvents id and the Nats-Msg-Id; see the ID functions.
	ID string `json:"-"`
	// Time is when the change was observed at the source (ce-time).
	Time time.Time `json:"-"`
	// Replay marks a message re-published by an operator: the worker applies
	// it even when the same version was applied before (never an older one),
	// so a damaged Class is repaired.
	Replay bool `json:"-"`
}

// ErrInvalid is matched by every error that says a message breaks the
// contract. Such a message can never succeed: the worker dead-letters it.
var ErrInvalid = errors.New("invalid change message")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Validate checks the envelope and that the state decodes for the kind and
// names the same key as the message.
func (m *Message) Validate() error {
	if !ValidTenant(m.Tenant) {
		return invalidf("tenant %q is not [a-z0-9-]{1,64}", m.Tenant)
	}
	if !m.Kind.valid() {
		return invalidf("unknown kind %q", m.Kind)
	}
	if !m.Op.valid() {
		return invalidf("unknown op %q", m.Op)
	}
	if m.Key == "" {
		return invalidf("key is empty")
	}
	if m.Version.IsZero() {
		return invalidf("version is empty")
	}
	key, err := m.stateKey()
	if err != nil {
		return err
	}
	if key != m.Key {
		// Keys are external ids, never personal data, so naming them is safe.
		return invalidf("key %q does not match the state's key %q", m.Key, key)
	}
	return nil
}

func (m *Message) stateKey() (string, error) {
	if len(m.State) == 0 {
		return "", invalidf("state is empty")
	}
	switch m.Kind {
	case KindUser:
		s, err := m.User()
		return s.Key(), err
	case KindClass:
		s, err := m.Class()
		return s.Key(), err
	case KindEnrollment:
		s, err := m.Enrollment()
		return s.Key(), err
	case KindSchedule:
		s, err := m.Schedule()
		return s.Key(), err
	}
	return "", invalidf("unknown kind %q", m.Kind)
}

func decodeState[T interface{ check(op Op) error }](m *Message) (T, error) {
	var s T
	if err := json.Unmarshal(m.State, &s); err != nil {
		// The JSON error names offsets and types, never the values.
		return s, invalidf("%s state does not decode: %v", m.Kind, jsonErrorText(err))
	}
	if err := s.check(m.Op); err != nil {
		return s, err
	}
	return s, nil
}

// jsonErrorText keeps the parts of a JSON error that say where and what type,
// and drops any quoted input, which may be a pupil's name.
func jsonErrorText(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %q: cannot decode %s into %s", typeErr.Field, typeErr.Value, typeErr.Type)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("syntax error at offset %d", syntaxErr.Offset)
	}
	return "malformed JSON"
}

// User decodes the state of a user message.
func (m *Message) User() (UserState, error) { return decodeState[UserState](m) }

// Class decodes the state of a class message.
func (m *Message) Class() (ClassState, error) { return decodeState[ClassState](m) }

// Enrollment decodes the state of an enrollment message.
func (m *Message) Enrollment() (EnrollmentState, error) { return decodeState[EnrollmentState](m) }

// Schedule decodes the state of a schedule message.
func (m *Message) Schedule() (ScheduleState, error) { return decodeState[ScheduleState](m) }

// NewMessage builds a message for state, deriving the key from it.
func NewMessage(tenant string, op Op, state KeyedState, version Version, origin Origin) (Message, error) {
	raw, err := json.Marshal(state)
	if err != nil {
		return Message{}, fmt.Errorf("encode %s state: %w", state.Kind(), err)
	}
	m := Message{
		Tenant:  tenant,
		Kind:    state.Kind(),
		Op:      op,
		Key:     state.Key(),
		Version: version,
		Origin:  origin,
		State:   raw,
		Time:    version.Time,
	}
	return m, m.Validate()
}

// ExternalID is the namespaced external id of a source entity in Class:
// "<source>:<tenant>:<kind>:<id>". Namespacing by tenant keeps two schools'
// ids apart in one Class, and lets resync and offboard recognise (and touch
// only) what this system created.
func ExternalID(source, tenant, kind, id string) string {
	return source + ":" + tenant + ":" + kind + ":" + id
}
