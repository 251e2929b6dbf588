//go:build linux

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inspectd/inspectd/internal/costbench/target"
)

// table is a heading, lines of text under it, and rows of cells.
type table struct {
	title string
	notes []string
	head  []string
	rows  [][]string
}

// print writes t as aligned text, or as Markdown.
func (b *bench) print(t table) {
	w := b.stdout
	if b.opts.markdown {
		fmt.Fprintf(w, "### %s\n\n", t.title)
		for _, n := range t.notes {
			fmt.Fprintf(w, "%s\n\n", n)
		}
		if len(t.head) == 0 {
			return
		}
		line := func(cells []string) {
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		}
		line(t.head)
		sep := make([]string, len(t.head))
		for i := range sep {
			sep[i] = "---"
		}
		line(sep)
		for _, r := range t.rows {
			line(r)
		}
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "%s\n", t.title)
	for _, n := range t.notes {
		fmt.Fprint(w, wrap(strings.ReplaceAll(n, "`", ""), "  ", 100))
	}
	if len(t.head) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  %s\n", strings.Join(t.head, "\t"))
		for _, r := range t.rows {
			fmt.Fprintf(tw, "  %s\n", strings.Join(r, "\t"))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
}

// wrap breaks s into lines of at most width (words permitting), the first
// starting with indent, the others indented two more.
func wrap(s, indent string, width int) string {
	var b strings.Builder
	line, lead := indent, indent
	for _, word := range strings.Fields(s) {
		if len(line) > len(lead) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			lead = indent + "  "
			line = lead
		}
		if len(line) > len(lead) {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return b.String()
}

// command is the command line that ran, for the tables' headings.
func (b *bench) command() string {
	parts := []string{"go run ./cmd/costbench"}
	for _, a := range b.opts.args {
		if a == "" || strings.ContainsAny(a, " \t'\"$&;|<>*?()[]{}\\`!#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// configurations say what each configuration of this run ran.
func (b *bench) configurations() string {
	what := map[string]string{
		cfgNone:    "`none`, the workload alone",
		cfgIdle:    "`agent-idle`, with `" + b.agentCall() + "` (the agent with its " + b.agentOptions() + ", nothing switched off), nobody asking",
		cfgWatched: "`agent-watched`, with the agent (" + b.agentOptions() + ") and a client following `GET /api/v1/watch?" + watchQuery + "` as `inspect-cli top` does",
		cfgPprof:   "`pprof`, with net/http/pprof on a loopback port, nobody asking",
	}
	var parts []string
	for _, c := range b.opts.configs {
		parts = append(parts, what[c])
	}
	return "Configurations: " + strings.Join(parts, "; ") + "."
}

func (b *bench) printHeader() {
	host, _ := os.Hostname()
	t := table{title: "costbench", notes: []string{
		"Command: `" + b.command() + "`",
		fmt.Sprintf("Date %s, %s, %s %s/%s, %d CPUs, GOMAXPROCS %d, host %s, load average %s at the start.",
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), revision(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
			runtime.NumCPU(), runtime.GOMAXPROCS(0), host, loadAverage()),
		b.configurations(),
	}}
	if slices.ContainsFunc(b.opts.workloads, func(w string) bool { return w != target.Parked }) {
		t.notes = append(t.notes,
			fmt.Sprintf("Throughput workloads: each configuration %s, alternating (%s), each run a fresh target, %v of warm-up, then %v measured. Per configuration: median [min-max] of the runs; ratio: the median over none's median (below 1 for operations, above 1 for latency, is a cost). RSS: the target's VmRSS at the end of the measurement, and how fast it grew during it (medians). Watch stream: bytes a second and updates during the measurement (medians), and in each run: how long after connecting the first update came, and the first with a window of trace (before it, updates say that the agent records and has none yet; never: not within the warm-up and measurement), and the longest time without an update, from connecting to the end of the measurement.",
				times(b.opts.repeats), strings.Join(b.opts.configs, ", "), b.opts.warmup, b.opts.measure),
			fmt.Sprintf("Spin calibrated at the start: a pool task of %v is %d rounds, a request of %v %d rounds.", b.opts.task, b.taskIters, b.opts.handler, b.handlerIters))
	}
	if b.opts.markdown {
		t.title = "costbench: the cost of inspection"
	}
	b.print(t)
}

// revision is the commit the binary was built from, if known.
func revision() string {
	var rev, dirty string
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = " (modified)"
				}
			}
		}
	}
	if rev == "" { // go run does not stamp the binary
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
		if err != nil {
			return "commit unknown"
		}
		rev = strings.TrimSpace(string(out))
		if out, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
			dirty = " (modified)"
		}
	}
	return "commit " + rev[:min(len(rev), 12)] + dirty
}

// loadAverage is the machine's 1, 5 and 15 minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func workloadTitle(b *bench, w string) string {
	switch w {
	case target.Pingpong:
		return fmt.Sprintf("pingpong: %d goroutine pairs bouncing a value over unbuffered channels; an operation is a round trip", b.opts.pairs)
	case target.Pool:
		return fmt.Sprintf("pool: GOMAXPROCS workers taking tasks of %v of CPU from a channel one producer fills; an operation is a task", b.opts.task)
	case target.HTTP:
		return fmt.Sprintf("http: a loopback HTTP server whose handler spins %v, driven by %d closed-loop keep-alive clients in the driver; an operation is a request", b.opts.handler, b.opts.clients)
	}
	return w
}

func (b *bench) printThroughput(t *throughput, loadBefore string) {
	tab := table{title: workloadTitle(b, t.workload), notes: []string{
		"Command: `" + b.command() + "`",
		fmt.Sprintf("Each configuration %s, alternating; %v warm-up, %v measured; agent with %s; load average %s before, %s after.",
			times(b.opts.repeats), b.opts.warmup, b.opts.measure, b.agentOptions(), loadBefore, loadAverage()),
	}}
	tab.head = []string{"configuration", "ops per CPU-second", "ratio", "ops per second", "ratio", "target CPU (cores)", "RSS at the end (growth)"}
	isHTTP := t.workload == target.HTTP
	if isHTTP {
		tab.head = append(tab.head, "p99 latency", "ratio")
	}
	tab.head = append(tab.head, "watch stream")
	base := t.runs[cfgNone]
	for _, cfg := range b.opts.configs {
		runs := t.runs[cfg]
		get := func(f func(runResult) float64) []float64 {
			var v []float64
			for _, r := range runs {
				v = append(v, f(r))
			}
			return v
		}
		perCPU := get(func(r runResult) float64 { return r.perCPU })
		perWall := get(func(r runResult) float64 { return r.perWall })
		cores := get(func(r runResult) float64 { return r.cores })
		row := []string{cfg,
			span(median(perCPU), 0, count) + minMax(perCPU, count), ratio(perCPU, base, func(r runResult) float64 { return r.perCPU }),
			span(median(perWall), 0, count) + minMax(perWall, count), ratio(perWall, base, func(r runResult) float64 { return r.perWall }),
			fmt.Sprintf("%.2f", median(cores)) + minMax(cores, func(v float64) string { return fmt.Sprintf("%.2f", v) }),
			rssText(get(func(r runResult) float64 { return r.rss }), get(func(r runResult) float64 { return r.growth })),
		}
		if isHTTP {
			p99 := get(func(r runResult) float64 { return float64(r.p99) })
			dur := func(v float64) string { return duration(time.Duration(v)) }
			row = append(row, dur(median(p99))+minMax(p99, dur), ratio(p99, base, func(r runResult) float64 { return float64(r.p99) }))
		}
		watch := "-"
		if cfg == cfgWatched {
			rate := get(func(r runResult) float64 { return r.watchRate })
			updates := get(func(r runResult) float64 { return float64(r.watchUpdates) })
			traced := get(func(r runResult) float64 { return r.watchTraced })
			watch = fmt.Sprintf("%s/s, %.0f updates, %.2g%% of each %s window traced", byteSize(median(rate)), median(updates), median(traced)*100, duration(watchWindow))
			after := func(d time.Duration) string {
				if d == 0 {
					return "never"
				}
				return duration(d)
			}
			var firsts, windows, gaps []string
			for _, r := range runs {
				firsts = append(firsts, after(r.watchFirst))
				windows = append(windows, after(r.watchWindow))
				gaps = append(gaps, duration(r.watchGap))
			}
			watch += "; first after " + strings.Join(firsts, ", ") + "; first with a window after " + strings.Join(windows, ", ") +
				"; longest without an update " + strings.Join(gaps, ", ")
		}
		row = append(row, watch)
		tab.rows = append(tab.rows, row)
	}
	b.print(tab)
}

func (b *bench) printParked(p *parked, loadBefore string) {
	tab := table{title: fmt.Sprintf("parked %d: goroutines waiting on channels, half of them labelled with pprof.Do", p.n), notes: []string{
		"Command: `" + b.command() + "`",
		fmt.Sprintf("Each target waits %v after its goroutines park (at rest), then is asked. Agent (%s, one target): the first `GET /api/v1/snapshot?%s`, then one a second for %v, then `GET /api/v1/watch?%s` followed for %v; watch only: another fresh target with the agent, asked nothing but that watch, for %v. pprof: net/http/pprof, /debug/fgprof and a gops agent served, a fresh target for each kind of request, asked %s a second apart. Pauses: stop-the-world pauses the target suffered over the requests (runtime/metrics /sched/pauses/total/{gc,other}:seconds; the longest is the upper bound of the highest bucket that gained counts). RSS added: VmRSS after the requests against at rest. Load average %s before, %s after.",
			b.opts.warmup, b.agentOptions(), snapshotQuery, b.opts.steady, watchQuery, b.opts.watch, b.opts.watch, times(b.opts.parkedReps), loadBefore, loadAverage()),
	}}
	if r := p.agentRest; r != nil {
		tab.notes = append(tab.notes, fmt.Sprintf("At rest with the agent: %d goroutines, RSS %s, %.3f cores.", r.goroutines, byteSize(float64(r.rss)), r.cores))
	}
	if r := p.pprofRest; r != nil {
		tab.notes = append(tab.notes, fmt.Sprintf("At rest with pprof: %d goroutines, RSS %s, %.3f cores.", r.goroutines, byteSize(float64(r.rss)), r.cores))
	}
	tab.head = []string{"request", "time", "bytes", "pauses (longest)", "RSS added", "note"}
	for _, r := range p.rows {
		times := make([]float64, len(r.times))
		for i, t := range r.times {
			times[i] = float64(t)
		}
		bytes := make([]float64, len(r.bytes))
		for i, n := range r.bytes {
			bytes[i] = float64(n)
		}
		dur := func(v float64) string { return duration(time.Duration(v)) }
		size := func(v float64) string { return byteSize(v) }
		cells := []string{r.what, "-", "-", pauseText(r.pauses), "+" + byteSize(float64(r.rssAdded)), r.note}
		if len(times) > 0 {
			cells[1] = dur(median(times)) + minMax(times, dur)
		}
		if len(bytes) > 0 {
			cells[2] = size(median(bytes)) + minMax(bytes, size)
		}
		if r.rssAdded < 0 {
			cells[4] = "-" + byteSize(float64(-r.rssAdded))
		}
		tab.rows = append(tab.rows, cells)
	}
	b.print(tab)
}

// rssText is the median RSS with its range, and the median growth a second.
func rssText(rss, growth []float64) string {
	g := median(growth)
	sign := "+"
	if g < 0 {
		sign, g = "-", -g
	}
	return byteSize(median(rss)) + minMax(rss, byteSize) + " (" + sign + byteSize(g) + "/s)"
}

// times is "once", "twice" or "N times".
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return strconv.Itoa(n) + " times"
}

func pauseText(p pauses) string {
	if p.count == 0 {
		return "none"
	}
	return fmt.Sprintf("%d (≤ %s)", p.count, duration(time.Duration(p.longest*1e9)))
}

// median of v (the mean of the middle two when even).
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// minMax is " [min-max]" of v, or nothing for fewer than two values or
// when they all read the same.
func minMax(v []float64, f func(float64) string) string {
	if len(v) < 2 {
		return ""
	}
	lo, hi := f(slices.Min(v)), f(slices.Max(v))
	if lo == hi {
		return ""
	}
	return " [" + lo + "-" + hi + "]"
}

// span is lo-hi, or lo alone when hi is 0 or reads the same.
func span(lo, hi float64, f func(float64) string) string {
	if hi == 0 || f(hi) == f(lo) {
		return f(lo)
	}
	return f(lo) + "-" + f(hi)
}

// ratio is the median of v over the median of base's f, or "-".
func ratio(v []float64, base []runResult, f func(runResult) float64) string {
	var bv []float64
	for _, r := range base {
		bv = append(bv, f(r))
	}
	m, bm := median(v), median(bv)
	if len(bv) == 0 || bm == 0 || math.IsNaN(m) {
		return "-"
	}
	return fmt.Sprintf("%.2f", m/bm)
}

// count writes v with three significant digits and k or M.
func count(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 1e6:
		return sig3(v/1e6) + "M"
	case v >= 1e3:
		return sig3(v/1e3) + "k"
	}
	return sig3(v)
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// duration writes d with three significant digits.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d >= time.Second:
		return sig3(d.Seconds()) + " s"
	case d >= time.Millisecond:
		return sig3(float64(d)/1e6) + " ms"
	case d >= time.Microsecond:
		return sig3(float64(d)/1e3) + " µs"
	}
	return strconv.FormatInt(int64(d), 10) + " ns"
}

// byteSize writes n bytes in B, kB, MB or GB (powers of 1000).
func byteSize(n float64) string {
	switch {
	case math.IsNaN(n):
		return "-"
	case n >= 1e9:
		return sig3(n/1e9) + " GB"
	case n >= 1e6:
		return sig3(n/1e6) + " MB"
	case n >= 1e3:
		return sig3(n/1e3) + " kB"
	}
	return strconv.FormatFloat(n, 'f', 0, 64) + " B"
}
