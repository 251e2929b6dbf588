package daemon

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// A value is how an option reads its setting and where it keeps it. The
// same value serves a flag, an environment variable and the config file.
type value interface {
	// reset sets the option's default.
	reset(st *state)
	// set parses text, a flag's or a variable's, into st. more says this is
	// a repeat of the flag on one command line (a list adds to itself
	// rather than replace what the file or the environment said). The
	// error says what is wrong and what is allowed, without the text.
	set(st *state, text string, more bool) error
	// decode sets the option from its node in the config file: a
	// *typeError when the node is of the wrong YAML type, else like set's.
	decode(st *state, n *yaml.Node) error
	// text is the value as a flag would take it ("" for none): the
	// defaults in -h and the README.
	text(st *state) string
	// want says what the option takes, in errors ("a number, from 0.01
	// to 4"), or "" for anything.
	want() string
	// allowed is what -h and the README add to the help: want without
	// what the value's name already says ("from 0.01 to 4").
	allowed() string
	// check reports a final value the option does not allow: its error
	// reads after the value ("want ...").
	check(st *state) error
	// quoted says the value shows quoted in errors (it is text).
	quoted() bool
	// isBool makes a flag that needs no value (--flight-recorder).
	isBool() bool
}

// A typeError is a config file value of the wrong YAML type: a list where
// a number goes, or text that no number reads as.
type typeError struct {
	node *yaml.Node // the node at fault, when it is not the option's own
	want string
}

func (e *typeError) Error() string { return "want " + e.want }

// A rule is what an option allows beyond what its type can hold, checked
// once every source is read: text says it for help and errors ("from 1s
// to 1h"), check reports a value outside it (errOutside: "want" and the
// option's want()).
type rule[T any] struct {
	text  string
	check func(T) error
}

var errOutside = errors.New("outside the allowed values")

func between[T cmp.Ordered](lo, hi T) rule[T] {
	return rule[T]{"from " + show(lo) + " to " + show(hi), func(v T) error {
		if v >= lo && v <= hi { // false for NaN
			return nil
		}
		return errOutside
	}}
}

func atLeast[T cmp.Ordered](lo T) rule[T] {
	return rule[T]{show(lo) + " or more", func(v T) error {
		if v >= lo {
			return nil
		}
		return errOutside
	}}
}

// above allows what is more than lo and at most hi.
func above[T cmp.Ordered](lo, hi T) rule[T] {
	return rule[T]{"above " + show(lo) + " and at most " + show(hi), func(v T) error {
		if v > lo && v <= hi {
			return nil
		}
		return errOutside
	}}
}

// offOrAtLeast allows 0, which turns a feature off, or lo or more.
func offOrAtLeast[T cmp.Ordered](lo T) rule[T] {
	var zero T
	return rule[T]{show(zero) + " (off) or " + show(lo) + " or more", func(v T) error {
		if v == zero || v >= lo {
			return nil
		}
		return errOutside
	}}
}

func oneOf(choices ...string) rule[string] {
	return rule[string]{orList(choices), func(v string) error {
		if slices.Contains(choices, v) {
			return nil
		}
		return errOutside
	}}
}

// sizeBetween bounds a number of bytes, said in MiB or GiB too.
func sizeBetween(lo, hi uint64) rule[uint64] {
	r := between(lo, hi)
	r.text = "from " + showSize(lo) + " to " + showSize(hi)
	return r
}

// show writes a bound as users write it: 1s, 10m, 100us, 0.01.
func show[T any](v T) string {
	switch v := any(v).(type) {
	case time.Duration:
		if v == 0 {
			return "0"
		}
		return showDuration(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// showDuration is d as a flag takes it, without the zero units Go's
// String adds: 1h, not 1h0m0s; 100us, not 100µs.
func showDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return strings.Replace(s, "µs", "us", 1)
}

func showSize(n uint64) string {
	for _, u := range []struct {
		name string
		size uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s (%d)", n/u.size, u.name, n)
		}
	}
	return strconv.FormatUint(n, 10)
}

// orList is "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// scalar is an option holding one value of type T.
type scalar[T any] struct {
	field  func(*state) *T
	def    T
	parse  func(string) (T, error) // its error says what is wrong: "not a number"
	format func(T) string
	noun   string // the type in errors: "a number"
	// example follows the noun with the default: "a duration such as 15s".
	example bool
	// typed: YAML has a type of its own for T (a number, a bool), so text
	// in the file that parse refuses is of the wrong type.
	typed   bool
	str     bool // text, shown quoted in errors
	boolean bool
	rule    rule[T]
}

func (s *scalar[T]) reset(st *state) { *s.field(st) = s.def }

func (s *scalar[T]) set(st *state, text string, _ bool) error {
	v, err := s.parse(text)
	if err != nil {
		if w := s.want(); w != "" {
			return fmt.Errorf("%v; want %s", err, w)
		}
		return err
	}
	*s.field(st) = v
	return nil
}

func (s *scalar[T]) decode(st *state, n *yaml.Node) error {
	want := s.want()
	if want == "" {
		want = "a single value"
	}
	if n.Kind != yaml.ScalarNode {
		return &typeError{want: want}
	}
	if n.ShortTag() == "!!null" {
		return nil // a key without a value leaves the setting as it was
	}
	if _, err := s.parse(n.Value); err != nil && s.typed {
		return &typeError{want: want}
	}
	return s.set(st, n.Value, false)
}

func (s *scalar[T]) text(st *state) string { return s.format(*s.field(st)) }

func (s *scalar[T]) want() string {
	noun := s.noun
	if s.example {
		if ex := s.format(s.def); ex != "" && ex != "0s" {
			noun += " such as " + ex
		}
	}
	switch {
	case noun == "":
		return s.rule.text
	case s.rule.text == "":
		return noun
	}
	return noun + ", " + s.rule.text
}

func (s *scalar[T]) allowed() string {
	if s.rule.text == "" && !s.typed && !s.example {
		return s.noun // a list of names: debug, info, warn or error
	}
	return s.rule.text
}

func (s *scalar[T]) check(st *state) error {
	if s.rule.check == nil {
		return nil
	}
	err := s.rule.check(*s.field(st))
	if err == errOutside {
		return fmt.Errorf("want %s", s.want())
	}
	return err
}

func (s *scalar[T]) quoted() bool { return s.str }
func (s *scalar[T]) isBool() bool { return s.boolean }

// The option kinds: each takes the field it sets, its default and its rule.

func str(field func(*state) *string, def string, r rule[string]) value {
	return &scalar[string]{field: field, def: def, str: true, rule: r,
		parse:  func(s string) (string, error) { return s, nil },
		format: func(s string) string { return s }}
}

func integer(field func(*state) *int, def int, r rule[int]) value {
	return &scalar[int]{field: field, def: def, noun: "a whole number", typed: true, rule: r,
		parse: func(s string) (int, error) {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			return n, numErr(err, "not a whole number")
		},
		format: strconv.Itoa}
}

func size(field func(*state) *uint64, def uint64, r rule[uint64]) value {
	return &scalar[uint64]{field: field, def: def, noun: "a number of bytes", typed: true, rule: r,
		parse: func(s string) (uint64, error) {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			return n, numErr(err, "not a whole number of bytes")
		},
		format: func(n uint64) string { return strconv.FormatUint(n, 10) }}
}

func float(field func(*state) *float64, def float64, r rule[float64]) value {
	return &scalar[float64]{field: field, def: def, noun: "a number", typed: true, rule: r,
		parse: func(s string) (float64, error) {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			return f, numErr(err, "not a number")
		},
		format: func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }}
}

func numErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, strconv.ErrRange):
		return errors.New("out of range")
	}
	return errors.New(what)
}

func duration(field func(*state) *time.Duration, def time.Duration, r rule[time.Duration]) value {
	return &scalar[time.Duration]{field: field, def: def, noun: "a duration", example: true, rule: r,
		parse: func(s string) (time.Duration, error) {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
					return 0, errors.New("a duration needs a unit")
				}
				return 0, errors.New("not a duration")
			}
			return d, nil
		},
		format: showDuration}
}

func boolean(field func(*state) *bool, def bool) value {
	return &scalar[bool]{field: field, def: def, noun: "true or false", typed: true, boolean: true,
		parse: func(s string) (bool, error) {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return false, errors.New("not a boolean")
			}
			return b, nil
		},
		format: strconv.FormatBool}
}

func level(field func(*state) *slog.Level, def slog.Level) value {
	return &scalar[slog.Level]{field: field, def: def, noun: "debug, info, warn or error",
		parse: func(s string) (slog.Level, error) {
			var l slog.Level
			if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
				return 0, errors.New("not a log level")
			}
			return l, nil
		},
		format: func(l slog.Level) string { return strings.ToLower(l.String()) }}
}

// list is a comma-separated list of names (a YAML list in the file).
type list struct {
	field   func(*state) *[]string
	example string // in errors: "busy-poll,deadlock"
}

func (l *list) reset(st *state) { *l.field(st) = nil }

func (l *list) set(st *state, text string, more bool) error {
	to := l.field(st)
	if !more {
		*to = nil
	}
	for _, n := range strings.Split(text, ",") {
		if n = strings.TrimSpace(n); n != "" {
			*to = append(*to, n)
		}
	}
	return nil
}

func (l *list) decode(st *state, n *yaml.Node) error {
	items, err := yamlList(n, "a list such as ["+strings.ReplaceAll(l.example, ",", ", ")+"] or a comma-separated string")
	if err != nil || items == nil {
		return err
	}
	return l.set(st, strings.Join(items, ","), false)
}

// yamlList reads a list of names in the file, written as a YAML list or
// as a comma-separated string; nil when the key has no value.
func yamlList(n *yaml.Node, want string) ([]string, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return nil, nil
	case n.Kind == yaml.ScalarNode:
		return []string{n.Value}, nil
	case n.Kind != yaml.SequenceNode:
		return nil, &typeError{want: want}
	}
	items := []string{}
	for _, it := range n.Content {
		if it = resolve(it); it.Kind != yaml.ScalarNode {
			return nil, &typeError{node: it, want: want}
		}
		items = append(items, it.Value)
	}
	return items, nil
}

func (l *list) text(st *state) string { return strings.Join(*l.field(st), ",") }
func (l *list) allowed() string       { return "" }
func (l *list) want() string          { return "" }
func (l *list) check(*state) error    { return nil }
func (l *list) quoted() bool          { return false }
func (l *list) isBool() bool          { return false }

// pairs is a set of key=value pairs, comma-separated and repeatable on the
// command line, a YAML mapping in the file. Each source adds to the pairs
// of the one before.
type pairs struct {
	field   func(*state) *map[string]string
	form    string // "key=value"
	example string // "env=lab"
}

func (p *pairs) reset(st *state) { *p.field(st) = map[string]string{} }

func (p *pairs) set(st *state, text string, _ bool) error {
	m := p.field(st)
	if *m == nil {
		*m = map[string]string{}
	}
	for _, kv := range strings.Split(text, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return fmt.Errorf("want %s, comma-separated or repeated, such as %s", p.form, p.example)
		}
		(*m)[k] = v
	}
	return nil
}

func (p *pairs) decode(st *state, n *yaml.Node) error {
	k, v, _ := strings.Cut(p.example, "=")
	want := fmt.Sprintf("a mapping such as {%s: %s}", k, v)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &typeError{want: want}
	}
	m := p.field(st)
	if *m == nil {
		*m = map[string]string{}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return &typeError{node: k, want: want}
		}
		if v.Kind != yaml.ScalarNode {
			return &typeError{node: v, want: want}
		}
		(*m)[k.Value] = v.Value
	}
	return nil
}

func (p *pairs) text(st *state) string {
	m := *p.field(st)
	var kvs []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kvs = append(kvs, k+"="+m[k])
	}
	return strings.Join(kvs, ",")
}

func (p *pairs) allowed() string    { return "" }
func (p *pairs) want() string       { return "" }
func (p *pairs) check(*state) error { return nil }
func (p *pairs) quoted() bool       { return false }
func (p *pairs) isBool() bool       { return false }

// workloadList is the workloads to run: names or sets (all, healthy,
// broken, none), comma-separated; in the file also a YAML list, or a
// mapping of exact names to their parameters.
type workloadList struct{ def []string }

func (w *workloadList) reset(st *state) { st.Workloads = slices.Clone(w.def) }

func (w *workloadList) set(st *state, text string, _ bool) error {
	names, err := expandWorkloads(text, st.reg)
	if err != nil {
		return err
	}
	st.Workloads = names
	return nil
}

func (w *workloadList) decode(st *state, n *yaml.Node) error {
	const want = "a list of workloads such as [hello, leak], or a mapping of workloads to their parameters such as {leak: {every: 50ms}}"
	if n.Kind != yaml.MappingNode {
		names, err := yamlList(n, want)
		if err != nil || names == nil {
			return err
		}
		return w.set(st, strings.Join(names, ","), false)
	}
	// Names that map to parameters are checked once the file is read, with
	// the parameters.
	st.Workloads = []string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return &typeError{node: k, want: want}
		}
		st.Workloads = append(st.Workloads, k.Value)
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			continue
		}
		if v.Kind != yaml.MappingNode {
			return &typeError{node: v, want: "a mapping of parameters such as {every: 50ms}"}
		}
		var params map[string]any
		if err := v.Decode(&params); err != nil {
			return &typeError{node: v, want: "a mapping of parameters such as {every: 50ms}"}
		}
		st.Params[k.Value] = params
	}
	slices.Sort(st.Workloads)
	st.Workloads = slices.Compact(st.Workloads)
	return nil
}

func (w *workloadList) text(st *state) string { return strings.Join(st.Workloads, ",") }
func (w *workloadList) allowed() string       { return "" }
func (w *workloadList) want() string          { return "" }
func (w *workloadList) check(*state) error    { return nil } // with the parameters, in validate
func (w *workloadList) quoted() bool          { return false }
func (w *workloadList) isBool() bool          { return false }

// param is one workload parameter, workload.name=value, set once the
// workloads to run are known.
type param struct{ workload, name, value string }

type paramValue struct{}

func (paramValue) reset(st *state) { st.pending = nil }

func (paramValue) set(st *state, text string, _ bool) error {
	key, v, ok := strings.Cut(text, "=")
	wl, name, ok2 := strings.Cut(key, ".")
	if !ok || !ok2 || wl == "" || name == "" {
		return fmt.Errorf("want workload.name=value, such as leak.every=50ms")
	}
	st.pending = append(st.pending, param{wl, name, v})
	return nil
}

func (paramValue) decode(*state, *yaml.Node) error { return errors.New("not in the config file") }
func (paramValue) text(*state) string              { return "" }
func (paramValue) want() string                    { return "" }
func (paramValue) allowed() string                 { return "" }
func (paramValue) check(*state) error              { return nil }
func (paramValue) quoted() bool                    { return false }
func (paramValue) isBool() bool                    { return false }
