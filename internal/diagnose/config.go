package diagnose

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Unit says how a threshold's value reads and prints.
type Unit int

const (
	Count    Unit = iota // a plain number
	Duration             // nanoseconds; written as a Go duration (3s, 50ms)
	Ratio                // a share, 0 to 1
	Bytes                // bytes
	PerSec               // a rate per second
)

// Threshold is one tunable number of a rule.
type Threshold struct {
	Name    string
	Help    string
	Unit    Unit
	Default float64
}

// Format writes v in the threshold's unit.
func (t Threshold) Format(v float64) string {
	switch t.Unit {
	case Duration:
		return time.Duration(v).String()
	case Bytes:
		return fmt.Sprintf("%.0f", v)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func (t Threshold) parse(s string) (float64, error) {
	if t.Unit == Duration {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("want a positive duration such as 3s")
		}
		return float64(d), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("want a number >= 0")
	}
	if t.Unit == Ratio && v > 1 {
		return 0, fmt.Errorf("want a share from 0 to 1")
	}
	return v, nil
}

// Config selects the rules and sets their thresholds. The zero value runs
// every rule with its default thresholds.
type Config struct {
	// Allow lists the only rules to run (empty: all); Deny the rules never
	// to run, like tokio-console's --allow and --warn lints.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	// Thresholds override defaults, keyed rule.name ("goroutine-leak.stuck_for"),
	// with values as text in the threshold's unit ("3s", "10", "0.5").
	Thresholds map[string]string `yaml:"thresholds"`
	// Linger is how long a finding stays after its evidence is gone
	// (default 5s).
	Linger time.Duration `yaml:"linger"`
	// History is how far back the engine remembers snapshots (default 60s).
	History time.Duration `yaml:"history"`

	// The configured values, by the threshold they override (Validate
	// fills it in).
	values map[*Threshold]float64
}

func (c *Config) defaults() {
	if c.Linger <= 0 {
		c.Linger = 5 * time.Second
	}
	if c.History <= 0 {
		c.History = 60 * time.Second
	}
}

// Rules lists the rule ids, in the order they run.
func Rules() []string {
	ids := make([]string, len(allRules))
	for i, r := range allRules {
		ids[i] = r.id
	}
	return ids
}

func findRule(id string) *rule {
	for _, r := range allRules {
		if r.id == id {
			return r
		}
	}
	return nil
}

// Validate checks rule ids and threshold values, naming what is wrong.
func (c *Config) Validate() error {
	for _, list := range []struct {
		name string
		ids  []string
	}{{"allow", c.Allow}, {"deny", c.Deny}} {
		for _, id := range list.ids {
			if findRule(id) == nil {
				return fmt.Errorf("diagnose %s: no rule %q (rules: %s)", list.name, id, strings.Join(Rules(), ", "))
			}
		}
	}
	c.values = map[*Threshold]float64{}
	for key, v := range c.Thresholds {
		id, name, ok := strings.Cut(key, ".")
		r := findRule(id)
		if !ok || r == nil {
			return fmt.Errorf("diagnose threshold %q: want rule.name with a rule of: %s", key, strings.Join(Rules(), ", "))
		}
		t := r.thresholds.lookup(name)
		if t == nil {
			var names []string
			for _, th := range r.thresholds.all() {
				names = append(names, th.Name)
			}
			return fmt.Errorf("diagnose threshold %q: rule %s has no threshold %q (it has: %s)", key, id, name, strings.Join(names, ", "))
		}
		f, err := t.parse(v)
		if err != nil {
			return fmt.Errorf("diagnose threshold %s=%q: %v", key, v, err)
		}
		c.values[t] = f
	}
	if c.Linger < 0 || c.History < 0 {
		return fmt.Errorf("diagnose linger and history: want durations >= 0")
	}
	return nil
}

// SetThreshold parses one "rule.name=value" setting, as a flag gives it.
func (c *Config) SetThreshold(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want rule.name=value", kv)
	}
	if c.Thresholds == nil {
		c.Thresholds = map[string]string{}
	}
	c.Thresholds[k] = v
	return nil
}

func (c *Config) enabled(id string) bool {
	if slices.Contains(c.Deny, id) {
		return false
	}
	return len(c.Allow) == 0 || slices.Contains(c.Allow, id)
}

// value returns a threshold, configured or default.
func (c *Config) value(t *Threshold) float64 {
	if v, ok := c.values[t]; ok {
		return v
	}
	return t.Default
}

// RuleDoc describes one rule for docs and help.
type RuleDoc struct {
	ID, Help, Lesson string
	Thresholds       []Threshold
}

// Docs describes every rule, in the order they run.
func Docs() []RuleDoc {
	docs := make([]RuleDoc, len(allRules))
	for i, r := range allRules {
		var ths []Threshold
		for _, t := range r.thresholds.all() {
			ths = append(ths, *t)
		}
		docs[i] = RuleDoc{ID: r.id, Help: r.help, Lesson: r.lesson, Thresholds: ths}
	}
	return docs
}

// RulesMarkdown is the README's table of the rules and their thresholds.
func RulesMarkdown() string {
	var b strings.Builder
	b.WriteString("| rule | finds | lesson | thresholds (default) |\n| --- | --- | --- | --- |\n")
	for _, d := range Docs() {
		var th []string
		for _, t := range d.Thresholds {
			th = append(th, fmt.Sprintf("`%s` %s: %s", t.Name, t.Format(t.Default), t.Help))
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", d.ID, d.Help, d.Lesson, strings.Join(th, "; "))
	}
	return b.String()
}
