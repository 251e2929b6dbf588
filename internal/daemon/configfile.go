package daemon

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// readFile reads the YAML file at path over st: each key is an option's
// (see options), a nested one under its section (diagnose: {window: 5s}).
// Unknown keys, and keys set twice, are errors.
func (st *state) readFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return usagef("config: %v", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return usagef("config %s: %v", path, err)
	}
	if len(root.Content) == 0 {
		return nil // an empty file changes nothing
	}
	doc := resolve(root.Content[0])
	if doc.Kind != yaml.MappingNode {
		return usagef("config %s: line %d: want a mapping of keys (%s)", path, doc.Line, strings.Join(fileKeys(""), ", "))
	}
	if err := st.readMapping(doc, ""); err != nil {
		return usagef("config %s: %v", path, err)
	}
	return nil
}

// readMapping reads the keys of m, a section of the file named by prefix
// ("" at the top, "diagnose." below it).
func (st *state) readMapping(m *yaml.Node, prefix string) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		key := prefix + k.Value
		if line, twice := seen[key]; twice {
			return fmt.Errorf("line %d: %s is set twice (first on line %d)", k.Line, key, line)
		}
		seen[key] = k.Line
		if o := optionOfKey(key); o != nil {
			if err := o.v.decode(st, v); err != nil {
				return fileError(o, key, v, err)
			}
			continue
		}
		if !slices.Contains(fileKeys(prefix), key) {
			return fmt.Errorf("line %d: unknown key %q; allowed: %s", k.Line, key, strings.Join(fileKeys(prefix), ", "))
		}
		// A section.
		switch {
		case v.Kind == yaml.MappingNode:
			if err := st.readMapping(v, key+"."); err != nil {
				return err
			}
		case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null":
		default:
			return fmt.Errorf("%s (line %d: cannot unmarshal %s): want a mapping of keys (%s)", key, v.Line, describe(v, false), strings.Join(fileKeys(key+"."), ", "))
		}
	}
	return nil
}

// fileError says what is wrong with the value n of the option o at key.
func fileError(o *option, key string, n *yaml.Node, err error) error {
	var te *typeError
	if errors.As(err, &te) {
		at := n
		if te.node != nil {
			at = te.node
		}
		return fmt.Errorf("%s (line %d: cannot unmarshal %s): want %s", key, at.Line, describe(at, o.secret), te.want)
	}
	if n.Kind != yaml.ScalarNode || o.secret {
		return fmt.Errorf("%s (line %d): %v", key, n.Line, err)
	}
	return fmt.Errorf("%s %q (line %d): %v", key, n.Value, n.Line, err)
}

// describe names a YAML value in a message: "abc" quoted, or a list.
func describe(n *yaml.Node, secret bool) string {
	switch {
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case secret:
		return "a scalar"
	}
	return strconv.Quote(n.Value)
}

// resolve follows an alias (*name) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func optionOfKey(key string) *option {
	for i := range options {
		if options[i].key == key {
			return &options[i]
		}
	}
	return nil
}

// fileKeys are the keys the file has in the section prefix ("" for the
// top, "diagnose." below it), in the table's order: an option's key, or
// the section that holds it.
func fileKeys(prefix string) []string {
	var keys []string
	for _, o := range options {
		rest, ok := strings.CutPrefix(o.key, prefix)
		if o.key == "" || !ok {
			continue
		}
		section, _, nested := strings.Cut(rest, ".")
		key := prefix + section
		if !nested {
			key = o.key
		}
		if !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	return keys
}
