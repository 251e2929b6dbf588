package api

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Query selects what a client shows of a snapshot, so that a target sends
// only that: the tasks that match Filter and State, sorted by Sort, a page
// of them (Offset, Limit), or their groups (Group). The zero Query selects
// every task in id order.
//
// On the wire it is the query parameters sort, reverse, filter, state,
// offset, limit and group of GET /api/v1/snapshot and /api/v1/watch.
type Query struct {
	// Sort is a column (SortKeys): id (the default), warn, state, name,
	// total, busy, sched, idle, polls, wait, location, labels. Numbers sort
	// largest first, text ascending; Reverse turns it round. Ties go by id.
	Sort    string `json:"sort,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
	// Filter keeps the tasks whose name, labels, location or wait reason
	// contain it (case-insensitive), or, as key=value, those with that
	// label. State keeps those in a state (running, runnable, waiting,
	// syscall).
	Filter string `json:"filter,omitempty"`
	State  string `json:"state,omitempty"`
	// Offset and Limit take a page of the sorted tasks (Limit 0: all).
	Offset int `json:"offset,omitempty"`
	Limit  int `json:"limit,omitempty"`
	// Group, "name" or "site", answers groups of the matching tasks
	// instead of the tasks: one per task name, or per location.
	Group string `json:"group,omitempty"`
}

// States are the states a task can be in, for Query.State.
var States = []string{"running", "runnable", "waiting", "syscall"}

// Groupings are the values of Query.Group.
var Groupings = []string{"name", "site"}

// SortKey is one column tasks can be sorted by.
type SortKey struct {
	// Numeric keys sort largest first.
	Numeric bool
	// Cmp compares two tasks (nil for labels: their text).
	Cmp func(a, b *Task) int
	// Key, when set, is an integer that orders like Cmp: sorting on it is
	// several times faster (100,000 tasks every update).
	Key func(t *Task) int64
}

var stateRank = map[string]int64{"running": 0, "runnable": 1, "syscall": 2, "waiting": 3}

func rankOf(state string) int64 {
	if r, ok := stateRank[state]; ok {
		return r
	}
	return 9
}

// SortKeys are the columns tasks sort by, by name.
var SortKeys = map[string]SortKey{
	"id": {Cmp: func(a, b *Task) int { return 0 }, Key: func(t *Task) int64 { return 0 }},
	"warn": {Numeric: true, Cmp: func(a, b *Task) int { return cmp.Compare(len(a.Warnings()), len(b.Warnings())) },
		Key: func(t *Task) int64 { return int64(len(t.Warnings())) }},
	"state": {Cmp: func(a, b *Task) int { return cmp.Compare(rankOf(a.State), rankOf(b.State)) },
		Key: func(t *Task) int64 { return rankOf(t.State) }},
	"name": {Cmp: func(a, b *Task) int { return strings.Compare(a.Name, b.Name) }},
	"total": {Numeric: true, Cmp: func(a, b *Task) int { return cmp.Compare(a.Stats.TotalNS, b.Stats.TotalNS) },
		Key: func(t *Task) int64 { return t.Stats.TotalNS }},
	"busy": {Numeric: true, Cmp: func(a, b *Task) int { return cmp.Compare(a.Stats.BusyNS, b.Stats.BusyNS) },
		Key: func(t *Task) int64 { return t.Stats.BusyNS }},
	"sched": {Numeric: true, Cmp: func(a, b *Task) int { return cmp.Compare(a.Stats.SchedNS, b.Stats.SchedNS) },
		Key: func(t *Task) int64 { return t.Stats.SchedNS }},
	"idle": {Numeric: true, Cmp: func(a, b *Task) int { return cmp.Compare(a.Stats.IdleNS, b.Stats.IdleNS) },
		Key: func(t *Task) int64 { return t.Stats.IdleNS }},
	"polls": {Numeric: true, Cmp: func(a, b *Task) int { return cmp.Compare(a.Stats.Polls, b.Stats.Polls) },
		Key: func(t *Task) int64 { return t.Stats.Polls }},
	"wait": {Cmp: func(a, b *Task) int {
		return cmp.Or(strings.Compare(a.WaitReason, b.WaitReason), cmp.Compare(b.WaitMinutes, a.WaitMinutes))
	}},
	"location": {Cmp: func(a, b *Task) int {
		return cmp.Or(strings.Compare(a.Location.Function, b.Location.Function),
			strings.Compare(a.Location.File, b.Location.File), cmp.Compare(a.Location.Line, b.Location.Line))
	}},
	"labels": {},
}

// SortNames are the names of SortKeys, sorted.
func SortNames() []string { return slices.Sorted(maps.Keys(SortKeys)) }

// ParseQuery reads a Query from query parameters; an error names the
// parameter, its value and what is allowed.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Sort: v.Get("sort"), Filter: v.Get("filter"), State: v.Get("state"), Group: v.Get("group")}
	if r := v.Get("reverse"); r != "" {
		b, err := strconv.ParseBool(r)
		if err != nil {
			return q, fmt.Errorf("query parameter reverse=%q: want true or false", r)
		}
		q.Reverse = b
	}
	for _, p := range []struct {
		name string
		to   *int
	}{{"offset", &q.Offset}, {"limit", &q.Limit}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, fmt.Errorf("query parameter %s=%q: want a whole number, 0 or more", p.name, s)
		}
		*p.to = n
	}
	return q, q.Validate()
}

// Validate checks the sort key, state and grouping.
func (q Query) Validate() error {
	if _, ok := SortKeys[q.Sort]; q.Sort != "" && !ok {
		return fmt.Errorf("query parameter sort=%q: want one of %s", q.Sort, strings.Join(SortNames(), ", "))
	}
	if q.State != "" && !slices.Contains(States, q.State) {
		return fmt.Errorf("query parameter state=%q: want one of %s", q.State, strings.Join(States, ", "))
	}
	if q.Group != "" && !slices.Contains(Groupings, q.Group) {
		return fmt.Errorf("query parameter group=%q: want one of %s", q.Group, strings.Join(Groupings, ", "))
	}
	if q.Offset < 0 || q.Limit < 0 {
		return fmt.Errorf("query offset %d, limit %d: want 0 or more", q.Offset, q.Limit)
	}
	return nil
}

// Values is q as query parameters (the zero fields left out).
func (q Query) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("sort", q.Sort)
	set("filter", q.Filter)
	set("state", q.State)
	set("group", q.Group)
	if q.Reverse {
		v.Set("reverse", "true")
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// IsZero says q selects every task in id order.
func (q Query) IsZero() bool { return q == Query{} || q == Query{Sort: "id"} }

// Select returns the view of s that q selects: s with only the chosen
// tasks (or groups), and the counts a client shows beside them (TaskCount,
// Matched, ByState). s is not changed; the view shares its tasks' maps.
func (q Query) Select(s *Snapshot) *Snapshot {
	v := *s
	v.TaskCount = len(s.Tasks)
	v.ByState = map[string]int{}
	for i := range s.Tasks {
		v.ByState[s.Tasks[i].State]++
	}
	if q.IsZero() {
		v.Matched = len(s.Tasks)
		return &v
	}
	qq := q
	v.Query = &qq
	match := Matcher(q.Filter)
	order := make([]int32, 0, len(s.Tasks))
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if (q.State == "" || t.State == q.State) && (q.Filter == "" || match(t)) {
			order = append(order, int32(i))
		}
	}
	v.Matched = len(order)
	if q.Group != "" {
		v.Tasks = nil
		v.Groups = group(s.Tasks, order, q.Group)
		v.Groups = page(v.Groups, q.Offset, q.Limit)
		return &v
	}
	SortOrder(s.Tasks, order, q.Sort, q.Reverse)
	order = page(order, q.Offset, q.Limit)
	v.Offset = min(q.Offset, v.Matched)
	v.Tasks = make([]Task, len(order))
	for j, i := range order {
		v.Tasks[j] = s.Tasks[i]
	}
	return &v
}

func page[T any](xs []T, offset, limit int) []T {
	xs = xs[min(offset, len(xs)):]
	if limit > 0 && len(xs) > limit {
		xs = xs[:limit]
	}
	return xs
}

// SortOrder sorts order, indexes of tasks, by the column sort (id when
// empty), ties by id, in the column's direction (numbers largest first)
// or the reverse. tasks are in ascending id order.
func SortOrder(tasks []Task, order []int32, sort string, reverse bool) {
	k, ok := SortKeys[sort]
	if !ok || sort == "id" || sort == "" {
		// tasks are in id order already.
		slices.Sort(order)
		if reverse {
			slices.Reverse(order)
		}
		return
	}
	desc := k.Numeric != reverse
	dir := func(c int) int {
		if desc {
			return -c
		}
		return c
	}
	switch {
	case k.Key != nil:
		type item struct {
			key, id int64
			i       int32
		}
		items := make([]item, len(order))
		for j, i := range order {
			items[j] = item{k.Key(&tasks[i]), tasks[i].ID, i}
		}
		slices.SortFunc(items, func(a, b item) int { return dir(cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.id, b.id))) })
		for j := range items {
			order[j] = items[j].i
		}
	case k.Cmp == nil: // labels: each task's text once
		keys := make(map[int32]string, len(order))
		for _, i := range order {
			keys[i] = LabelString(tasks[i].Labels)
		}
		slices.SortFunc(order, func(a, b int32) int {
			return dir(cmp.Or(strings.Compare(keys[a], keys[b]), cmp.Compare(tasks[a].ID, tasks[b].ID)))
		})
	default:
		slices.SortFunc(order, func(a, b int32) int {
			ta, tb := &tasks[a], &tasks[b]
			return dir(cmp.Or(k.Cmp(ta, tb), cmp.Compare(ta.ID, tb.ID)))
		})
	}
}

// TaskGroup is the tasks of one name or one location, summed.
type TaskGroup struct {
	Key      string         `json:"key"` // the name, or the location as "function file:line"
	Location Frame          `json:"location,omitzero"`
	Count    int            `json:"count"`
	ByState  map[string]int `json:"by_state"`
	Stats    TaskStats      `json:"stats"` // sums, but LongestRunNS and LongestStretchNS: the longest
	Warnings int            `json:"warnings,omitempty"`
	Tasks    []int64        `json:"tasks,omitempty"` // the first 100 ids
}

// group sums the tasks of order by name or site, most tasks first.
func group(tasks []Task, order []int32, by string) []TaskGroup {
	idx := map[string]int{}
	var out []TaskGroup
	for _, i := range order {
		t := &tasks[i]
		key := t.Name
		if by == "site" {
			key = t.Location.Function + " " + t.Location.File + ":" + strconv.Itoa(t.Location.Line)
		}
		j, ok := idx[key]
		if !ok {
			j = len(out)
			idx[key] = j
			g := TaskGroup{Key: key, ByState: map[string]int{}}
			if by == "site" {
				g.Location = t.Location
			}
			out = append(out, g)
		}
		g := &out[j]
		g.Count++
		g.ByState[t.State]++
		s := &g.Stats
		s.TotalNS += t.Stats.TotalNS
		s.BusyNS += t.Stats.BusyNS
		s.SchedNS += t.Stats.SchedNS
		s.IdleNS += t.Stats.IdleNS
		s.SyscallNS += t.Stats.SyscallNS
		s.Polls += t.Stats.Polls
		s.LongestRunNS = max(s.LongestRunNS, t.Stats.LongestRunNS)
		s.LongestStretchNS = max(s.LongestStretchNS, t.Stats.LongestStretchNS)
		if len(t.Warnings()) > 0 {
			g.Warnings++
		}
		if len(g.Tasks) < 100 {
			g.Tasks = append(g.Tasks, t.ID)
		}
	}
	slices.SortStableFunc(out, func(a, b TaskGroup) int { return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Key, b.Key)) })
	return out
}

// LabelString formats labels as k=v pairs sorted by key.
func LabelString(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

// Matcher returns whether a task passes filter: TEXT matches tasks whose
// name, labels, location or wait reason contain it (case-insensitive);
// key=value matches tasks with that label.
func Matcher(filter string) func(t *Task) bool {
	if filter == "" {
		return func(*Task) bool { return true }
	}
	if k, v, ok := strings.Cut(filter, "="); ok && k != "" && !strings.ContainsAny(k, " ,") {
		return func(t *Task) bool {
			got, has := t.Labels[k]
			return has && got == v
		}
	}
	f := strings.ToLower(filter)
	// Without "=" or "," a match in "k=v,k2=v2" lies within one key or value.
	whole := strings.ContainsAny(f, "=,")
	return func(t *Task) bool {
		if containsFold(t.Name, f) || containsFold(t.Location.Function, f) || containsFold(t.Location.File, f) || containsFold(t.WaitReason, f) {
			return true
		}
		if whole {
			return len(t.Labels) > 0 && containsFold(LabelString(t.Labels), f)
		}
		for k, v := range t.Labels {
			if containsFold(k, f) || containsFold(v, f) {
				return true
			}
		}
		return false
	}
}

// containsFold is strings.Contains(strings.ToLower(s), lower) without
// allocating for ASCII s.
func containsFold(s, lower string) bool {
	n := len(lower)
	if n == 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return strings.Contains(strings.ToLower(s), lower)
		}
	}
	c0, c1 := lower[0], lower[0]
	if 'a' <= c0 && c0 <= 'z' {
		c1 = c0 - ('a' - 'A')
	}
	for i := 0; i+n <= len(s); i++ {
		rest := s[i : len(s)-n+1]
		j := strings.IndexByte(rest, c0)
		if c1 != c0 {
			if k := strings.IndexByte(rest, c1); k >= 0 && (j < 0 || k < j) {
				j = k
			}
		}
		if j < 0 {
			return false
		}
		i += j
		if equalFoldASCII(s[i:i+n], lower) {
			return true
		}
	}
	return false
}

// equalFoldASCII reports whether ASCII s lowercased equals lower.
func equalFoldASCII(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
