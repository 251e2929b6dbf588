package workload

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ParamType is the type of a workload parameter.
type ParamType string

const (
	TypeInt      ParamType = "int"
	TypeFloat    ParamType = "float"
	TypeDuration ParamType = "duration"
	TypeBool     ParamType = "bool"
	TypeString   ParamType = "string"
)

// ParamSpec declares one parameter of a workload: its type, default and bounds.
// Build them with IntParam, FloatParam, DurationParam, BoolParam and EnumParam.
type ParamSpec struct {
	Name    string
	Help    string
	Type    ParamType
	Default any      // int, float64, time.Duration, bool or string
	Min     any      // inclusive lower bound, nil when unbounded
	Max     any      // inclusive upper bound, nil when unbounded
	Choices []string // allowed values of a string parameter
}

// IntParam declares an integer parameter within [lo, hi].
func IntParam(name, help string, def, lo, hi int) ParamSpec {
	return ParamSpec{Name: name, Help: help, Type: TypeInt, Default: def, Min: lo, Max: hi}
}

// FloatParam declares a floating-point parameter within [lo, hi].
func FloatParam(name, help string, def, lo, hi float64) ParamSpec {
	return ParamSpec{Name: name, Help: help, Type: TypeFloat, Default: def, Min: lo, Max: hi}
}

// DurationParam declares a duration parameter within [lo, hi].
func DurationParam(name, help string, def, lo, hi time.Duration) ParamSpec {
	return ParamSpec{Name: name, Help: help, Type: TypeDuration, Default: def, Min: lo, Max: hi}
}

// BoolParam declares a boolean parameter.
func BoolParam(name, help string, def bool) ParamSpec {
	return ParamSpec{Name: name, Help: help, Type: TypeBool, Default: def}
}

// EnumParam declares a string parameter that takes one of choices.
func EnumParam(name, help, def string, choices ...string) ParamSpec {
	return ParamSpec{Name: name, Help: help, Type: TypeString, Default: def, Choices: choices}
}

// Allowed describes the values the parameter accepts, for error messages and help.
func (p ParamSpec) Allowed() string {
	switch p.Type {
	case TypeInt, TypeFloat, TypeDuration:
		return fmt.Sprintf("%s from %s to %s", p.Type, FormatValue(p.Min), FormatValue(p.Max))
	case TypeBool:
		return "true or false"
	case TypeString:
		return "one of " + strings.Join(p.Choices, ", ")
	}
	return string(p.Type)
}

// ParamError reports a parameter that was unknown or out of bounds.
type ParamError struct {
	Workload string
	Param    string
	Value    string
	Allowed  string
}

func (e *ParamError) Error() string {
	if e.Allowed == "" {
		return fmt.Sprintf("workload %s: parameter %q: %s", e.Workload, e.Param, e.Value)
	}
	return fmt.Sprintf("workload %s: parameter %q: bad value %q: want %s", e.Workload, e.Param, e.Value, e.Allowed)
}

// Params holds the validated values of a workload's parameters. Every declared
// parameter has a value: its default unless it was set.
type Params struct {
	values map[string]any
}

// Int returns an int parameter. It panics on a name the workload did not
// declare, which is a programming error caught by the catalog tests.
func (p Params) Int(name string) int { return p.get(name).(int) }

// Float returns a float parameter.
func (p Params) Float(name string) float64 { return p.get(name).(float64) }

// Duration returns a duration parameter.
func (p Params) Duration(name string) time.Duration { return p.get(name).(time.Duration) }

// Bool returns a bool parameter.
func (p Params) Bool(name string) bool { return p.get(name).(bool) }

// String returns a string parameter.
func (p Params) String(name string) string { return p.get(name).(string) }

func (p Params) get(name string) any {
	v, ok := p.values[name]
	if !ok {
		panic("workload: undeclared parameter " + strconv.Quote(name))
	}
	return v
}

// Map returns the values in their wire form (durations as strings), for APIs and logs.
func (p Params) Map() map[string]any {
	m := make(map[string]any, len(p.values))
	for k, v := range p.values {
		m[k] = Wire(v)
	}
	return m
}

// LogValue lists the parameters sorted by name, so log records show them as a group.
func (p Params) LogValue() slog.Value {
	keys := make([]string, 0, len(p.values))
	for k := range p.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, len(keys))
	for i, k := range keys {
		attrs[i] = slog.Any(k, Wire(p.values[k]))
	}
	return slog.GroupValue(attrs...)
}

// Wire renders a parameter value in its JSON form: durations as strings such as
// "250ms", the form the API and config files accept back.
func Wire(v any) any {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	return v
}

// FormatValue renders a parameter value the way users write it.
func FormatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case time.Duration:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// Resolve validates raw values against specs and fills in defaults. Raw values
// come from JSON (numbers, strings, bools), YAML or command-line text; strings are
// parsed by the parameter's type. The error is a *ParamError naming the parameter.
func Resolve(workload string, specs []ParamSpec, raw map[string]any) (Params, error) {
	p := Params{values: make(map[string]any, len(specs))}
	for _, s := range specs {
		p.values[s.Name] = s.Default
	}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names) // report the first bad parameter deterministically
	for _, name := range names {
		i := slices.IndexFunc(specs, func(s ParamSpec) bool { return s.Name == name })
		if i < 0 {
			known := make([]string, len(specs))
			for j, s := range specs {
				known[j] = s.Name
			}
			msg := "unknown parameter"
			if len(known) == 0 {
				msg += "; this workload takes none"
			} else {
				msg += "; known: " + strings.Join(known, ", ")
			}
			return Params{}, &ParamError{Workload: workload, Param: name, Value: msg}
		}
		v, err := convert(specs[i], raw[name])
		if err != nil {
			return Params{}, &ParamError{Workload: workload, Param: name, Value: rawString(raw[name]), Allowed: specs[i].Allowed()}
		}
		p.values[name] = v
	}
	return p, nil
}

func rawString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

var errBad = fmt.Errorf("bad value")

// convert turns one raw value into the spec's type and checks its bounds.
func convert(s ParamSpec, raw any) (any, error) {
	switch s.Type {
	case TypeInt:
		var n int
		switch v := raw.(type) {
		case int:
			n = v
		case int64:
			n = int(v)
		case float64:
			if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
				return nil, errBad
			}
			n = int(v)
		case json.Number:
			i, err := strconv.Atoi(v.String())
			if err != nil {
				return nil, errBad
			}
			n = i
		case string:
			i, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return nil, errBad
			}
			n = i
		default:
			return nil, errBad
		}
		if n < s.Min.(int) || n > s.Max.(int) {
			return nil, errBad
		}
		return n, nil
	case TypeFloat:
		var f float64
		switch v := raw.(type) {
		case int:
			f = float64(v)
		case float64:
			f = v
		case json.Number:
			x, err := v.Float64()
			if err != nil {
				return nil, errBad
			}
			f = x
		case string:
			x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return nil, errBad
			}
			f = x
		default:
			return nil, errBad
		}
		if math.IsNaN(f) || f < s.Min.(float64) || f > s.Max.(float64) {
			return nil, errBad
		}
		return f, nil
	case TypeDuration:
		// Durations are written as Go durations ("250ms"); a bare number is
		// ambiguous and refused rather than guessed.
		v, ok := raw.(string)
		if !ok {
			return nil, errBad
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return nil, errBad
		}
		if d < s.Min.(time.Duration) || d > s.Max.(time.Duration) {
			return nil, errBad
		}
		return d, nil
	case TypeBool:
		switch v := raw.(type) {
		case bool:
			return v, nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return nil, errBad
			}
			return b, nil
		}
		return nil, errBad
	case TypeString:
		v, ok := raw.(string)
		if !ok || !slices.Contains(s.Choices, v) {
			return nil, errBad
		}
		return v, nil
	}
	return nil, errBad
}

// ParseAssignments turns "k=v" pairs (command line, environment) into raw values.
func ParseAssignments(pairs []string) (map[string]any, error) {
	raw := make(map[string]any, len(pairs))
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("parameter %q: want name=value", kv)
		}
		raw[k] = v
	}
	return raw, nil
}
