// Package chaos proves the system end to end with its real processes: it
// builds cmd/poller and cmd/worker, runs them against an in-process
// nats-server (file store, sync_interval always) and the DataHub and Class
// simulators, and then kills, restarts and starves them while a district
// changes, until Class must equal what the district says.
//
// The short suite runs in every `go test ./...`:
//
//	go test -race ./chaos/
//
// The full suite (at least ten SIGKILLs of each binary, a larger district,
// a longer run) is behind the chaos build tag:
//
//	go test -tags chaos -run TestChaosFull -v -timeout 15m ./chaos/
//
// Both print their figures: kills, restarts, faults injected, changes made,
// and the time Class took to converge once the faults stopped.
package chaos
