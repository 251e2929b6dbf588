package main

import (
	"encoding/json"
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

// The presentation rules of the task model live in internal/format; the
// helpers below, in internal/tui, are shared with the top command.
var (
	labelString = tui.LabelString
	waitString  = tui.WaitString
	clip        = tui.Clip
)
