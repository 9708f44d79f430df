// Package natstest starts a real nats-server with JetStream inside the test
// process, so tests exercise the broker the system runs on, not a mock.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall/rollcall/internal/natsembed"
)

// Server is an in-process nats-server with JetStream storing in a
// t.TempDir(). It shuts down when the test ends.
type Server struct {
	*server.Server
	t        testing.TB
	storeDir string
	port     int
}

// Start starts a server on 127.0.0.1 and a random port.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, storeDir: t.TempDir()}
	s.start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func (s *Server) start() {
	s.t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: s.storeDir, Port: s.port})
	if err != nil {
		s.t.Fatal(err)
	}
	s.Server = srv
	s.port = natsembed.Port(srv)
}

// Restart stops the server and starts it again on the same port and store,
// as a broker outage would; clients reconnect by themselves.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.StartAgain()
}

// Stop shuts the server down, as an outage would; [Server.StartAgain]
// brings it back on the same port and store.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// StartAgain starts a stopped server on the same port and store.
func (s *Server) StartAgain() {
	s.t.Helper()
	s.start()
}

// Connect returns a client connection and its JetStream context, closed when
// the test ends.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}
