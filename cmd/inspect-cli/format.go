package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/inspectd/inspectd/internal/tui"
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

// The formatting helpers live in internal/tui, shared with the top command.
var (
	dur         = tui.Dur
	pct         = tui.Pct
	shortFunc   = tui.ShortFunc
	shortFrame  = tui.ShortFrame
	labelString = tui.LabelString
	waitString  = tui.WaitString
	clip        = tui.Clip
	writeStack  = tui.WriteStack
)

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
