// Package dump parses goroutine dumps: the debug=2 text format that
// runtime.Stack, net/http/pprof, gops and crashes print. It takes the text
// and gives one Goroutine per goroutine, with its state, wait reason, labels,
// frames and creator; the sources join those with a trace window (package
// tracewin) in the model (package model).
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
//	gs, err := dump.ParseDump(resp.Body)
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
package dump
