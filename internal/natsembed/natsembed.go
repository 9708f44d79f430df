// Package natsembed runs a nats-server with JetStream inside the process:
// the demo and the benchmarks use it, so they need nothing but Go.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options of an embedded server.
type Options struct {
	// StoreDir is where JetStream keeps its files. Required.
	StoreDir string
	// Port to listen on, on 127.0.0.1; 0 picks a free one.
	Port int
	// SyncAlways fsyncs every write before acknowledging it (sync_interval:
	// always): slower, and the only way a single server loses no
	// acknowledged write in a power cut.
	SyncAlways bool
}

// Start starts a server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	port := o.Port
	if port == 0 {
		port = -1
	}
	opts := &server.Options{
		ServerName: "rollcall-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoLog:      true,
		NoSigs:     true,
		SyncAlways: o.SyncAlways,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("natsembed: server not ready within 10s")
	}
	return srv, nil
}

// Port is the port the server listens on.
func Port(srv *server.Server) int { return srv.Addr().(*net.TCPAddr).Port }
