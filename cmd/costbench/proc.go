//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/inspectd/inspectd/internal/costbench/target"
)

// targetProc is a running target: its ready line, and the pipe to ask it
// for stats.
type targetProc struct {
	name   string // workload/inspection, for messages
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte // stdout, line by line; closed at EOF
	stderr *tailBuffer
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's, once exited is closed
	ready  target.Ready
	mu     sync.Mutex // one request at a time
}

// startTimeout bounds a target's start: spawning a million parked goroutines
// takes seconds on a loaded machine.
func startTimeout(parked int) time.Duration {
	return 30*time.Second + time.Duration(parked/10_000)*time.Second
}

// start runs the executable as a target with args (target flags) and waits
// for its ready line. The target dies with ctx (SIGTERM, then SIGKILL 5s
// later), with this process (the parent-death signal), and when its stdin
// closes.
func (b *bench) start(ctx context.Context, name string, timeout time.Duration, args ...string) (*targetProc, error) {
	cmd := exec.CommandContext(ctx, b.exe, args...)
	// The agent's port file goes to a directory of this run, not the user's.
	cmd.Env = append(os.Environ(), target.Env+"=1", "XDG_CONFIG_HOME="+b.tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	p := &targetProc{name: name, cmd: cmd, lines: make(chan []byte), stderr: &tailBuffer{max: 4 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.stdin = stdin
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("starting the %s target %s: %w", name, b.exe, err)
	}
	w.Close()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	go func() {
		defer close(p.lines)
		defer r.Close()
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				select {
				case p.lines <- line:
				case <-p.exited:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	if err := p.read(ctx, timeout, &p.ready); err != nil {
		p.stop()
		return nil, fmt.Errorf("the %s target did not start: %w", name, err)
	}
	return p, nil
}

// read reads the next line of the target's stdout into v.
func (p *targetProc) read(ctx context.Context, timeout time.Duration, v any) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-p.lines:
		if !ok {
			return p.exitError()
		}
		if err := json.Unmarshal(line, v); err != nil {
			return fmt.Errorf("reading its answer %q: %w", clip(string(line), 200), err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("no answer within %v%s", timeout, p.stderrTail())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exitError says how the target ended, with the end of what it wrote on
// stderr.
func (p *targetProc) exitError() error {
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("it closed its stdout%s", p.stderrTail())
	}
	if p.err == nil {
		return fmt.Errorf("it exited%s", p.stderrTail())
	}
	return fmt.Errorf("it exited: %v%s", p.err, p.stderrTail())
}

func (p *targetProc) stderrTail() string {
	s := strings.TrimSpace(p.stderr.String())
	if s == "" {
		return ""
	}
	return ":\n" + s
}

// stat asks the target for its numbers.
func (p *targetProc) stat(ctx context.Context) (target.Stat, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var st target.Stat
	if _, err := io.WriteString(p.stdin, "stat\n"); err != nil {
		return st, fmt.Errorf("the %s target: asking for its numbers: %w", p.name, errors.Join(err, p.exitError()))
	}
	if err := p.read(ctx, 30*time.Second, &st); err != nil {
		return st, fmt.Errorf("the %s target: reading its numbers: %w", p.name, err)
	}
	return st, nil
}

// heapProfile has the target write its heap profile to path, and returns
// its numbers after.
func (p *targetProc) heapProfile(ctx context.Context, path string) (target.Stat, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var st target.Stat
	if _, err := io.WriteString(p.stdin, "heap "+path+"\n"); err != nil {
		return st, fmt.Errorf("the %s target: asking for its heap profile: %w", p.name, errors.Join(err, p.exitError()))
	}
	if err := p.read(ctx, time.Minute, &st); err != nil {
		return st, fmt.Errorf("the %s target: writing its heap profile: %w", p.name, err)
	}
	return st, nil
}

// stop asks the target to quit (it closes its agent), and kills it if it
// has not within 5s.
func (p *targetProc) stop() {
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
