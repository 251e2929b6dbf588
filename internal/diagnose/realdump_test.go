package diagnose_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/diagnose"
	"github.com/inspectd/inspectd/internal/source/file"
)

// lockThenSend is one bug that strands goroutines at two sites: the first
// takes the lock and sends where nobody receives, the second waits for
// the lock for good.
func lockThenSend() {
	var mu sync.Mutex
	ch := make(chan int)
	go func() {
		mu.Lock()
		ch <- 1 // the send site
	}()
	go func() {
		time.Sleep(10 * time.Millisecond)
		mu.Lock() // the lock site
	}()
}

// loneLock strands one goroutine in Lock on a mutex nobody will release.
func loneLock() {
	var mu sync.Mutex
	mu.Lock()
	go func() {
		mu.Lock() // the lone lock
	}()
}

// waitForever strands goroutines on a WaitGroup and a Cond nobody reaches.
func waitForever() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { wg.Wait() }()
	c := sync.NewCond(&sync.Mutex{})
	go func() {
		c.L.Lock()
		c.Wait()
	}()
}

// TestLeakerHelper is the leaking program of TestRealLeaksAreFindings when
// run by it: it strands goroutines, lets the leak detection mark them, and
// writes its goroutine dump to stdout.
func TestLeakerHelper(t *testing.T) {
	if os.Getenv("INSPECTD_DIAGNOSE_LEAKER") != "1" {
		t.Skip("the leaking program of TestRealLeaksAreFindings")
	}
	for range 3 {
		lockThenSend()
	}
	loneLock()
	waitForever()
	time.Sleep(200 * time.Millisecond)
	for range 2 {
		pprof.Lookup("goroutineleak").WriteTo(io.Discard, 0)
	}
	buf := make([]byte, 8<<20)
	os.Stdout.Write(buf[:runtime.Stack(buf, true)])
	os.Exit(0)
}

// A real Go 1.27 program's goroutine dump with the leak detection's marks:
// every goroutine it marks is named by a goroutine-leak or deadlock
// finding, the lone goroutine in Lock among them, and the bug that strands
// a send and a lock wait is one finding naming both lines.
func TestRealLeaksAreFindings(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a program")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeakerHelper$")
	cmd.Env = append(os.Environ(), "INSPECTD_DIAGNOSE_LEAKER=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the leaking program: %v", err)
	}
	path := filepath.Join(t.TempDir(), "dump.txt")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := file.OpenDumpFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := src.Snapshot(t.Context(), 0)
	eng, err := diagnose.New(diagnose.Config{})
	if err != nil {
		t.Fatal(err)
	}
	fs := eng.Observe(diagnose.Input{Snapshot: s, Stack: src.StackOf})
	named := map[int64]string{}
	for _, f := range fs {
		if f.Rule == "goroutine-leak" || f.Rule == "deadlock" {
			for _, id := range f.Evidence.Tasks {
				named[id] = f.Title
			}
		}
	}
	leaked := 0
	for _, tk := range s.Tasks {
		if !tk.Leaked {
			continue
		}
		leaked++
		if named[tk.ID] == "" {
			t.Errorf("goroutine %d, marked leaked in %s at %s:%d, is in no leak or deadlock finding", tk.ID, tk.WaitReason,
				filepath.Base(tk.Location.File), tk.Location.Line)
		}
	}
	if leaked < 5 {
		t.Fatalf("the dump marks %d goroutines leaked, want at least the 5 of the three runs' sends, the lone lock, the Cond", leaked)
	}
	// The bug of two sites: one finding lists both of its lines.
	send, lock := lineOf(t, "realdump_test.go", "ch <- 1 // the send site"), lineOf(t, "realdump_test.go", "mu.Lock() // the lock site")
	var both []string
	for _, f := range fs {
		has := map[int]bool{}
		for _, st := range f.Evidence.Sites {
			if strings.HasSuffix(st.File, "realdump_test.go") {
				has[st.Line] = true
			}
		}
		if has[send] && has[lock] {
			both = append(both, f.Title)
		}
	}
	lockLeaked := false
	for _, tk := range s.Tasks {
		lockLeaked = lockLeaked || tk.Leaked && tk.Location.Line == lock
	}
	if lockLeaked && len(both) != 1 {
		t.Errorf("findings %v: want one that names both the send (line %d) and the lock wait (line %d)", titles(fs), send, lock)
	}
	t.Logf("%d goroutines marked leaked; findings: %v", leaked, titles(fs))
}

func titles(fs []api.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+": "+f.Title)
	}
	return out
}

// lineOf is the line of file (of this package) that contains text.
func lineOf(t *testing.T, file, text string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, text) && !strings.Contains(l, "lineOf(") {
			return i + 1
		}
	}
	t.Fatalf("no line with %q", text)
	return 0
}
