package workload

import (
	"context"
	"sync"
	"time"
)

func init() {
	Register(Spec{
		Name:   "unbounded-queue",
		Lesson: "tokio_streams, tokio_channels",
		Kind:   Broken,
		Description: "A producer appends items to a slice buffer behind a mutex, much faster than the " +
			"consumer takes them out. Nothing pushes back on the producer (no bounded channel, no " +
			"blocking when full), so the buffer and the heap grow without end, all allocated at one " +
			"site, while the consumer falls further and further behind: a stream without backpressure. " +
			"When the buffer reaches its cap the workload drops it and starts over, logging a warning. " +
			"The fix: a bounded buffer, for example a buffered channel, so the producer waits when the " +
			"consumer lags (or sheds load on purpose).",
		Params: []ParamSpec{
			IntParam("produce", "items produced per second", 1000, 1, 100000),
			IntParam("consume", "items consumed per second", 100, 1, 100000),
			IntParam("item_size", "bytes per item", 4096, 16, 1<<20),
			IntParam("max_bytes", "bytes buffered before the buffer is dropped and refilled", 256<<20, 64<<10, 256<<20),
			IntParam("buffer", "with fix, the items the bounded buffer holds", 1000, 1, 100000),
			FixParam(),
		},
		Caps: "The buffer never holds more than max_bytes (default 256 MiB) of items: on reaching it " +
			"the workload drops the buffer, logs a warning and starts over. It is freed when the workload stops.",
		Rule: "unbounded-growth",
		Fix: "The buffer is a channel of buffer items (default 1,000): when the consumer lags, the producer " +
			"sheds what does not fit, counting it, and the heap stays flat.",
		Run: runUnboundedQueue,
	})
}

// backlog is the unbounded buffer between producer and consumer.
type backlog struct {
	mu    sync.Mutex
	items [][]byte
	bytes int
}

func runUnboundedQueue(ctx context.Context, env *Env) error {
	p := env.Params
	size, maxBytes := p.Int("item_size"), p.Int("max_bytes")
	var q backlog
	template := make([]byte, size)
	for i := range template {
		template[i] = byte(i)
	}
	if p.Bool("fix") {
		return runBoundedQueue(ctx, env, template)
	}

	go env.Spawn(ctx, "producer")(func(ctx context.Context) {
		paced(ctx, p.Int("produce"), func() {
			// Written, not only allocated, so the growth is resident memory too.
			item := make([]byte, size)
			copy(item, template)
			q.mu.Lock()
			if q.bytes+size > maxBytes {
				env.Log.Warn("unbounded queue reached its cap; dropping the buffer and starting over",
					"items", len(q.items), "bytes", q.bytes, "max_bytes", maxBytes)
				q.items, q.bytes = nil, 0
			}
			// The bug: the buffer only grows; nothing makes the producer wait.
			q.items = append(q.items, item)
			q.bytes += size
			q.mu.Unlock()
		})
	})
	go env.Spawn(ctx, "consumer")(func(ctx context.Context) {
		var sum byte
		paced(ctx, p.Int("consume"), func() {
			q.mu.Lock()
			if len(q.items) == 0 {
				q.mu.Unlock()
				return
			}
			item := q.items[0]
			q.items[0] = nil // let the item go even while the backing array lives
			q.items = q.items[1:]
			q.bytes -= len(item)
			q.mu.Unlock()
			for _, b := range item {
				sum += b
			}
			env.Op()
		})
	})
	<-ctx.Done()
	return nil
}

// runBoundedQueue is the workload with the fix: a bounded buffer, and a
// producer that sheds load when it is full.
func runBoundedQueue(ctx context.Context, env *Env, template []byte) error {
	p := env.Params
	queue := make(chan []byte, p.Int("buffer"))
	go env.Spawn(ctx, "producer")(func(ctx context.Context) {
		var shed int
		report := time.Now()
		paced(ctx, p.Int("produce"), func() {
			item := make([]byte, len(template))
			copy(item, template)
			// The fix: the buffer has a bound; what does not fit is shed.
			select {
			case queue <- item:
			default:
				shed++
			}
			if time.Since(report) >= 10*time.Second {
				env.Log.Debug("bounded queue shed items the consumer could not take", "shed", shed)
				shed, report = 0, time.Now()
			}
		})
	})
	go env.Spawn(ctx, "consumer")(func(ctx context.Context) {
		var sum byte
		paced(ctx, p.Int("consume"), func() {
			select {
			case item := <-queue:
				for _, b := range item {
					sum += b
				}
				env.Op()
			default:
			}
		})
	})
	<-ctx.Done()
	return nil
}

// paced calls fn perSecond times a second, in batches every 10ms, until ctx is done.
// A caller more than 20ms behind (a machine too busy to run it) skips what
// it missed rather than make it up in one long burst.
func paced(ctx context.Context, perSecond int, fn func()) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	start, done := time.Now(), 0
	most := perSecond/50 + 1 // 20ms of calls
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := int(time.Since(start).Seconds()*float64(perSecond)) - done
		if due > most {
			done += due - most
			due = most
		}
		for range due {
			fn()
		}
		done += due
	}
}
