package daemon

import (
	"testing"

	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/workload"
)

// The rules cite the talk's lessons by the names the catalog uses.
func TestRulesCiteTheTalksLessons(t *testing.T) {
	for _, d := range diagnose.Docs() {
		if !workload.ValidLesson(d.Lesson) {
			t.Errorf("rule %s: lesson %q is not a lesson of the talk by its name (%v), nor marked %q", d.ID, d.Lesson, workload.TalkLessons, workload.BeyondTheTalk)
		}
	}
}
