package main

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/gops/goprocess"
	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/source/remote"
)

// psRow is one Go process of `ps`.
type psRow struct {
	PID       int    `json:"pid"`
	PPID      int    `json:"ppid"`
	Name      string `json:"name"`
	GoVersion string `json:"go_version"`
	Path      string `json:"path"`
	// The agents found through their port files: the inspectd agent's
	// address and the gops agent's; "" when none.
	Agent     string `json:"inspectd_agent,omitempty"`
	GopsAgent string `json:"gops_agent,omitempty"`
}

func newPsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "ps",
		Short: "List the Go processes on this machine, with their inspectd or gops agent",
		Long: `ps lists the Go programs running on this machine, as gops does: their PID, parent
PID, name, the Go version they were built with, the path of their executable, and
AGENT: the address of inspectd itself or of the inspectd agent they embed
("inspectd ADDR", from the port file in the user config dir's inspectd/agents/),
of their gops agent ("gops ADDR", from gops' port file in $GOPS_CONFIG_DIR or the
user config dir's gops/), or - for none. Processes of other users may be left out.

A PID with an agent is a target of the other commands: the inspectd agent gives
the full model; a gops agent gives the model computed here from its 5s trace
and its stack dumps.`,
		Example: `  inspect-cli ps
  inspect-cli ps --output json
  inspect-cli top 4242`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rows := goProcesses()
			w := cmd.OutOrStdout()
			if e.output == "json" {
				if rows == nil {
					rows = []psRow{}
				}
				return writeJSON(w, rows)
			}
			tw := table(w)
			fmt.Fprintln(tw, "PID\tPPID\tNAME\tGO VERSION\tPATH\tAGENT")
			for _, r := range rows {
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", r.PID, r.PPID, r.Name, r.GoVersion, r.Path, r.agentColumn())
			}
			return tw.Flush()
		},
	}
}

// goProcesses lists the Go processes with their agents, by PID.
func goProcesses() []psRow {
	var rows []psRow
	for _, p := range goprocess.FindAll() {
		r := psRow{PID: p.PID, PPID: p.PPID, Name: p.Exec, GoVersion: p.BuildVersion, Path: p.Path}
		pid := strconv.Itoa(p.PID)
		if addr, ok := agentAddr(pid); ok {
			r.Agent = addr
		}
		if addr, _, err := remote.GopsAddr(p.PID); err == nil {
			r.GopsAgent = addr
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b psRow) int { return cmp.Compare(a.PID, b.PID) })
	return rows
}

func (r psRow) agentColumn() string {
	var a []string
	if r.Agent != "" {
		a = append(a, "inspectd "+r.Agent)
	}
	if r.GopsAgent != "" {
		a = append(a, "gops "+r.GopsAgent)
	}
	if len(a) == 0 {
		return "-"
	}
	return strings.Join(a, ", ")
}
