package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// writeJSON prints v indented.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a tabwriter for aligned columns; call Flush.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// dur formats ns compactly: 0, 850ns, 12µs, 3.4ms, 1.25s, 2m3s.
func dur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case ns == 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", ns)
	case d < time.Millisecond:
		return trimZero(fmt.Sprintf("%.1f", float64(ns)/1e3)) + "µs"
	case d < time.Second:
		return trimZero(fmt.Sprintf("%.1f", float64(ns)/1e6)) + "ms"
	case d < time.Minute:
		return trimZero(fmt.Sprintf("%.2f", float64(ns)/1e9)) + "s"
	}
	return d.Round(time.Second).String()
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// pct formats part of whole as a percentage.
func pct(part, whole int64) string {
	if whole <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
}

// bytesize formats a byte count.
func bytesize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// shortFunc drops the package path: "github.com/x/y/pkg.(*T).m" -> "pkg.(*T).m".
func shortFunc(f string) string {
	if i := strings.LastIndex(f, "/"); i >= 0 {
		return f[i+1:]
	}
	return f
}

// shortFrame formats a frame as "pkg.fn file.go:12".
func shortFrame(f api.Frame) string {
	if f.Function == "" && f.File == "" {
		return "-"
	}
	if f.File == "" {
		return shortFunc(f.Function)
	}
	return fmt.Sprintf("%s %s:%d", shortFunc(f.Function), path.Base(f.File), f.Line)
}

// labelString formats labels as k=v pairs sorted by key.
func labelString(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

// waitString is the WAIT column: "chan receive 3m" or "".
func waitString(t *api.Task) string {
	if t.WaitReason == "" {
		return ""
	}
	if t.WaitMinutes > 0 {
		return fmt.Sprintf("%s %dm", t.WaitReason, t.WaitMinutes)
	}
	return t.WaitReason
}

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if n <= 0 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// writeStack prints frames, one function and one file:line line each.
func writeStack(w io.Writer, frames []api.Frame, indent string) {
	for _, f := range frames {
		fmt.Fprintf(w, "%s%s\n", indent, f.Function)
		if f.File != "" {
			fmt.Fprintf(w, "%s    %s:%d\n", indent, f.File, f.Line)
		}
	}
}
