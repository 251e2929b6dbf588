package workload

import (
	"context"
	"iter"
	"runtime/pprof"
	"time"
)

func init() {
	Register(Spec{
		Name:   "stream",
		Lesson: "tokio_streams, tokio_stream_generator",
		Kind:   Healthy,
		Description: "A doubling generator (1, 2, 4, 8, ...) written as an iter.Seq is consumed two ways: " +
			"pulled one value per tick through iter.Pull, the way StreamExt::next().await takes items " +
			"from a Tokio stream, then pushed through a take adapter in a plain range loop. Rust needs " +
			"the async-stream crate's stream! macro to write a generator; Go 1.23's range-over-func " +
			"iterators are ordinary functions that call yield, and iter.Pull turns one into a next/stop " +
			"pair whose stop must be called so the generator can finish.",
		Params: []ParamSpec{
			DurationParam("interval", "time between pulled values", 10*time.Millisecond, time.Millisecond, time.Minute),
			IntParam("terms", "values taken from the generator per round", 16, 1, 64),
		},
		Run: runStream,
	})
}

func runStream(ctx context.Context, env *Env) error {
	interval, terms := env.Params.Duration("interval"), env.Params.Int("terms")
	for round := 1; ctx.Err() == nil; round++ {
		last := streamPullRound(ctx, env, interval, terms)
		var sum uint64
		for v := range streamTake(streamDoubling(), terms) {
			sum += v
		}
		env.Log.Debug("stream round done", "round", round, "last_pulled", last, "sum_pushed", sum)
	}
	return nil
}

// streamPullRound pulls up to terms values, one per tick, and returns the
// last one. The deferred stop ends the generator even when ctx ends the
// round early; forgetting it would leave the generator suspended for good.
func streamPullRound(ctx context.Context, env *Env, interval time.Duration, terms int) uint64 {
	next, stop := iter.Pull(streamLabelled(ctx, "generator", streamDoubling()))
	defer stop()
	var last uint64
	for range streamTake(streamTicks(ctx, interval), terms) {
		v, ok := next()
		if !ok {
			break
		}
		last = v
		env.Op()
	}
	return last
}

// streamLabelled runs seq under role in the goroutine profile. iter.Pull
// runs its sequence in a coroutine of its own, which would otherwise carry
// the role of the goroutine that pulls.
func streamLabelled[T any](ctx context.Context, role string, seq iter.Seq[T]) iter.Seq[T] {
	return func(yield func(T) bool) {
		pprof.Do(ctx, pprof.Labels("role", role), func(context.Context) {
			for v := range seq {
				if !yield(v) {
					return
				}
			}
		})
	}
}

// streamDoubling yields 1, 2, 4, 8, ...: the talk's stream generator. It ends
// after 64 values, where a uint64 would overflow to zero.
func streamDoubling() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		for v := uint64(1); v != 0; v <<= 1 {
			if !yield(v) {
				return
			}
		}
	}
}

// streamTake yields the first n values of seq, like StreamExt::take.
func streamTake[T any](seq iter.Seq[T], n int) iter.Seq[T] {
	return func(yield func(T) bool) {
		if n <= 0 {
			return
		}
		i := 0
		for v := range seq {
			if !yield(v) {
				return
			}
			i++
			if i == n {
				return
			}
		}
	}
}

// streamTicks yields the tick count on every interval until ctx is done:
// tokio_stream's IntervalStream as an iterator. Its ticker stops whether the
// consumer breaks out or ctx ends the loop.
func streamTicks(ctx context.Context, interval time.Duration) iter.Seq[int] {
	return func(yield func(int) bool) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !yield(n) {
				return
			}
		}
	}
}
