package config

import (
	"fmt"
	"io"
	"log/slog"
)

// redacted is what a [Secret] prints in place of its value, however it is printed.
const redacted = "[redacted]"

// Secret is a configuration value that must never be printed: an API key, a client
// secret, a webhook secret, a password. Every way Go has of turning a value into text
// (fmt verbs including %#v, [fmt.Stringer], JSON, text and YAML marshalling, and
// [slog.LogValuer]) yields "[redacted]", so a Secret can sit in a struct that is logged
// or wrapped into an error without leaking. Only [Secret.Reveal] returns the value: call
// it at the one place the value goes on the wire.
type Secret string

// Reveal returns the secret's value. Its only callers should be the code that puts the
// secret into a request (an Authorization header, a token request body, an HMAC).
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret has a value, without revealing it.
func (s Secret) IsSet() bool { return s != "" }

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]", so %#v prints no value either.
func (Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb, so no fmt verb (%x, %q, %d, …) reaches the
// underlying string.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue returns "[redacted]" for log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "[redacted]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]"; slog's text handler and encoders that prefer
// [encoding.TextMarshaler] use it.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalYAML returns "[redacted]", so dumping a loaded configuration as YAML leaks
// nothing either.
func (Secret) MarshalYAML() (any, error) { return redacted, nil }
