// Command bugs runs one blocking bug of the corpus, modelled on a real bug of
// a well-known Go project, in a process that serves nothing but
// net/http/pprof: what a production service looks like to inspect-cli.
//
//	go run ./corpus/bugs -bug kubernetes5316            # the bug happens once
//	go run ./corpus/bugs -bug kubernetes5316 -every 100ms # and again every 100ms
//	go run ./corpus/bugs -bug kubernetes5316 -every 100ms -copies 1000 # a heavy target
//	go run ./corpus/bugs -list
//
// It prints "pprof http://127.0.0.1:PORT" once it listens. Each bug lives in a
// file of its own named after it; the lines where its goroutines stay blocked
// carry the marker "want: stuck" in a comment, which the harness in the
// directory above reads as the sites a diagnosis must name.
//
// One binary holds every bug so that the harness builds it once per Go
// version rather than once per bug: linking twenty binaries twice would cost
// most of the test's time budget.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"slices"
	"strings"
	"time"
)

// A bug sets up its goroutines and returns, or blocks for good itself: it
// always runs in a goroutine of its own. Whatever it blocks on is its own
// (made on each run, never global), so that once it is stuck nothing that
// still runs can reach it: what the runtime's leak detection can prove.
type bug struct {
	category string
	run      func()
}

var bugs = map[string]bug{}

func register(name, category string, run func()) {
	if _, dup := bugs[name]; dup {
		panic("bug registered twice: " + name)
	}
	bugs[name] = bug{category: category, run: run}
}

func main() {
	name := flag.String("bug", "", "the bug to run (see -list)")
	every := flag.Duration("every", 0, "run the bug again every this long (0: once)")
	copies := flag.Int("copies", 1, "run this many copies of the bug each time: a heavy target strands thousands of goroutines")
	addr := flag.String("addr", "127.0.0.1:0", "where to serve net/http/pprof")
	list := flag.Bool("list", false, "print the bugs, one per line: name and category")
	lifetime := flag.Duration("lifetime", 0, "exit after this long (0: never), so that a harness killed before it could clean up leaves nothing running for long")
	flag.Parse()
	if *lifetime > 0 {
		time.AfterFunc(*lifetime, func() { os.Exit(0) })
	}
	if *list {
		names := make([]string, 0, len(bugs))
		for n := range bugs {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Printf("%s\t%s\n", n, bugs[n].category)
		}
		return
	}
	b, ok := bugs[*name]
	if !ok {
		fmt.Fprintf(os.Stderr, "bugs: unknown -bug %q; -list prints them\n", *name)
		os.Exit(2)
	}
	if !strings.HasPrefix(*addr, "127.0.0.1:") && !strings.HasPrefix(*addr, "localhost:") && !strings.HasPrefix(*addr, "[::1]:") {
		fmt.Fprintf(os.Stderr, "bugs: -addr %s: pprof is served on loopback only\n", *addr)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bugs: %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("pprof http://%s\n", ln.Addr())
	if *copies < 1 {
		fmt.Fprintf(os.Stderr, "bugs: -copies %d: want 1 or more\n", *copies)
		os.Exit(2)
	}
	run := func() {
		for range *copies {
			go b.run() // starts the bug
		}
	}
	if *every <= 0 {
		run()
	} else {
		go repeat(run, *every)
	}
	// The main goroutine waits in Accept (IO wait), which no rule and no
	// leak detection takes for a stuck goroutine.
	err = http.Serve(ln, nil)
	fmt.Fprintf(os.Stderr, "bugs: %v\n", err)
	os.Exit(1)
}

func repeat(run func(), every time.Duration) {
	t := time.NewTicker(every)
	for {
		run()
		<-t.C
	}
}
