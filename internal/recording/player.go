package recording

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/inspectd/inspectd/internal/api"
)

// DefaultCheckpointTasks bounds the tasks a Player keeps in checkpoints
// (about 300 bytes each, plus their strings).
const DefaultCheckpointTasks = 300_000

// undoTasks and undoUpdates bound the inverses of updates a Player keeps to
// step back.
const (
	undoTasks   = 300_000
	undoUpdates = 100
)

// Player rebuilds the target's state at any update of a recording: from the
// state it is at when moving forward; by undoing the last updates when
// stepping back (it keeps the inverse of each update it applies, for the
// last ones); else from the nearest checkpoint (a copy of the state it kept
// on the way) or full update before the one wanted. It is not safe for
// concurrent use.
type Player struct {
	r   *Reader
	ups []int // the entry index of each update
	n   int   // usable updates: len(ups), fewer after a corrupt line
	// Err is the corrupt line that ended the usable part early, if any.
	Err error

	cur   int // the update state is at; -1: none yet
	state api.Snapshot

	cps    []checkpoint // ascending
	every  int          // updates between checkpoints
	held   int          // tasks in cps
	budget int

	// undo holds the inverse of the updates that led to the state, the
	// last one last: undo[len-1] turns the state at cur into cur-1's.
	undo           []api.Update
	undoHeld       int // tasks in undo
	undoMaxUpdates int
	undoMaxTasks   int

	// Decoded counts the lines decoded, for tests and measurements.
	Decoded int

	labels map[string]map[string]string // label sets, to share (intern)
	buf    []byte
}

type checkpoint struct {
	k    int
	snap api.Snapshot
}

// NewPlayer returns a player of r's updates.
func NewPlayer(r *Reader) *Player {
	p := &Player{r: r, cur: -1, every: 8, budget: DefaultCheckpointTasks,
		undoMaxUpdates: undoUpdates, undoMaxTasks: undoTasks}
	for i, m := range r.Entries {
		if m.Kind == KindUpdate {
			p.ups = append(p.ups, i)
		}
	}
	p.n = len(p.ups)
	if r.Err != nil {
		p.Err = r.Err
	}
	return p
}

// SetCheckpointBudget bounds the tasks kept in checkpoints (0: none kept).
func (p *Player) SetCheckpointBudget(tasks int) {
	p.budget = tasks
	p.thin()
}

// Reader is the recording played.
func (p *Player) Reader() *Reader { return p.r }

// Len is the number of updates that can be played.
func (p *Player) Len() int { return p.n }

// Meta describes update k.
func (p *Player) Meta(k int) Meta { return p.r.Entries[p.ups[k]] }

// Line is the line number of update k in the file.
func (p *Player) Line(k int) int { return p.ups[k] + 2 }

// Events returns the lines that are not updates between update k-1 and
// update k: the connection changes (and the end) that happened there. k ==
// Len() gives those after the last update.
func (p *Player) Events(k int) ([]Entry, error) {
	from := 0
	if k > 0 {
		from = p.ups[k-1] + 1
	}
	to := len(p.r.Entries)
	if k < len(p.ups) {
		to = p.ups[k]
	}
	var out []Entry
	for i := from; i < to; i++ {
		switch p.r.Entries[i].Kind {
		case KindConn, KindEnd:
			e, err := p.r.Entry(i)
			if err != nil {
				return out, err
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// At returns the state after update k (0 <= k < Len()), a copy the caller
// owns. Its Target is the header's.
func (p *Player) At(k int) (*api.Snapshot, error) {
	if k < 0 || k >= p.n {
		return nil, fmt.Errorf("recording: no update %d (it has %d)", k+1, p.n)
	}
	if k != p.cur {
		if err := p.seek(k); err != nil {
			return nil, err
		}
	}
	s := p.state
	s.Tasks = slices.Clone(p.state.Tasks)
	s.Target = p.r.Header.Target
	return &s, nil
}

// seek moves the state to update k, starting where the fewest lines need
// decoding.
func (p *Player) seek(k int) error {
	if p.cur > k && p.cur-k <= len(p.undo) {
		for p.cur > k {
			u := p.undo[len(p.undo)-1]
			p.undo = p.undo[:len(p.undo)-1]
			p.undoHeld -= len(u.Tasks)
			api.Apply(&p.state, u)
			p.cur--
		}
		return nil
	}
	start, from := -1, "scratch"
	cost := k + 1
	// A full update at or before k: decode it and what follows.
	for j := k; j >= 0; j-- {
		if p.Meta(j).Full {
			start, from, cost = j-1, "full", k-j+1
			break
		}
	}
	if i, ok := p.checkpointAt(k); ok && k-p.cps[i].k <= cost {
		start, from, cost = p.cps[i].k, "checkpoint", k-p.cps[i].k
	}
	if p.cur >= 0 && p.cur <= k && k-p.cur <= cost {
		start, from = p.cur, "current"
	}
	switch from {
	case "scratch", "full":
		p.state = api.Snapshot{}
	case "checkpoint":
		c := p.cps[p.checkpointIndex(start)].snap
		p.state = c
		p.state.Tasks = slices.Clone(c.Tasks)
	}
	if from != "current" {
		p.undo, p.undoHeld = nil, 0
	}
	p.cur = start
	for j := start + 1; j <= k; j++ {
		e, err := p.r.Entry(p.ups[j])
		p.Decoded++
		if err != nil {
			// The usable part ends before this update.
			p.n, p.Err = j, err
			return err
		}
		p.intern(e.Update.Tasks)
		p.pushUndo(*e.Update)
		api.Apply(&p.state, *e.Update)
		p.cur = j
		if j > 0 && j%p.every == 0 {
			p.keep(j)
		}
	}
	return nil
}

// intern makes tasks with the same labels share one map: most goroutines
// of a program carry one of a few label sets, and a map per task is a third
// of a 100,000-task state's memory.
func (p *Player) intern(tasks []api.Task) {
	if len(p.labels) > 10_000 {
		p.labels = nil // a program with ever new labels: start over
	}
	if p.labels == nil {
		p.labels = map[string]map[string]string{}
	}
	var keys [8]string
	for i := range tasks {
		l := tasks[i].Labels
		if len(l) == 0 || len(l) > len(keys) {
			continue
		}
		ks := keys[:0]
		for k := range l {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		p.buf = p.buf[:0]
		for _, k := range ks {
			p.buf = append(p.buf, k...)
			p.buf = append(p.buf, 0)
			p.buf = append(p.buf, l[k]...)
			p.buf = append(p.buf, 0)
		}
		if m, ok := p.labels[string(p.buf)]; ok {
			tasks[i].Labels = m
		} else {
			p.labels[string(p.buf)] = l
		}
	}
}

// pushUndo keeps the inverse of u, about to be applied to the state: an
// update that puts back what u changes.
func (p *Player) pushUndo(u api.Update) {
	s := &p.state
	inv := api.Update{Time: s.Time, WindowNS: s.WindowNS, Source: s.Source,
		Sites: s.Sites, Process: s.Process, Findings: s.Findings, Notes: s.Notes}
	if u.Full {
		// Apply replaces the tasks with a copy of u's: the old slice stays
		// as it is.
		inv.Full, inv.Tasks = true, s.Tasks
	} else {
		inv.Tasks = []api.Task{}
		find := func(id int64) (int, bool) {
			return slices.BinarySearchFunc(s.Tasks, id, func(t api.Task, id int64) int { return cmp.Compare(t.ID, id) })
		}
		for i := range u.Tasks {
			if j, ok := find(u.Tasks[i].ID); ok {
				inv.Tasks = append(inv.Tasks, s.Tasks[j])
			} else {
				inv.Removed = append(inv.Removed, u.Tasks[i].ID)
			}
		}
		for _, id := range u.Removed {
			if j, ok := find(id); ok {
				inv.Tasks = append(inv.Tasks, s.Tasks[j])
			}
		}
	}
	p.undo = append(p.undo, inv)
	p.undoHeld += len(inv.Tasks)
	drop := 0
	for len(p.undo)-drop > p.undoMaxUpdates || p.undoHeld > p.undoMaxTasks && drop < len(p.undo) {
		p.undoHeld -= len(p.undo[drop].Tasks)
		drop++
	}
	if drop > 0 {
		p.undo = slices.Delete(p.undo, 0, drop)
	}
}

// checkpointAt finds the last checkpoint at or before k.
func (p *Player) checkpointAt(k int) (int, bool) {
	i, found := slices.BinarySearchFunc(p.cps, k, func(c checkpoint, k int) int { return c.k - k })
	if found {
		return i, true
	}
	return i - 1, i > 0
}

func (p *Player) checkpointIndex(k int) int {
	i, _ := slices.BinarySearchFunc(p.cps, k, func(c checkpoint, k int) int { return c.k - k })
	return i
}

// keep makes a checkpoint of the state at update j, within the budget.
func (p *Player) keep(j int) {
	i, found := slices.BinarySearchFunc(p.cps, j, func(c checkpoint, k int) int { return c.k - k })
	if found || len(p.state.Tasks) > p.budget {
		return
	}
	c := p.state
	c.Tasks = slices.Clone(p.state.Tasks)
	p.cps = slices.Insert(p.cps, i, checkpoint{k: j, snap: c})
	p.held += len(c.Tasks)
	p.thin()
}

// thin keeps the checkpoints within the budget: it doubles their spacing,
// dropping those off the new grid, until they fit.
func (p *Player) thin() {
	for p.held > p.budget && len(p.cps) > 0 {
		p.every *= 2
		p.held = 0
		p.cps = slices.DeleteFunc(p.cps, func(c checkpoint) bool { return c.k%p.every != 0 })
		for _, c := range p.cps {
			p.held += len(c.snap.Tasks)
		}
	}
}
