package api

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// The fuzz targets of the wire types: what a target sends the CLI (a
// snapshot, a watch update, an error answer) is outside input. Run one for a
// while with
//
//	go test -run '^$' -fuzz '^FuzzApply$' -fuzztime 60s ./internal/api
//
// (scripts/fuzz.sh runs them all); without -fuzz, go test runs their seeds.

// seedSnapshot is a snapshot with every kind of field set, as JSON.
func seedSnapshot(window int64, tasks ...Task) []byte {
	s := Snapshot{
		Time: time.Date(2026, 11, 27, 17, 2, 3, 4, time.UTC), Target: "127.0.0.1:7777", WindowNS: window, Source: "trace-slices",
		Tasks: tasks,
		Sites: []Site{{Reason: "chan receive", Location: Frame{Function: "main.f", File: "/a.go", Line: 3}, Waiting: 2, WaitNS: 5, Wakeups: 1,
			Tasks: []int64{1, 2}, Waker: []Frame{{Function: "main.g"}}, Wakers: []WakerSite{{Location: Frame{Function: "main.g"}, Count: 1}}}},
		Process: Process{GoVersion: "go1.27.3", GOMAXPROCS: 2, Goroutines: 3, ByState: map[string]int64{"waiting": 2},
			SchedLatency: &Histogram{Count: 1, P50NS: 2, Buckets: []int64{0, 1}}, Leaked: -1},
		Findings: []Finding{{ID: "leak:main.f", Rule: "goroutine-leak", Severity: "warning", Title: "t",
			Evidence:  Evidence{Tasks: []int64{1}, Figures: map[string]float64{"goroutines": 12.5}, Missing: []string{"leak profile"}},
			FirstSeen: time.Unix(100, 0).UTC(), LastSeen: time.Unix(101, 0).UTC()}},
		Notes: []string{"n"}, Partial: "cut", ObservedNS: 7, RecordingSince: time.Unix(90, 0).In(time.FixedZone("", 3600)),
		Spawns: []SpawnSite{{Site: Frame{Function: "main.spawn"}, Created: 100, Peak: 100, Alive: 3}},
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

func seedUpdate(u Update) []byte {
	b, err := json.Marshal(u)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzSnapshotJSON: whatever JSON decodes as a snapshot encodes, and
// decodes back to what encodes the same: the wire types keep what they read.
func FuzzSnapshotJSON(f *testing.F) {
	f.Add(seedSnapshot(2e9, whole(1, 2e9), task(2, "running", 5)))
	f.Add([]byte(`{"tasks":[{"id":1,"labels":{},"stats":{"idle_by_reason":{}}}],"recording_since":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"time":"2026-01-02T03:04:05.999999999+23:59","process":{"sched_latency":null},"findings":[{"evidence":{"figures":{"x":1e308}}}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var s Snapshot
		if json.Unmarshal(in, &s) != nil {
			return
		}
		once, err := json.Marshal(&s)
		if err != nil {
			t.Fatalf("a decoded snapshot does not encode: %v", err)
		}
		var again Snapshot
		if err := json.Unmarshal(once, &again); err != nil {
			t.Fatalf("an encoded snapshot does not decode: %v\n%s", err, once)
		}
		twice, err := json.Marshal(&again)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("encode(decode(encode(s))) differs (%v):\n%s\n%s", err, once, twice)
		}
	})
}

// unique keeps the first task of each id: a snapshot lists a goroutine once.
func unique(tasks []Task) []Task {
	seen := map[int64]bool{}
	return slices.DeleteFunc(tasks, func(t Task) bool {
		dup := seen[t.ID]
		seen[t.ID] = true
		return dup
	})
}

func ids(tasks []Task) []int64 {
	out := make([]int64, len(tasks))
	for i, t := range tasks {
		out[i] = t.ID
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %T: %v", v, err)
	}
	return b
}

// FuzzApply applies any update a target may send to any state: Apply must
// not panic, must leave the tasks in id order with the update's tasks in and
// its removed ones out, and must not change the update (whose maps a
// recording's player keeps).
func FuzzApply(f *testing.F) {
	const w1, w2 = int64(2_002_000_000), int64(2_011_000_000)
	state := seedSnapshot(w1, whole(1, w1), whole(2, w1), task(3, "running", 5))
	f.Add(state, seedUpdate(Update{Seq: 2, WindowNS: w2, Tasks: []Task{whole(2, w2), task(4, "runnable", 1)}, Removed: []int64{3, 9}}))
	f.Add(state, seedUpdate(Update{Seq: 1, Full: true, WindowNS: w1, Tasks: []Task{task(5, "waiting", 0), task(5, "running", 1), task(-1, "", 0)}}))
	f.Add([]byte(`{"window_ns":-5,"tasks":[{"id":1,"stats":{"total_ns":-5,"idle_by_reason":{"a":-5}}},{"id":1}]}`),
		[]byte(`{"window_ns":0,"tasks":[{"id":1}],"removed":[1,1]}`))
	f.Add([]byte(`{}`), []byte(`{"tasks":null,"removed":[]}`))
	f.Fuzz(func(t *testing.T, stateJSON, updateJSON []byte) {
		var s Snapshot
		var u Update
		if json.Unmarshal(stateJSON, &s) != nil || json.Unmarshal(updateJSON, &u) != nil {
			return
		}
		before := mustJSON(t, u)
		old := map[int64]bool{}
		for _, t := range s.Tasks {
			old[t.ID] = true
		}
		Apply(&s, u)
		if after := mustJSON(t, u); !bytes.Equal(before, after) {
			t.Fatalf("Apply changed the update:\n%s\n%s", before, after)
		}
		got := ids(s.Tasks)
		if !slices.IsSorted(got) {
			t.Fatalf("tasks out of id order: %v", got)
		}
		if s.WindowNS != u.WindowNS || !s.Time.Equal(u.Time) || s.Source != u.Source {
			t.Fatalf("state's window %d, time %v, source %q; update's %d, %v, %q", s.WindowNS, s.Time, s.Source, u.WindowNS, u.Time, u.Source)
		}
		want := map[int64]bool{}
		if !u.Full {
			maps.Copy(want, old)
		}
		for _, t := range u.Tasks {
			want[t.ID] = true
		}
		if !u.Full {
			for _, id := range u.Removed {
				delete(want, id)
			}
		}
		if has := map[int64]bool{}; func() bool {
			for _, id := range got {
				has[id] = true
			}
			return !maps.Equal(has, want)
		}() {
			t.Fatalf("tasks %v after the update, want the ids %v", got, slices.Sorted(maps.Keys(want)))
		}
	})
}

// FuzzDiffApply: whatever two snapshots (each goroutine listed once), the
// diff of them, sent as JSON and applied to the first, gives the second.
func FuzzDiffApply(f *testing.F) {
	const w1, w2 = int64(2_002_000_000), int64(2_011_000_000)
	a, b := whole(1, w1), whole(1, w2)
	b.Stats.IdleByReason = map[string]int64{"chan receive": w2, "sleep": 0}
	f.Add(seedSnapshot(w1, a, whole(2, w1), task(3, "running", 5)), seedSnapshot(w2, b, whole(2, w2), task(4, "running", 5)))
	f.Add(seedSnapshot(0, whole(1, 0)), seedSnapshot(w1, whole(1, w1)))
	f.Add(seedSnapshot(w1, whole(1, w1)), seedSnapshot(-w1, whole(1, -w1)))
	f.Add([]byte(`{"window_ns":5,"tasks":[{"id":1,"stats":{"total_ns":5,"idle_by_reason":{}}}]}`),
		[]byte(`{"window_ns":6,"tasks":[{"id":1,"stats":{"total_ns":6}}]}`))
	f.Fuzz(func(t *testing.T, firstJSON, secondJSON []byte) {
		var s1, s2 Snapshot
		if json.Unmarshal(firstJSON, &s1) != nil || json.Unmarshal(secondJSON, &s2) != nil {
			return
		}
		s1.Tasks, s2.Tasks = unique(s1.Tasks), unique(s2.Tasks)
		wire := func(u Update) Update {
			var out Update
			if err := json.Unmarshal(mustJSON(t, u), &out); err != nil {
				t.Fatalf("an update does not decode: %v", err)
			}
			return out
		}
		var state Snapshot
		Apply(&state, wire(Diff(nil, &s1)))
		Apply(&state, wire(Diff(&s1, &s2)))
		want := slices.Clone(s2.Tasks)
		slices.SortFunc(want, func(a, b Task) int { return cmp.Compare(a.ID, b.ID) })
		if len(state.Tasks) == 0 && len(want) == 0 {
			return // no tasks, whether [] or null
		}
		if got, want := mustJSON(t, state.Tasks), mustJSON(t, want); !bytes.Equal(got, want) {
			t.Fatalf("state after the diff:\n%s\nwant\n%s", got, want)
		}
	})
}

// FuzzStatusError reads any error answer: the message is one line of
// printable text, never empty, whatever the target sent (a terminal prints
// it), and the API's own error is told apart and kept.
func FuzzStatusError(f *testing.F) {
	f.Add(500, []byte(`{"error": "workload hello is running"}`))
	f.Add(404, []byte("404 page not found\n"))
	f.Add(502, []byte("<!DOCTYPE html>\n<html><head>\n<title>Bad\n Gateway</title></head><body></body></html>"))
	f.Add(500, []byte("\x1b]0;title\x07\x1b[2Jcleared\rover"))
	f.Add(400, []byte(`{"error": "a\u001b[31mred\nline"}`))
	f.Add(500, []byte(strings.Repeat("é", 100)))
	f.Add(500, []byte("\xff\xfe<title>\xc3</title>"))
	f.Add(502, []byte("\xff\xff\xff\xff<title>")) // lower case longer than the text: it panicked
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: "target:1", Path: "/api/v1/snapshot"}}
		resp := &http.Response{StatusCode: code, Body: http.NoBody}
		if len(body) > 0 {
			resp.Body = readCloser{bytes.NewReader(body)}
		}
		se := statusError(req, resp)
		if se.Code != code || se.URL != "http://target:1/api/v1/snapshot" {
			t.Fatalf("code %d, URL %q", se.Code, se.URL)
		}
		m := se.Message
		if m == "" || !utf8.ValidString(m) || strings.ContainsFunc(m, unicode.IsControl) {
			t.Fatalf("message %q: want one line of printable text", m)
		}
		var e Error
		api := json.Unmarshal(body, &e) == nil && e.Error != ""
		if api == se.NotAPI {
			t.Fatalf("NotAPI %v for %q", se.NotAPI, body)
		}
		if api && printable(e.Error) && m != e.Error {
			t.Fatalf("the API's error %q read as %q", e.Error, m)
		}
		if !api && len(m) > 200 {
			t.Fatalf("a summary of %d bytes: %q", len(m), m)
		}
	})
}

func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
