package dump_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/stack"
)

const (
	fixture127   = "testdata/dumps/dump-go1.27.3-labels.txt"
	fixture126   = "testdata/dumps/dump-go1.26.8.txt"
	fixture126TL = "testdata/dumps/dump-go1.26.8-tracebacklabels.txt"
)

func readDump(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parse parses b both ways and checks that they agree.
func parseBoth(t testing.TB, b []byte) ([]dump.Goroutine, error) {
	t.Helper()
	gs, err := dump.ParseDumpBytes(b)
	gs2, err2 := dump.ParseDump(bytes.NewReader(b))
	if !reflect.DeepEqual(gs, gs2) || fmt.Sprint(err) != fmt.Sprint(err2) {
		t.Fatalf("ParseDump and ParseDumpBytes disagree:\nbytes:  %d goroutines, %v\nreader: %d goroutines, %v", len(gs), err, len(gs2), err2)
	}
	return gs, err
}

func mustParseDump(t testing.TB, b []byte) []dump.Goroutine {
	t.Helper()
	gs, err := parseBoth(t, b)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return gs
}

func goroutineByID(gs []dump.Goroutine, id int64) *dump.Goroutine {
	for i := range gs {
		if gs[i].ID == id {
			return &gs[i]
		}
	}
	return nil
}

func idsOf(gs []dump.Goroutine) []int64 {
	var out []int64
	for _, g := range gs {
		out = append(out, g.ID)
	}
	return out
}

func idSpan(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// shape is a goroutine without what differs between the three fixtures:
// IDs, labels, and where Go and the main package were installed.
func dumpShape(g dump.Goroutine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%d|%v|%v|parent=%d\n", g.Status, g.State, g.WaitReason, g.WaitMinutes, g.Locked, g.Elided, g.ParentID)
	frame := func(f stack.Frame) {
		line := f.Line
		if base := filepath.Base(f.File); base == "main.go" || base == "time.go" {
			line = 0 // main.go:17 vs 63, time.go:368 vs 363
		}
		fmt.Fprintf(&b, "  %s %s:%d\n", f.Func, filepath.Base(f.File), line)
	}
	for _, f := range g.Frames {
		frame(f)
	}
	b.WriteString("created by")
	frame(g.CreatedBy)
	return b.String()
}

// parkForDump waits on ch, as the goroutines of a dump do.
func parkForDump(ch chan struct{}) { <-ch }

// A Go 1.27 program's dump with labels (the default) and without
// (GODEBUG=tracebacklabels=0, as before Go 1.27) parse the same but for
// the labels. The program is this test binary, run again.
func TestParseGo127DumpWithAndWithoutLabels(t *testing.T) {
	const child = "PROBES_TEST_DUMP_CHILD"
	if os.Getenv(child) == "1" {
		ch := make(chan struct{})
		for i := range 8 {
			if i%2 == 0 {
				go parkForDump(ch)
				continue
			}
			go pprof.Do(context.Background(), pprof.Labels("role", "parked", "worker", fmt.Sprint(i)), func(context.Context) { parkForDump(ch) })
		}
		// Dump once all eight wait in chan receive (on a loaded machine some
		// are still runnable a while after they start), or after 30s.
		buf := make([]byte, 1<<20)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			n := runtime.Stack(buf, true)
			parked := 0
			for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
				header, _, _ := strings.Cut(g, "\n")
				if strings.Contains(header, "[chan receive") && strings.Contains(g, "dump_test.parkForDump(") {
					parked++
				}
			}
			if parked == 8 || time.Now().After(deadline) {
				os.Stdout.Write(buf[:n])
				os.Exit(0)
			}
		}
	}
	dump := func(godebug string) []dump.Goroutine {
		cmd := exec.Command(os.Args[0], "-test.run=^TestParseGo127DumpWithAndWithoutLabels$")
		cmd.Env = append(os.Environ(), child+"=1", "GODEBUG="+godebug)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("the child with GODEBUG=%q: %v", godebug, err)
		}
		var ours []dump.Goroutine
		for _, g := range mustParseDump(t, out) {
			if strings.Contains(g.CreatedBy.Func, "TestParseGo127DumpWithAndWithoutLabels") {
				ours = append(ours, g)
			}
		}
		if len(ours) != 8 {
			t.Fatalf("GODEBUG=%q: %d of the child's goroutines in its dump, want 8:\n%s", godebug, len(ours), out)
		}
		return ours
	}
	labelled, plain := dump(""), dump("tracebacklabels=0")
	for i := range labelled {
		a, b := labelled[i], plain[i]
		if a.ParentID == 0 || b.ParentID == 0 {
			t.Errorf("goroutine #%d: parent %d and %d, want the test's goroutine", i, a.ParentID, b.ParentID)
		}
		// The two runs number their goroutines apart.
		na, nb := a, b
		na.ParentID, nb.ParentID = 0, 0
		if sa, sb := dumpShape(na), dumpShape(nb); sa != sb {
			t.Errorf("goroutine #%d differs:\nwith labels:\n%s\nwithout:\n%s", i, sa, sb)
		}
		if b.Labels != nil {
			t.Errorf("goroutine %d: labels %v in the dump without", b.ID, b.Labels)
		}
		want := map[string]string(nil)
		if i%2 == 1 {
			want = map[string]string{"role": "parked", "worker": fmt.Sprint(i)}
		}
		if !reflect.DeepEqual(a.Labels, want) {
			t.Errorf("goroutine %d: labels %v, want %v", a.ID, a.Labels, want)
		}
	}
}

func TestParseFixtures(t *testing.T) {
	want := map[string][]int64{
		fixture127:   append([]int64{1}, idSpan(19, 125)...),
		fixture126:   append([]int64{1}, idSpan(21, 127)...),
		fixture126TL: append(append([]int64{1}, idSpan(8, 16)...), idSpan(18, 115)...),
	}
	parsed := map[string][]dump.Goroutine{}
	for name, wantIDs := range want {
		gs := mustParseDump(t, readDump(t, name))
		if len(gs) != 108 {
			t.Errorf("%s: %d goroutines, want 108", name, len(gs))
		}
		if got := idsOf(gs); !slices.Equal(got, wantIDs) {
			t.Errorf("%s: ids %v\nwant %v", name, got, wantIDs)
		}
		parsed[name] = gs
	}
	// The three dumps are of the same program: the same goroutines in the
	// same order, but for IDs and labels.
	ref := parsed[fixture126]
	for _, name := range []string{fixture127, fixture126TL} {
		gs := parsed[name]
		for i := range min(len(gs), len(ref)) {
			if a, b := dumpShape(ref[i]), dumpShape(gs[i]); a != b {
				t.Errorf("%s: goroutine #%d (id %d) differs from %s:\n%s\nwant\n%s", name, i, gs[i].ID, fixture126, b, a)
			}
		}
	}

	// Labels: none in the plain Go 1.26 dump; the same in the two labelled ones.
	countLabelled := func(gs []dump.Goroutine) int {
		n := 0
		for _, g := range gs {
			if g.Labels != nil {
				n++
			}
		}
		return n
	}
	if n := countLabelled(ref); n != 0 {
		t.Errorf("%s: %d goroutines with labels, want 0", fixture126, n)
	}
	for _, name := range []string{fixture127, fixture126TL} {
		if n := countLabelled(parsed[name]); n != 52 {
			t.Errorf("%s: %d goroutines with labels, want 52", name, n)
		}
		for i, g := range parsed[name] {
			if other := parsed[fixture127][i]; !reflect.DeepEqual(g.Labels, other.Labels) {
				t.Errorf("%s: goroutine %d labels %v, but %v in %s", name, g.ID, g.Labels, other.Labels, fixture127)
			}
		}
	}
	// Checked by hand against the files.
	for _, c := range []struct {
		file   string
		id     int64
		labels map[string]string
	}{
		{fixture127, 19, nil},
		{fixture127, 20, map[string]string{"role": "parked", "worker": "1"}},
		{fixture127, 110, map[string]string{"role": "parked", "worker": "11"}},
		{fixture127, 124, map[string]string{"user id": `a "b" c`}},
		{fixture127, 125, map[string]string{"role": "sleeper"}},
		{fixture126TL, 8, nil},
		{fixture126TL, 9, map[string]string{"role": "parked", "worker": "1"}},
		{fixture126TL, 11, map[string]string{"role": "parked", "worker": "3"}},
		{fixture126TL, 114, map[string]string{"user id": `a "b" c`}},
		{fixture126TL, 115, map[string]string{"role": "sleeper"}},
	} {
		g := goroutineByID(parsed[c.file], c.id)
		if g == nil {
			t.Errorf("%s: no goroutine %d", c.file, c.id)
			continue
		}
		if !reflect.DeepEqual(g.Labels, c.labels) {
			t.Errorf("%s: goroutine %d labels %v, want %v", c.file, c.id, g.Labels, c.labels)
		}
	}

	// One goroutine in full.
	const (
		park    = "/home/user/src/parkdemo/park/park.go"
		pprofgo = "/root/go/pkg/mod/golang.org/toolchain@v0.0.1-go1.27.3.linux-amd64/src/runtime/pprof/runtime.go"
	)
	deep := func(line int) stack.Frame { return stack.Frame{Func: "baselines/park.deep", File: park, Line: line} }
	want20 := dump.Goroutine{
		ID: 20, ParentID: 1,
		Status: "chan receive", State: stack.Waiting, WaitReason: "chan receive",
		Labels: map[string]string{"role": "parked", "worker": "1"},
		Frames: []stack.Frame{
			deep(42), deep(39), deep(39), deep(39), deep(39),
			{Func: "baselines/park.Start.func2", File: park, Line: 27},
			{Func: "runtime/pprof.Do", File: pprofgo, Line: 57},
		},
		CreatedBy: stack.Frame{Func: "baselines/park.Start", File: park, Line: 27},
	}
	g20 := goroutineByID(parsed[fixture127], 20)
	if !reflect.DeepEqual(*g20, want20) {
		t.Errorf("goroutine 20:\n got %+v\nwant %+v", *g20, want20)
	}
	if loc := g20.Location(); loc != deep(42) {
		t.Errorf("goroutine 20 location %v, want %v", loc, deep(42))
	}
	g1 := goroutineByID(parsed[fixture127], 1)
	if g1.State != stack.Running || g1.WaitReason != "" || !g1.CreatedBy.IsZero() || g1.ParentID != 0 {
		t.Errorf("goroutine 1: %+v", *g1)
	}
	// go time.Sleep(d): no user frame, the location is the go statement.
	g120 := goroutineByID(parsed[fixture127], 120)
	if loc := g120.Location(); loc != (stack.Frame{Func: "baselines/park.startOthers", File: park, Line: 60}) {
		t.Errorf("goroutine 120 location %v", loc)
	}
	// sync.Mutex.Lock: the location skips the internal/sync and sync frames.
	g122 := goroutineByID(parsed[fixture127], 122)
	if loc := g122.Location(); loc != (stack.Frame{Func: "baselines/park.startOthers.func3", File: park, Line: 62}) {
		t.Errorf("goroutine 122 location %v", loc)
	}
	if g122.Frames[2].Func != "internal/sync.(*Mutex).Lock" || g122.Frames[2].Line != 70 {
		t.Errorf("goroutine 122 inlined frame %v", g122.Frames[2])
	}

	// Identical stacks share one slice; identical strings one copy.
	a, b := goroutineByID(parsed[fixture127], 19), goroutineByID(parsed[fixture127], 21)
	if &a.Frames[0] != &b.Frames[0] {
		t.Errorf("goroutines 19 and 21 have the same stack but separate Frames slices")
	}
	if c := goroutineByID(parsed[fixture127], 22); &c.Frames[0] != &g20.Frames[0] {
		t.Errorf("goroutines 20 and 22 have the same stack (but for arguments) and separate Frames slices")
	}
	if &a.Frames[0] == &g20.Frames[0] {
		t.Errorf("goroutines 19 and 20 have different stacks and share Frames")
	}
}

// TestParseSameStackDifferentArgs checks that arguments do not split stacks.
func TestParseSameStackDifferentArgs(t *testing.T) {
	gs := mustParseDump(t, []byte("goroutine 5 [select]:\nmain.f(0x1)\n\t/a.go:3 +0x1\n\ngoroutine 6 [select]:\nmain.f(0x2)\n\t/a.go:3 +0x9\n"))
	if &gs[0].Frames[0] != &gs[1].Frames[0] {
		t.Error("same stack, different arguments: Frames not shared")
	}
}

func TestParseHeaders(t *testing.T) {
	const body = "main.f()\n\t/src/a.go:10 +0x1\n"
	for _, c := range []struct {
		header string
		want   dump.Goroutine // Frames left out
	}{
		{"goroutine 7 [chan receive]:", dump.Goroutine{ID: 7, Status: "chan receive", State: stack.Waiting, WaitReason: "chan receive"}},
		{"goroutine 7 [running]:", dump.Goroutine{ID: 7, Status: "running", State: stack.Running}},
		{"goroutine 7 [runnable]:", dump.Goroutine{ID: 7, Status: "runnable", State: stack.Runnable}},
		{"goroutine 7 [preempted]:", dump.Goroutine{ID: 7, Status: "preempted", State: stack.Runnable}},
		{"goroutine 7 [syscall, 12 minutes]:", dump.Goroutine{ID: 7, Status: "syscall", State: stack.Syscall, WaitMinutes: 12}},
		{"goroutine 7 [syscall, locked to thread]:", dump.Goroutine{ID: 7, Status: "syscall", State: stack.Syscall, Locked: true}},
		{"goroutine 7 [IO wait, 1 minutes]:", dump.Goroutine{ID: 7, Status: "IO wait", State: stack.Waiting, WaitReason: "IO wait", WaitMinutes: 1}},
		{"goroutine 7 [select (no cases), 3 minutes, locked to thread]:", dump.Goroutine{ID: 7, Status: "select (no cases)", State: stack.Waiting, WaitReason: "select (no cases)", WaitMinutes: 3, Locked: true}},
		{"goroutine 7 [chan receive (nil chan)]:", dump.Goroutine{ID: 7, Status: "chan receive (nil chan)", State: stack.Waiting, WaitReason: "chan receive (nil chan)"}},
		{"goroutine 7 [chan receive (leaked), 5 minutes]:", dump.Goroutine{ID: 7, Status: "chan receive", State: stack.Waiting, WaitReason: "chan receive", WaitMinutes: 5, Leaked: true}},
		{"goroutine 7 [leaked]:", dump.Goroutine{ID: 7, Status: "leaked", State: stack.Waiting, WaitReason: "leaked", Leaked: true}},
		{"goroutine 7 [sync.Mutex.Lock (scan)]:", dump.Goroutine{ID: 7, Status: "sync.Mutex.Lock", State: stack.Waiting, WaitReason: "sync.Mutex.Lock"}},
		{"goroutine 7 [chan receive (durable), synctest bubble 3]:", dump.Goroutine{ID: 7, Status: "chan receive", State: stack.Waiting, WaitReason: "chan receive", Durable: true, Bubble: 3}},
		{"goroutine 7 [sleep (durable), synctest bubble 3] {role: sleeper}:", dump.Goroutine{ID: 7, Status: "sleep", State: stack.Waiting, WaitReason: "sleep", Durable: true, Bubble: 3, Labels: map[string]string{"role": "sleeper"}}},
		{"goroutine 7 [running, synctest bubble 12]:", dump.Goroutine{ID: 7, Status: "running", State: stack.Running, Bubble: 12}},
		{"goroutine 7 [select, some future note]:", dump.Goroutine{ID: 7, Status: "select", State: stack.Waiting, WaitReason: "select"}},
		{"goroutine 1 gp=0xc000002380 m=0 mp=0x5ab2a0 [running]:", dump.Goroutine{ID: 1, Status: "running", State: stack.Running}},
		{"goroutine 18 gp=0xc000102380 m=nil [GC worker (idle)]:", dump.Goroutine{ID: 18, Status: "GC worker (idle)", State: stack.Waiting, WaitReason: "GC worker (idle)"}},
		{"goroutine 9223372036854775807 [select]:", dump.Goroutine{ID: 1<<63 - 1, Status: "select", State: stack.Waiting, WaitReason: "select"}},
		{"goroutine 7 [chan receive]:\r", dump.Goroutine{ID: 7, Status: "chan receive", State: stack.Waiting, WaitReason: "chan receive"}},
		// Go 1.27 labels: quoted only when needed, with the runtime's escapes.
		{"goroutine 7 [chan receive] {a: b}:", dump.Goroutine{ID: 7, Status: "chan receive", State: stack.Waiting, WaitReason: "chan receive", Labels: map[string]string{"a": "b"}}},
		{"goroutine 7 [chan receive, 2 minutes, locked to thread] {workload: leak, role: sender, path: /a/b.c_d}:", dump.Goroutine{ID: 7, Status: "chan receive", State: stack.Waiting, WaitReason: "chan receive", WaitMinutes: 2, Locked: true, Labels: map[string]string{"workload": "leak", "role": "sender", "path": "/a/b.c_d"}}},
		{`goroutine 7 [select] {"user id": "a \"b\" c", "x,y": "}]:", "tab\there": "nl\nret\r\\", "bytes": "\x00\x7f\xff", "uni": "é\u2603\U0001f600", : , "": ""}:`,
			dump.Goroutine{ID: 7, Status: "select", State: stack.Waiting, WaitReason: "select", Labels: map[string]string{
				"user id": `a "b" c`, "x,y": "}]:", "tab\there": "nl\nret\r\\", "bytes": "\x00\x7f\xff", "uni": "é\u2603\U0001f600", "": "",
			}}},
		{`goroutine 7 [select] {"k": v, k2: "v 2"}:`, dump.Goroutine{ID: 7, Status: "select", State: stack.Waiting, WaitReason: "select", Labels: map[string]string{"k": "v", "k2": "v 2"}}},
		{"goroutine 7 [select] {}:", dump.Goroutine{ID: 7, Status: "select", State: stack.Waiting, WaitReason: "select"}},
		// Go 1.26 GODEBUG=tracebacklabels=1: inside the brackets, always quoted.
		{`goroutine 7 [chan receive labels:{"role": "parked", "worker": "1"}]:`, dump.Goroutine{ID: 7, Status: "chan receive", State: stack.Waiting, WaitReason: "chan receive", Labels: map[string]string{"role": "parked", "worker": "1"}}},
		{`goroutine 7 [select, 4 minutes, locked to thread labels:{"a]": "b,c", "d": "e\"}]"}]:`, dump.Goroutine{ID: 7, Status: "select", State: stack.Waiting, WaitReason: "select", WaitMinutes: 4, Locked: true, Labels: map[string]string{"a]": "b,c", "d": `e"}]`}}},
	} {
		gs, err := parseBoth(t, []byte(c.header+"\n"+body))
		if err != nil || len(gs) != 1 {
			t.Errorf("%s: %d goroutines, %v", c.header, len(gs), err)
			continue
		}
		g := gs[0]
		g.Frames = nil
		if !reflect.DeepEqual(g, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.header, g, c.want)
		}
	}
}

func TestParseBadHeaders(t *testing.T) {
	const ok = "goroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n\n"
	for _, h := range []string{
		"goroutine 7",
		"goroutine 7 [",
		"goroutine 7 [chan receive",
		"goroutine 7 [chan receive]",
		"goroutine 7 [chan receive]: x",
		"goroutine 7 []:",
		"goroutine 7x [running]:",
		"goroutine 99999999999999999999 [running]:",
		"goroutine 7 [select, x minutes]:",
		"goroutine 7 [select, synctest bubble x]:",
		"goroutine 7 [select] {a: b:",
		"goroutine 7 [select] {a b}:",
		"goroutine 7 [select] {a: b,c: d}:",
		`goroutine 7 [select] {"a: b}:`,
		`goroutine 7 [select] {"\q": b}:`,
		`goroutine 7 [select labels:{"a": "b"}:`,
		`goroutine 7 [select labels:{"a": "b"} x]:`,
	} {
		in := ok + h + "\nmain.f()\n\t/a.go:2 +0x1\n\n" + ok
		gs, err := parseBoth(t, []byte(in))
		var pe *dump.ParseError
		if !errors.As(err, &pe) || pe.Line != 5 || !errors.Is(err, dump.ErrMalformed) {
			t.Errorf("%q: error %v, want a malformed header error on line 5", h, err)
		}
		if len(gs) != 2 || gs[0].ID != 1 || gs[1].ID != 1 {
			t.Errorf("%q: goroutines %v, want the two good ones", h, idsOf(gs))
		}
	}
}

func TestParseBodies(t *testing.T) {
	f := func(fn, file string, line int) stack.Frame { return stack.Frame{Func: fn, File: file, Line: line} }
	for _, c := range []struct {
		name string
		in   string
		want []dump.Goroutine
	}{
		{
			name: "elided, new style",
			in: "goroutine 5 [running]:\nmain.r(...)\n\t/a.go:3\n...10 frames elided...\nmain.r(0x0)\n\t/a.go:3 +0x1a\nmain.main()\n\t/a.go:9 +0x10\n" +
				"created by main.x in goroutine 1\n\t/a.go:20 +0x25\n",
			want: []dump.Goroutine{{ID: 5, Status: "running", State: stack.Running, Elided: true, ParentID: 1,
				Frames:    []stack.Frame{f("main.r", "/a.go", 3), f("main.r", "/a.go", 3), f("main.main", "/a.go", 9)},
				CreatedBy: f("main.x", "/a.go", 20)}},
		},
		{
			name: "elided, old style, created by without goroutine",
			in:   "goroutine 5 [select]:\nmain.r(0x1, {0x2, 0x3}, ...)\n\t/a.go:3 +0x1a\n...additional frames elided...\ncreated by main.x\n\t/a.go:20 +0x25\n",
			want: []dump.Goroutine{{ID: 5, Status: "select", State: stack.Waiting, WaitReason: "select", Elided: true,
				Frames: []stack.Frame{f("main.r", "/a.go", 3)}, CreatedBy: f("main.x", "/a.go", 20)}},
		},
		{
			name: "methods, generics, panic, windows paths, system frames",
			in: "goroutine 5 gp=0x1 m=2 mp=0x3 [running]:\npanic({0x4a1e20?, 0x4f3c38?})\n\tC:/Go/src/runtime/panic.go:770 +0x132 fp=0xc0 sp=0xc1 pc=0x4\n" +
				"net/http.(*conn).serve(0xc000)\n\t/go/src/net/http/server.go:2039 +0x8e\n" +
				"main.Map[...](...)\n\t/src/my app/main.go:12\n" +
				"example.com/x%2ev2.(*T[...]).M-fm()\n\t/src/x.go:1 +0x1\n" +
				"created by net/http.(*Server).Serve in goroutine 99\n\t/go/src/net/http/server.go:3285 +0x4b4\n",
			want: []dump.Goroutine{{ID: 5, Status: "running", State: stack.Running, ParentID: 99,
				Frames: []stack.Frame{f("panic", "C:/Go/src/runtime/panic.go", 770), f("net/http.(*conn).serve", "/go/src/net/http/server.go", 2039),
					f("main.Map[...]", "/src/my app/main.go", 12), f("example.com/x%2ev2.(*T[...]).M-fm", "/src/x.go", 1)},
				CreatedBy: f("net/http.(*Server).Serve", "/go/src/net/http/server.go", 3285)}},
		},
		{
			name: "cgo frames",
			in: "goroutine 5 [syscall]:\nnon-Go function at pc=0x7f01\nmain._Cfunc_sleep(0x1)\n\t_cgo_gotypes.go:50 +0x45\n" +
				"C.sleep\n\t/src/c.c:4 pc=0x4a0b\nC.other\n\tpc=0x4a0c\n",
			want: []dump.Goroutine{{ID: 5, Status: "syscall", State: stack.Syscall,
				Frames: []stack.Frame{{Func: "non-Go function"}, f("main._Cfunc_sleep", "_cgo_gotypes.go", 50), f("C.sleep", "/src/c.c", 4), {Func: "C.other"}}}},
		},
		{
			name: "stack unavailable",
			in: "goroutine 5 [running]:\n\tgoroutine running on other thread; stack unavailable\ncreated by main.main in goroutine 1\n\t/a.go:8 +0x1\n\n" +
				"goroutine 6 [running]:\n\tgoroutine running on other thread; stack unavailable\n",
			want: []dump.Goroutine{
				{ID: 5, Status: "running", State: stack.Running, StackUnavailable: true, ParentID: 1, CreatedBy: f("main.main", "/a.go", 8)},
				{ID: 6, Status: "running", State: stack.Running, StackUnavailable: true},
			},
		},
		{
			name: "crlf, no blank line between goroutines, trailing blank lines",
			in:   "goroutine 5 [select]:\r\nmain.f()\r\n\t/a.go:3 +0x1\r\ngoroutine 6 [sleep]:\r\ntime.Sleep(0x1)\r\n\t/t.go:3 +0x1\r\n\r\n\r\n",
			want: []dump.Goroutine{
				{ID: 5, Status: "select", State: stack.Waiting, WaitReason: "select", Frames: []stack.Frame{f("main.f", "/a.go", 3)}},
				{ID: 6, Status: "sleep", State: stack.Waiting, WaitReason: "sleep", Frames: []stack.Frame{f("time.Sleep", "/t.go", 3)}},
			},
		},
		{
			name: "go test timeout",
			in: "panic: test timed out after 1s\n\trunning tests:\n\t\tTestX (1s)\n\ngoroutine 17 [running]:\ntesting.(*M).startAlarm.func1()\n\t/go/src/testing/testing.go:2373 +0x385\n" +
				"created by time.goFunc\n\t/go/src/time/sleep.go:215 +0x2d\n\ngoroutine 1 [chan receive]:\nmain.main()\n\t_testmain.go:45 +0x9c\nFAIL\tgithub.com/x/y\t1.011s\nFAIL\n",
			want: []dump.Goroutine{
				{ID: 17, Status: "running", State: stack.Running, Frames: []stack.Frame{f("testing.(*M).startAlarm.func1", "/go/src/testing/testing.go", 2373)}, CreatedBy: f("time.goFunc", "/go/src/time/sleep.go", 215)},
				{ID: 1, Status: "chan receive", State: stack.Waiting, WaitReason: "chan receive", Frames: []stack.Frame{f("main.main", "_testmain.go", 45)}},
			},
		},
		{
			name: "go run exit status, goroutine 0 and runtime stack skipped",
			in: "fatal error: x\n\nruntime stack:\nruntime.throw()\n\t/r.go:1 +0x1\n\ngoroutine 0 gp=0x1 m=0 mp=0x2 [idle]:\nruntime.futex()\n\t/r.go:2 +0x1\n" +
				"\ngoroutine 1 [running]:\nmain.main()\n\t/a.go:3 +0x1\nrax    0x0\nrflags 0x202\n-----\n\nSIGQUIT: quit\nPC=0x1 m=1 sigcode=0\n\ngoroutine 0 gp=0x3 m=1 mp=0x4 [idle]:\nruntime.futex()\n\t/r.go:2 +0x1\nrax    0x1\nexit status 2\n",
			want: []dump.Goroutine{{ID: 1, Status: "running", State: stack.Running, Frames: []stack.Frame{f("main.main", "/a.go", 3)}}},
		},
	} {
		gs, err := parseBoth(t, []byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(gs, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, gs, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		name, in string
		line     int
		kind     error
		ids      []int64
	}{
		{"empty", "", 1, dump.ErrNoHeader, nil},
		{"no header", "hello\nworld\n", 3, dump.ErrNoHeader, nil},
		{"only a bad header", "crash\ngoroutine 1 [running:\nmain.main()\n", 2, dump.ErrNoHeader, nil},
		{"binary", "\x00\x01\x02goroutine\xff\xfe", 1, dump.ErrNoHeader, nil},
		{"cut header", "goroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n\ngoroutine 2 [cha", 5, dump.ErrTruncated, []int64{1}},
		{"cut frame", "goroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n\ngoroutine 2 [chan receive]:\nmain.f(0x1", 6, dump.ErrTruncated, []int64{1, 2}},
		{"frame without file line", "goroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n\ngoroutine 2 [chan receive]:\nmain.f(0x1)\n", 6, dump.ErrTruncated, []int64{1, 2}},
		{"created by without file line", "goroutine 2 [chan receive]:\nmain.f(0x1)\n\t/a.go:1 +0x1\ncreated by main.main in goroutine 1\n", 4, dump.ErrTruncated, []int64{2}},
		{"header only", "goroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n\ngoroutine 2 [chan receive]:\n", 5, dump.ErrTruncated, []int64{1, 2}},
		{"cut file line", "goroutine 2 [chan receive]:\nmain.f(0x1)\n\t/a.go:1", 3, dump.ErrTruncated, []int64{2}},
		{"garbage between goroutines", "goroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n\nhello world\n\ngoroutine 2 [select]:\nmain.f()\n\t/a.go:1 +0x1\n", 5, dump.ErrMalformed, []int64{1, 2}},
		{"garbage instead of a file line", "goroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\nmain.g()\nhello\n\ngoroutine 2 [select]:\nmain.f()\n\t/a.go:1 +0x1\n", 5, dump.ErrMalformed, []int64{1, 2}},
		{"bad file line", "goroutine 1 [running]:\nmain.main()\n\t/a.go:x +0x1\n\ngoroutine 2 [select]:\nmain.f()\n\t/a.go:1 +0x1\n", 3, dump.ErrMalformed, []int64{1, 2}},
		{"stray file line", "goroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n\t/a.go:2 +0x1\n\ngoroutine 2 [select]:\nmain.f()\n\t/a.go:1 +0x1\n", 4, dump.ErrMalformed, []int64{1, 2}},
		{"bad ancestor", "goroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n[originating from goroutine x]:\n", 4, dump.ErrMalformed, []int64{1}},
	} {
		gs, err := parseBoth(t, []byte(c.in))
		var pe *dump.ParseError
		if !errors.As(err, &pe) || pe.Line != c.line || !errors.Is(err, c.kind) {
			t.Errorf("%s: error %v, want %v on line %d", c.name, err, c.kind, c.line)
		}
		if got := idsOf(gs); !slices.Equal(got, c.ids) {
			t.Errorf("%s: goroutines %v, want %v", c.name, got, c.ids)
		}
	}

	// Several problems: the first is reported, the others counted.
	in := "goroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n\nhello\n\ngoroutine 2 [select]:\nmain.f()\n\t/a.go:1 +0x1\n\nworld\n"
	_, err := parseBoth(t, []byte(in))
	if want := `goroutine dump line 5: unexpected line "hello" between goroutines (and 1 more problems)`; fmt.Sprint(err) != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestParseGarbageInFixture puts a line of garbage into a real dump.
func TestParseGarbageInFixture(t *testing.T) {
	lines := strings.SplitAfter(string(readDump(t, fixture127)), "\n")
	full := mustParseDump(t, readDump(t, fixture127))
	for _, at := range []int{7, 20, 21, 500, len(lines) - 2} { // 0-based index of the line before which garbage goes
		in := strings.Join(slices.Insert(slices.Clone(lines), at, "#### garbage ####\n"), "")
		gs, err := parseBoth(t, []byte(in))
		var pe *dump.ParseError
		if !errors.As(err, &pe) || pe.Line != at+1 {
			t.Errorf("garbage at line %d: error %v", at+1, err)
		}
		if len(gs) < len(full)-1 || len(gs) > len(full) {
			t.Errorf("garbage at line %d: %d goroutines, want about %d", at+1, len(gs), len(full))
		}
	}
}

// TestParseCutEverywhere cuts dumps at every byte: the parser must not panic,
// must return an error unless the cut falls where a dump may end, and must
// return a prefix of the full parse.
func TestParseCutEverywhere(t *testing.T) {
	fixture := readDump(t, fixture127)
	// The first 7 goroutines of the 1.27 fixture (3 labelled) and of the 1.26
	// tracebacklabels one, its end, and a crash output with ancestors.
	first := func(b []byte, n int) []byte {
		i := 0
		for range n {
			j := bytes.Index(b[i+1:], []byte("\ngoroutine "))
			if j < 0 {
				return b
			}
			i += j + 1
		}
		return b[:i]
	}
	inputs := map[string][]byte{
		"1.27":      first(fixture, 7),
		"1.26tl":    first(readDump(t, fixture126TL), 7),
		"ancestors": readDump(t, "testdata/crash/deadlock-tracebackancestors.txt"),
		"tail":      fixture[len(fixture)-2000:],
	}
	for name, in := range inputs {
		full, fullErr := dump.ParseDumpBytes(in)
		if fullErr != nil && name != "tail" { // "tail" starts in the middle of a goroutine
			t.Fatalf("%s: %v", name, fullErr)
		}
		step := 1
		if testing.Short() {
			step = 7
		}
		for k := 0; k < len(in); k += step {
			cut := in[:k]
			gs, err := dump.ParseDumpBytes(cut)
			if dumpMayEnd(cut) {
				if err != nil && len(gs) > 0 && name != "tail" && !errors.Is(err, dump.ErrNoHeader) {
					t.Errorf("%s cut at %d (after a complete line): %v", name, k, err)
				}
			} else if err == nil {
				t.Errorf("%s cut at %d (%q): no error", name, k, tailOf(cut))
			}
			if msg := dumpPrefixOf(gs, full); msg != "" {
				t.Fatalf("%s cut at %d (%q): %s", name, k, tailOf(cut), msg)
			}
		}
	}
}

func tailOf(b []byte) string {
	if len(b) > 40 {
		b = b[len(b)-40:]
	}
	return string(b)
}

// mayEnd reports whether a dump may legitimately end at the end of b: after a
// complete file line or a blank line.
func dumpMayEnd(b []byte) bool {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return false
	}
	last := b[:len(b)-1]
	if i := bytes.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	return len(last) == 0 || last[0] == '\t'
}

// prefixOf says how part is not a prefix of full: all but its last goroutine
// equal, and the last one with a prefix of the frames and nothing else extra.
func dumpPrefixOf(part, full []dump.Goroutine) string {
	if len(part) > len(full) {
		return fmt.Sprintf("%d goroutines, more than the %d of the full parse", len(part), len(full))
	}
	for i := range part {
		p, f := part[i], full[i]
		if i < len(part)-1 {
			if !goroutineEqual(p, f) {
				return fmt.Sprintf("goroutine #%d:\n got %+v\nwant %+v", i, p, f)
			}
			continue
		}
		if len(p.Frames) > len(f.Frames) || !slices.Equal(p.Frames, f.Frames[:len(p.Frames)]) {
			return fmt.Sprintf("last goroutine's frames %v are not a prefix of %v", p.Frames, f.Frames)
		}
		if len(p.Ancestors) > len(f.Ancestors) {
			return "last goroutine has extra ancestors"
		}
		if !p.CreatedBy.IsZero() && p.CreatedBy != f.CreatedBy || p.ParentID != 0 && p.ParentID != f.ParentID {
			return fmt.Sprintf("last goroutine created by %v in %d, want %v in %d", p.CreatedBy, p.ParentID, f.CreatedBy, f.ParentID)
		}
		p.Frames, p.Ancestors, p.CreatedBy, p.ParentID, p.Elided, p.StackUnavailable = nil, nil, stack.Frame{}, 0, false, false
		f.Frames, f.Ancestors, f.CreatedBy, f.ParentID, f.Elided, f.StackUnavailable = nil, nil, stack.Frame{}, 0, false, false
		if !goroutineEqual(p, f) {
			return fmt.Sprintf("last goroutine's header:\n got %+v\nwant %+v", p, f)
		}
	}
	return ""
}

// goroutineEqual is reflect.DeepEqual for goroutines, but faster.
func goroutineEqual(a, b dump.Goroutine) bool {
	if n := reflect.TypeFor[dump.Goroutine]().NumField(); n != 16 {
		panic(fmt.Sprintf("Goroutine has %d fields: update goroutineEqual", n))
	}
	if !slices.Equal(a.Frames, b.Frames) || !maps.Equal(a.Labels, b.Labels) || (a.Labels == nil) != (b.Labels == nil) ||
		len(a.Ancestors) != len(b.Ancestors) {
		return false
	}
	for i := range a.Ancestors {
		x, y := a.Ancestors[i], b.Ancestors[i]
		if x.ID != y.ID || x.CreatedBy != y.CreatedBy || x.Elided != y.Elided || !slices.Equal(x.Frames, y.Frames) {
			return false
		}
	}
	return a.ID == b.ID && a.ParentID == b.ParentID && a.Bubble == b.Bubble && a.Status == b.Status &&
		a.WaitReason == b.WaitReason && a.WaitMinutes == b.WaitMinutes && a.CreatedBy == b.CreatedBy &&
		a.State == b.State && a.Locked == b.Locked && a.Elided == b.Elided && a.Leaked == b.Leaked &&
		a.Durable == b.Durable && a.StackUnavailable == b.StackUnavailable
}

func TestParseDumpReader(t *testing.T) {
	in := readDump(t, fixture126TL)
	want := mustParseDump(t, in)
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(bytes.NewReader(in)),
		"half":     iotest.HalfReader(bytes.NewReader(in)),
	} {
		got, err := dump.ParseDump(r)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %d goroutines, %v", name, len(got), err)
		}
	}
	// A read error is reported with what was read.
	got, err := dump.ParseDump(io.MultiReader(bytes.NewReader(in[:5000]), iotest.ErrReader(errors.New("connection reset"))))
	if err == nil || !strings.Contains(err.Error(), "connection reset") || !errors.Is(err, dump.ErrTruncated) {
		t.Errorf("read error: %v", err)
	}
	if msg := dumpPrefixOf(got, want); msg != "" || len(got) == 0 {
		t.Errorf("read error: %d goroutines: %s", len(got), msg)
	}
	// Lines longer than the reader's buffer (a huge label).
	big := strings.Repeat("x", 200<<10)
	long := "goroutine 5 [select] {k: " + big + "}:\nmain." + big + "()\n\t/a.go:1 +0x1\n"
	gs := mustParseDump(t, []byte(long))
	if len(gs) != 1 || gs[0].Labels["k"] != big || gs[0].Frames[0].Func != "main."+big {
		t.Errorf("long lines: %d goroutines", len(gs))
	}
}

func TestGoroutineLocation(t *testing.T) {
	f := func(fn string) stack.Frame { return stack.Frame{Func: fn, File: "/x.go", Line: 1} }
	for _, c := range []struct {
		frames    []string
		createdBy string
		want      string
	}{
		{[]string{"runtime.gopark", "runtime.chanrecv1", "main.worker", "main.main"}, "", "main.worker"},
		{[]string{"internal/sync.runtime_SemacquireMutex", "sync.(*Mutex).Lock", "github.com/a/b.(*S).f"}, "", "github.com/a/b.(*S).f"},
		{[]string{"time.Sleep"}, "example.com/app.start", "example.com/app.start"},
		{[]string{"internal/poll.runtime_pollWait", "net.(*netFD).Read", "net/http.(*conn).serve"}, "net/http.(*Server).Serve", "net.(*netFD).Read"},
		{[]string{"runtime.gopark", "runtime.goparkunlock"}, "runtime.init.5", "runtime.gopark"},
		{[]string{"panic", "main.main"}, "", "main.main"},
		{[]string{"baselines/park.deep"}, "", "baselines/park.deep"},
		{nil, "", ""},
	} {
		g := dump.Goroutine{}
		for _, fn := range c.frames {
			g.Frames = append(g.Frames, f(fn))
		}
		if c.createdBy != "" {
			g.CreatedBy = f(c.createdBy)
		}
		if got := g.Location().Func; got != c.want {
			t.Errorf("%v created by %q: location %q, want %q", c.frames, c.createdBy, got, c.want)
		}
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[stack.State]string{0: "unknown", stack.Running: "running", stack.Runnable: "runnable", stack.Waiting: "waiting", stack.Syscall: "syscall"} {
		if s.String() != want {
			t.Errorf("State(%d) = %q, want %q", s, s, want)
		}
	}
}

// here returns the line it is called from.
func lineHere() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

func dumpTestFile() string {
	_, file, _, _ := runtime.Caller(0)
	return file
}

// currentGoroutine returns the ID of the calling goroutine, read with the parser.
func currentGoroutine(t *testing.T) int64 {
	buf := make([]byte, 64<<10)
	gs, err := dump.ParseDumpBytes(buf[:runtime.Stack(buf, false)])
	if err != nil || len(gs) != 1 {
		t.Fatalf("own stack: %v", err)
	}
	return gs[0].ID
}

func stackAll() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// liveCase is a goroutine the live test parks in a known state.
type liveCase struct {
	name   string
	block  func(report func(line int)) // reports the line it blocks on, then blocks
	status string
	state  stack.State
	locked bool
}

// startLive starts c's goroutine with labels case=<name>, workload=live. It
// returns the go statement's frame.
func startLive(c liveCase, lines chan<- int, wg *sync.WaitGroup) stack.Frame {
	wg.Add(1)
	fn := "github.com/inspectd/inspectd/internal/dump_test.startLive"
	goLine := lineHere() + 1
	go func() {
		defer wg.Done()
		pprof.Do(context.Background(), pprof.Labels("case", c.name, "workload", "live"), func(context.Context) {
			if c.locked {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			c.block(func(line int) { lines <- line })
		})
	}()
	return stack.Frame{Func: fn, File: dumpTestFile(), Line: goLine}
}

// TestParseLive parses runtime.Stack of this test binary with goroutines in
// known states and labels.
func TestParseLive(t *testing.T) {
	stop := make(chan struct{})
	var mu sync.Mutex
	mu.Lock()
	var wg sync.WaitGroup
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cond := sync.NewCond(&sync.Mutex{})
	cases := []liveCase{
		{name: "chan-receive", status: "chan receive", state: stack.Waiting, block: func(report func(int)) {
			report(lineHere() + 1)
			<-stop
		}},
		{name: "select", status: "select", state: stack.Waiting, block: func(report func(int)) {
			never := make(chan int)
			report(lineHere() + 1)
			select {
			case <-stop:
			case <-never:
			}
		}},
		{name: "sleep", status: "sleep", state: stack.Waiting, block: func(report func(int)) {
			report(lineHere() + 2)
			for spinLoop(stop) {
				time.Sleep(20 * time.Millisecond)
			}
		}},
		{name: "mutex", status: "sync.Mutex.Lock", state: stack.Waiting, block: func(report func(int)) {
			report(lineHere() + 1)
			mu.Lock()
			mu.Unlock()
		}},
		{name: "cond", status: "sync.Cond.Wait", state: stack.Waiting, block: func(report func(int)) {
			cond.L.Lock()
			report(lineHere() + 1)
			cond.Wait()
			cond.L.Unlock()
		}},
		{name: "io-wait", status: "IO wait", state: stack.Waiting, block: func(report func(int)) {
			report(lineHere() + 1)
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}},
		{name: "locked", status: "chan receive", state: stack.Waiting, locked: true, block: func(report func(int)) {
			report(lineHere() + 1)
			<-stop
		}},
		{name: "spinning", block: func(report func(int)) {
			report(lineHere() + 1)
			for spinLoop(stop) {
			}
		}},
	}
	lines := make(chan int)
	spawned := map[string]stack.Frame{}
	blockLine := map[string]int{}
	for _, c := range cases {
		spawned[c.name] = startLive(c, lines, &wg)
		blockLine[c.name] = <-lines
	}
	defer func() {
		close(stop)
		mu.Unlock()
		ln.Close()
		cond.L.Lock()
		cond.Broadcast()
		cond.L.Unlock()
		wg.Wait()
	}()
	self := currentGoroutine(t)

	// Wait until every goroutine is parked, reading the dump as the dumper, in
	// pprof.Do so that the running goroutine carries labels too.
	var gs []dump.Goroutine
	var dumper *dump.Goroutine
	deadline := time.Now().Add(5 * time.Second)
	for {
		pprof.Do(context.Background(), pprof.Labels("role", "dumper"), func(context.Context) {
			gs = mustParseDump(t, stackAll())
		})
		dumper = &gs[0]
		ready := true
		for _, c := range cases {
			g := findByLabel(gs, "case", c.name)
			if g == nil || c.status != "" && g.Status != c.status {
				ready = false
			}
		}
		if ready || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}

	if dumper.ID != self || dumper.State != stack.Running || dumper.Status != "running" ||
		!reflect.DeepEqual(dumper.Labels, map[string]string{"role": "dumper"}) {
		t.Errorf("dumping goroutine: %+v", *dumper)
	}
	if loc := dumper.Location(); loc.File != dumpTestFile() || loc.Func != "github.com/inspectd/inspectd/internal/dump_test.stackAll" {
		t.Errorf("dumping goroutine's location %v", loc)
	}
	for _, c := range cases {
		g := findByLabel(gs, "case", c.name)
		if g == nil {
			t.Errorf("%s: not in the dump", c.name)
			continue
		}
		if c.name == "spinning" {
			if g.State != stack.Running && g.State != stack.Runnable {
				t.Errorf("%s: state %v (%q)", c.name, g.State, g.Status)
			}
		} else if g.Status != c.status || g.State != c.state || g.WaitReason != c.status {
			t.Errorf("%s: status %q state %v wait reason %q, want %q %v", c.name, g.Status, g.State, g.WaitReason, c.status, c.state)
		}
		if want := map[string]string{"case": c.name, "workload": "live"}; !reflect.DeepEqual(g.Labels, want) {
			t.Errorf("%s: labels %v, want %v", c.name, g.Labels, want)
		}
		if g.Locked != c.locked {
			t.Errorf("%s: locked %v", c.name, g.Locked)
		}
		loc := g.Location()
		if loc.File != dumpTestFile() || loc.Line != blockLine[c.name] || !strings.HasPrefix(loc.Func, "github.com/inspectd/inspectd/internal/dump_test.TestParseLive.func") {
			// A spinning goroutine stopped for the dump may be anywhere in its loop.
			if c.name != "spinning" || !strings.Contains(loc.Func, "spinLoop") && !strings.HasPrefix(loc.Func, "github.com/inspectd/inspectd/internal/dump_test.TestParseLive.func") {
				t.Errorf("%s: location %v, want %s:%d", c.name, loc, dumpTestFile(), blockLine[c.name])
			}
		}
		if g.CreatedBy != spawned[c.name] || g.ParentID != self {
			t.Errorf("%s: created by %v in goroutine %d, want %v in goroutine %d", c.name, g.CreatedBy, g.ParentID, spawned[c.name], self)
		}
		if g.Frames[len(g.Frames)-1].Func != "github.com/inspectd/inspectd/internal/dump_test.startLive.func1" {
			t.Errorf("%s: bottom frame %v", c.name, g.Frames[len(g.Frames)-1])
		}
	}
}

//go:noinline
func spinLoop(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return false
	default:
		return true
	}
}

func findByLabel(gs []dump.Goroutine, k, v string) *dump.Goroutine {
	for i := range gs {
		if gs[i].Labels[k] == v {
			return &gs[i]
		}
	}
	return nil
}

// TestParseLeakProfile reads the goroutineleak profile at debug=2 (stored
// output of testdata/crashprog leak), where leaked goroutines carry " (leaked)".
// (A leaked goroutine never ends, so the test does not leak one in process.)
func TestParseLeakProfile(t *testing.T) {
	gs := mustParseDump(t, readDump(t, "testdata/crash/goroutineleak-debug2.txt"))
	checkCrashprog(t, "goroutineleak", gs)
	checkLeaked(t, gs)
}

func checkLeaked(t *testing.T, gs []dump.Goroutine) {
	t.Helper()
	leaker := findByLabel(gs, "role", "leaker")
	if leaker == nil || !leaker.Leaked || leaker.Status != "chan receive" || leaker.WaitReason != "chan receive" || leaker.State != stack.Waiting {
		t.Errorf("leaked goroutine: %+v", leaker)
	}
	var locked *dump.Goroutine
	for i := range gs {
		if gs[i].Status == "select (no cases)" {
			locked = &gs[i]
		}
		if gs[i].Status == "sync.Mutex.Lock" && gs[i].Leaked {
			t.Errorf("goroutine %d waits on a reachable mutex but is leaked", gs[i].ID)
		}
	}
	if locked == nil || !locked.Leaked || !locked.Locked {
		t.Errorf("leaked goroutine locked to its thread: %+v", locked)
	}
}

// TestParseLiveSynctest reads bubble markers.
func TestParseLiveSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan int)
		go func() { <-ch }()
		go func() { time.Sleep(time.Hour) }()
		synctest.Wait()
		gs := mustParseDump(t, stackAll())
		self := &gs[0]
		if self.Bubble == 0 || self.State != stack.Running {
			t.Errorf("bubble goroutine: %+v", *self)
		}
		var recv, sleep int
		for _, g := range gs {
			if g.Bubble != self.Bubble || !g.Durable || !strings.HasPrefix(g.CreatedBy.Func, "github.com/inspectd/inspectd/internal/dump_test.TestParseLiveSynctest") {
				continue
			}
			switch g.Status {
			case "chan receive":
				recv++
			case "sleep":
				sleep++
			}
		}
		if recv != 1 || sleep != 1 {
			t.Errorf("durably blocked in the bubble: %d in chan receive, %d sleeping; want 1 and 1", recv, sleep)
		}
		close(ch)
		time.Sleep(2 * time.Hour) // (fake time) let the sleeper finish
	})
}

// TestParseCrashOutput parses stored crash output of testdata/crashprog.
func TestParseCrashOutput(t *testing.T) {
	for _, name := range []string{"panic-gotraceback-all.txt", "sigquit-gotraceback-crash.txt", "deadlock-tracebackancestors.txt", "goroutineleak-debug2.txt"} {
		gs := mustParseDump(t, readDump(t, filepath.Join("testdata/crash", name)))
		checkCrashprog(t, name, gs)
	}
	gs := mustParseDump(t, readDump(t, "testdata/crash/deadlock-tracebackancestors.txt"))
	var sender *dump.Goroutine
	for i := range gs {
		if gs[i].Status == "chan send" {
			sender = &gs[i]
		}
	}
	if sender == nil || len(sender.Ancestors) != 4 {
		t.Fatalf("chan send goroutine: %+v", sender)
	}
	if a := sender.Ancestors[0]; a.ID != sender.ParentID || len(a.Frames) != 2 || a.Frames[0].Func != "main.nested" ||
		a.CreatedBy.Func != "main.nested" || a.CreatedBy.Line != 75 {
		t.Errorf("first ancestor %+v", a)
	}
	if a := sender.Ancestors[3]; a.ID != 1 || a.Frames[len(a.Frames)-1].Func != "main.main" || !a.CreatedBy.IsZero() {
		t.Errorf("last ancestor %+v", a)
	}
}

// checkCrashprog checks the goroutines testdata/crashprog parks.
func checkCrashprog(t *testing.T, name string, gs []dump.Goroutine) {
	t.Helper()
	want := map[string]bool{"receiver": false, "locked": false, "mutex": false, "nested": false}
	for _, g := range gs {
		if g.ID <= 0 || len(g.Frames) == 0 && !g.StackUnavailable {
			t.Errorf("%s: goroutine %+v", name, g)
		}
		switch {
		case g.Status == "chan receive" && g.Labels["role"] == "receiver":
			want["receiver"] = reflect.DeepEqual(g.Labels, map[string]string{"role": "receiver", "user id": `a "b"`})
		case g.Status == "select (no cases)":
			want["locked"] = g.Locked && g.Location().Func == "main.main.func3"
		case g.Status == "sync.Mutex.Lock":
			want["mutex"] = g.Location().Func == "main.main.func4" && g.CreatedBy.Func == "main.main.func1"
		case g.Status == "chan send":
			want["nested"] = g.Location().Func == "main.nested" && g.ParentID != 0
		}
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("%s: %s goroutine missing or wrong", name, k)
		}
	}
}

// TestParseCrashLive builds testdata/crashprog, crashes it and parses its stderr.
func TestParseCrashLive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "crashprog")
	if out, err := exec.Command(goTool, "build", "-o", bin, "./testdata/crashprog").CombinedOutput(); err != nil {
		t.Skipf("cannot build crashprog: %v\n%s", err, out)
	}
	// (GOTRACEBACK=crash would dump core where core dumps are enabled; its
	// output is in testdata/crash.)
	for _, c := range []struct{ mode, traceback string }{{"panic", "all"}, {"sigquit", "system"}} {
		cmd := exec.Command(bin, c.mode)
		cmd.Env = append(os.Environ(), "GOTRACEBACK="+c.traceback)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil {
			t.Fatalf("%s: crashprog did not crash", c.mode)
		}
		gs, err := dump.ParseDump(&stderr)
		if err != nil {
			t.Errorf("%s: %v", c.mode, err)
		}
		checkCrashprog(t, c.mode, gs)
	}
	out, err := exec.Command(bin, "leak").Output()
	if err != nil {
		t.Fatalf("crashprog leak: %v", err)
	}
	gs := mustParseDump(t, out)
	checkCrashprog(t, "leak", gs)
	checkLeaked(t, gs)
}
