package remote

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/inspectd/inspectd/internal/format"
)

// Kinds of download, each with its own cap (Limits).
const (
	CapSnapshot = "snapshot" // a JSON answer of the inspection API
	CapEvent    = "event"    // one event of the watch stream
	CapProfile  = "profile"  // a pprof profile, and its proto once gunzipped
	CapDump     = "dump"     // a full goroutine dump (debug=2)
	CapTrace    = "trace"    // an execution trace, per second traced
)

// CapKinds are the kinds of download, in the order help lists them.
var CapKinds = []string{CapSnapshot, CapEvent, CapProfile, CapDump, CapTrace}

// Limits cap what a client reads from a target, per download: a target
// that answers without end, or with a small answer its parser would blow
// up (a JSON array of empty objects, a gzip bomb), costs the client at
// most its cap, not all its memory.
//
// A cap counts bytes, and for what is parsed in memory a weight per
// record the parser builds from few bytes: a JSON object or array
// element, a dump line, a proto message. A record costs at least its
// weight, so that the memory a parse takes stays within a few times the
// cap whatever the bytes are.
type Limits struct {
	Snapshot int64
	Event    int64
	Profile  int64
	Dump     int64
	// TracePerSecond caps an execution trace per second it covers.
	TracePerSecond int64
}

// DefaultLimits fit what real targets send and keep a client within about
// 512 MB against any answer:
//   - a snapshot or watch event of 64 MiB holds a page of tasks whatever
//     the goroutine count (tasks, top and diagnose ask a page, or none), and
//     every task of about 50,000 goroutines (tasks --limit 0, record);
//   - a goroutine dump over net/http/pprof or gops is cut at 64 MB by the
//     runtime itself (about 80,000 goroutines), so 96 MiB holds any;
//   - a goroutine profile aggregates by stack: 1M goroutines at a few
//     thousand sites take a few MB; a heap profile of a large program tens;
//   - a busy program writes ~44 MB of trace per second: 128 MiB a second.
func DefaultLimits() Limits {
	return Limits{Snapshot: 64 << 20, Event: 64 << 20, Profile: 64 << 20, Dump: 96 << 20, TracePerSecond: 128 << 20}
}

// Of is the cap of kind (a trace: of one second).
func (l Limits) Of(kind string) int64 {
	switch kind {
	case CapSnapshot:
		return l.Snapshot
	case CapEvent:
		return l.Event
	case CapProfile:
		return l.Profile
	case CapDump:
		return l.Dump
	case CapTrace:
		return l.TracePerSecond
	}
	return 0
}

// Set sets the cap of kind.
func (l *Limits) Set(kind string, n int64) bool {
	switch kind {
	case CapSnapshot:
		l.Snapshot = n
	case CapEvent:
		l.Event = n
	case CapProfile:
		l.Profile = n
	case CapDump:
		l.Dump = n
	case CapTrace:
		l.TracePerSecond = n
	default:
		return false
	}
	return true
}

// Trace is the cap of a trace of secs seconds (at least one).
func (l Limits) Trace(secs float64) int64 {
	return int64(max(secs, 1) * float64(l.TracePerSecond))
}

// LimitError is a download that passed its cap.
type LimitError struct {
	Kind  string // CapSnapshot, ...
	What  string // what was read: "/api/v1/snapshot", "the goroutine dump"
	Limit int64
	// Records: the cap was passed by records (objects, lines, messages)
	// that cost more to build than their bytes.
	Records bool
}

func (e *LimitError) Error() string {
	how := ""
	if e.Records {
		how = " (counting what its records cost to build)"
	}
	return fmt.Sprintf("%s passed the %s cap of %s%s", e.What, e.Kind, format.Bytes(e.Limit), how)
}

// Weighing of what a parser builds per record, in bytes beyond the
// record's own. encoding/json decodes an element of an array of structs
// to a whole struct (a task is ~330 bytes, its JSON can be "{}"), an
// element of other arrays to a slot of a slice that grows by doubling,
// a member of an object to a map entry when it is a map (a struct's
// fields cost nothing more: a repeated one is overwritten). A dump's
// goroutine or frame line becomes a struct, a proto message a struct
// with its slices.
const (
	weightJSONObject  = 384 // an object in an array: at least this in all
	weightJSONElement = 16
	weightJSONMember  = 8
	weightLine        = 96
	weightProtoMsg    = 160
)

// jsonWeigher charges JSON records outside strings: array elements,
// object members, and objects in arrays shorter than a struct.
type jsonWeigher struct {
	inString, escaped bool
	// stack holds, for each open container, '[' or '{', and for an
	// object in an array its start (else -1); empty: the next value
	// is the first of its array.
	stack []jsonOpen
	pos   int64
	// empty: the innermost array has had no element yet.
	empty bool
}

type jsonOpen struct {
	kind  byte
	start int64
}

func (j *jsonWeigher) weigh(p []byte) int64 {
	var w int64
	for _, c := range p {
		j.pos++
		if j.inString {
			switch {
			case j.escaped:
				j.escaped = false
			case c == '\\':
				j.escaped = true
			case c == '"':
				j.inString = false
			}
			continue
		}
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			continue
		}
		inArray := len(j.stack) > 0 && j.stack[len(j.stack)-1].kind == '['
		if j.empty && c != ']' {
			// The first element of an array.
			j.empty = false
			w += weightJSONElement
		}
		switch c {
		case '"':
			j.inString = true
		case '{':
			start := int64(-1)
			if inArray || len(j.stack) == 0 {
				start = j.pos
			}
			j.stack = append(j.stack, jsonOpen{'{', start})
		case '[':
			j.stack = append(j.stack, jsonOpen{'[', -1})
			j.empty = true
		case '}', ']':
			if len(j.stack) == 0 {
				continue
			}
			top := j.stack[len(j.stack)-1]
			j.stack = j.stack[:len(j.stack)-1]
			if top.kind == '{' && top.start >= 0 {
				w += max(0, weightJSONObject-(j.pos-top.start+1))
			}
			j.empty = false
		case ',':
			if inArray {
				w += weightJSONElement
			} else {
				w += weightJSONMember
			}
		}
		if len(j.stack) > 1<<16 {
			// Deeper than any answer: charge it as if without end.
			w += 1 << 40
		}
	}
	return w
}

// lineWeigher charges each line.
type lineWeigher struct{}

func (lineWeigher) weigh(p []byte) int64 { return int64(bytes.Count(p, []byte{'\n'})) * weightLine }

// limited reads r up to its cap.
type limited struct {
	r       io.Reader
	c       io.Closer
	n, max  int64
	weigh   func([]byte) int64
	records int64 // the part of n that weights added
	// event: the count starts again after each blank line that ends an
	// event with data (one watch event per cap); garbage with blank
	// lines is not a stream of events, and counts whole.
	event            bool
	linePos, dataPos int // bytes into the line, and how many match "data:"
	sawData          bool
	err              *LimitError
	kind             string
	what             string
}

func (l *limited) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	b := p[:n]
	if l.event {
		if end := l.eventEnd(b); end >= 0 {
			l.n, l.records = 0, 0
			b = b[end:]
		}
	}
	l.n += int64(len(b))
	if l.weigh != nil {
		w := l.weigh(b)
		l.n += w
		l.records += w
	}
	if l.n > l.max {
		l.err = &LimitError{Kind: l.kind, What: l.what, Limit: l.max, Records: l.n-l.records <= l.max}
		// What was read is dropped: its record is incomplete.
		return 0, l.err
	}
	return n, err
}

// eventEnd is the index in b just after the last blank line that ends
// an event with data, or -1.
func (l *limited) eventEnd(b []byte) int {
	end := -1
	for i, c := range b {
		switch {
		case c == '\r':
		case c == '\n':
			if l.linePos == 0 && l.sawData {
				end, l.sawData = i+1, false
			}
			if l.dataPos == len("data:") {
				l.sawData = true
			}
			l.linePos, l.dataPos = 0, 0
		default:
			if l.linePos < len("data:") && l.dataPos == l.linePos && c == "data:"[l.linePos] {
				l.dataPos++
			}
			l.linePos++
		}
	}
	return end
}

func (l *limited) Close() error {
	if l.c != nil {
		return l.c.Close()
	}
	return nil
}

// Parse says how a capped download is parsed, for its weighing.
type Parse int

const (
	ParseBytes  Parse = iota // kept as they are (a file): bytes only
	ParseJSON                // JSON: objects and elements weigh
	ParseLines               // a goroutine dump: lines weigh
	ParseEvents              // server-sent events of JSON: each event counted alone
)

// Limit caps rc at max bytes as p parses it; reading past the cap fails
// with a *LimitError naming kind and what. A max of 0 or less is no cap.
func Limit(rc io.ReadCloser, max int64, kind, what string, p Parse) io.ReadCloser {
	if max <= 0 {
		return rc
	}
	l := &limited{r: rc, c: rc, max: max, kind: kind, what: what}
	switch p {
	case ParseJSON:
		l.weigh = (&jsonWeigher{}).weigh
	case ParseLines:
		l.weigh = lineWeigher{}.weigh
	case ParseEvents:
		l.weigh, l.event = (&jsonWeigher{}).weigh, true
	}
	return l
}

// Exceeded returns the *LimitError of rc, a Limit reader, once it passed
// its cap: a parser may wrap or swallow the error it read.
func Exceeded(rc io.Reader) (*LimitError, bool) {
	if l, ok := rc.(*limited); ok && l.err != nil {
		return l.err, true
	}
	return nil, false
}

// AsLimit returns the *LimitError in err's chain, if any.
func AsLimit(err error) (*LimitError, bool) {
	var le *LimitError
	ok := errors.As(err, &le)
	return le, ok
}

// readProto reads a pprof profile from r (gzipped or not) into its proto
// bytes, within max counting each top-level message at weightProtoMsg: a
// gzip bomb, or a profile of millions of empty messages, fails at the cap
// instead of being parsed.
func readProto(r io.Reader, max int64, what string) ([]byte, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	data := raw
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		gz, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		lr := Limit(io.NopCloser(gz), max, CapProfile, what+" (gunzipped)", ParseBytes)
		data, err = io.ReadAll(lr)
		if err != nil {
			return nil, err
		}
	}
	// A message's fields decode to a few times their bytes (a label of
	// 2 bytes to a struct of 32): the proto counts 4 times its bytes.
	if max > 0 {
		if n := protoMessages(data); 4*int64(len(data))+n*weightProtoMsg > max {
			return nil, &LimitError{Kind: CapProfile, What: what, Limit: max, Records: true}
		}
	}
	return data, nil
}

// protoMessages counts the top-level length-delimited fields of a proto
// message (a profile's samples, locations, functions, strings), as far as
// it is well formed: the parser tells what is not.
func protoMessages(b []byte) int64 {
	var n int64
	for len(b) > 0 {
		tag, k := uvarint(b)
		if k <= 0 {
			return n
		}
		b = b[k:]
		switch tag & 7 {
		case 0:
			_, k = uvarint(b)
			if k <= 0 {
				return n
			}
			b = b[k:]
		case 1:
			if len(b) < 8 {
				return n
			}
			b = b[8:]
		case 2:
			l, k := uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return n
			}
			b = b[k+int(l):]
			n++
		case 5:
			if len(b) < 4 {
				return n
			}
			b = b[4:]
		default:
			return n
		}
	}
	return n
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, -1
}

// tracker remembers the request a fetcher waits on, so that a snapshot
// given up can say where it was stuck.
type tracker struct {
	p atomic.Pointer[pending]
}

type pending struct {
	what  string
	since time.Time
}

// start records what as pending; done ends it.
func (t *tracker) start(what string) (done func()) {
	p := &pending{what: what, since: time.Now()}
	t.p.Store(p)
	return func() { t.p.CompareAndSwap(p, nil) }
}

// Pending is the request under way, and for how long, if any.
func (t *tracker) Pending() (what string, since time.Duration, ok bool) {
	p := t.p.Load()
	if p == nil {
		return "", 0, false
	}
	return p.what, time.Since(p.since), true
}

// Pending is the request to the target r waits on, and for how long: a
// request whose answer is not all read yet counts.
func (r *Remote) Pending() (what string, since time.Duration, ok bool) {
	if p, is := r.f.(interface {
		Pending() (string, time.Duration, bool)
	}); is {
		return p.Pending()
	}
	return "", 0, false
}
