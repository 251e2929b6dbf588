package workload

import (
	"context"
	"time"
)

func init() {
	Register(Spec{
		Name:   "fan-in-spin",
		Lesson: "tokio_multi_channels",
		Kind:   Broken,
		Description: "The fan-in of the fan-in lesson, with one line missing. Two producers send on their " +
			"own channels and one loop receives from whichever is ready with a select; the slow producer's " +
			"input is short, so it sends a few messages and closes its channel. A receive from a closed " +
			"channel never blocks: it returns at once with the zero value and ok false. The loop does not " +
			"set the closed channel to nil, so its select finds that case ready on every turn and spins, " +
			"handling empty messages as fast as a core allows and never waiting again. tokio::select! " +
			"disables a branch whose pattern does not match (Some(msg) against None), or the talk's loop " +
			"breaks on it; Go's select has no such guard: the nil channel is the idiom.",
		Params: []ParamSpec{
			DurationParam("fast", "time between messages of the fast producer", 30*time.Millisecond, time.Millisecond, time.Minute),
			DurationParam("slow", "time between messages of the slow producer", 110*time.Millisecond, time.Millisecond, time.Minute),
			IntParam("slow_messages", "messages the slow producer sends before it closes its channel", 3, 0, 1000),
			FixParam(),
		},
		Caps: "No cap needed: three goroutines; the spinning loop keeps one core busy until the workload stops.",
		Rule: "select-spin",
		Fix: "The loop receives with ok and sets a closed channel to nil, which disables its case: the select " +
			"blocks on the channels still open.",
		Run: runFanInSpin,
	})
}

func runFanInSpin(ctx context.Context, env *Env) error {
	p := env.Params
	fast := fanInProduce(ctx, env, "fast", p.Duration("fast"))
	slow := fanInFinite(ctx, env, p.Duration("slow"), p.Int("slow_messages"))
	if p.Bool("fix") {
		fanInNilClosed(ctx, env, fast, slow)
		return nil
	}
	var fastN, slowN, handled int
	for {
		// The bug: once slow is closed, its case is ready on every turn and the loop spins.
		select {
		case <-ctx.Done():
			return nil
		case <-fast:
			fastN++
		case <-slow:
			slowN++ // after the close, a zero message every turn
		}
		// Operations are counted in batches: the spin makes millions a second.
		if handled++; handled == 1024 {
			env.Ops(handled)
			handled = 0
		}
	}
}

// fanInNilClosed is the loop of runFanInSpin with the fix.
func fanInNilClosed(ctx context.Context, env *Env, fast, slow <-chan fanInMsg) {
	counts := map[string]int{}
	for fast != nil || slow != nil {
		var m fanInMsg
		var ok bool
		select {
		case <-ctx.Done():
			return
		case m, ok = <-fast:
			if !ok {
				fast = nil // the fix: a closed channel's case is disabled
				continue
			}
		case m, ok = <-slow:
			if !ok {
				slow = nil
				continue
			}
		}
		counts[m.from]++
		env.Op()
	}
	<-ctx.Done()
}

// fanInFinite starts a producer that sends n messages, one every interval,
// then closes its channel: an input that ends.
func fanInFinite(ctx context.Context, env *Env, interval time.Duration, n int) <-chan fanInMsg {
	ch := make(chan fanInMsg, 1)
	go env.Spawn(ctx, "producer")(func(ctx context.Context) {
		defer close(ch)
		for seq := range n {
			if !pauseFor(ctx, interval) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case ch <- fanInMsg{from: "slow", seq: seq}:
			}
		}
	})
	return ch
}
