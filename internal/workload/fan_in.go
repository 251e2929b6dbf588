package workload

import (
	"context"
	"time"
)

func init() {
	Register(Spec{
		Name:   "fan-in",
		Lesson: "tokio_multi_channels",
		Kind:   Healthy,
		Description: "Two producers send on their own channels at different cadences, and one loop " +
			"receives from whichever is ready with a select over both and the context. The talk " +
			"merges several receivers with tokio::select! in a loop; Go's select statement does the " +
			"same natively and picks at random among ready cases, so neither producer is starved. " +
			"A closed channel is set to nil, which disables its case: the idiom for a fan-in whose " +
			"inputs end at different times.",
		Params: []ParamSpec{
			DurationParam("fast", "time between messages of the fast producer", 30*time.Millisecond, time.Millisecond, time.Minute),
			DurationParam("slow", "time between messages of the slow producer", 110*time.Millisecond, time.Millisecond, time.Minute),
		},
		Run: runFanIn,
	})
}

type fanInMsg struct {
	from string
	seq  int
}

func runFanIn(ctx context.Context, env *Env) error {
	fast := fanInProduce(ctx, env, "fast", env.Params.Duration("fast"))
	slow := fanInProduce(ctx, env, "slow", env.Params.Duration("slow"))
	counts := map[string]int{}
	for fast != nil || slow != nil {
		var m fanInMsg
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case m, ok = <-fast:
			if !ok {
				fast = nil
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
		env.Log.Debug("message received", "from", m.from, "seq", m.seq, "fast", counts["fast"], "slow", counts["slow"])
	}
	return nil
}

// fanInProduce starts a producer that sends a message every interval until
// ctx is done, then closes its channel.
func fanInProduce(ctx context.Context, env *Env, name string, interval time.Duration) <-chan fanInMsg {
	ch := make(chan fanInMsg, 1)
	go env.Spawn(ctx, "producer")(func(ctx context.Context) {
		defer close(ch)
		t := time.NewTicker(interval)
		defer t.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			select {
			case <-ctx.Done():
				return
			case ch <- fanInMsg{from: name, seq: seq}:
			}
		}
	})
	return ch
}
