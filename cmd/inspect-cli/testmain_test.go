package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/portfile"
)

func TestMain(m *testing.M) {
	code := portfile.RunIsolated(m)
	if cliBin.dir != "" {
		os.RemoveAll(cliBin.dir)
	}
	if plainBin.dir != "" {
		os.RemoveAll(plainBin.dir)
	}
	os.Exit(code)
}

// screenWait bounds how long an end-to-end test waits for a screen of
// `inspect-cli top` in tmux: a generous bound, which a loaded machine may
// need (the binary starts, connects and takes its first snapshot), and
// which costs nothing when the screen comes sooner.
const screenWait = 30 * time.Second

// cliBin is the inspect-cli binary the end-to-end tests run, built once
// (with -race when the tests run with it, so that it reuses their build
// cache): linking it is the costliest step on a loaded machine.
var cliBin struct {
	once      sync.Once
	dir, path string
	err       error
}

func cliBinary(t *testing.T) string {
	t.Helper()
	cliBin.once.Do(func() {
		cliBin.dir, cliBin.err = os.MkdirTemp("", "inspect-cli-test")
		if cliBin.err != nil {
			return
		}
		cliBin.path = filepath.Join(cliBin.dir, "inspect-cli")
		args := []string{"build", "-o", cliBin.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
			cliBin.err = &buildError{err, out}
		}
	})
	if cliBin.err != nil {
		t.Fatal(cliBin.err)
	}
	return cliBin.path
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + string(e.out) }
