package dump

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/inspectd/inspectd/internal/stack"
)

// Goroutine is one goroutine of a dump.
//
// Strings are interned per parse: every goroutine that runs the same function
// shares one copy of its name. Goroutines with the same stack (same functions,
// files and lines, whatever their arguments) share one Frames slice, and
// goroutines with the same labels share one Labels map: treat both as read-only.
type Goroutine struct {
	ID       int64
	ParentID int64 // the goroutine that created this one ("created by ... in goroutine N"); 0 when unknown
	Bubble   int64 // synctest bubble ID (", synctest bubble N"); 0 when outside a bubble

	// Status is the status from the header without the annotations that have
	// fields of their own (" (leaked)", " (scan)", " (durable)", minutes,
	// "locked to thread", bubble, labels): "chan receive", "running",
	// "syscall", "sync.Mutex.Lock", "IO wait", "select (no cases)", ...
	Status      string
	WaitReason  string // Status for waiting goroutines; "" for running, runnable and syscall ones
	WaitMinutes int    // ", N minutes": how long it has been blocked, rounded down; 0 under a minute

	Labels    map[string]string // pprof labels printed in the header; nil when the header has none. Shared: read-only.
	Frames    []stack.Frame     // top first. Shared between goroutines with the same stack: read-only.
	Ancestors []Ancestor        // with GODEBUG=tracebackancestors=N: the stacks of its creators when they created it, nearest first
	CreatedBy stack.Frame       // the go statement that started it; zero for goroutine 1 and goroutines the runtime started

	State            stack.State
	Locked           bool // ", locked to thread" (runtime.LockOSThread)
	Elided           bool // frames were left out ("...N frames elided..." or "...additional frames elided...")
	Leaked           bool // " (leaked)": the leak detector proved it can never be woken (goroutineleak profile)
	Durable          bool // " (durable)" or a "(durable)" wait reason: durably blocked in a synctest bubble
	StackUnavailable bool // "goroutine running on other thread; stack unavailable" (crash output)
}

// Ancestor is the stack of a goroutine's creator at the moment it ran the go
// statement, as printed with GODEBUG=tracebackancestors=N
// ("[originating from goroutine N]:").
type Ancestor struct {
	ID        int64
	Frames    []stack.Frame
	CreatedBy stack.Frame
	Elided    bool
}

// Location returns the top frame in user code (see stack.Location).
func (g *Goroutine) Location() stack.Frame {
	return stack.Location(g.Frames, g.CreatedBy)
}

// Errors a ParseError wraps, for errors.Is.
var (
	ErrNoHeader  = errors.New("no goroutine header found")
	ErrTruncated = errors.New("goroutine dump truncated")
	ErrMalformed = errors.New("malformed goroutine dump")
)

// ParseError reports where a dump could not be read: the first problem and how
// many more followed. The goroutines read around the problems are still
// returned.
type ParseError struct {
	Line int    // 1-based line of the first problem
	Msg  string // what was wrong there
	More int    // further problems after it
	Err  error  // ErrNoHeader, ErrTruncated or ErrMalformed
}

func (e *ParseError) Error() string {
	s := "goroutine dump line " + strconv.Itoa(e.Line) + ": " + e.Msg
	if e.More > 0 {
		s += " (and " + strconv.Itoa(e.More) + " more problems)"
	}
	return s
}

func (e *ParseError) Unwrap() error { return e.Err }

// ParseDump parses a whole dump in the debug=2 text format: runtime.Stack(buf,
// true), /debug/pprof/goroutine?debug=2, a gops stack dump, or the output of a
// panic or SIGQUIT (whatever precedes the first goroutine header, and crash
// noise between goroutines such as register dumps, is skipped). On truncated or
// corrupt input it returns the goroutines it could read and a *ParseError that
// says where (line number) and what was wrong; it never panics. A read error
// is returned too (joined with the ParseError, if any), after the goroutines
// read before it.
func ParseDump(r io.Reader) ([]Goroutine, error) {
	p := newDumpParser(0)
	if l, ok := r.(interface{ Len() int }); ok {
		p.sizeHint = l.Len()
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	var longUsed bool
	var readErr error
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, chunk...)
			longUsed = true
			continue
		}
		line := chunk
		if longUsed {
			long = append(long, chunk...)
			line = long
		}
		p.consumed += len(line)
		if err != nil {
			if err != io.EOF {
				readErr = fmt.Errorf("read goroutine dump: %w", err)
			}
			p.finish(line)
			break
		}
		p.feed(line[:len(line)-1])
		if longUsed {
			long, longUsed = long[:0], false
		}
	}
	out, err := p.result()
	if readErr != nil {
		if err != nil {
			return out, errors.Join(readErr, err)
		}
		return out, readErr
	}
	return out, err
}

// ParseDumpBytes is ParseDump over a byte slice (the fast path). The result
// does not refer to b.
func ParseDumpBytes(b []byte) ([]Goroutine, error) {
	p := newDumpParser(len(b))
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.consumed += len(b)
			p.finish(b)
			break
		}
		p.consumed += i + 1
		p.feed(b[:i])
		b = b[i+1:]
	}
	return p.result()
}

// parser states.
const (
	dumpPreamble = iota // before the first header: skip everything
	dumpBody            // inside a goroutine
	dumpBetween         // after a goroutine: want a header; tolerate known crash output
	dumpSkip            // skip lines silently until the next header
)

// what the pending line, waiting for its "\tfile:line", is.
const (
	dumpPendNone    = iota
	dumpPendFrame   // a function line (or something else, if no file line follows)
	dumpPendCreated // "created by ..."
)

type dumpParser struct {
	out  []Goroutine
	g    Goroutine
	anc  *Ancestor // non-nil while reading "[originating from goroutine N]:" sections
	st   int
	line int // number of the line being fed
	hdr  int // line of the current goroutine's header

	pend     int
	pendLine int
	pendBuf  []byte      // the pending frame line, copied
	created  stack.Frame // pending "created by" (Func set, File/Line to come)
	parent   int64

	frames []stack.Frame // the current stack
	key    []byte        // the current stack as (func id, file id, line) triples, to share identical stacks

	ids    map[string]uint32
	names  []string
	stacks map[string][]stack.Frame
	labels map[string]map[string]string

	sawHeader bool
	// The first line that starts like a goroutine header but is not one,
	// skipped before any header (crash output may hold such lines): what
	// the error names when no header follows.
	badHeader     string
	badHeaderLine int
	err           *ParseError
	gErr          bool // an error was reported in the current goroutine

	sizeHint, consumed int
}

func newDumpParser(sizeHint int) *dumpParser {
	return &dumpParser{
		ids:      make(map[string]uint32, 256),
		names:    make([]string, 0, 256),
		stacks:   make(map[string][]stack.Frame, 64),
		labels:   make(map[string]map[string]string),
		sizeHint: sizeHint,
		out:      make([]Goroutine, 0, 64),
	}
}

func (p *dumpParser) fail(line int, kind error, format string, args ...any) {
	p.gErr = true
	if p.err != nil {
		p.err.More++
		return
	}
	p.err = &ParseError{Line: line, Msg: fmt.Sprintf(format, args...), Err: kind}
}

// intern returns the one copy of b for this parse and its id.
func (p *dumpParser) intern(b []byte) (string, uint32) {
	if id, ok := p.ids[string(b)]; ok {
		return p.names[id], id
	}
	s := string(b)
	id := uint32(len(p.names))
	p.ids[s] = id
	p.names = append(p.names, s)
	return s, id
}

func (p *dumpParser) internString(b []byte) string {
	s, _ := p.intern(b)
	return s
}

// feed processes one line without its "\n".
func (p *dumpParser) feed(line []byte) {
	p.line++
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	p.process(line)
}

func (p *dumpParser) process(line []byte) {
	switch p.st {
	case dumpBody:
		p.body(line)
	case dumpBetween:
		if isDumpHeader(line) {
			p.startGoroutine(line, true)
			return
		}
		p.between(line, p.line)
	default: // dumpPreamble, dumpSkip
		if isDumpHeader(line) {
			p.startGoroutine(line, p.st != dumpPreamble)
		}
	}
}

// finish ends the parse; rest is the last line if the input did not end with
// a newline.
func (p *dumpParser) finish(rest []byte) {
	p.line++
	cut := len(bytes.TrimSpace(rest)) > 0
	if cut {
		p.fail(p.line, ErrTruncated, "last line %q has no newline: dump truncated", dumpClip(rest))
	}
	if p.st == dumpBody {
		switch p.pend {
		case dumpPendFrame:
			if cut || dumpLooksLikeFrame(p.pendBuf) {
				p.fail(p.pendLine, ErrTruncated, "frame %q has no file line: dump truncated", dumpClip(p.pendBuf))
				p.pend = dumpPendNone
				p.endGoroutine()
			} else if !p.hasStack() {
				p.fail(p.pendLine, ErrMalformed, "unexpected line %q, want a frame", dumpClip(p.pendBuf))
				p.pend = dumpPendNone
				p.endGoroutine()
			} else {
				// Not a frame: text after the last goroutine ("exit status 2").
				p.pend = dumpPendNone
				p.endGoroutine()
				p.st = dumpBetween
				p.between(p.pendBuf, p.pendLine)
			}
		case dumpPendCreated:
			p.fail(p.pendLine, ErrTruncated, "%q has no file line: dump truncated", "created by "+p.created.Func)
			p.pend = dumpPendNone
			p.endGoroutine()
		default:
			p.endGoroutine()
		}
	}
	p.st = dumpSkip
}

func (p *dumpParser) result() ([]Goroutine, error) {
	if !p.sawHeader {
		p.err = &ParseError{Line: p.line, Msg: ErrNoHeader.Error(), Err: ErrNoHeader}
		if p.badHeaderLine > 0 {
			p.err.Line, p.err.Msg = p.badHeaderLine, ErrNoHeader.Error()+": "+p.badHeader
		}
	}
	if p.err != nil {
		return p.out, p.err
	}
	return p.out, nil
}

func dumpLooksLikeFrame(b []byte) bool {
	return len(b) > 2 && b[len(b)-1] == ')' && bytes.IndexByte(b, '(') > 0
}

func dumpClip(b []byte) string {
	const max = 80
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// isDumpHeader reports whether line starts like "goroutine 12 ".
func isDumpHeader(line []byte) bool {
	const prefix = "goroutine "
	return len(line) > len(prefix)+1 && line[len(prefix)] >= '0' && line[len(prefix)] <= '9' &&
		string(line[:len(prefix)]) == prefix
}

// body processes a line inside a goroutine.
func (p *dumpParser) body(line []byte) {
	if p.pend != dumpPendNone {
		if len(line) > 0 && line[0] == '\t' {
			p.fileLine(line[1:])
			return
		}
		pend := p.pend
		p.pend = dumpPendNone
		switch {
		case pend == dumpPendCreated:
			p.fail(p.line, ErrMalformed, "unexpected line %q after %q, want its file line", dumpClip(line), "created by "+p.created.Func)
		case dumpLooksLikeFrame(p.pendBuf):
			p.fail(p.line, ErrMalformed, "unexpected line %q after frame %q, want its file line", dumpClip(line), dumpClip(p.pendBuf))
		case !p.hasStack():
			p.fail(p.pendLine, ErrMalformed, "unexpected line %q, want a frame", dumpClip(p.pendBuf))
		default:
			// The pending line was not a frame after all: the goroutine ended
			// without a blank line and some other text follows (crash output
			// such as a register dump, or "exit status 2").
			p.endGoroutine()
			p.st = dumpBetween
			p.between(p.pendBuf, p.pendLine)
			p.process(line)
			return
		}
		p.endGoroutine()
		p.st = dumpSkip
		p.process(line)
		return
	}
	if len(line) == 0 {
		p.endGoroutine()
		p.st = dumpBetween
		return
	}
	if p.createdDone() && !bytes.HasPrefix(line, []byte("[originating from goroutine ")) {
		// Only ancestors follow "created by": this is text after the goroutine.
		p.endGoroutine()
		p.st = dumpBetween
		p.process(line)
		return
	}
	switch line[0] {
	case '\t':
		if string(line) == "\tgoroutine running on other thread; stack unavailable" {
			p.g.StackUnavailable = true
			return
		}
		p.fail(p.line, ErrMalformed, "unexpected file line %q", dumpClip(line))
		p.endGoroutine()
		p.st = dumpSkip
		return
	case 'c':
		if bytes.HasPrefix(line, []byte("created by ")) {
			p.createdBy(line[len("created by "):])
			return
		}
	case '.':
		if bytes.HasPrefix(line, []byte("...")) && bytes.HasSuffix(line, []byte(" elided...")) {
			if p.anc != nil {
				p.anc.Elided = true
			} else {
				p.g.Elided = true
			}
			return
		}
	case '[':
		if bytes.HasPrefix(line, []byte("[originating from goroutine ")) {
			p.ancestor(line)
			return
		}
	case 'g':
		if isDumpHeader(line) {
			p.endGoroutine()
			p.startGoroutine(line, true)
			return
		}
	case 'n':
		if bytes.HasPrefix(line, []byte("non-Go function at pc=")) {
			name, nameID := p.intern([]byte("non-Go function"))
			_, fileID := p.intern(nil)
			p.addFrame(stack.Frame{Func: name}, nameID, fileID)
			return
		}
	}
	p.pend, p.pendLine = dumpPendFrame, p.line
	p.pendBuf = append(p.pendBuf[:0], line...)
}

func (p *dumpParser) createdBy(rest []byte) {
	name := rest
	var parent int64
	if i := bytes.LastIndex(rest, []byte(" in goroutine ")); i >= 0 {
		id, n, ok := dumpInt(rest, i+len(" in goroutine "))
		if !ok || n != len(rest) {
			p.fail(p.line, ErrMalformed, "bad goroutine id in %q", dumpClip(rest))
		} else {
			name, parent = rest[:i], id
		}
	}
	if len(name) == 0 {
		p.fail(p.line, ErrMalformed, "no function in %q", "created by "+dumpClip(rest))
		p.endGoroutine()
		p.st = dumpSkip
		return
	}
	p.created = stack.Frame{Func: p.internString(name)}
	p.parent = parent
	p.pend, p.pendLine = dumpPendCreated, p.line
}

func (p *dumpParser) ancestor(line []byte) {
	rest := line[len("[originating from goroutine "):]
	id, n, ok := dumpInt(rest, 0)
	if !ok || string(rest[n:]) != "]:" {
		p.fail(p.line, ErrMalformed, "malformed ancestor line %q", dumpClip(line))
		p.endGoroutine()
		p.st = dumpSkip
		return
	}
	p.closeAncestor()
	p.g.Ancestors = append(p.g.Ancestors, Ancestor{ID: id})
	p.anc = &p.g.Ancestors[len(p.g.Ancestors)-1]
}

func (p *dumpParser) closeAncestor() {
	if p.anc != nil {
		p.anc.Frames = slices.Clip(p.anc.Frames)
		p.anc = nil
	}
}

// fileLine completes the pending line with its "file:line [+0xpc] [fp=... sp=... pc=...]".
func (p *dumpParser) fileLine(b []byte) {
	var file []byte
	line := 0
	if i := bytes.LastIndexByte(b, ':'); i >= 0 {
		j := i + 1
		for j < len(b) && b[j] >= '0' && b[j] <= '9' && line < 1<<30 {
			line = line*10 + int(b[j]-'0')
			j++
		}
		if j == i+1 || (j < len(b) && b[j] != ' ') {
			p.badFileLine(b)
			return
		}
		file = b[:i]
	} else if !bytes.HasPrefix(b, []byte("pc=0x")) { // cgo symbolizer frame without a file
		p.badFileLine(b)
		return
	}
	fileStr, fileID := p.intern(file)
	switch p.pend {
	case dumpPendCreated:
		p.created.File, p.created.Line = fileStr, line
		if p.anc != nil {
			p.anc.CreatedBy = p.created
		} else {
			p.g.CreatedBy, p.g.ParentID = p.created, p.parent
		}
	case dumpPendFrame:
		fn := p.pendBuf
		if dumpLooksLikeFrame(fn) {
			fn = fn[:bytes.LastIndexByte(fn, '(')]
		}
		name, nameID := p.intern(fn)
		p.addFrame(stack.Frame{Func: name, File: fileStr, Line: line}, nameID, fileID)
	}
	p.pend = dumpPendNone
}

func (p *dumpParser) badFileLine(b []byte) {
	p.fail(p.line, ErrMalformed, "malformed file line %q", dumpClip(b))
	p.pend = dumpPendNone
	p.endGoroutine()
	p.st = dumpSkip
}

func (p *dumpParser) addFrame(f stack.Frame, nameID, fileID uint32) {
	if p.anc != nil {
		p.anc.Frames = append(p.anc.Frames, f)
		return
	}
	p.frames = append(p.frames, f)
	l := uint32(f.Line)
	p.key = append(p.key,
		byte(nameID), byte(nameID>>8), byte(nameID>>16), byte(nameID>>24),
		byte(fileID), byte(fileID>>8), byte(fileID>>16), byte(fileID>>24),
		byte(l), byte(l>>8), byte(l>>16), byte(l>>24))
}

// endGoroutine appends the goroutine being read, if any, to the result.
func (p *dumpParser) endGoroutine() {
	if p.st != dumpBody {
		return
	}
	if p.anc != nil && len(p.anc.Frames) == 0 && !p.gErr {
		p.fail(p.line, ErrTruncated, "goroutine %d: ancestor goroutine %d has no stack: dump truncated", p.g.ID, p.anc.ID)
	}
	p.closeAncestor()
	g := &p.g
	if len(p.frames) > 0 {
		if fr, ok := p.stacks[string(p.key)]; ok {
			g.Frames = fr
		} else {
			fr := slices.Clone(p.frames)
			p.stacks[string(p.key)] = fr
			g.Frames = fr
		}
	} else if !g.StackUnavailable && !p.gErr {
		p.fail(p.hdr, ErrTruncated, "goroutine %d has no stack: dump truncated", g.ID)
	}
	if len(p.out) == 64 && p.sizeHint > 2*p.consumed {
		// Size the result from the first goroutines to avoid regrowing it,
		// within reason: real goroutines take hundreds of bytes.
		want := min(int(int64(p.sizeHint)*64/int64(p.consumed)*11/10), p.sizeHint/128)
		p.out = slices.Grow(p.out, max(0, want-len(p.out)))
	}
	p.out = append(p.out, *g)
	p.g = Goroutine{}
	p.frames, p.key = p.frames[:0], p.key[:0]
	p.st = dumpSkip
}

// startGoroutine parses a header line. Outside the preamble a malformed header
// is an error; in the preamble (panic messages, logs) it is skipped.
func (p *dumpParser) startGoroutine(line []byte, strict bool) {
	g := &p.g
	*g = Goroutine{}
	msg := p.header(line, g)
	if msg != "" {
		if strict {
			p.fail(p.line, ErrMalformed, "%s in header %q", msg, dumpClip(line))
		} else if p.badHeaderLine == 0 {
			p.badHeader, p.badHeaderLine = fmt.Sprintf("%s in header %q", msg, dumpClip(line)), p.line
		}
		*g = Goroutine{}
		p.st = dumpSkip
		return
	}
	if g.ID == 0 {
		// "goroutine 0 gp=... m=N mp=... [idle]:" is an M's system stack in
		// crash output, not a goroutine.
		*g = Goroutine{}
		p.st = dumpSkip
		return
	}
	p.sawHeader = true
	p.st, p.hdr, p.pend, p.anc, p.gErr = dumpBody, p.line, dumpPendNone, nil, false
}

// createdDone reports whether the goroutine (or the ancestor) being read has
// had its "created by", which ends a stack.
func (p *dumpParser) createdDone() bool {
	if p.anc != nil {
		return p.anc.CreatedBy.Func != ""
	}
	return p.g.CreatedBy.Func != ""
}

// hasStack reports whether the current goroutine has a frame or a note
// standing for its stack.
func (p *dumpParser) hasStack() bool {
	return len(p.frames) > 0 || p.g.StackUnavailable || len(p.g.Ancestors) > 0
}

// header parses
//
//	goroutine 7 [chan receive]:
//	goroutine 7 gp=0xc000007c00 m=nil [chan receive, 3 minutes, locked to thread]:
//	goroutine 7 [chan receive (leaked), synctest bubble 2] {role: parked, "user id": "a \"b\""}:
//	goroutine 7 [chan receive labels:{"role": "parked"}]:
//
// into g and returns what is wrong, or "".
func (p *dumpParser) header(line []byte, g *Goroutine) string {
	id, i, ok := dumpInt(line, len("goroutine "))
	if !ok {
		return "bad goroutine id"
	}
	g.ID = id
	if i >= len(line) || line[i] != ' ' {
		return "no status"
	}
	i++
	if i < len(line) && line[i] != '[' { // " gp=0x... m=N mp=0x... ["
		k := bytes.IndexByte(line[i:], '[')
		if k < 0 {
			return "no status"
		}
		i += k
	}
	if i >= len(line) {
		return "no status"
	}
	i++ // past '['

	// The status runs up to the first ',' or ']', or to " labels:{" (Go 1.26
	// with GODEBUG=tracebacklabels=1 prints the labels inside the brackets).
	start := i
	i, lab := dumpScanItem(line, i)
	if i >= len(line) {
		return "unterminated status"
	}
	status := line[start:i]
	for {
		switch {
		case bytes.HasSuffix(status, []byte(" (leaked)")):
			g.Leaked = true
			status = status[:len(status)-len(" (leaked)")]
			continue
		case bytes.HasSuffix(status, []byte(" (scan)")):
			status = status[:len(status)-len(" (scan)")]
			continue
		case bytes.HasSuffix(status, []byte(" (durable)")):
			g.Durable = true
			status = status[:len(status)-len(" (durable)")]
			continue
		}
		break
	}
	if len(status) == 0 {
		return "empty status"
	}
	g.Status = p.internString(status)

	for !lab && line[i] == ',' {
		i++
		if i < len(line) && line[i] == ' ' {
			i++
		}
		start := i
		i, lab = dumpScanItem(line, i)
		if i >= len(line) {
			return "unterminated status"
		}
		item := line[start:i]
		switch {
		case string(item) == "locked to thread":
			g.Locked = true
		case bytes.HasSuffix(item, []byte(" minutes")):
			n, k, ok := dumpInt(item, 0)
			if !ok || k != len(item)-len(" minutes") || n > 1<<40 {
				return "bad minutes"
			}
			g.WaitMinutes = int(n)
		case bytes.HasPrefix(item, []byte("synctest bubble ")):
			n, k, ok := dumpInt(item, len("synctest bubble "))
			if !ok || k != len(item) {
				return "bad synctest bubble"
			}
			g.Bubble = n
		default:
			// An annotation of a later Go: ignore it.
		}
	}
	if lab { // Go 1.26 " labels:{...}]"
		end, msg := p.headerLabels(line, i+len(" labels:"), g)
		if msg != "" {
			return msg
		}
		i = end
		if i >= len(line) || line[i] != ']' {
			return "no ']' after labels"
		}
	}
	i++ // past ']'
	// Go 1.27: " {k: v, ...}"
	if i+1 < len(line) && line[i] == ' ' && line[i+1] == '{' {
		end, msg := p.headerLabels(line, i+1, g)
		if msg != "" {
			return msg
		}
		i = end
	}
	if i >= len(line) || line[i] != ':' || len(bytes.TrimRight(line[i+1:], " ")) != 0 {
		return "no ':' at the end"
	}
	g.State, g.WaitReason = dumpState(g.Status)
	if g.Status == "leaked" {
		g.Leaked = true
	}
	return ""
}

// dumpScanItem returns the end of the status item at i: the index of the next ','
// or ']', or of " labels:{" (then lab is true). It returns len(line) if there
// is none.
// headerLabels reads the label set that starts at line[i] (either format)
// into g and returns where it ends, or a message saying what was wrong.
func (p *dumpParser) headerLabels(line []byte, i int, g *Goroutine) (int, string) {
	end, ok := dumpScanLabels(line, i)
	if !ok {
		return 0, "unterminated labels"
	}
	m, msg := p.labelSet(line[i:end])
	if msg != "" {
		return 0, msg
	}
	g.Labels = m
	return end, ""
}

func dumpScanItem(line []byte, i int) (end int, lab bool) {
	j := i
	for j < len(line) && line[j] != ',' && line[j] != ']' {
		j++
	}
	if k := bytes.IndexByte(line[i:j], '{'); k >= 0 {
		if k := bytes.Index(line[i:j], []byte(" labels:{")); k >= 0 {
			return i + k, true
		}
	}
	return j, false
}

// dumpScanLabels returns the index just past the '}' that closes the '{' at i,
// skipping quoted strings.
func dumpScanLabels(line []byte, i int) (int, bool) {
	if i >= len(line) || line[i] != '{' {
		return 0, false
	}
	for j := i + 1; j < len(line); j++ {
		switch line[j] {
		case '}':
			return j + 1, true
		case '"':
			e, ok := dumpScanQuoted(line, j)
			if !ok {
				return 0, false
			}
			j = e - 1
		}
	}
	return 0, false
}

// dumpScanQuoted returns the index just past the closing quote of the string
// starting at the '"' at i.
func dumpScanQuoted(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// labelSet returns the (shared) map for the labels text raw, "{k: v, ...}",
// parsing it the first time it is seen.
func (p *dumpParser) labelSet(raw []byte) (map[string]string, string) {
	if m, ok := p.labels[string(raw)]; ok {
		return m, ""
	}
	m := make(map[string]string)
	i := 1 // past '{'
	end := len(raw) - 1
	for i < end {
		k, j, ok := p.labelToken(raw, i, ':')
		if !ok || j+1 >= end || raw[j] != ':' || raw[j+1] != ' ' {
			return nil, "malformed label key"
		}
		v, j2, ok := p.labelToken(raw, j+2, ',')
		if !ok {
			return nil, "malformed label value"
		}
		m[k] = v
		i = j2
		if i < end {
			if raw[i] != ',' || i+1 >= end || raw[i+1] != ' ' {
				return nil, "malformed labels"
			}
			i += 2
		}
	}
	if len(m) == 0 {
		m = nil // "{}": no labels
	}
	p.labels[string(raw)] = m
	return m, ""
}

// labelToken reads a key or value at i: a quoted string (runtime quoting is a
// subset of Go's) or a bare token up to stop, ',' or the final '}'.
func (p *dumpParser) labelToken(raw []byte, i int, stop byte) (string, int, bool) {
	end := len(raw) - 1
	if i < end && raw[i] == '"' {
		e, ok := dumpScanQuoted(raw, i)
		if !ok || e > end {
			return "", 0, false
		}
		q := raw[i:e]
		if bytes.IndexByte(q, '\\') < 0 {
			return p.internString(q[1 : len(q)-1]), e, true
		}
		s, err := strconv.Unquote(string(q))
		if err != nil {
			return "", 0, false
		}
		return p.internString([]byte(s)), e, true
	}
	j := i
	for j < end && raw[j] != stop && raw[j] != ',' {
		j++
	}
	return p.internString(raw[i:j]), j, true
}

// dumpState derives the state and wait reason from a status.
func dumpState(status string) (stack.State, string) {
	switch status {
	case "running", "copystack":
		return stack.Running, ""
	case "runnable", "preempted":
		return stack.Runnable, ""
	case "syscall":
		return stack.Syscall, ""
	}
	return stack.Waiting, status
}

// dumpInt parses the decimal number at b[i:], returning it and the index after
// it. It fails on no digits or overflow of int64.
func dumpInt(b []byte, i int) (int64, int, bool) {
	var n int64
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		d := int64(b[j] - '0')
		if n > (1<<63-1-d)/10 {
			return 0, j, false
		}
		n = n*10 + d
		j++
	}
	return n, j, j > i
}

// between processes a line after a goroutine and before the next header.
// Blank lines and the known noise of crash output are skipped; anything else
// is an error.
func (p *dumpParser) between(line []byte, n int) {
	t := bytes.TrimSpace(line)
	if len(t) == 0 {
		return
	}
	switch {
	case string(t) == "runtime stack:":
		// an M's system stack after a fatal error: skip its frames
		p.st = dumpSkip
		return
	case isDumpNoise(t):
		return
	}
	p.fail(n, ErrMalformed, "unexpected line %q between goroutines", dumpClip(line))
	p.st = dumpSkip
}

// isDumpNoise reports whether a line is something a crashing Go program or
// `go run`/`go test` prints around goroutine stacks.
func isDumpNoise(t []byte) bool {
	for _, prefix := range [...]string{
		"-----", "SIG", "PC=", "Signal ", "signal arrived during", "instruction bytes:",
		"exit status ", "fatal error:", "panic: ", "[signal ", "runtime: ", "FAIL", "[recovered",
	} {
		if bytes.HasPrefix(t, []byte(prefix)) {
			return true
		}
	}
	return isDumpRegister(t)
}

// isDumpRegister matches a register dump line: "rax    0x1f", "r10    0x0", "lr     0x4", "fault  0x0".
func isDumpRegister(t []byte) bool {
	i := 0
	for i < len(t) && (t[i] >= 'a' && t[i] <= 'z' || t[i] >= '0' && t[i] <= '9') {
		i++
	}
	if i == 0 || i >= len(t) || t[i] != ' ' {
		return false
	}
	for i < len(t) && t[i] == ' ' {
		i++
	}
	if !bytes.HasPrefix(t[i:], []byte("0x")) || i+2 == len(t) {
		return false
	}
	for _, c := range t[i+2:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
