// Command inspectd runs the workload lab and serves the inspection API, pprof,
// fgprof, a gops agent and Prometheus metrics. Run `inspectd -h` for flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/inspectd/inspectd/internal/daemon"
	"github.com/inspectd/inspectd/internal/workload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := daemon.Load(os.Args[1:], os.Getenv, workload.Default, os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp), errors.Is(err, daemon.ErrListed):
		return
	case err != nil:
		fmt.Fprintln(os.Stderr, "inspectd:", err)
		os.Exit(2)
	}
	if err := daemon.Run(ctx, cfg, workload.Default, daemon.NewLogger(cfg, os.Stderr)); err != nil {
		fmt.Fprintln(os.Stderr, "inspectd:", err)
		// A listener the machine cannot give (the port in use) is the
		// configuration's mistake, like a bad flag.
		var ue *daemon.UsageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
