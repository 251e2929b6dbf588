// Package format writes the figures of the task model for people: durations,
// stack frames, byte sizes and percentages. It is the one place each of
// these presentation rules is written: the tables of inspect-cli and its
// top view, the findings of the diagnosis and the notes of the sources all
// print through it, so that one figure reads the same everywhere.
//
//	format.Duration(123456789 * time.Nanosecond) // "123ms"
//	format.Frame(api.Frame{Function: "example.com/app/queue.(*Q).Put", File: "/src/app/queue/q.go", Line: 42})
//	                                             // "queue.(*Q).Put q.go:42"
//	format.Bytes(3 << 20)                        // "3 MiB"
//	format.Percent(0.1234)                       // "12.3%"
//
// The rule for numbers is one: three significant digits within a unit, and
// a value that rounds up to the next unit is written in it (999.96ms is 1s,
// not 1000ms). It imports only the standard library and the wire types of
// internal/api: the diagnosis links it, and the embedded agent the diagnosis.
package format

import (
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// Duration writes d to three significant digits in the largest unit below
// it: 850ns, 12.3µs, 1.5ms, 123ms, 1.23s, 59.9s. From a minute on it is
// rounded to the second, as time.Duration writes it: 1m0s, 2m3s, 1h0m0s.
// Nanoseconds are whole: 999ns. Zero is 0s.
func Duration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + Duration(-max(d, -math.MaxInt64))
	case d == 0:
		return "0s"
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	}
	for _, u := range durationUnits {
		if s, ok := digits3(float64(d)/float64(u.size), u.next); ok {
			return s + u.name
		}
	}
	return d.Round(time.Second).String()
}

// Nanos is Duration of a count of nanoseconds, as the API carries
// durations (total_ns, wait_ns, ...).
func Nanos(ns int64) string { return Duration(time.Duration(ns)) }

// durationUnits are the units of Duration below a minute; next is how many
// of each make the next one.
var durationUnits = []struct {
	size time.Duration
	name string
	next float64
}{
	{time.Microsecond, "µs", 1000},
	{time.Millisecond, "ms", 1000},
	{time.Second, "s", 60},
}

// digits3 writes v (more than 0) rounded to three significant digits,
// without trailing zeros; false when that rounds to next or more.
func digits3(v, next float64) (string, bool) {
	magnitude := int(math.Floor(math.Log10(v)))
	decimals := max(0, 2-magnitude)
	r := math.Round(v*math.Pow10(decimals)) / math.Pow10(decimals)
	if r >= next {
		return "", false
	}
	if decimals > 0 && int(math.Floor(math.Log10(r))) > magnitude {
		decimals-- // 9.996 rounds to 10.0, not 10.00
	}
	s := strconv.FormatFloat(r, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s, true
}

// Frame writes a frame as where to look: its function without the import
// path, then the file's base name and the line, "queue.(*Q).Put q.go:42".
// A frame without a file is its function; an empty frame is "-".
func Frame(f api.Frame) string {
	switch {
	case f.Function == "" && f.File == "":
		return "-"
	case f.File == "":
		return Func(f.Function)
	case f.Function == "":
		return FileLine(f.File, f.Line)
	}
	return Func(f.Function) + " " + FileLine(f.File, f.Line)
}

// Func drops the import path of a function name:
// "github.com/x/y/pkg.(*T).m" is "pkg.(*T).m".
func Func(fn string) string {
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

// FileLine is the file's base name and the line: "q.go:42".
func FileLine(file string, line int) string {
	return path.Base(file) + ":" + strconv.Itoa(line)
}

// Bytes writes a size in bytes, KiB, MiB, GiB or TiB (powers of 1024), to
// three significant digits (whole units from 1000 to 1023): 512 B, 1.5 KiB,
// 12.3 MiB, 123 MiB, 1023 KiB, 1 GiB.
func Bytes(n int64) string {
	if n < 0 {
		return "-" + Bytes(-max(n, -math.MaxInt64))
	}
	if n < 1<<10 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB"} {
		v /= 1 << 10
		if s, ok := digits3(v, 1<<10); ok {
			return s + " " + unit
		}
	}
	s, _ := digits3(v/(1<<10), math.Inf(1))
	return s + " TiB"
}

// Percent writes a share (1 is all) as a percentage to three significant
// digits: 12.3%, 1.5%, 100%, 0.05%. Zero is 0%; a share that is not a
// number, as of a whole of zero, is "-".
func Percent(share float64) string {
	p := 100 * share
	switch {
	case math.IsNaN(p) || math.IsInf(p, 0):
		return "-"
	case p < 0:
		return "-" + Percent(-share)
	case p == 0:
		return "0%"
	}
	s, _ := digits3(p, math.Inf(1))
	return s + "%"
}
