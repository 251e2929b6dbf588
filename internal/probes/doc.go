// Package probes is where the inspector collects from its sources (goroutine
// dumps, execution traces, the goroutine leak profile, runtime/metrics) and
// builds the task model the rest of inspectd works on: one Task per goroutine,
// with its state, wait reason, labels, spawn site and current location.
// Data flows one way: sources -> probes -> diagnose -> api -> cli/tui. Probes
// know nothing of workloads; they see labels only.
//
// The pieces:
//
//   - ParseDump: the goroutine dump parser (below).
//   - AnalyzeTrace and WindowBuilder: per-goroutine statistics and wait sites
//     over an execution trace window (see trace.go's comment for the accounting).
//   - ReadProcess: the runtime/metrics of interest.
//   - Collector: the in-process source. It keeps a flight recorder running and
//     builds api.Snapshot values from its window, joined with goroutine dumps
//     taken only within a stop-the-world budget, and the goroutine leak profile
//     (read at most every 30s: it forces a GC). While snapshots are asked for,
//     it streams the trace and analyses each generation once, composing
//     windows from them (see live.go).
//   - Remote: the same model for a program that serves only net/http/pprof
//     (PprofFetcher) or a gops agent (GopsFetcher), computed in the client
//     from the goroutine profile, a trace parsed there, and full dumps within
//     a share of the wall time since attaching (see remote.go).
//
// # Goroutine dumps
//
// ParseDump and ParseDumpBytes read the debug=2 text format, from any of:
//
//	runtime.Stack(buf, true)                              // in process
//	curl 'http://host/debug/pprof/goroutine?debug=2'      // net/http/pprof
//	curl 'http://host/debug/pprof/goroutineleak?debug=2'  // the same, with "(leaked)" marks
//	gops stack <pid>                                      // gops agent
//	GOTRACEBACK=all ./prog 2> crash.txt                   // a panic, a fatal error, SIGQUIT
//
// Usage:
//
//	gs, err := probes.ParseDump(resp.Body)
//	// err != nil: the dump was cut or corrupt; gs still holds what was read.
//	for i := range gs {
//		g := &gs[i]
//		fmt.Println(g.ID, g.State, g.WaitReason, g.Labels["workload"], g.Location())
//	}
//
// The parser accepts every header form the runtime prints (see goroutineheader
// in runtime/traceback.go): the plain "goroutine 7 [chan receive]:", the crash
// form with "gp=... m=... mp=...", the annotations " (leaked)", " (scan)",
// " (durable)", ", N minutes", ", locked to thread", ", synctest bubble N",
// and pprof labels in both formats: Go 1.27's "{role: parked, "user id": "a
// \"b\""}" after the brackets (keys and values quoted only when needed) and
// Go 1.26's "labels:{"role": "parked"}" inside them (GODEBUG=tracebacklabels=1).
// Frames may carry "(...)" for inlined calls, "fp= sp= pc=" suffixes
// (GOTRACEBACK=system), elision markers, "created by X in goroutine N" (or
// "created by X" before Go 1.21), "[originating from goroutine N]" sections
// (GODEBUG=tracebackancestors=N), and cgo frames. Text before the first header
// (the panic message, "SIGQUIT: quit") is skipped, and so are the register
// dumps, "-----" separators, "runtime stack:" sections and goroutine 0 (an M's
// system stack) of crash output.
//
// Errors are *ParseError values: the first problem's line number, what was
// wrong, and how many problems followed. A truncated dump (the last line has
// no newline, a frame has no file line, a goroutine has no stack) wraps
// ErrTruncated; garbage wraps ErrMalformed, and the parser resumes at the next
// goroutine header; input without any goroutine header wraps ErrNoHeader.
// The parser never panics (it is fuzzed: FuzzParseDump).
//
// # Why our own parser
//
// The known parsers do not read labelled headers (measured on this machine):
// DataDog/gostackparse v0.7.0 drops every goroutine whose header carries labels,
// with an error, and maruel/panicparse v2.5.0 stops at the first one. Go 1.27
// prints labels by default, and labels are how inspectd names tasks (workload,
// role). This parser reads both label formats and none, and is faster than
// gostackparse (~260 MB/s here): 450 to 900 MB/s on this machine, labelled
// headers included (BenchmarkParseDumpBytes, BenchmarkParseLiveDump). It scans
// bytes without regular expressions, interns function names, file names,
// statuses and labels, and shares the Frames slice of goroutines with identical
// stacks and the Labels map of goroutines with identical labels, so a dump of
// 100k goroutines costs about 180 bytes per goroutine, little more than the
// Goroutine values themselves.
package probes
