package daemon

import (
	"slices"
	"testing"

	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/workload"
)

// The rules cite the talk's lessons by the names the catalog uses, and
// every broken workload's rule is a rule.
func TestLessonsAndRulesAgree(t *testing.T) {
	for _, d := range diagnose.Docs() {
		if !workload.ValidLesson(d.Lesson) {
			t.Errorf("rule %s: lesson %q is not a lesson of the talk by its name (%v), nor marked %q", d.ID, d.Lesson, workload.TalkLessons, workload.BeyondTheTalk)
		}
	}
	for _, s := range workload.Default.Specs() {
		if s.Kind == workload.Broken && !slices.Contains(diagnose.Rules(), s.Rule) {
			t.Errorf("workload %s names rule %q, which does not exist (rules: %v)", s.Name, s.Rule, diagnose.Rules())
		}
	}
}
