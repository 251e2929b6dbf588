package diagnose

import (
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// declaredHandle is a threshold handle as the package's source declares it.
type declaredHandle struct {
	name      string // the variable, leakStuckFor
	set       string // the thresholdSet that made it, leakThresholds
	threshold string // its name in the configuration, stuck_for
	pos       token.Position
}

// parseDeclarations reads the package's source for the threshold handles,
// the rule that each thresholdSet belongs to, and the functions that
// refer to each handle.
func parseDeclarations(t *testing.T) (handles []declaredHandle, ruleOfSet map[string]string, readers map[string][]string) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	ruleOfSet = map[string]string{}
	readers = map[string][]string{}
	makers := []string{"duration", "count", "perSec", "bytes", "ratio"}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.GenDecl:
				if decl.Tok != token.VAR {
					continue
				}
				for _, spec := range decl.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, v := range vs.Values {
						if call, ok := v.(*ast.CallExpr); ok {
							sel, ok := call.Fun.(*ast.SelectorExpr)
							if !ok || !slices.Contains(makers, sel.Sel.Name) {
								continue
							}
							set, ok := sel.X.(*ast.Ident)
							if !ok || len(call.Args) == 0 {
								continue
							}
							lit, ok := call.Args[0].(*ast.BasicLit)
							if !ok || lit.Kind != token.STRING {
								t.Errorf("%s: threshold %s is not named by a string literal", fset.Position(call.Pos()), vs.Names[i].Name)
								continue
							}
							name, _ := strconv.Unquote(lit.Value)
							handles = append(handles, declaredHandle{vs.Names[i].Name, set.Name, name, fset.Position(vs.Pos())})
						}
						if id, set, ok := ruleLiteral(v); ok {
							if prev, dup := ruleOfSet[set]; dup {
								t.Errorf("thresholds %s belong to rules %s and %s", set, prev, id)
							}
							ruleOfSet[set] = id
						}
					}
				}
			case *ast.FuncDecl:
				if decl.Body == nil {
					continue
				}
				ast.Inspect(decl.Body, func(n ast.Node) bool {
					if id, ok := n.(*ast.Ident); ok {
						readers[id.Name] = append(readers[id.Name], decl.Name.Name)
					}
					return true
				})
			}
		}
	}
	return handles, ruleOfSet, readers
}

// ruleLiteral returns the id and the thresholdSet of &rule{id: ..., thresholds: &set}.
func ruleLiteral(e ast.Expr) (id, set string, ok bool) {
	u, ok := e.(*ast.UnaryExpr)
	if !ok || u.Op != token.AND {
		return "", "", false
	}
	lit, ok := u.X.(*ast.CompositeLit)
	if typ, isIdent := lit.Type.(*ast.Ident); !ok || !isIdent || typ.Name != "rule" {
		return "", "", false
	}
	for _, elt := range lit.Elts {
		kv, ok := elt.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		switch kv.Key.(*ast.Ident).Name {
		case "id":
			if b, ok := kv.Value.(*ast.BasicLit); ok {
				id, _ = strconv.Unquote(b.Value)
			}
		case "thresholds":
			if a, ok := kv.Value.(*ast.UnaryExpr); ok && a.Op == token.AND {
				if x, ok := a.X.(*ast.Ident); ok {
					set = x.Name
				}
			}
		}
	}
	return id, set, id != ""
}

// Every threshold a rule declares is in that rule's docs (and so in the
// README's table and known to Validate), every documented threshold is
// declared as a handle, and every handle is read by some check: a
// threshold that tunes nothing would mislead whoever sets it.
func TestThresholdsDeclaredDocumentedAndRead(t *testing.T) {
	handles, ruleOfSet, readers := parseDeclarations(t)
	docs := map[string][]string{}
	total := 0
	for _, d := range Docs() {
		for _, th := range d.Thresholds {
			docs[d.ID] = append(docs[d.ID], th.Name)
			total++
		}
	}
	if len(handles) != total {
		t.Errorf("the source declares %d threshold handles, the docs list %d thresholds", len(handles), total)
	}
	seen := map[string]bool{}
	for _, h := range handles {
		id, ok := ruleOfSet[h.set]
		if !ok {
			t.Errorf("%s: %s is declared by %s, which no rule has as its thresholds", h.pos, h.name, h.set)
			continue
		}
		key := id + "." + h.threshold
		if seen[key] {
			t.Errorf("%s: %s declared twice", h.pos, key)
		}
		seen[key] = true
		if !slices.Contains(docs[id], h.threshold) {
			t.Errorf("%s: %s (%s) is not in the docs of rule %s (%s)", h.pos, h.name, h.threshold, id, strings.Join(docs[id], ", "))
		}
		if len(readers[h.name]) == 0 {
			t.Errorf("%s: threshold %s (%s) is read by no check", h.pos, key, h.name)
		}
	}
	for _, r := range allRules {
		if len(r.thresholds.all()) == 0 {
			t.Errorf("rule %s declares no thresholds", r.id)
		}
	}
}

// A threshold configured as rule.name=value is read through its handle,
// and through no other: each declaration is its own threshold, even where
// two rules use the same name (min_goroutines).
func TestThresholdsConfigured(t *testing.T) {
	for _, r := range allRules {
		for _, th := range r.thresholds.all() {
			key := r.id + "." + th.Name
			want := th.Default / 2
			cfg := Config{Thresholds: map[string]string{key: th.Format(want)}}
			if err := cfg.Validate(); err != nil {
				t.Errorf("%s=%s: %v", key, th.Format(want), err)
				continue
			}
			for _, r2 := range allRules {
				for _, th2 := range r2.thresholds.all() {
					exp := th2.Default
					if th2 == th {
						exp = want
					}
					if got := cfg.value(th2); got != exp {
						t.Errorf("with %s=%s: %s.%s is %v, want %v", key, th.Format(want), r2.id, th2.Name, got, exp)
					}
				}
			}
		}
	}

	c := &check{e: &Engine{}}
	if c.dur(deadlockStuckFor) != 3*time.Second || c.num(deadlockMinGoroutines) != 2 || c.ratio(busyPollMaxIdle) != 0.1 {
		t.Errorf("defaults: stuck_for %v, min_goroutines %v, max_idle %v", c.dur(deadlockStuckFor), c.num(deadlockMinGoroutines), c.ratio(busyPollMaxIdle))
	}
	cfg := Config{Thresholds: map[string]string{"deadlock.stuck_for": time.Duration(math.MaxInt64).String()}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c.e.cfg = cfg
	if d := c.dur(deadlockStuckFor); d != math.MaxInt64 {
		t.Errorf("the longest stuck_for reads as %v", d)
	}
}
