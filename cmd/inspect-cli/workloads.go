package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

func newWorkloadsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workloads [list|start|stop]",
		Short: "List, start and stop the workloads of an inspectd daemon's lab",
		Long: `workloads controls the lab of an inspectd daemon: its catalog of concurrency
workloads, each a lesson in a healthy or a deliberately broken form.

  workloads [list] [target]                          the catalog, state and parameters
  workloads start NAME [target] [--param k=v ...]    start one (parameters as in list)
  workloads stop NAME [target]                       stop it

Errors answered by the daemon (an unknown workload or parameter, a value out of
bounds, already running) are printed as one line and exit 1.`,
		Example: `  inspect-cli workloads
  inspect-cli workloads start leak --param every=50ms --param max_leaked=500
  inspect-cli workloads stop leak
  inspect-cli workloads list 127.0.0.1:7777 --output json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return listWorkloads(cmd, e, args)
		},
	}
	list := &cobra.Command{
		Use:     "list [target]",
		Short:   "List the workloads with their state and parameters",
		Example: "  inspect-cli workloads list\n  inspect-cli workloads list --output json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return listWorkloads(cmd, e, args)
		},
	}
	var params []string
	start := &cobra.Command{
		Use:   "start NAME [target]",
		Short: "Start a workload, with optional parameters",
		Long: `start starts a workload of the lab. Each --param key=value sets one parameter;
the daemon checks names, types and bounds (see workloads list).`,
		Example: "  inspect-cli workloads start blocking-lock\n  inspect-cli workloads start leak --param every=50ms",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := map[string]any{}
			for _, kv := range params {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return failf(2, "--param %q: want key=value", kv)
				}
				p[k] = v
			}
			return controlWorkload(cmd, e, args, "start", func(lab *api.Client) (api.Workload, error) {
				return lab.StartWorkload(cmd.Context(), args[0], p)
			})
		},
	}
	start.Flags().StringArrayVar(&params, "param", nil, "parameter key=value (repeatable)")
	stop := &cobra.Command{
		Use:     "stop NAME [target]",
		Short:   "Stop a workload",
		Example: "  inspect-cli workloads stop leak",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return controlWorkload(cmd, e, args, "stop", func(lab *api.Client) (api.Workload, error) {
				return lab.StopWorkload(cmd.Context(), args[0])
			})
		},
	}
	cmd.AddCommand(list, start, stop)
	return cmd
}

func listWorkloads(cmd *cobra.Command, e *env, args []string) error {
	t, err := e.resolve(cmd.Context(), args, 0)
	if err != nil {
		return err
	}
	if t.lab == nil {
		return t.lacks("workloads", needLab)
	}
	ws, err := t.lab.Workloads(cmd.Context())
	if err != nil {
		return t.fail(err)
	}
	w := cmd.OutOrStdout()
	if e.output == "json" {
		return writeJSON(w, api.WorkloadList{Workloads: ws})
	}
	tw := table(w)
	fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tUPTIME\tOPS\tPANICS\tRESTARTS\tPARAMETERS")
	for i := range ws {
		wl := &ws[i]
		state, up := "stopped", "-"
		if wl.Running {
			state = "running"
			if !wl.Since.IsZero() {
				up = format.Duration(time.Since(wl.Since))
			}
		}
		if wl.LastError != "" {
			state += " (error)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", wl.Name, wl.Kind, state, up, wl.Operations, wl.Panics, wl.Restarts, paramString(wl.Params))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := range ws {
		if f := figureString(ws[i].Figures); f != "" {
			fmt.Fprintf(w, "%s figures: %s\n", ws[i].Name, f)
		}
	}
	return nil
}

// paramString formats parameters as k=v with their values in force.
func paramString(ps []api.Param) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Name + "=" + paramValue(p.Value)
	}
	return strings.Join(parts, " ")
}

// paramValue formats a value read from JSON: its numbers are float64, and
// an int parameter of 268435456 must not read 2.68435456e+08.
func paramValue(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func controlWorkload(cmd *cobra.Command, e *env, args []string, verb string, do func(lab *api.Client) (api.Workload, error)) error {
	t, err := e.resolve(cmd.Context(), args, 1)
	if err != nil {
		return err
	}
	if t.lab == nil {
		return t.lacks("workloads "+verb, needLab)
	}
	wl, err := do(t.lab)
	if err != nil {
		return t.fail(err)
	}
	if e.output == "json" {
		return writeJSON(cmd.OutOrStdout(), wl)
	}
	writeWorkload(cmd.OutOrStdout(), &wl)
	return nil
}

func writeWorkload(w io.Writer, wl *api.Workload) {
	state := "stopped"
	if wl.Running {
		state = "running"
	}
	fmt.Fprintf(w, "%s: %s (%s, lesson %s)\n", wl.Name, state, wl.Kind, wl.Lesson)
	if ran := ranString(wl.Params); ran != "" && !wl.Running {
		fmt.Fprintf(w, "ran with: %s\n", ran)
	} else if len(wl.Params) > 0 {
		fmt.Fprintf(w, "parameters: %s\n", paramString(wl.Params))
	}
	if f := figureString(wl.Figures); f != "" {
		fmt.Fprintf(w, "figures: %s\n", f)
	}
	if wl.LastError != "" {
		fmt.Fprintf(w, "last error: %s\n", wl.LastError)
	}
}

// ranString formats the parameters a stopped workload ran with.
func ranString(ps []api.Param) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.Ran != nil {
			parts = append(parts, p.Name+"="+paramValue(p.Ran))
		}
	}
	return strings.Join(parts, " ")
}

// figureString formats the figures a workload reports, sorted by name.
func figureString(figures map[string]float64) string {
	parts := make([]string, 0, len(figures))
	for _, k := range slices.Sorted(maps.Keys(figures)) {
		parts = append(parts, k+"="+figureOf(k, figures[k]))
	}
	return strings.Join(parts, " ")
}

// figure writes a number with three significant digits, whole from 100 on.
func figure(v float64) string {
	if v >= 100 || v <= -100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// figureOf writes a workload's figure: a duration for one in seconds.
func figureOf(name string, v float64) string {
	if strings.HasSuffix(name, "_seconds") {
		return format.Duration(time.Duration(v * float64(time.Second)))
	}
	return figure(v)
}
