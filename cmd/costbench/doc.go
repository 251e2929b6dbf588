// Command costbench measures what inspecting a Go program costs it: the
// same workloads side by side, with nothing attached, with the embedded
// agent (default options) idle and watched, and with net/http/pprof served,
// in one run and in alternating order, so that the ratios within a run mean
// something on a noisy machine.
//
//	export GOTOOLCHAIN=go1.27.3
//	go run ./cmd/costbench                      # everything: about 12 minutes
//	go run ./cmd/costbench -quick               # a smoke run: about a minute
//	go run ./cmd/costbench -workloads pool,http -repeats 5 -markdown
//	go run ./cmd/costbench -workloads parked -parked 10k,100k,1M
//
// Each measurement runs a target: this same executable started again as a
// subprocess (package internal/costbench/target, selected by the
// COSTBENCH_TARGET environment variable), so every configuration runs the
// same binary and nothing is built while measuring. The driver asks the
// target for its operation count, CPU time (CLOCK_PROCESS_CPUTIME_ID), VmRSS and pause
// histograms over a pipe.
//
// Configurations (-configs):
//   - none: the workload alone;
//   - agent-idle: the workload with agent.Listen(agent.Options{}), the
//     default options, and nobody asking;
//   - agent-watched: the same, with a client following
//     GET /api/v1/watch?interval=1s&window=5s&limit=120 as `inspect-cli top`
//     does, a page of three 40-row screens (it reads the events, counts their
//     bytes and discards them);
//   - pprof: the workload with net/http/pprof served on a loopback port,
//     nobody asking.
//
// -overhead-budget runs the agent targets with another
// agent.Options.OverheadBudget than the default (5% of the program's CPU),
// to see what inspection costs against what it is allowed.
//
// Workloads (-workloads):
//   - pingpong: 50 pairs of goroutines bouncing a value over unbuffered
//     channels; an operation is a round trip (two goroutine switches);
//   - pool: GOMAXPROCS workers taking tasks of about 1.5 µs of CPU from a
//     channel one producer fills; an operation is a task;
//   - http: a server whose handler spins about 50 µs, driven by -clients
//     closed-loop keep-alive clients in this process; an operation is a
//     request served, and the clients' p99 latency is reported;
//   - parked: N goroutines (-parked) waiting on channels, half of them
//     labelled with pprof.Do. With the agent: the time, bytes, longest
//     stop-the-world pause and added RSS of the first snapshot
//     (GET /api/v1/snapshot?window=5s), of later ones, and of watch updates;
//     and, in a target of its own asked nothing else, the RSS a watch alone
//     adds (the steady state of inspect-cli top), with the target's heap
//     (live at the last GC, and the goal) read twice a second over the
//     watch. -heap-profiles DIR writes the agent targets' heap profiles
//     there at the end of each watch.
//     With net/http/pprof (plus /debug/fgprof and a gops agent): the same
//     for goroutine?debug=2, goroutine?debug=0, a gops stack dump and
//     fgprof?seconds=1, each in a target of its own.
//
// For the first three, each configuration runs -repeats times, in the order
// none, agent-idle, agent-watched, pprof, none, ...: a fresh target, a
// -warmup, then -measure during which the driver counts operations per
// CPU-second of the target and per wall second. The tables give each
// configuration's median, min-max and its median's ratio to none's.
//
// Tables go to stdout as each workload finishes (-markdown: Markdown, headed
// with the command and configuration); progress goes to stderr. Targets are
// killed when the driver exits or is interrupted. Linux only: it reads
// VmRSS from /proc.
package main
