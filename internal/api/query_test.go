package api

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestContainsFold(t *testing.T) {
	for _, s := range []string{"", "a", "Waiter", "blocking-lock/WAITER", "xwaitewaiter", "Straße waiter", "ÅB", "aaab"} {
		for _, f := range []string{"", "a", "waiter", "ter", "aab", "å", "straße w", "zz"} {
			want := strings.Contains(strings.ToLower(s), f)
			if got := containsFold(s, f); got != want {
				t.Errorf("containsFold(%q, %q) = %v, want %v", s, f, got, want)
			}
		}
	}
}

func TestMatcher(t *testing.T) {
	tk := &Task{Name: "pool/Worker", WaitReason: "chan receive", Labels: map[string]string{"role": "w1", "workload": "pool"},
		Location: Frame{Function: "example.com/pool.run", File: "/src/pool.go"}}
	for f, want := range map[string]bool{
		"": true, "worker": true, "CHAN": true, "pool.run": true, "role=w1": true, "role=w": false, "w1,work": true,
		"=w1": true, "nope": false, "workload=pool": true, "src/pool": true,
	} {
		if got := Matcher(f)(tk); got != want {
			t.Errorf("Matcher(%q) = %v, want %v", f, got, want)
		}
	}
}

func queryTasks() *Snapshot {
	s := &Snapshot{}
	for i, c := range []struct {
		name, state string
		busy        int64
		polls       int64
	}{
		{"a/x", "waiting", 10, 5}, {"b/y", "running", 300, 1}, {"a/x", "runnable", 20, 90}, {"c/z", "waiting", 0, 0}, {"b/y", "waiting", 40, 7},
	} {
		s.Tasks = append(s.Tasks, Task{ID: int64(i + 1), Name: c.name, State: c.state, Stats: TaskStats{BusyNS: c.busy, Polls: c.polls},
			Location: Frame{Function: "app." + c.name[:1], File: "/app/" + c.name[:1] + ".go", Line: i}, Labels: map[string]string{"w": c.name[:1]}})
	}
	return s
}

// A query answers the rows a client shows: filtered, sorted, a page, with
// the counts beside them.
func TestQuerySelect(t *testing.T) {
	s := queryTasks()
	for _, c := range []struct {
		q       Query
		want    []int64
		matched int
	}{
		{Query{}, []int64{1, 2, 3, 4, 5}, 5},
		{Query{Sort: "busy"}, []int64{2, 5, 3, 1, 4}, 5},
		{Query{Sort: "busy", Reverse: true, Limit: 2}, []int64{4, 1}, 5},
		{Query{Sort: "polls", Offset: 1, Limit: 2}, []int64{5, 1}, 5},
		{Query{State: "waiting", Sort: "id", Reverse: true}, []int64{5, 4, 1}, 3},
		{Query{Filter: "w=b"}, []int64{2, 5}, 2},
		{Query{Filter: "A/X", Sort: "name"}, []int64{1, 3}, 2},
		{Query{Offset: 9}, nil, 5},
	} {
		v := c.q.Select(s)
		if !slices.Equal(ids(v.Tasks), c.want) || v.Matched != c.matched || v.TaskCount != 5 || v.ByState["waiting"] != 3 {
			t.Errorf("%+v: tasks %v matched %d of %d, by state %v; want %v, %d of 5", c.q, ids(v.Tasks), v.Matched, v.TaskCount, v.ByState, c.want, c.matched)
		}
	}
	if len(s.Tasks) != 5 {
		t.Error("Select changed the snapshot")
	}
	g := Query{Group: "name"}.Select(s)
	if len(g.Tasks) != 0 || len(g.Groups) != 3 || g.Groups[0].Count != 2 || g.Groups[2].Key != "c/z" {
		t.Errorf("grouped by name: %+v", g.Groups)
	}
	if gb := g.Groups[slices.IndexFunc(g.Groups, func(x TaskGroup) bool { return x.Key == "b/y" })]; gb.Stats.BusyNS != 340 || gb.ByState["running"] != 1 {
		t.Errorf("group b/y: %+v", gb)
	}
	if g := (Query{Group: "site", State: "waiting"}).Select(s); len(g.Groups) != 3 || g.Groups[0].Location.Function == "" {
		t.Errorf("grouped by site: %+v", g.Groups)
	}
}

// Query parameters read back as they were written; bad ones name
// themselves and what is allowed.
func TestParseQuery(t *testing.T) {
	q := Query{Sort: "busy", Reverse: true, Filter: "workload=leak", State: "waiting", Offset: 10, Limit: 50}
	got, err := ParseQuery(q.Values())
	if err != nil || got != q {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	for v, want := range map[string]string{
		"sort=speed":    `sort="speed": want one of`,
		"state=asleep":  `state="asleep": want one of running`,
		"limit=-1":      `limit="-1": want a whole number`,
		"offset=x":      `offset="x"`,
		"reverse=maybe": `reverse="maybe": want true or false`,
		"group=color":   `group="color": want one of name, site`,
	} {
		vals, _ := url.ParseQuery(v)
		if _, err := ParseQuery(vals); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error with %q", v, err, want)
		}
	}
}
