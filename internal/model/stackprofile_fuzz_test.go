package model

import (
	"bytes"
	"compress/gzip"
	"maps"
	"math"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// profileBytes writes p as a target serves it (gzip'd proto).
func profileBytes(f *testing.F, p *profile.Profile) []byte {
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzParseStackProfile reads any goroutine or goroutineleak profile a
// target may send: no panic; an error that says it was the goroutine
// profile that did not parse; counts that are never negative and add up to
// the total; a label set only for a stack whose goroutines all carry it;
// and the same answer for the profile written back out.
//
//	go test -run '^$' -fuzz '^FuzzParseStackProfile$' -fuzztime 60s ./internal/model
func FuzzParseStackProfile(f *testing.F) {
	for _, name := range []string{"goroutine", "goroutineleak"} {
		if p := pprof.Lookup(name); p != nil {
			var buf bytes.Buffer
			if err := p.WriteTo(&buf, 0); err != nil {
				f.Fatal(err)
			}
			f.Add(buf.Bytes())
			// Uncompressed, which profile.Parse takes too.
			if zr, err := gzip.NewReader(bytes.NewReader(buf.Bytes())); err == nil {
				var raw bytes.Buffer
				if _, err := raw.ReadFrom(zr); err == nil {
					f.Add(raw.Bytes())
				}
			}
		}
	}
	// Two stacks, one of them twice with different labels, a runtime frame
	// on top, an inlined call, and counts a hostile target might send.
	fn := func(id uint64, name string) *profile.Function {
		return &profile.Function{ID: id, Name: name, SystemName: name, Filename: "/src/" + name + ".go"}
	}
	park, serve, handle := fn(1, "runtime.gopark"), fn(2, "example.com/app.serve"), fn(3, "example.com/app.handle")
	locs := []*profile.Location{
		{ID: 1, Line: []profile.Line{{Function: park, Line: 400}}},
		{ID: 2, Line: []profile.Line{{Function: handle, Line: 7}, {Function: serve, Line: 40}}},
		{ID: 3, Line: []profile.Line{{Function: serve, Line: 41}}},
	}
	mk := func(values ...int64) *profile.Profile {
		p := &profile.Profile{
			SampleType: []*profile.ValueType{{Type: "goroutine", Unit: "count"}},
			PeriodType: &profile.ValueType{Type: "goroutine", Unit: "count"}, Period: 1,
			Function: []*profile.Function{park, serve, handle}, Location: locs,
		}
		for i, v := range values {
			s := &profile.Sample{Location: locs[:2], Value: []int64{v}, Label: map[string][]string{"workload": {"lab"}, "role": {string(rune('a' + i))}}}
			if i%2 == 1 {
				s.Location = locs[2:]
				s.Label = nil
			}
			p.Sample = append(p.Sample, s)
		}
		return p
	}
	f.Add(profileBytes(f, mk(3, 2, 5)))
	f.Add(profileBytes(f, mk(-4, math.MaxInt64, math.MaxInt64)))
	f.Add([]byte("not a profile"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		sp, err := ParseStackProfile(bytes.NewReader(in))
		if err != nil {
			if sp != nil || !strings.HasPrefix(err.Error(), "parsing the goroutine profile: ") {
				t.Fatalf("%v (and %v)", err, sp)
			}
			return
		}
		checkStackProfile(t, sp)
		// The same profile, written back out by the pprof package.
		p, err := profile.ParseData(in)
		if err != nil {
			t.Fatalf("ParseStackProfile read what profile.ParseData does not: %v", err)
		}
		var out bytes.Buffer
		if err := p.Write(&out); err != nil {
			t.Fatalf("writing the profile back: %v", err)
		}
		again, err := ParseStackProfile(&out)
		if err != nil {
			t.Fatalf("the profile written back does not parse: %v", err)
		}
		if again.total != sp.total || !maps.Equal(again.counts, sp.counts) || !maps.EqualFunc(again.labels, sp.labels, maps.Equal) {
			t.Fatalf("written back, the profile reads differently:\n%d %v %v\n%d %v %v", sp.total, sp.counts, sp.labels, again.total, again.counts, again.labels)
		}
	})
}

func checkStackProfile(t *testing.T, sp *StackProfile) {
	t.Helper()
	var sum int64
	for k, n := range sp.counts {
		if n < 0 {
			t.Fatalf("stack %q: %d goroutines", k, n)
		}
		if strings.HasPrefix(k, "runtime.") {
			t.Fatalf("stack key %q starts with a runtime frame", k)
		}
		if _, ok := sp.labels[k]; !ok {
			t.Fatalf("stack %q counted, but not in the label sets", k)
		}
		if sp.Count(k) != n {
			t.Fatalf("Count(%q) = %d, want %d", k, sp.Count(k), n)
		}
		sum = satAdd(sum, n)
	}
	if sp.Total() != sum || sp.Total() < 0 {
		t.Fatalf("total %d, stacks add up to %d", sp.Total(), sum)
	}
	for k, l := range sp.labels {
		got, ok := sp.Labels(k)
		if ok != (l != nil && k != "") || ok && !maps.Equal(got, l) {
			t.Fatalf("Labels(%q) = %v, %v; kept %v", k, got, ok, l)
		}
	}
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
