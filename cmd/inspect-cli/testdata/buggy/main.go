// Command buggy is a small service with one concurrency bug of your
// choosing (-bug NAME), serving only net/http/pprof: the kind of program
// inspect-cli diagnose must read from outside, without inspectd's agent.
// Each bug is bounded, so the machine stays healthy. The lines the finding
// must name are marked "bug: RULE".
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

var bugs = map[string]func(){
	"goroutine-leak":      leakyFetch,
	"deadlock":            transfers,
	"lock-held-blocking":  cacheRefresh,
	"blocked-loop":        slowLogger,
	"lock-contention":     hotCounter,
	"sched-starvation":    crunchers,
	"busy-poll":           spinningConsumer,
	"long-run":            eventLoop,
	"goroutine-explosion": fanout,
	"unbounded-growth":    backlog,
	"thread-growth":       pinnedSessions,
	"outlived-context":    exporter,
	"waitgroup-stuck":     batches,
	"select-spin":         mergeFeeds,
	"leak-suspect":        flushShards,
	"none":                func() {},
}

func main() {
	bug := flag.String("bug", "none", "the bug to run")
	flag.Parse()
	run, ok := bugs[*bug]
	if !ok {
		fmt.Fprintf(os.Stderr, "buggy: no bug %q\n", *bug)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening", ln.Addr())
	go run()
	log.Fatal(http.Serve(ln, nil))
}

// spin computes for d.
func spin(d time.Duration) uint64 {
	x := uint64(1)
	for start := time.Now(); time.Since(start) < d; {
		for range 1000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

var sink atomic.Uint64

// leakyFetch asks a backend with a timeout; the backend's answer goes to an
// unbuffered channel that nobody reads once the caller has timed out.
func leakyFetch() {
	for n := 0; n < 3000; n++ {
		answer := make(chan int)
		go func() {
			time.Sleep(30 * time.Millisecond)
			answer <- 42 // bug: goroutine-leak
		}()
		select {
		case <-answer:
		case <-time.After(10 * time.Millisecond):
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// flushShards asks three shards to flush and returns without reading their
// acknowledgements: each shard waits for good to send its own. It happens
// once and never grows: without the runtime's leak detection (Go 1.26),
// only a suspect.
func flushShards() {
	acks := make(chan error)
	for shard := range 3 {
		go func() {
			time.Sleep(time.Duration(shard) * time.Millisecond)
			acks <- nil // bug: leak-suspect
		}()
	}
}

type account struct {
	mu      sync.Mutex
	balance int
}

// transfers move money both ways between two accounts, locking the payer
// first: opposite orders.
func transfers() {
	for range 20 {
		a, b := &account{balance: 100}, &account{balance: 100}
		var both sync.WaitGroup
		both.Add(2)
		move := func(from, to *account) {
			from.mu.Lock()
			both.Done()
			both.Wait()
			to.mu.Lock() // bug: deadlock
			from.balance--
			to.balance++
			to.mu.Unlock()
			from.mu.Unlock()
		}
		go move(a, b)
		go move(b, a)
		time.Sleep(3 * time.Second)
	}
}

// cacheRefresh refreshes a cache from a slow backend while holding its lock.
func cacheRefresh() {
	var mu sync.Mutex
	cache := map[string]int{}
	go func() {
		for {
			mu.Lock()
			time.Sleep(250 * time.Millisecond) // bug: lock-held-blocking
			cache["answer"]++
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for range 6 {
		go func() {
			for {
				mu.Lock()
				_ = cache["answer"]
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
}

// slowLogger writes every record synchronously in the only goroutine that
// drains the records channel.
func slowLogger() {
	records := make(chan string, 8)
	go func() {
		for r := range records {
			time.Sleep(40 * time.Millisecond) // bug: blocked-loop
			_ = r
		}
	}()
	for i := range 4 {
		go func() {
			for n := 0; ; n++ {
				records <- fmt.Sprint("record ", i, n)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
}

// hotCounter has every worker update shared stats under one mutex, with
// the work done inside the critical section.
func hotCounter() {
	var mu sync.Mutex
	stats := map[uint64]int{}
	for range 8 {
		go func() {
			for {
				mu.Lock() // bug: lock-contention
				stats[spin(200*time.Microsecond)%64]++
				mu.Unlock()
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
}

// crunchers run more CPU-bound goroutines than Ps next to a heartbeat.
func crunchers() {
	for range runtime.GOMAXPROCS(0) + 1 {
		go func() {
			for {
				sink.Add(spin(time.Second)) // bug: sched-starvation
			}
		}()
	}
	go func() {
		for range time.Tick(2 * time.Millisecond) {
			sink.Add(1)
		}
	}()
}

// spinningConsumer polls its channel instead of waiting on it.
func spinningConsumer() {
	events := make(chan int, 1)
	go func() {
		for i := 0; ; i++ {
			time.Sleep(50 * time.Millisecond)
			select {
			case events <- i:
			default:
			}
		}
	}()
	go func() {
		for {
			select {
			case <-events:
			default:
				runtime.Gosched() // bug: busy-poll
			}
		}
	}()
}

// eventLoop serves requests, and compacts its state inline once a second.
func eventLoop() {
	requests := make(chan int)
	go func() {
		compact := time.NewTicker(time.Second)
		for {
			select {
			case <-requests:
			case <-compact.C:
				sink.Add(spin(400 * time.Millisecond)) // bug: long-run
			}
		}
	}()
	go func() {
		for i := 0; ; i++ {
			requests <- i
			time.Sleep(10 * time.Millisecond)
		}
	}()
}

// fanout visits a tree with a goroutine per node and no limit.
func fanout() {
	var live atomic.Int64
	var visit func(depth int)
	visit = func(depth int) {
		defer live.Add(-1)
		time.Sleep(50 * time.Millisecond)
		if depth == 0 || live.Load() > 40000 {
			return
		}
		var wg sync.WaitGroup
		for range 2 {
			live.Add(1)
			wg.Add(1)
			go func() { // bug: goroutine-explosion
				defer wg.Done()
				visit(depth - 1)
			}()
		}
		wg.Wait()
	}
	for {
		live.Add(1)
		visit(20)
		time.Sleep(5 * time.Second)
	}
}

// backlog buffers work in a slice that grows faster than it drains.
func backlog() {
	var mu sync.Mutex
	var queue [][]byte
	go func() {
		for range time.Tick(10 * time.Millisecond) {
			mu.Lock()
			for range 20 {
				if len(queue) < 60000 {
					queue = append(queue, make([]byte, 4096)) // bug: unbounded-growth
				}
			}
			mu.Unlock()
		}
	}()
	go func() {
		for range time.Tick(10 * time.Millisecond) {
			mu.Lock()
			if len(queue) > 0 {
				queue = queue[1:]
			}
			mu.Unlock()
		}
	}()
}

// pinnedSessions lock each session to an OS thread and never unlock.
func pinnedSessions() {
	for range 150 {
		go func() {
			runtime.LockOSThread()
			for range time.Tick(time.Second) { // bug: thread-growth
				sink.Add(1)
			}
		}()
		time.Sleep(100 * time.Millisecond)
	}
}

// exporter runs export jobs under a context cancelled when the job's
// runner returns; the workers never look at it.
func exporter() {
	var workers atomic.Int64
	for {
		pprof.Do(context.Background(), pprof.Labels("component", "exporter"), func(ctx context.Context) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
				if workers.Load() < 40 {
					workers.Add(1)
					go func() {
						defer workers.Add(-1)
						for range 400 {
							time.Sleep(50 * time.Millisecond) // bug: outlived-context
						}
					}()
				}
				<-ctx.Done()
			}()
			<-done
		})
		time.Sleep(time.Second)
	}
}

// batches join their tasks with a WaitGroup; a task that fails returns
// before its Done.
func batches() {
	for range 20 {
		go func() {
			var wg sync.WaitGroup
			for i := range 3 {
				wg.Add(1)
				go func() {
					time.Sleep(time.Duration(1+i) * 600 * time.Millisecond)
					if i == 1 {
						return // the failure path skips Done
					}
					wg.Done()
				}()
			}
			wg.Wait() // bug: waitgroup-stuck
		}()
		time.Sleep(time.Second)
	}
}

// mergeFeeds merges two feeds in a select, and does not disable the one
// that ends: a receive from it is ready at once, every time.
func mergeFeeds() {
	fast, slow := make(chan int, 1), make(chan int, 1)
	go func() {
		for i := 0; ; i++ {
			time.Sleep(30 * time.Millisecond)
			fast <- i
		}
	}()
	go func() {
		for i := range 3 {
			time.Sleep(100 * time.Millisecond)
			slow <- i
		}
		close(slow)
	}()
	go func() {
		var n int
		for {
			select { // bug: select-spin
			case v := <-fast:
				n += v
			case v := <-slow:
				n += v
			}
			sink.Store(uint64(n))
		}
	}()
}
