package model

import (
	"fmt"
	"io"
	"maps"
	"math"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/stack"
)

// Labels between dumps: the goroutine profile (proto) lists every goroutine's
// stack with its labels, grouped by stack and label set, without stopping the
// world (about 2us per goroutine of concurrent work). It has no goroutine ids,
// so it is joined with the trace by stack: a goroutine whose stack maps to one
// label set in the profile gets that set. Stacks shared by goroutines with
// different labels stay unlabelled until the next dump.

// StackProfile is what a goroutine profile (or the goroutineleak profile) in
// proto form tells: its goroutines by stack, and the label set of each
// stack. Keys are StackKey's. A nil StackProfile tells nothing.
type StackProfile struct {
	// labels maps a key to the one label set seen with it, or to nil when
	// goroutines with that stack carry different sets.
	labels map[string]map[string]string
	counts map[string]int64 // goroutines per stack key
	total  int64            // goroutines in all
}

// ParseStackProfile reads a goroutine or goroutineleak profile in proto form
// (pprof.Lookup(name).WriteTo(w, 0), /debug/pprof/goroutine?debug=0): its
// goroutine count, and its stacks with their counts and label sets.
func ParseStackProfile(r io.Reader) (*StackProfile, error) {
	p, err := profile.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("parsing the goroutine profile: %w", err)
	}
	out := &StackProfile{labels: map[string]map[string]string{}, counts: map[string]int64{}}
	var key strings.Builder
	for _, s := range p.Sample {
		var n int64
		if len(s.Value) > 0 {
			// A count below zero is none; sums stop at the largest
			// int64 rather than wrap (a target may send anything).
			n = max(s.Value[0], 0)
		}
		out.total = addCount(out.total, n)
		key.Reset()
		for _, loc := range s.Location {
			// Lines lists inlined calls innermost first, like a traceback.
			for _, ln := range loc.Line {
				if ln.Function != nil {
					writeKeyFrame(&key, ln.Function.Name, int(ln.Line))
				}
			}
		}
		k := trimRuntimeKey(key.String())
		out.counts[k] = addCount(out.counts[k], n)
		labels := make(map[string]string, len(s.Label))
		for name, vs := range s.Label {
			if len(vs) > 0 {
				labels[name] = vs[0]
			}
		}
		// nil marks a stack already seen with different sets.
		if prev, seen := out.labels[k]; seen && (prev == nil || !maps.Equal(prev, labels)) {
			out.labels[k] = nil
			continue
		}
		out.labels[k] = labels
	}
	return out, nil
}

// addCount adds two counts of goroutines (0 or more), stopping at the
// largest int64.
func addCount(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Total is the number of goroutines in the profile.
func (p *StackProfile) Total() int64 {
	if p == nil {
		return 0
	}
	return p.total
}

// Count is the number of goroutines with stack key.
func (p *StackProfile) Count(key string) int64 {
	if p == nil {
		return 0
	}
	return p.counts[key]
}

// Labels returns the one label set of the goroutines with stack key; false
// when the profile does not list the stack or lists it with several sets.
func (p *StackProfile) Labels(key string) (map[string]string, bool) {
	if p == nil || key == "" {
		return nil, false
	}
	l, ok := p.labels[key]
	return l, ok && l != nil
}

// StackKey is the key of frames (top first) in a StackProfile.
func StackKey(frames []stack.Frame) string {
	var key strings.Builder
	for _, f := range frames {
		writeKeyFrame(&key, f.Func, f.Line)
	}
	return trimRuntimeKey(key.String())
}

func writeKeyFrame(b *strings.Builder, fn string, line int) {
	b.WriteString(fn)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(line))
	b.WriteByte('\n')
}

// trimRuntimeKey drops the runtime's own frames at the top of a stack key:
// the profile and the trace cut the parking machinery at different depths.
func trimRuntimeKey(k string) string {
	for strings.HasPrefix(k, "runtime.") {
		i := strings.IndexByte(k, '\n')
		if i < 0 {
			return k
		}
		k = k[i+1:]
	}
	return k
}
