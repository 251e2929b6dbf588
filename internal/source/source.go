// Package source defines what a source of task models is: the in-process
// collector (package inproc: the daemon and any program embedding the
// agent), or a program read from outside (package remote: net/http/pprof, a
// gops agent, a saved trace or goroutine dump).
//
// Every source gathers the runtime's raw records (execution trace windows,
// goroutine dumps, the goroutine and goroutineleak profiles, runtime/metrics),
// has them parsed (packages dump and tracewin), joins them in one model
// (package model) and hands out api.Snapshot values; the diagnosis (package
// diagnose) and the API (package server) take any Source.
package source

import (
	"context"
	"errors"
	"runtime/pprof"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
)

// Source builds the task model of one program.
type Source interface {
	// Snapshot builds the model over the last window of execution trace.
	Snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error)
	// Task returns one task with its histograms and full stack; an error
	// wrapping api.ErrNoTask when no such goroutine is alive or was in
	// the window.
	Task(ctx context.Context, id int64, window time.Duration) (*api.Task, error)
	// StackOf returns the latest stack the trace recorded for goroutine
	// id in the last snapshot's window, top first; nil when it was not
	// there. StretchStackOf returns where it computed during its longest
	// stretch on CPU in that window, or nil.
	StackOf(id int64) []api.Frame
	StretchStackOf(id int64) []api.Frame
	// Profile reads one of the program's pprof profiles ("heap",
	// "mutex", ...) as it is now; an error wrapping ErrUnsupported when
	// the source serves none.
	Profile(ctx context.Context, name string) (*profile.Profile, error)
}

// ErrUnsupported is wrapped by the error of a source, or of what it reads
// from, for what the program does not serve (a gops agent has no goroutine
// profile; Go before 1.27 has no goroutineleak profile; a trace file has no
// pprof profiles).
var ErrUnsupported = errors.New("not served by the target")

type partialKey struct{}

// AcceptPartial marks ctx as a request that takes a window shorter than
// asked rather than wait for it: a watch stream's update on a program
// whose tracer has just started (the in-process source records from the
// first request on). Sources that have the whole window ignore it.
func AcceptPartial(ctx context.Context) context.Context {
	return context.WithValue(ctx, partialKey{}, true)
}

// PartialAccepted says ctx takes a partial window (AcceptPartial).
func PartialAccepted(ctx context.Context) bool {
	v, _ := ctx.Value(partialKey{}).(bool)
	return v
}

type answerByKey struct{}

// AnswerBy marks ctx as a request to be answered by t: a watch stream's
// update, due every interval. A source that would wait past t for its data
// (a slice of the trace to end and be analysed, a build in flight) answers
// with what it has: its last snapshot, which says how old it is, or, when
// it has none yet, a NotRecorded error.
func AnswerBy(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, answerByKey{}, t)
}

// AnswerDeadline is the time ctx is to be answered by (AnswerBy).
func AnswerDeadline(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(answerByKey{}).(time.Time)
	return t, ok
}

// NotRecorded is the error of a source asked for an answer by a time
// (AnswerBy) that has recorded nothing it can show yet: its tracer has just
// started, and no part of the trace is analysed. Snapshot says what is
// known without it (no tasks; the process' figures, RecordingSince and a
// note saying why), for a watch stream to send rather than nothing.
type NotRecorded struct {
	Snapshot *api.Snapshot
}

func (e *NotRecorded) Error() string {
	return "nothing recorded yet: the execution trace of the window is not analysed yet"
}

// OwnLabel is the pprof label that marks the inspector's own goroutines in
// the process it inspects (the daemon, or a program embedding the agent):
// its HTTP server and the connections it serves, the recorder, the
// diagnosis loop, the exporters. Goroutines inherit their creator's
// labels, so all they start carry it too, and the diagnosis leaves them
// out: the inspector never reports itself.
const OwnLabel = "inspectd"

// Own runs f with the calling goroutine labelled OwnLabel=role, and the
// goroutines f starts too.
func Own(role string, f func()) {
	pprof.Do(context.Background(), pprof.Labels(OwnLabel, role), func(context.Context) { f() })
}

// Unowned runs f with the calling goroutine's labels cleared, so that the
// goroutines f starts (a workload the lab starts from an API request) are
// not taken for the inspector's.
func Unowned(f func()) {
	pprof.Do(context.Background(), pprof.Labels(), func(context.Context) { f() })
}
