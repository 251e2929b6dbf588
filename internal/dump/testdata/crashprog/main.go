// Command crashprog parks goroutines in known states, then crashes, so that
// the dump parser's tests can read real crash output. Usage:
//
//	crashprog panic     # panic in main (run with GOTRACEBACK=all)
//	crashprog sigquit   # SIGQUIT to itself (run with GOTRACEBACK=crash for registers and gp= headers)
//	crashprog deadlock  # "fatal error: all goroutines are asleep - deadlock!"
//	crashprog leak      # no crash: leaks a goroutine, writes the goroutineleak profile (debug=2) to stdout
//
// GODEBUG=tracebackancestors=N adds "[originating from goroutine N]" sections.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: crashprog panic|sigquit|deadlock|leak")
		os.Exit(2)
	}
	mode := os.Args[1]
	var wg sync.WaitGroup
	start := func(f func()) {
		wg.Add(1)
		go func() {
			wg.Done()
			f()
		}()
	}
	ch := make(chan int)
	var mu sync.Mutex
	mu.Lock()
	pprof.Do(context.Background(), pprof.Labels("role", "receiver", "user id", `a "b"`), func(context.Context) {
		start(func() { <-ch })
	})
	start(func() {
		runtime.LockOSThread()
		select {}
	})
	start(func() { mu.Lock() })
	block := make(chan int)
	start(func() { nested(3, block) })
	if mode != "deadlock" {
		start(func() { time.Sleep(time.Hour) })
		start(spin)
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // let them block

	switch mode {
	case "panic":
		panic("boom")
	case "sigquit":
		syscall.Kill(os.Getpid(), syscall.SIGQUIT)
		time.Sleep(time.Minute)
	case "deadlock":
		<-ch
	case "leak":
		leaked := make(chan struct{})
		pprof.Do(context.Background(), pprof.Labels("role", "leaker"), func(context.Context) {
			go func() {
				ch := make(chan int) // nobody else can reach it
				close(leaked)
				<-ch
			}()
		})
		<-leaked
		if err := pprof.Lookup("goroutineleak").WriteTo(os.Stdout, 2); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

// nested starts a chain of goroutines, for tracebackancestors; the last one
// blocks sending on ch.
func nested(n int, ch chan int) {
	if n == 0 {
		ch <- 1
		return
	}
	done := make(chan bool)
	go func() {
		nested(n-1, ch)
		done <- true
	}()
	<-done
}

var sink int

func spin() {
	for i := 0; ; i++ {
		sink += i
	}
}
