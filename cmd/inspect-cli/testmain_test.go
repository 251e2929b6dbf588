package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/portfile"
)

func TestMain(m *testing.M) {
	if file := os.Getenv(rssWrapEnv); file != "" {
		os.Exit(rssWrap(file, os.Args[1:]))
	}
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

// rssWrapEnv makes the test binary a small wrapper: it runs its arguments
// and writes the child's peak RSS, in bytes, to the file the variable
// names. Linux keeps, at exec, the high-water mark of the memory a child
// shared with its parent (os/exec starts children sharing it until they
// exec): started from the test process, grown large with its endless
// servers, a child would report the test's size, not its own. Started from
// the wrapper, small and fresh, it reports its own.
const rssWrapEnv = "INSPECT_CLI_TEST_RSS_FILE"

func rssWrap(file string, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "rss wrapper: no command")
		return 125
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, rssWrapEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The child ends with the wrapper, which the test kills on a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "rss wrapper:", err)
		return 125
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if err := os.WriteFile(file, []byte(strconv.FormatInt(ru.Maxrss*1024, 10)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rss wrapper:", err)
		return 125
	}
	return cmd.ProcessState.ExitCode()
}
