package classtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rollcall/rollcall/internal/simhttp"
)

// Validation messages the API documents; the others follow the same (Laravel) wording.
const (
	msgEmailInvalid    = "The email format is invalid."
	msgTimezoneInvalid = "The timezone is invalid."
	msgEmailTaken      = "The email has already been taken."
)

// fieldErrors collects validation messages by field, as in the API's 400 answer.
type fieldErrors map[string][]string

func (fe fieldErrors) add(field, msg string) { fe[field] = append(fe[field], msg) }

func (fe fieldErrors) required(field string) {
	fe.add(field, "The "+attr(field)+" field is required.")
}

// reply is the documented validation answer.
func (fe fieldErrors) reply() simhttp.Reply {
	return simhttp.JSON(http.StatusBadRequest, errorBody{Error: "Request failed validation", Data: fe})
}

// attr names a field in a message the way the API does: "first_name" → "first name".
func attr(field string) string { return strings.ReplaceAll(field, "_", " ") }

// validEmail is deliberately simple: one @, a non-empty local part, a dot inside the
// domain, no spaces.
func validEmail(s string) bool {
	if strings.ContainsAny(s, " \t\r\n") || strings.Count(s, "@") != 1 {
		return false
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" {
		return false
	}
	dot := strings.Index(domain, ".")
	return dot > 0 && !strings.HasSuffix(domain, ".")
}

// validTimezone accepts Time Zone Database ids. "Local" loads but names no zone.
func validTimezone(tz string) bool {
	if tz == "" || tz == "Local" {
		return false
	}
	if _, ok := knownZones.Load(tz); ok {
		return true
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return false
	}
	knownZones.Store(tz, struct{}{})
	return true
}

// knownZones remembers the zones that loaded: loading parses the zone's
// file, a tenth of the simulator's time per created class in the benchmark.
// Only valid names are kept, so the set is bounded by the database's few
// hundred zones whatever clients send.
var knownZones sync.Map

// checkEmail adds the documented message when a given email is malformed.
func (fe fieldErrors) checkEmail(field, email string) {
	if email != "" && !validEmail(email) {
		fe.add(field, msgEmailInvalid)
	}
}

// pickOne returns the one identifier given among names ("Multiple Identifiers": one and
// only one). values maps a name to its value; empty means absent. With required false
// and none given it returns "", "", nil.
func pickOne(values map[string]string, required bool, names ...string) (name, value string, rep *simhttp.Reply) {
	var given []string
	for _, n := range names {
		if values[n] != "" {
			given = append(given, n)
		}
	}
	switch {
	case len(given) == 1:
		return given[0], values[given[0]], nil
	case len(given) > 1:
		fe := fieldErrors{}
		fe.add(given[0], "Only one of "+strings.Join(names, ", ")+" may be given.")
		r := fe.reply()
		return "", "", &r
	case required:
		fe := fieldErrors{}
		fe.add(names[0], "One of "+strings.Join(names, ", ")+" is required.")
		r := fe.reply()
		return "", "", &r
	}
	return "", "", nil
}

// parseID parses a positive integer identifier given as text.
func parseID(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil && n > 0
}

// flexID reads a JSON number or numeric string: the API shows class_deferred_id both ways.
func flexID(raw []byte) (string, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return "", true
	}
	s = strings.Trim(s, `"`)
	if _, ok := parseID(s); !ok {
		return s, false
	}
	return s, true
}

// newUUID draws a version-4-shaped UUID from the id generator; s.mu must be held.
func (s *Server) newUUID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := s.idRNG.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newMeetingID draws an 11-digit meeting id; s.mu must be held.
func (s *Server) newMeetingID() string {
	return strconv.FormatInt(10_000_000_000+s.idRNG.Int64N(90_000_000_000), 10)
}

// nullable renders an empty string as JSON null, as the API does for absent values.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// apiTime renders timestamps like the API: 2023-03-03T14:48:06.312Z.
func apiTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
