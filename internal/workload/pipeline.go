package workload

import (
	"context"
	"math/rand/v2"
	"time"
)

func init() {
	Register(Spec{
		Name:   "pipeline",
		Lesson: "async traits",
		Kind:   Healthy,
		Description: "Numbers from a ticking source flow through stages that share one small interface " +
			"(square, keep the odd ones, look each up with a simulated delay) and are counted at the " +
			"end. The talk needs the async_trait crate, or recent Rust's async fn in traits with its " +
			"caveats, to put an async method behind a trait; a Go interface method may simply block, so " +
			"a stage that waits on I/O satisfies the same interface as one that only computes. The " +
			"composer, not the stages, starts one goroutine per stage and closes the channels between " +
			"them, so a stage is a plain method that is easy to test.",
		Params: []ParamSpec{
			DurationParam("interval", "time between numbers from the source", 10*time.Millisecond, time.Millisecond, time.Minute),
			IntParam("buffer", "capacity of each channel between stages", 4, 0, 1024),
			DurationParam("latency", "longest delay of the lookup stage; each item waits a random share of it", 2*time.Millisecond, 0, time.Second),
		},
		Run: runPipeline,
	})
}

// pipelineStage is one step of a pipeline. Process reads in until it is
// closed or ctx is done and writes its results to out; it neither starts
// goroutines nor closes out, which is pipelineCompose's job.
type pipelineStage interface {
	Name() string
	Process(ctx context.Context, in <-chan int, out chan<- int)
}

// pipelineFunc adapts a per-item function to pipelineStage, the way
// http.HandlerFunc adapts a function to http.Handler. The function returns
// false to drop an item.
type pipelineFunc struct {
	name string
	f    func(ctx context.Context, v int) (int, bool)
}

func (s pipelineFunc) Name() string { return s.name }

func (s pipelineFunc) Process(ctx context.Context, in <-chan int, out chan<- int) {
	for {
		var v int
		select {
		case <-ctx.Done():
			return
		case x, ok := <-in:
			if !ok {
				return
			}
			v = x
		}
		r, keep := s.f(ctx, v)
		if !keep {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case out <- r:
		}
	}
}

func pipelineSquare() pipelineStage {
	return pipelineFunc{"square", func(_ context.Context, v int) (int, bool) { return v * v, true }}
}

func pipelineOdd() pipelineStage {
	return pipelineFunc{"odd", func(_ context.Context, v int) (int, bool) { return v, v%2 != 0 }}
}

// pipelineLookup waits before passing each item on, as a stage that calls a
// service would; it gives up on the item when ctx ends.
func pipelineLookup(latency time.Duration) pipelineStage {
	return pipelineFunc{"lookup", func(ctx context.Context, v int) (int, bool) {
		var d time.Duration
		if latency > 0 {
			d = rand.N(latency)
		}
		return v, pauseFor(ctx, d)
	}}
}

// pipelineCompose connects stages in order behind src, each in its own
// goroutine labelled with the stage's name, and returns the last output.
// Every output is closed when its stage returns, so closing src (or ending
// ctx) winds the whole pipeline down from front to back.
func pipelineCompose(ctx context.Context, env *Env, src <-chan int, buffer int, stages ...pipelineStage) <-chan int {
	for _, s := range stages {
		in, out := src, make(chan int, buffer)
		go env.Spawn(ctx, s.Name())(func(ctx context.Context) {
			defer close(out)
			s.Process(ctx, in, out)
		})
		src = out
	}
	return src
}

// pipelineWrap is where the source starts counting again, so that squares
// stay far from overflowing however long the workload runs.
const pipelineWrap = 1 << 20

func runPipeline(ctx context.Context, env *Env) error {
	p := env.Params
	interval, buffer := p.Duration("interval"), p.Int("buffer")

	src := make(chan int, buffer)
	go env.Spawn(ctx, "source")(func(ctx context.Context) {
		defer close(src)
		t := time.NewTicker(interval)
		defer t.Stop()
		for n := 1; ; n = n%pipelineWrap + 1 {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			select {
			case <-ctx.Done():
				return
			case src <- n:
			}
		}
	})

	out := pipelineCompose(ctx, env, src, buffer, pipelineSquare(), pipelineOdd(), pipelineLookup(p.Duration("latency")))
	for v := range out {
		env.Op()
		env.Log.Debug("item through the pipeline", "value", v)
	}
	return nil
}
