package workload

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/trace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
)

func init() {
	Register(Spec{
		Name:   "tracing",
		Lesson: "tracing_log, tracing_json, tracing_spans",
		Kind:   Healthy,
		Description: "Handles a stream of small simulated requests and instruments each one three ways: " +
			"a log/slog record carrying the request's trace and span IDs, rendered by a text or JSON " +
			"handler; a runtime/trace task with regions and a trace log line, which `go tool trace` and " +
			"`inspect-cli trace` captures show; and OpenTelemetry spans, exported over OTLP/HTTP when " +
			"OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set and otherwise " +
			"only counted. The talk uses the tracing crate: a subscriber for text or JSON logs and " +
			"#[instrument] for spans; Go splits the job between the standard library and OpenTelemetry, " +
			"and passes the current span along in the context.",
		Params: []ParamSpec{
			DurationParam("interval", "time between requests", 50*time.Millisecond, time.Millisecond, time.Minute),
			DurationParam("latency", "longest simulated I/O wait of a request; each waits a random share of it", 5*time.Millisecond, time.Millisecond, 10*time.Second),
			EnumParam("format", "slog handler whose rendering of the last record the report quotes", "json", "text", "json"),
			DurationParam("report", "time between the info-level reports of requests and spans", 30*time.Second, time.Second, time.Hour),
		},
		Run: runTracing,
	})
}

// tracingShutdownGrace bounds the exporter's final flush: the supervisor
// waits about a second for a stopped workload.
const tracingShutdownGrace = 500 * time.Millisecond

func runTracing(ctx context.Context, env *Env) error {
	p := env.Params
	latency := p.Duration("latency")

	var spans tracingSpanCounter
	tp, exporter, closeIdle, err := tracingProvider(ctx, &spans)
	if err != nil {
		return fmt.Errorf("tracing: set up the OpenTelemetry exporter: %w", err)
	}
	defer func() {
		// ctx is already cancelled here; the flush gets a fresh, short deadline.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingShutdownGrace)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			env.Log.Warn("tracing: OpenTelemetry shutdown", "err", err)
		}
		closeIdle()
	}()
	tracer := tp.Tracer("github.com/inspectd/inspectd/internal/workload")

	// The demonstration handler renders into a one-record buffer, not a log
	// of its own: the report quotes its latest line, and nothing piles up.
	var last tracingLastRecord
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	var demo slog.Handler = slog.NewJSONHandler(&last, opts)
	if p.String("format") == "text" {
		demo = slog.NewTextHandler(&last, opts)
	}
	log := slog.New(slog.NewMultiHandler(env.Log.Handler(), demo))
	env.Log.Info("tracing set up", "exporter", exporter, "format", p.String("format"))

	t := time.NewTicker(p.Duration("interval"))
	defer t.Stop()
	report := time.NewTicker(p.Duration("report"))
	defer report.Stop()
	for id := 1; ; id++ {
		select {
		case <-ctx.Done():
			return nil
		case <-report.C:
			env.Log.Info("tracing report", "requests", id-1, "spans_ended", spans.ended.Load(),
				"spans_open", spans.started.Load()-spans.ended.Load(), "exporter", exporter, "last_record", last.String())
		case <-t.C:
			if tracingRequest(ctx, tracer, log, id, latency) == nil {
				env.Op()
			}
		}
	}
}

// tracingRequest handles one simulated request inside a runtime/trace task
// and an OpenTelemetry span, with a region and a child span per step.
func tracingRequest(ctx context.Context, tracer oteltrace.Tracer, log *slog.Logger, id int, latency time.Duration) error {
	ctx, task := trace.NewTask(ctx, "request")
	defer task.End()
	ctx, span := tracer.Start(ctx, "request", oteltrace.WithAttributes(attribute.Int("request.id", id)))
	defer span.End()
	sc := span.SpanContext()
	log = log.With("request", id, "trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	trace.Log(ctx, "request", strconv.Itoa(id))

	var checksum int
	trace.WithRegion(ctx, "parse", func() {
		_, s := tracer.Start(ctx, "parse")
		defer s.End()
		for _, c := range strconv.Itoa(id * 7919) {
			checksum += int(c - '0')
		}
	})
	var err error
	trace.WithRegion(ctx, "fetch", func() {
		fctx, s := tracer.Start(ctx, "fetch")
		defer s.End()
		if !pauseFor(fctx, rand.N(latency)) {
			err = fctx.Err()
			s.RecordError(err)
			s.SetStatus(codes.Error, "cancelled")
		}
	})
	log.DebugContext(ctx, "request handled", "checksum", checksum, "err", err)
	return err
}

// tracingProvider builds a TracerProvider that counts spans, and exports
// them over OTLP/HTTP when the standard environment variables name an
// endpoint. Without one, spans are still created, sampled and ended, which is
// all the lesson needs.
func tracingProvider(ctx context.Context, counter sdktrace.SpanProcessor) (*sdktrace.TracerProvider, string, func(), error) {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "inspectd"),
			attribute.String("inspectd.workload", "tracing"),
		)),
		sdktrace.WithSpanProcessor(counter),
	}
	endpoint := cmp.Or(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	if endpoint == "" {
		return sdktrace.NewTracerProvider(opts...), "none", func() {}, nil
	}
	// A transport of the workload's own, so that stopping it also closes the
	// connections it opened: the exporter's shared transport would keep
	// their goroutines, labelled with this workload, alive after the stop.
	// The price is that OTEL_EXPORTER_OTLP_CERTIFICATE is not read.
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true, IdleConnTimeout: 30 * time.Second}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	// The exporter reads the endpoint, headers and compression from the
	// same standard variables.
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithHTTPClient(client))
	if err != nil {
		return nil, "", nil, err
	}
	opts = append(opts, sdktrace.WithBatcher(exp))
	return sdktrace.NewTracerProvider(opts...), "otlp " + endpoint, tr.CloseIdleConnections, nil
}

// tracingSpanCounter is a span processor that only counts: a span started
// and never ended would show as open in the report.
type tracingSpanCounter struct {
	started, ended atomic.Int64
}

func (c *tracingSpanCounter) OnStart(context.Context, sdktrace.ReadWriteSpan) { c.started.Add(1) }
func (c *tracingSpanCounter) OnEnd(sdktrace.ReadOnlySpan)                     { c.ended.Add(1) }
func (c *tracingSpanCounter) Shutdown(context.Context) error                  { return nil }
func (c *tracingSpanCounter) ForceFlush(context.Context) error                { return nil }

// tracingLastRecord keeps only the last record a handler wrote.
type tracingLastRecord struct {
	mu sync.Mutex
	b  []byte
}

func (r *tracingLastRecord) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.b = append(r.b[:0], p...)
	return len(p), nil
}

func (r *tracingLastRecord) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(bytes.TrimSpace(r.b))
}
