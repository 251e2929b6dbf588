//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/inspectd/inspectd/internal/costbench/target"
)

func main() {
	if os.Getenv(target.Env) != "" {
		os.Exit(target.Main(os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "costbench: finding this executable to run it as the target:", err)
		os.Exit(1)
	}
	err = run(ctx, os.Args[1:], exe, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "costbench: interrupted")
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "costbench:", err)
		os.Exit(1)
	}
}
