package events

import (
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// TraceCarrier lets an OpenTelemetry propagator read and write W3C trace
// context (traceparent, tracestate) in a message's headers. NATS headers are
// case-sensitive, so the keys are written as the propagator gives them (lower
// case), which is what other languages' NATS instrumentations read.
type TraceCarrier nats.Header

var _ propagation.TextMapCarrier = TraceCarrier(nil)

// Get returns the value of key, or "".
func (c TraceCarrier) Get(key string) string {
	if v := nats.Header(c).Values(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set sets key to value.
func (c TraceCarrier) Set(key, value string) { nats.Header(c)[key] = []string{value} }

// Keys lists the header keys.
func (c TraceCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// TracePropagator is the propagator of the trace context carried in message
// headers: W3C trace context, whatever the process's global propagator is,
// so that a trace crosses from poller to worker even when neither process
// configured one.
var TracePropagator propagation.TextMapPropagator = propagation.TraceContext{}
