package diagnose

import (
	"fmt"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
)

var outlivedRule = &rule{
	id:         "outlived-context",
	lesson:     "tokio_select",
	help:       "goroutines keep running after the goroutine that started their labelled scope has returned: they ignore their context's cancellation",
	thresholds: &outlivedThresholds,
	check:      checkOutlived,
}

// The thresholds of outlived-context, in the order of its docs.
var (
	outlivedThresholds thresholdSet
	outlivedOutliveFor = outlivedThresholds.duration("outlive_for", 2*time.Second, "how long goroutines may keep running after their scope's starter returned")
)

// A scope is a set of pprof labels (all but role), like workload=leak: its
// starter is the goroutine that set them, whose parent has other labels.
// When the starter returns, the scope's work is cancelled; goroutines of the
// scope that still run and wake up past outlive_for did not stop.
func checkOutlived(c *check) []found {
	const id = "outlived-context"
	if !c.labelsKnown() {
		return nil
	}
	grace := c.dur(outlivedOutliveFor)
	h := &c.e.hist
	type group struct {
		scope   string
		starter int64
		name    string
		loc     api.Frame
		ids     []int64
		since   time.Time
	}
	groups := map[string]*group{}
	for i := range c.snap.Tasks {
		t := &c.snap.Tasks[i]
		if c.isClaimed(t.ID) || t.ParentID == 0 || t.Stats.Polls == 0 && t.State == "waiting" {
			continue
		}
		me, ok := h.scopes[t.ID]
		if !ok {
			continue
		}
		// Its creator set the scope's labels (it ran with the same ones),
		// or lived and died between two snapshots (a short job or request
		// that set them and returned): either way its scope has ended.
		pm, known := h.scopes[t.ParentID]
		goneAt, gone := h.gone[t.ParentID]
		switch {
		case known && pm.scope == me.scope && gone:
		case !known:
			goneAt, gone = h.unseenParent[t.ParentID]
		}
		if !gone || c.now.Sub(goneAt) < grace {
			continue
		}
		key := me.scope + "@" + siteKey("", t.Location)
		g := groups[key]
		if g == nil {
			var name string
			if pm != nil {
				name = pm.name
			}
			if name == "" {
				name = "gone before any snapshot saw it"
			}
			g = &group{scope: me.scope, starter: t.ParentID, name: name, loc: t.Location, since: goneAt}
			groups[key] = g
		}
		g.ids = append(g.ids, t.ID)
		g.since = earlier(g.since, goneAt)
	}
	var out []found
	for _, key := range slicesSortedKeys(groups) {
		g := groups[key]
		after := c.now.Sub(g.since)
		c.claim(id, g.ids...)
		out = append(out, found{key: key, finding: api.Finding{
			Title: fmt.Sprintf("goroutines outlive their context: %d of {%s} still %s at %s", len(g.ids), g.scope, verb(len(g.ids), "runs", "run"), format.Frame(g.loc)),
			Message: fmt.Sprintf("%s labelled {%s} still %s at %s %s after the goroutine that started them "+
				"(%d, %s) returned, which cancels their work: they do not check their context.",
				goroutines(len(g.ids)), g.scope, verb(len(g.ids), "runs", "run"), format.Frame(g.loc), format.Duration(after), g.starter, g.name),
			Evidence: api.Evidence{Tasks: capIDs(g.ids, 100), Sites: []api.Frame{g.loc},
				Figures: map[string]float64{"goroutines": float64(len(g.ids)), "seconds_after": after.Round(100 * time.Millisecond).Seconds()}},
			Advice: "Check ctx.Done() (or ctx.Err()) in every loop, pass ctx to blocking calls, and have the starter wait " +
				"for what it started (a WaitGroup or errgroup) so work cannot outlive its scope.",
		}})
	}
	return out
}
