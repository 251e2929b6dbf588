//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/inspectd/inspectd/internal/costbench/target"
)

// bench is one run of the command.
type bench struct {
	opts           options
	exe            string // run as the target
	tmp            string // the targets' config directory (agent and gops port files)
	stdout, stderr io.Writer
	began          time.Time
	// Spin iterations for the pool's tasks and the http handler, calibrated
	// once so that every target of the run does the same work.
	taskIters, handlerIters int
}

// run parses args, runs the workloads and prints their tables to stdout as
// they finish. A workload that fails is reported and the others still run.
func run(ctx context.Context, args []string, exe string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "costbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{opts: opts, exe: exe, tmp: tmp, stdout: stdout, stderr: stderr, began: time.Now()}
	perSecond := target.Calibrate()
	b.taskIters = max(1, int(perSecond*opts.task.Seconds()))
	b.handlerIters = max(1, int(perSecond*opts.handler.Seconds()))
	b.printHeader()

	var failed []error
	fail := func(err error) {
		b.progress("FAILED: %v", err)
		failed = append(failed, err)
	}
	for _, w := range opts.workloads {
		if w == target.Parked {
			for _, n := range opts.parked {
				load := loadAverage()
				r, err := b.runParked(ctx, n)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					fail(err)
					continue
				}
				b.printParked(r, load)
			}
			continue
		}
		load := loadAverage()
		t, err := b.runThroughput(ctx, w)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			fail(err)
			continue
		}
		b.printThroughput(t, load)
	}
	b.progress("done")
	return errors.Join(failed...)
}

// progress writes a line to stderr.
func (b *bench) progress(format string, a ...any) {
	fmt.Fprintf(b.stderr, "costbench %6s  %s\n", time.Since(b.began).Round(time.Second), fmt.Sprintf(format, a...))
}
