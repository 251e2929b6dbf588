// Command pprofprog serves net/http/pprof and nothing else, with goroutines
// parked in known places, for the tests of the remote source. It builds with
// any Go from 1.22 on (the tests build it with the machine's older Go too), and
// prints "listening ADDR" once it serves.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime/pprof"
	"sync"
	"time"
)

func main() {
	var mu sync.Mutex
	mu.Lock()
	never := make(chan int)
	for i := 0; i < 3; i++ {
		go pprof.Do(context.Background(), pprof.Labels("task", "receiver"), func(context.Context) {
			receive(never)
		})
	}
	go lock(&mu)
	go sleeper()
	go leak()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr())
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mu.Unlock()
	close(never)
}

func receive(c chan int) {
	<-c
}

func lock(mu *sync.Mutex) {
	mu.Lock()
	mu.Unlock()
}

// leak waits on a channel nobody else can reach: the goroutineleak profile
// (Go 1.27) finds it.
func leak() {
	c := make(chan int)
	<-c
}

func sleeper() {
	for {
		time.Sleep(10 * time.Millisecond)
	}
}
