// Command inspect-cli inspects the goroutines of a Go program: an inspectd
// daemon, a program that embeds the inspectd agent, any program that serves
// net/http/pprof, or a saved goroutine dump file.
//
//	inspect-cli tasks                      # the task table of 127.0.0.1:7777
//	inspect-cli task 42                    # one task: numbers, histograms, stack
//	inspect-cli sites                      # where goroutines wait
//	inspect-cli stacks dump.txt            # goroutines grouped by identical stack
//	inspect-cli workloads start leak --param every=50ms
//	inspect-cli profile cpu --seconds 10   # then: go tool pprof -http : FILE
//	inspect-cli trace --seconds 2          # then: go tool trace FILE
//
// Exit codes: 0 success, 1 an error answered by the target (a bad parameter,
// an unknown workload or task), 2 a usage error or a target that cannot be
// reached or read.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(&env{stdout: stdout, stderr: stderr, stdin: os.Stdin, getenv: os.Getenv})
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	return report(stderr, err)
}
