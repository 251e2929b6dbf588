// Package stack is the vocabulary that goroutine dumps and execution traces
// share: a stack Frame, a goroutine's scheduling State, and the rules that
// tell the standard library's frames from the program's, so that a task's
// location is the top frame in user code whichever source read it.
package stack

import (
	"strconv"
	"strings"

	"github.com/inspectd/inspectd/internal/api"
)

// Frame is one call in a stack.
type Frame struct {
	Func string // fully qualified, e.g. "main.worker" or "net/http.(*conn).serve"
	File string // absolute path as the binary recorded it; "" when unknown (non-Go frames)
	Line int
}

// IsZero reports whether f is the zero Frame (no creator, no location).
func (f Frame) IsZero() bool { return f == Frame{} }

// String formats f as "func file:line".
func (f Frame) String() string {
	if f.File == "" {
		return f.Func
	}
	return f.Func + " " + f.File + ":" + strconv.Itoa(f.Line)
}

// API is f in the wire form.
func (f Frame) API() api.Frame {
	return api.Frame{Function: f.Func, File: f.File, Line: f.Line}
}

// APIFrames is fs in the wire form; nil for none.
func APIFrames(fs []Frame) []api.Frame {
	if len(fs) == 0 {
		return nil
	}
	out := make([]api.Frame, len(fs))
	for i, f := range fs {
		out[i] = f.API()
	}
	return out
}

// State is the scheduling state of a goroutine.
type State uint8

// The states of a goroutine. The zero State is "unknown".
const (
	Running  State = iota + 1 // executing on a thread ("running")
	Runnable                  // ready, waiting for a thread ("runnable", "preempted")
	Waiting                   // blocked: on what is the wait reason
	Syscall                   // in a system call ("syscall")
)

// String returns "running", "runnable", "waiting" or "syscall" ("unknown" for
// the zero State).
func (s State) String() string {
	switch s {
	case Running:
		return "running"
	case Runnable:
		return "runnable"
	case Waiting:
		return "waiting"
	case Syscall:
		return "syscall"
	}
	return "unknown"
}

// Location returns the top frame in user code of a stack (top first): the
// first frame that is not in the standard library (runtime., internal/,
// sync., time., net., ...), which is the "current location" of a task. When
// the whole stack is standard library (say `go time.Sleep(d)`), it returns
// createdBy if that is user code, else the first frame outside the runtime
// and sync wait machinery, else the top frame. It returns the zero Frame for
// a goroutine without frames.
func Location(frames []Frame, createdBy Frame) Frame {
	for _, f := range frames {
		if !IsStd(f.Func) {
			return f
		}
	}
	if createdBy.Func != "" && !IsStd(createdBy.Func) {
		return createdBy
	}
	for _, f := range frames {
		if !IsWait(f.Func) {
			return f
		}
	}
	if len(frames) > 0 {
		return frames[0]
	}
	return Frame{}
}

// IsStd reports whether a function name belongs to the standard library,
// judged by the first element of its package path.
func IsStd(name string) bool {
	end := strings.IndexAny(name, "/.")
	if end < 0 {
		end = len(name)
	}
	switch name[:end] {
	case "archive", "bufio", "bytes", "cmp", "compress", "container", "context", "crypto",
		"database", "debug", "embed", "encoding", "errors", "expvar", "flag", "fmt", "go",
		"hash", "html", "image", "index", "internal", "io", "iter", "log", "maps", "math",
		"mime", "net", "os", "path", "plugin", "reflect", "regexp", "runtime", "slices",
		"sort", "strconv", "strings", "structs", "sync", "syscall", "testing", "text",
		"time", "unicode", "unique", "unsafe", "uuid", "vendor", "weak", "cmd",
		"panic", "non-Go function":
		return true
	}
	return false
}

// IsWait reports whether a function is part of how goroutines block or get
// scheduled rather than of what they do.
func IsWait(name string) bool {
	for _, p := range [...]string{"runtime.", "runtime/", "internal/", "sync.", "sync/", "time.", "syscall.", "os/signal.", "iter.", "panic", "non-Go function"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
