// Package recording writes and reads inspect-cli recordings: a target's
// watch updates (GET /api/v1/watch) over time, with the moments the target
// could not be reached, for `inspect-cli top --replay`.
//
// # Format, version 1
//
// A recording is a gzip file (RFC 1952) of JSON lines, one gzip member per
// line. Concatenated gzip members are one valid gzip stream, so
// `zcat FILE` prints the lines and `zcat FILE | jq` reads them.
//
// Line 1 is the header:
//
//	{"format":"inspectd-recording","version":1,"target":"127.0.0.1:7777",
//	 "started":"2026-11-27T17:02:03+01:00","interval_ns":1000000000,
//	 "window_ns":5000000000,"keyframe_every":30,"recorder":"inspect-cli record"}
//
// Every later line is an entry: {"kind":K,"time":T,...}, T being the
// recorder's clock when it got the entry, and K one of:
//
//	"update" {"update":{...}}   an api.Update, as the watch stream sent it. The
//	                            first is full (every task); the next ones carry
//	                            what changed. An update is full again (a
//	                            keyframe) at least every keyframe_every
//	                            updates, as soon as the tasks changed since
//	                            the last full one outnumber the tasks, and
//	                            after a reconnection, so that a player seeks
//	                            without applying the recording from its start.
//	"conn"   {"conn":{...}}     the connection changed: "down" (with the error),
//	                            "up" (with down_ns, how long it was down, and
//	                            lost, the updates that cost), or "error" (the
//	                            target answered an error event).
//	"end"    {"end":{...}}      the last line of a recording closed cleanly:
//	                            the number of updates and why it stopped
//	                            ("interrupted", "duration").
//
// Each member's gzip header has an extra field (RFC 1952, 2.3.1.1) with two
// subfields, so that a player indexes the file without decompressing it:
//
//	"IL" 8 bytes: the member's length in the file, header and trailer
//	     included, little endian
//	"IM" JSON {"kind":K,"time":T,"full":true,"tasks":N}: the line's kind and
//	     time; for an update, whether it is full and how many tasks it carries
//
// Gzip tools ignore the extra field. A recording is written line by line,
// each line in one write as it happens: a recording cut short (the machine
// crashed, the disk filled) keeps every line before the cut, and the
// reader says which line is cut or corrupt and serves the ones before it.
//
// The reader also accepts the same lines without the extra fields: plain
// JSON lines, or JSON lines gzip'd as one stream (as `zcat FILE | jq ... |
// gzip` writes them). Those are read into memory whole.
package recording

import (
	"errors"
	"fmt"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// Format is the header's "format"; Version the version this package writes
// and reads.
const (
	Format  = "inspectd-recording"
	Version = 1
)

// The kinds of entries.
const (
	KindHeader = "header" // line 1 (only in its index field)
	KindUpdate = "update"
	KindConn   = "conn"
	KindEnd    = "end"
)

// The states of a Conn entry.
const (
	ConnDown  = "down"  // the stream was lost, or could not connect
	ConnUp    = "up"    // connected again after being down
	ConnError = "error" // the target sent an error event (it stays connected)
)

// Header is line 1 of a recording.
type Header struct {
	Format     string    `json:"format"`
	Version    int       `json:"version"`
	Target     string    `json:"target"`
	Started    time.Time `json:"started"`
	IntervalNS int64     `json:"interval_ns"`
	WindowNS   int64     `json:"window_ns"`
	// KeyframeEvery is the most updates between two full ones (0: full
	// only when the stream sent one).
	KeyframeEvery int    `json:"keyframe_every,omitempty"`
	Recorder      string `json:"recorder,omitempty"`
}

// Entry is one line after the header.
type Entry struct {
	Kind   string      `json:"kind"`
	Time   time.Time   `json:"time"`
	Update *api.Update `json:"update,omitempty"`
	Conn   *Conn       `json:"conn,omitempty"`
	End    *End        `json:"end,omitempty"`
}

// Conn is a change of the connection to the target.
type Conn struct {
	State  string `json:"state"` // ConnDown, ConnUp, ConnError
	Error  string `json:"error,omitempty"`
	DownNS int64  `json:"down_ns,omitempty"` // ConnUp: how long it was down
	Lost   int64  `json:"lost,omitempty"`    // ConnUp: updates missed meanwhile
}

// End closes a recording.
type End struct {
	Updates int64  `json:"updates"`
	Reason  string `json:"reason"` // "interrupted", "duration", ...
}

// Meta is what the index field of a line says about it.
type Meta struct {
	Kind  string    `json:"kind"`
	Time  time.Time `json:"time"`
	Full  bool      `json:"full,omitempty"`
	Tasks int       `json:"tasks,omitempty"`
}

// LineError is a line that cannot be read: cut short or corrupt. Lines are
// numbered from 1, the header, as `zcat FILE` prints them.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ErrCut is the error of a line the file ends inside.
var ErrCut = errors.New("cut short: the file ends inside this line (was the recorder killed?)")

// VersionError is a recording of another format version.
type VersionError struct{ Version int }

func (e *VersionError) Error() string {
	return fmt.Sprintf("recording format version %d; this inspect-cli reads version %d (a newer inspect-cli wrote it?)", e.Version, Version)
}
