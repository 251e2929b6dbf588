package workload

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var testSpecs = []ParamSpec{
	IntParam("workers", "worker goroutines", 4, 1, 64),
	FloatParam("ratio", "share", 0.5, 0, 1),
	DurationParam("interval", "tick", 10*time.Millisecond, time.Millisecond, time.Second),
	BoolParam("verbose", "log more", false),
	EnumParam("mode", "how", "fast", "fast", "slow"),
}

func TestResolveDefaults(t *testing.T) {
	p, err := Resolve("w", testSpecs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Int("workers") != 4 || p.Float("ratio") != 0.5 || p.Duration("interval") != 10*time.Millisecond ||
		p.Bool("verbose") || p.String("mode") != "fast" {
		t.Errorf("defaults: %v", p.Map())
	}
	m := p.Map()
	if m["interval"] != "10ms" {
		t.Errorf("wire form of a duration: %v", m["interval"])
	}
}

func TestResolveSources(t *testing.T) {
	// JSON numbers (UseNumber), YAML ints and command-line strings all resolve.
	var fromJSON map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"workers": 8, "ratio": 0.25, "interval": "5ms", "verbose": true, "mode": "slow"}`))
	dec.UseNumber()
	if err := dec.Decode(&fromJSON); err != nil {
		t.Fatal(err)
	}
	fromText, err := ParseAssignments([]string{"workers=8", "ratio=0.25", "interval=5ms", "verbose=true", "mode=slow"})
	if err != nil {
		t.Fatal(err)
	}
	fromYAML := map[string]any{"workers": 8, "ratio": 0.25, "interval": "5ms", "verbose": true, "mode": "slow"}
	for name, raw := range map[string]map[string]any{"json": fromJSON, "text": fromText, "yaml": fromYAML} {
		p, err := Resolve("w", testSpecs, raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Int("workers") != 8 || p.Float("ratio") != 0.25 || p.Duration("interval") != 5*time.Millisecond ||
			!p.Bool("verbose") || p.String("mode") != "slow" {
			t.Errorf("%s: %v", name, p.Map())
		}
	}
}

func TestResolveErrors(t *testing.T) {
	for _, c := range []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"workers": 0}, `parameter "workers": bad value "0": want int from 1 to 64`},
		{map[string]any{"workers": 65}, `want int from 1 to 64`},
		{map[string]any{"workers": 2.5}, `"workers": bad value "2.5"`},
		{map[string]any{"workers": "many"}, `"workers": bad value "many"`},
		{map[string]any{"ratio": "1.5"}, `want float from 0 to 1`},
		{map[string]any{"interval": "2s"}, `want duration from 1ms to 1s`},
		{map[string]any{"interval": 5}, `"interval": bad value "5"`},
		{map[string]any{"verbose": "maybe"}, `want true or false`},
		{map[string]any{"mode": "medium"}, `want one of fast, slow`},
		{map[string]any{"speed": 1}, `"speed": unknown parameter; known: workers, ratio, interval, verbose, mode`},
	} {
		_, err := Resolve("w", testSpecs, c.raw)
		var pe *ParamError
		if !errors.As(err, &pe) {
			t.Errorf("%v: error %v is not a *ParamError", c.raw, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "workload w: ") {
			t.Errorf("%v: error %q, want it to contain %q", c.raw, err, c.want)
		}
	}
	if _, err := ParseAssignments([]string{"novalue"}); err == nil {
		t.Error("ParseAssignments accepted an assignment without =")
	}
}

func TestRegisterRejectsBadSpecs(t *testing.T) {
	run := func(context.Context, *Env) error { return nil }
	for name, s := range map[string]Spec{
		"no name":         {Kind: Healthy, Run: run},
		"no run":          {Name: "x", Kind: Healthy},
		"no kind":         {Name: "x", Run: run},
		"default outside": {Name: "x", Kind: Healthy, Run: run, Params: []ParamSpec{IntParam("n", "n", 10, 1, 5)}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Register accepted it", name)
				}
			}()
			NewRegistry().Register(s)
		}()
	}
}
