// Package api is the wire contract between the inspectd daemon (or an embedded
// agent) and its clients: the JSON types of the /api/v1 endpoints and an HTTP
// client for them. The daemon and the CLI both import it; it imports neither.
//
// Errors are answered as {"error": "..."} with a 4xx or 5xx status:
//
//	curl -s -X POST localhost:7777/api/v1/workloads/leak/start -d '{"params":{"interval":"20ms"}}'
package api

import (
	"errors"
	"time"
)

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

// Param describes one workload parameter: its type, bounds and value.
type Param struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"` // int, float, duration, bool, string
	Help    string   `json:"help"`
	Default any      `json:"default"`
	Min     any      `json:"min,omitempty"`
	Max     any      `json:"max,omitempty"`
	Choices []string `json:"choices,omitempty"`
	// Value is the value in force: the running one, or the default when stopped.
	Value any `json:"value"`
	// Ran is the value of the last run of a stopped workload (none when
	// it runs or never ran): what `workloads stop` ran with.
	Ran any `json:"ran,omitempty"`
}

// Workload is one workload of the lab and its state.
type Workload struct {
	Name        string    `json:"name"`
	Lesson      string    `json:"lesson"`
	Kind        string    `json:"kind"` // healthy or broken
	Description string    `json:"description"`
	Caps        string    `json:"caps,omitempty"`
	Params      []Param   `json:"parameters"`
	Running     bool      `json:"running"`
	Since       time.Time `json:"since,omitzero"`
	Operations  uint64    `json:"operations"`
	Panics      int64     `json:"panics"`
	Restarts    int64     `json:"restarts"`
	LastError   string    `json:"last_error,omitempty"`
	// Detached counts goroutines the workload left running on purpose
	// (a broken workload's leak) that are still alive.
	Detached int64 `json:"detached_goroutines,omitempty"`
	// Rule is the diagnosis rule whose finding names a broken workload's
	// bug; Fix says what its parameter fix (true: the corrected code of
	// the lesson) changes.
	Rule string `json:"rule,omitempty"`
	Fix  string `json:"fix,omitempty"`
	// ShowsAfterStop: the bug shows once the workload is stopped (its
	// goroutines outlive the stop). LeaksForGood: what it leaks cannot be
	// reclaimed, so its finding stays after the fix, no longer growing.
	ShowsAfterStop bool `json:"shows_after_stop,omitempty"`
	LeaksForGood   bool `json:"leaks_for_good,omitempty"`
	// Figures are the numbers the workload reports while it runs (also on
	// /metrics as inspectd_workload_<name>{workload}), such as a
	// service's requests_per_second and p99_seconds.
	Figures map[string]float64 `json:"figures,omitempty"`
}

// WorkloadList is the body of GET /api/v1/workloads.
type WorkloadList struct {
	Workloads []Workload `json:"workloads"`
}

// StartRequest is the optional body of POST /api/v1/workloads/{name}/start
// and of POST /api/v1/workloads/{name}/params. Values are JSON numbers, bools
// or strings; durations are strings such as "250ms".
type StartRequest struct {
	Params map[string]any `json:"params"`
}

// ErrNoTask is what a source answers for a goroutine it does not know: it
// has exited, or never existed.
var ErrNoTask = errors.New("no such task")
