package daemon

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/inspectd/inspectd/internal/workload"
)

// PrintCatalog writes the workload catalog for a terminal.
func PrintCatalog(w io.Writer, reg *workload.Registry) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tLESSON\tFINDING\tPARAMETERS (defaults)")
	for _, s := range reg.Specs() {
		finding := "-"
		if s.Rule != "" {
			finding = s.Rule
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, s.Lesson, finding, paramSummary(s))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nStart one with: inspectd --workloads NAME[,NAME...] [--param NAME.PARAM=VALUE]")
	fmt.Fprintln(w, "A broken one's fix: --param NAME.fix=true, or live: inspect-cli lab NAME")
}

func paramSummary(s workload.Spec) string {
	parts := make([]string, len(s.Params))
	for i, p := range s.Params {
		parts[i] = p.Name + "=" + workload.FormatValue(p.Default)
	}
	return strings.Join(parts, " ")
}

// CatalogMarkdown renders the catalog as the README's workload section.
func CatalogMarkdown(reg *workload.Registry) string {
	var b strings.Builder
	for _, kind := range []workload.Kind{workload.Healthy, workload.Broken} {
		if kind == workload.Healthy {
			b.WriteString("### Healthy lessons\n\n")
			b.WriteString("| name | lesson | what it does | parameters (default, range) |\n| --- | --- | --- | --- |\n")
		} else {
			b.WriteString("\n### Broken scenarios\n\n")
			b.WriteString("Each takes the parameter `fix`: true runs the corrected code of its lesson, which sits beside the bug in " +
				"the workload's file, and its finding clears (`inspect-cli lab` walks through them).\n\n")
			b.WriteString("| name | lesson | what it does | finding | what `fix` changes | parameters (default, range) |\n| --- | --- | --- | --- | --- | --- |\n")
		}
		for _, s := range reg.Specs() {
			if s.Kind != kind {
				continue
			}
			desc := s.Description
			if s.Caps != "" {
				desc += " Caps: " + s.Caps
			}
			if len(s.Figures) > 0 {
				var names []string
				for _, f := range s.Figures {
					names = append(names, "`"+f.Name+"`")
				}
				desc += " Figures (on /metrics as `inspectd_workload_<figure>`): " + strings.Join(names, ", ") + "."
			}
			var params []string
			for _, p := range s.Params {
				params = append(params, fmt.Sprintf("`%s` %s (%s)", p.Name, workload.FormatValue(p.Default), p.Allowed()))
			}
			if kind == workload.Healthy {
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Name, s.Lesson, escapeCell(desc), escapeCell(strings.Join(params, "; ")))
				continue
			}
			when := ""
			if s.ShowsAfterStop {
				when = " (once stopped)"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | `%s`%s | %s | %s |\n", s.Name, s.Lesson, escapeCell(desc), s.Rule, when,
				escapeCell(s.Fix), escapeCell(strings.Join(params, "; ")))
		}
	}
	return b.String()
}

func escapeCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
