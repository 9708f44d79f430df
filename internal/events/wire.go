package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// SubjectRoot is the first token of every subject of this system.
const SubjectRoot = "provision"

// Subject is where a change message is published:
// provision.<tenant>.<kind>.<op>.
func Subject(tenant string, kind Kind, op Op) string {
	return SubjectRoot + "." + tenant + "." + string(kind) + "." + string(op)
}

// TenantSubjects is the filter of one tenant's change messages.
func TenantSubjects(tenant string) string { return SubjectRoot + "." + tenant + ".*.*" }

// RejectedSubject is where a poller dead-letters a source record it cannot
// turn into a change message: provision.<tenant>.rejected.
func RejectedSubject(tenant string) string { return SubjectRoot + "." + tenant + ".rejected" }

// DeadSubject is where the worker dead-letters a change message it cannot
// apply: provision.<tenant>.dead.<kind>.<op>. Five tokens, so it never
// overlaps the four-token subjects of the PROVISION stream.
func DeadSubject(tenant string, kind Kind, op Op) string {
	return SubjectRoot + "." + tenant + ".dead." + string(kind) + "." + string(op)
}

// ParseSubject splits a change message's subject.
func ParseSubject(subject string) (tenant string, kind Kind, op Op, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != SubjectRoot {
		return "", "", "", invalidf("subject %q is not %s.<tenant>.<kind>.<op>", subject, SubjectRoot)
	}
	tenant, kind, op = parts[1], Kind(parts[2]), Op(parts[3])
	if !ValidTenant(tenant) || !kind.valid() || !op.valid() {
		return "", "", "", invalidf("subject %q has an unknown tenant, kind or op", subject)
	}
	return tenant, kind, op, nil
}

// CloudEvents NATS binding headers, and this system's own.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderSource      = "ce-source"
	HeaderType        = "ce-type"
	HeaderTime        = "ce-time"
	HeaderSubject     = "ce-subject"
	HeaderContentType = "content-type"
	// HeaderReplay marks an operator's re-publish (see [Message.Replay]).
	HeaderReplay = "rollcall-replay"

	// Dead-letter headers, added to the original headers.
	HeaderDeadReason   = "rollcall-dead-reason"
	HeaderDeadAttempts = "rollcall-dead-attempts"
	HeaderDeadSubject  = "rollcall-dead-subject"
	HeaderDeadSequence = "rollcall-dead-stream-seq"
	HeaderDeadTime     = "rollcall-dead-time"
)

// TypePrefix prefixes the CloudEvents type: "<prefix>.<kind>.<op>".
const TypePrefix = "com.rollcall.provision"

// Encode turns m into a NATS message ready to publish to JetStream. The
// Nats-Msg-Id is the CloudEvents id, so the stream's duplicate window drops a
// re-publish of the same observation.
func Encode(m Message) (*nats.Msg, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if m.ID == "" {
		return nil, invalidf("id is empty")
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	t := m.Time
	if t.IsZero() {
		t = m.Version.Time
	}
	msg := nats.NewMsg(Subject(m.Tenant, m.Kind, m.Op))
	msg.Data = body
	h := msg.Header
	h.Set(HeaderSpecVersion, "1.0")
	h.Set(HeaderID, m.ID)
	h.Set(HeaderSource, "/rollcall/"+m.Origin.Source+"/"+m.Tenant)
	h.Set(HeaderType, TypePrefix+"."+string(m.Kind)+"."+string(m.Op))
	h.Set(HeaderTime, t.UTC().Format(time.RFC3339Nano))
	h.Set(HeaderSubject, m.Key)
	h.Set(HeaderContentType, "application/json")
	h.Set(nats.MsgIdHdr, m.ID)
	if m.Replay {
		h.Set(HeaderReplay, "true")
	}
	return msg, nil
}

// Decode reads a change message from its subject, headers and body, and
// validates it. Errors match [ErrInvalid] and carry no personal data.
func Decode(subject string, header nats.Header, data []byte) (Message, error) {
	tenant, kind, op, err := ParseSubject(subject)
	if err != nil {
		return Message{}, err
	}
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return Message{}, invalidf("body does not decode: %s", jsonErrorText(err))
	}
	if m.Tenant != tenant {
		return Message{}, invalidf("body tenant %q does not match subject tenant %q", m.Tenant, tenant)
	}
	m.Kind, m.Op = kind, op
	m.ID = header.Get(HeaderID)
	if ts := header.Get(HeaderTime); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return Message{}, invalidf("%s %q is not RFC 3339", HeaderTime, ts)
		}
		m.Time = t
	}
	m.Replay, _ = strconv.ParseBool(header.Get(HeaderReplay))
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// DataHubMessageID is the id of the index-th message made from one DataHub
// event: the same event seen again after a crash gives the same ids.
func DataHubMessageID(tenant, eventID string, index int) string {
	return fmt.Sprintf("datahub:%s:%s:%03d", tenant, eventID, index)
}

// SnapshotMessageID is the id of one entity's message from one full read of
// a source (a HUBmis snapshot, a DataHub full sync), named by the source:
// re-publishing a read's changes after a crash gives the same ids, while a
// value that changes A → B → A across reads gives three.
func SnapshotMessageID(source, tenant string, kind Kind, key, snapshotID string) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + string(kind) + "\x00" + key + "\x00" + snapshotID))
	return source + ":" + tenant + ":" + hex.EncodeToString(sum[:16])
}

// RunMessageID is the id of a message re-published by a replay or resync
// run: scoped to the run, so the run is not dropped as a duplicate of the
// original, and a crashed run restarted with the same id is.
func RunMessageID(runID string, kind Kind, key string) string {
	sum := sha256.Sum256([]byte(runID + "\x00" + string(kind) + "\x00" + key))
	return "run:" + runID + ":" + hex.EncodeToString(sum[:16])
}
