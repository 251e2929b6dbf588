package tui

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

// The helpers below format the task model for people; the TUI and the
// one-shot commands of inspect-cli share them.

// Table returns a tabwriter for aligned columns; call Flush.
func Table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// ShortFrameIn is format.Frame in at most n runes: the function is
// clipped, not the file and line, which say where to look.
func ShortFrameIn(f api.Frame, n int) string {
	s := format.Frame(f)
	if f.File == "" || f.Function == "" || len([]rune(s)) <= n {
		return Clip(s, n)
	}
	at := " " + format.FileLine(f.File, f.Line)
	return Clip(format.Func(f.Function), max(1, n-len([]rune(at)))) + at
}

// LabelString formats labels as k=v pairs sorted by key.
func LabelString(l map[string]string) string { return api.LabelString(l) }

// WaitString is the WAIT column: "chan receive 3m" or "".
func WaitString(t *api.Task) string {
	if t.WaitReason == "" {
		return ""
	}
	if t.WaitMinutes > 0 {
		return fmt.Sprintf("%s %dm", t.WaitReason, t.WaitMinutes)
	}
	return t.WaitReason
}

// Clip shortens s to n runes with an ellipsis.
func Clip(s string, n int) string {
	r := []rune(s)
	if n <= 0 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// MatchTask reports whether t passes filter (api.Matcher).
func MatchTask(t *api.Task, filter string) bool { return api.Matcher(filter)(t) }

// WaitSite is the call that blocks: the first frame below the runtime's and
// sync's wait machinery (runtime.gopark, sync.(*Mutex).Lock, ...).
func WaitSite(stack []api.Frame) api.Frame {
	for _, f := range stack {
		fn := f.Function
		if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/") || strings.HasPrefix(fn, "sync.") || strings.HasPrefix(fn, "time.Sleep") {
			continue
		}
		return f
	}
	return api.Frame{}
}

// WakerFrame is the first frame of the waking stack outside the runtime and
// sync: the code that unlocked, sent or closed.
func WakerFrame(stack []api.Frame) string {
	for _, f := range stack {
		if !strings.HasPrefix(f.Function, "runtime.") && !strings.HasPrefix(f.Function, "internal/") && !strings.HasPrefix(f.Function, "sync.") {
			return format.Frame(f)
		}
	}
	if len(stack) > 0 {
		return format.Frame(stack[0])
	}
	return "-"
}

// WriteStack prints frames, one function and one file:line line each.
func WriteStack(w io.Writer, frames []api.Frame, indent string) {
	for _, f := range frames {
		fmt.Fprintf(w, "%s%s\n", indent, f.Function)
		if f.File != "" {
			fmt.Fprintf(w, "%s    %s:%d\n", indent, f.File, f.Line)
		}
	}
}

// WriteTask prints one task in detail: state and wait, site, creator and
// parent, labels, its numbers over the window with their share of the total,
// its histograms and its full stack. A non-empty noWindow is printed instead
// of the numbers, for tasks read from a goroutine dump. A window of 0 or less
// stands for a whole saved trace.
func WriteTask(w io.Writer, t *api.Task, noWindow string, window time.Duration) {
	state := t.State
	if t.Leaked {
		state += ", leaked (the goroutineleak profile proved it can never wake)"
	}
	if t.Locked {
		state += ", locked to thread"
	}
	fmt.Fprintf(w, "task %d  %s  %s\n", t.ID, t.Name, state)
	kv := Table(w)
	if t.WaitReason != "" {
		wait := t.WaitReason
		if t.WaitMinutes > 0 {
			wait += fmt.Sprintf(" for %d minute%s", t.WaitMinutes, map[bool]string{true: "s"}[t.WaitMinutes != 1])
		}
		fmt.Fprintf(kv, "wait\t%s\n", wait)
		if site := WaitSite(t.Stack()); site.Function != "" {
			fmt.Fprintf(kv, "wait site\t%s\n", format.Frame(site))
		}
	}
	fmt.Fprintf(kv, "location\t%s\n", format.Frame(t.Location))
	if t.CreatedBy.Function != "" {
		created := format.Frame(t.CreatedBy)
		if t.ParentID != 0 {
			created += fmt.Sprintf("  in goroutine %d (parent)", t.ParentID)
		}
		fmt.Fprintf(kv, "created by\t%s\n", created)
	}
	if len(t.Labels) > 0 {
		l := LabelString(t.Labels)
		if t.LabelsStale {
			l += "  (inherited from its creator: may be stale)"
		}
		fmt.Fprintf(kv, "labels\t%s\n", l)
	}
	if len(t.Warnings()) > 0 {
		fmt.Fprintf(kv, "findings\t%s\n", strings.Join(t.Warnings(), ", "))
	}
	kv.Flush()

	if noWindow != "" {
		fmt.Fprintln(w, "\nnote:", noWindow)
	} else {
		if window > 0 {
			fmt.Fprintf(w, "\nover the trace window (--window %s; less where the target was traced for less):\n", window)
		} else {
			fmt.Fprintln(w, "\nover the whole trace:")
		}
		writeStats(w, &t.Stats)
		WriteHistogram(w, "run times", t.RunTimes())
		WriteHistogram(w, "sched delays", t.SchedDelay())
	}
	if len(t.Stack()) > 0 {
		fmt.Fprintln(w, "\nstack:")
		WriteStack(w, t.Stack(), "  ")
	}
}

// WriteHistogram prints percentiles and a bar chart of the non-empty range
// of power-of-two buckets.
func WriteHistogram(w io.Writer, name string, h *api.Histogram) {
	if h == nil || h.Count == 0 {
		fmt.Fprintf(w, "\n%s: none in the window\n", name)
		return
	}
	fmt.Fprintf(w, "\n%s: n=%d  p50 %s  p90 %s  p99 %s  max %s\n", name, h.Count, format.Nanos(h.P50NS), format.Nanos(h.P90NS), format.Nanos(h.P99NS), format.Nanos(h.MaxNS))
	first, last := -1, -1
	var peak int64
	for i, c := range h.Buckets {
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
			peak = max(peak, c)
		}
	}
	if first < 0 {
		return
	}
	const width = 30
	tw := Table(w)
	for i := first; i <= last; i++ {
		c := h.Buckets[i]
		n := int(c * width / peak)
		if c > 0 && n == 0 {
			n = 1
		}
		fmt.Fprintf(tw, "  %s .. %s\t%s\t%d\n", format.Nanos(int64(1)<<i), format.Nanos(int64(1)<<(i+1)), strings.Repeat("█", n), c)
	}
	tw.Flush()
}

// writeStats prints a task's numbers over its window, each with its share
// of the total.
func writeStats(w io.Writer, s *api.TaskStats) {
	share := func(part int64) string { return format.Percent(float64(part) / float64(s.TotalNS)) }
	tw := Table(w)
	fmt.Fprintf(tw, "  total\t%s\t\n", format.Nanos(s.TotalNS))
	fmt.Fprintf(tw, "  busy\t%s\t%s\n", format.Nanos(s.BusyNS), share(s.BusyNS))
	fmt.Fprintf(tw, "  sched\t%s\t%s\n", format.Nanos(s.SchedNS), share(s.SchedNS))
	fmt.Fprintf(tw, "  idle\t%s\t%s\n", format.Nanos(s.IdleNS), share(s.IdleNS))
	for _, r := range slices.Sorted(maps.Keys(s.IdleByReason)) {
		fmt.Fprintf(tw, "    %s\t%s\t%s\n", r, format.Nanos(s.IdleByReason[r]), share(s.IdleByReason[r]))
	}
	fmt.Fprintf(tw, "  syscall\t%s\t%s\n", format.Nanos(s.SyscallNS), share(s.SyscallNS))
	fmt.Fprintf(tw, "  polls\t%d\t\n", s.Polls)
	fmt.Fprintf(tw, "  longest run\t%s\t\n", format.Nanos(s.LongestRunNS))
	tw.Flush()
}
