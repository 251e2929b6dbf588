package workload

import (
	"bufio"
	"context"
	_ "embed"
	"io"
	"strings"
	"time"
)

// fileStreamText is a short public-domain text written for this project.
//
//go:embed text/ferry.txt
var fileStreamText string

func init() {
	Register(Spec{
		Name:   "file-stream",
		Lesson: "tokio_stream_file, stream_adapt",
		Kind:   Healthy,
		Description: "A reader goroutine scans a bundled text line by line and sends the lines into a " +
			"bounded channel; an adapter goroutine upper-cases each line into a second bounded channel; " +
			"the workload counts what comes out, and starts the text again at its end. The talk reads a " +
			"file as a stream of lines with LinesStream and adapts it with StreamExt::map; in Go a stream " +
			"is a goroutine writing to a channel, an adapter is a goroutine between two channels, and " +
			"the small buffers are the backpressure: raise work above interval and the reader waits " +
			"instead of piling lines up in memory.",
		Params: []ParamSpec{
			DurationParam("interval", "time between lines read, as if the file arrived slowly", 5*time.Millisecond, 0, time.Minute),
			IntParam("buffer", "capacity of each channel between stages", 4, 0, 1024),
			DurationParam("work", "time the consumer spends on each line", 0, 0, time.Minute),
		},
		Run: runFileStream,
	})
}

func runFileStream(ctx context.Context, env *Env) error {
	p := env.Params
	interval, buffer, work := p.Duration("interval"), p.Int("buffer"), p.Duration("work")

	lines := make(chan string, buffer)
	go env.Spawn(ctx, "reader")(func(ctx context.Context) {
		defer close(lines)
		var pace <-chan time.Time
		if interval > 0 {
			t := time.NewTicker(interval)
			defer t.Stop()
			pace = t.C
		}
		for pass := 1; ; pass++ {
			n, err := fileStreamRead(ctx, strings.NewReader(fileStreamText), lines, pace)
			if err != nil {
				if ctx.Err() == nil {
					env.Log.Error("file-stream: reading the bundled text", "err", err)
				}
				return
			}
			env.Log.Debug("text streamed to its end; starting again", "pass", pass, "lines", n)
		}
	})
	upper := fileStreamAdapt(ctx, env, lines, buffer, strings.ToUpper)

	for range upper {
		if !pauseFor(ctx, work) {
			continue // stopping: drain what the stages still send
		}
		env.Op()
	}
	return nil
}

// fileStreamRead sends each line of r to out, waiting for pace before each
// one when pace is not nil. It returns the number of lines sent, and ctx's
// error when ctx ends the reading early.
func fileStreamRead(ctx context.Context, r io.Reader, out chan<- string, pace <-chan time.Time) (int, error) {
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		if pace != nil {
			select {
			case <-ctx.Done():
				return n, ctx.Err()
			case <-pace:
			}
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case out <- sc.Text():
			n++
		}
	}
	return n, sc.Err()
}

// fileStreamAdapt starts an adapter stage that applies f to every line of in
// and closes its output when in is closed or ctx is done.
func fileStreamAdapt(ctx context.Context, env *Env, in <-chan string, buffer int, f func(string) string) <-chan string {
	out := make(chan string, buffer)
	go env.Spawn(ctx, "adapter")(func(ctx context.Context) {
		defer close(out)
		for line := range in {
			select {
			case <-ctx.Done():
				return
			case out <- f(line):
			}
		}
	})
	return out
}
