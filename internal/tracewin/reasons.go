package tracewin

import (
	"strings"

	"golang.org/x/exp/trace"

	"github.com/inspectd/inspectd/internal/stack"
)

// waitReason returns the dump form of a wait's reason (an index in
// b.reasons) and its site (-1 without Sites).
func (b *WindowBuilder) waitReason(raw string, stk trace.Stack) (reason, site int32) {
	rr := b.rawReason(raw)
	if rr.reason >= 0 && !b.opts.Sites {
		return rr.reason, -1
	}
	if stk == trace.NoStack {
		reason = rr.reason
		if reason < 0 {
			reason = b.intern(reasonFromStack(raw, nil))
		}
		site = -1
		if b.opts.Sites {
			site = b.site(reason, nil) // a site of unknown location
		}
		return reason, site
	}
	si := &b.infos[b.stackInfo(stk)]
	if si.rawOK && si.raw == raw {
		return si.reason, si.site
	}
	frames := b.frames[si.frames]
	reason = rr.reason
	if reason < 0 {
		reason = b.intern(reasonFromStack(raw, frames))
	}
	site = -1
	if b.opts.Sites {
		site = b.site(reason, frames)
	}
	si = &b.infos[b.stackInfo(stk)] // b.infos may have grown
	si.raw, si.rawOK, si.reason, si.site = raw, true, reason, site
	return reason, site
}

// rawReason looks up a reason string of the trace. There are a dozen; a
// generation's copies of a string share their bytes, so once one is seen
// the comparisons are mostly pointer checks.
func (b *WindowBuilder) rawReason(raw string) rawReason {
	for i := range b.raw {
		if r := &b.raw[i]; r.s == raw {
			r.s = raw // this generation's copy: pointer-equal from now on
			return *r
		}
	}
	r := rawReason{s: raw, reason: -1}
	if dump, ok := traceReasons[raw]; ok && dump != "" {
		r.reason = b.intern(dump)
	}
	b.raw = append(b.raw, r)
	return r
}

// traceReasons maps the runtime's trace block reasons (traceBlockReasonStrings
// in runtime/traceruntime.go) to its goroutine dump wait reasons
// (waitReasonStrings in runtime/runtime2.go). "" means the trace's reason
// covers several dump reasons: the stack tells which.
var traceReasons = map[string]string{
	"chan receive":                 "chan receive",
	"chan send":                    "chan send",
	"select":                       "select",
	"sleep":                        "sleep",
	"network":                      "IO wait",
	"sync.(*Cond).Wait":            "sync.Cond.Wait",
	"GC mark assist wait for work": "GC assist wait",
	"GC background sweeper wait":   "GC sweep wait",
	"preempted":                    "preempted",
	"wait for debug call":          "debug call",
	"wait until GC ends":           "wait for GC cycle",
	"GC weak to strong wait":       "GC weak to strong wait",
	"sync":                         "", // sync.Mutex.Lock, sync.RWMutex.RLock, sync.WaitGroup.Wait, semacquire
	"forever":                      "", // select (no cases), chan receive (nil chan), chan send (nil chan), panicwait
	"system goroutine wait":        "", // GC worker (idle), finalizer wait, force gc (idle), ...
	"synctest":                     "", // synctest.Run, synctest.Wait
	"unspecified":                  "",
	"":                             "", // a status event: the wait began before the trace
}

// waitFuncs tell a wait reason from a function of the blocking stack,
// looked for from the top. The runtime's own dump reasons for the same waits.
var waitFuncs = map[string]string{
	"sync.(*Mutex).Lock":             "sync.Mutex.Lock",
	"sync.(*RWMutex).RLock":          "sync.RWMutex.RLock",
	"sync.(*RWMutex).Lock":           "sync.RWMutex.Lock",
	"sync.(*WaitGroup).Wait":         "sync.WaitGroup.Wait",
	"sync.(*Cond).Wait":              "sync.Cond.Wait",
	"sync.runtime_notifyListWait":    "sync.Cond.Wait",
	"runtime.block":                  "select (no cases)",
	"runtime.selectgo":               "select",
	"runtime.chanrecv":               "chan receive",
	"runtime.chanrecv1":              "chan receive",
	"runtime.chanrecv2":              "chan receive",
	"runtime.chansend":               "chan send",
	"runtime.chansend1":              "chan send",
	"time.Sleep":                     "sleep",
	"runtime.netpollblock":           "IO wait",
	"internal/poll.runtime_pollWait": "IO wait",
	"runtime.gcBgMarkWorker":         "GC worker (idle)",
	"runtime.bgsweep":                "GC sweep wait",
	"runtime.bgscavenge":             "GC scavenge wait",
	"runtime.runfinq":                "finalizer wait",
	"runtime.runFinalizers":          "finalizer wait",
	"runtime.runCleanups":            "cleanup wait",
	"runtime/trace.(*traceMultiplexer).startLocked.func1": "trace reader (blocked)",
	"runtime.forcegchelper":                               "force gc (idle)",
	"runtime.(*cleanupQueue).dequeue":                     "cleanup wait",
	"runtime.updateMaxProcsGoroutine":                     "GOMAXPROCS updater (idle)",
	"runtime.ReadTrace":                                   "trace reader (blocked)",
	"runtime.readTrace0":                                  "trace reader (blocked)",
	"runtime.gcStart":                                     "wait for GC cycle",
	"runtime.gcWaitOnMark":                                "wait for GC cycle",
	"runtime.coroswitch":                                  "coroutine",
	"internal/synctest.Run":                               "synctest.Run",
	"internal/synctest.Wait":                              "synctest.Wait",
	"runtime.synctestRun":                                 "synctest.Run",
	"runtime.synctestWait":                                "synctest.Wait",
	"runtime.gopanic":                                     "panicwait",
	"runtime.semacquire":                                  "semacquire", // weak: only when nothing above names the wait
	"runtime.semacquire1":                                 "semacquire",
	"sync.runtime_Semacquire":                             "semacquire",
	"internal/sync.runtime_Semacquire":                    "semacquire",
	"sync.runtime_SemacquireWaitGroup":                    "sync.WaitGroup.Wait",
	"sync.runtime_SemacquireRWMutexR":                     "sync.RWMutex.RLock",
	"sync.runtime_SemacquireRWMutex":                      "sync.RWMutex.Lock",
	"internal/sync.runtime_SemacquireMutex":               "sync.Mutex.Lock",
	"sync.runtime_SemacquireMutex":                        "sync.Mutex.Lock",
}

// reasonFromStack tells the dump's wait reason from the blocking stack: the
// first function from the top that names a wait (a generic semaphore only
// when nothing else does), refined by the trace's reason.
func reasonFromStack(raw string, frames []stack.Frame) string {
	reason := ""
	for i, f := range frames {
		if i == 32 {
			break
		}
		r, ok := waitFuncs[f.Func]
		if !ok {
			continue
		}
		if r == "semacquire" {
			if reason == "" {
				reason = r
			}
			continue
		}
		reason = r
		break
	}
	switch raw {
	case "forever":
		switch reason {
		case "chan receive", "chan send":
			return reason + " (nil chan)"
		case "":
			return "select (no cases)"
		}
	case "sync":
		if reason == "" {
			return "semacquire"
		}
	}
	if reason != "" {
		return reason
	}
	if raw != "" {
		return raw
	}
	return "unknown"
}

func (b *WindowBuilder) intern(reason string) int32 {
	if i, ok := b.reasonIdx[reason]; ok {
		return i
	}
	i := int32(len(b.reasons))
	reason = strings.Clone(reason)
	b.reasons = append(b.reasons, reason)
	b.reasonIdx[reason] = i
	return i
}

// stackInfo returns the index in b.infos of a generation's stack, converting
// its frames the first time the same stack is met in any generation.
func (b *WindowBuilder) stackInfo(stk trace.Stack) int32 {
	if i, ok := b.stacks[stk]; ok {
		return i
	}
	key := b.pcKey[:0]
	for f := range stk.Frames() {
		key = appendUint64(key, f.PC)
	}
	b.pcKey = key
	fi, ok := b.content[string(key)]
	if !ok {
		var frames []stack.Frame
		for f := range stk.Frames() {
			frames = append(frames, stack.Frame{Func: b.str(f.Func), File: b.str(f.File), Line: int(f.Line)})
		}
		fi = int32(len(b.frames))
		b.frames = append(b.frames, frames)
		b.content[string(key)] = fi
	}
	i := int32(len(b.infos))
	b.infos = append(b.infos, stackInfo{frames: fi})
	b.stacks[stk] = i
	return i
}

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}

func (b *WindowBuilder) str(s string) string {
	if v, ok := b.strs[s]; ok {
		return v
	}
	s = strings.Clone(s)
	b.strs[s] = s
	return s
}

// framesOf returns the frames of a stack; nil for none.
func (b *WindowBuilder) framesOf(stk trace.Stack) []stack.Frame {
	if stk == trace.NoStack {
		return nil
	}
	return b.frames[b.frameIndex(stk)]
}

// frameIndex returns the index in frames of a stack's frames.
func (b *WindowBuilder) frameIndex(stk trace.Stack) int32 {
	if stk != b.lastStk {
		// Goroutines that wait at the same place come one after another.
		b.lastStk, b.lastIdx = stk, b.infos[b.stackInfo(stk)].frames
	}
	return b.lastIdx
}

// siteLocation is where a stack waits: its top frame in user code, else,
// for a stack all in the standard library, the first frame that is not part
// of the runtime's blocking machinery (the runtime goroutine's own function).
func siteLocation(frames []stack.Frame) stack.Frame {
	loc := stack.Location(frames, stack.Frame{})
	if !blockFuncs[loc.Func] {
		return loc
	}
	for _, f := range frames {
		if !blockFuncs[f.Func] && !strings.HasPrefix(f.Func, "sync.runtime_") && !strings.HasPrefix(f.Func, "internal/sync.runtime_") {
			return f
		}
	}
	return loc
}

// blockFuncs are the runtime's functions through which goroutines block.
var blockFuncs = map[string]bool{
	"runtime.gopark": true, "runtime.goparkunlock": true,
	"runtime.chanrecv": true, "runtime.chanrecv1": true, "runtime.chanrecv2": true,
	"runtime.chansend": true, "runtime.chansend1": true,
	"runtime.selectgo": true, "runtime.block": true,
	"runtime.semacquire": true, "runtime.semacquire1": true, "runtime.notifyListWait": true,
	"runtime.netpollblock": true, "internal/poll.runtime_pollWait": true,
}

func (b *WindowBuilder) site(reason int32, frames []stack.Frame) int32 {
	k := siteKey{reason: reason, loc: siteLocation(frames)}
	if i, ok := b.siteIdx[k]; ok {
		return i
	}
	i := int32(len(b.sites))
	b.sites = append(b.sites, &siteAcc{reason: reason, loc: k.loc})
	b.siteIdx[k] = i
	return i
}
