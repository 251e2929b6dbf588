package workload

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

func init() {
	Register(Spec{
		Name:   "tracing-pileup",
		Lesson: "tracing_log, tracing_json",
		Kind:   Broken,
		Description: "Requests log structured records through log/slog, like the tracing lesson, into a " +
			"handler of the service's own that renders each record as JSON and batches them for a log " +
			"collector, the way a shipping subscriber does. The collector is down, so every shipment " +
			"fails, and the handler keeps what failed for the next try, all of it: the batch, and the " +
			"heap with it, grows by every record logged, allocated at one site, until the process runs out " +
			"of memory. The talk's tracing subscribers write out as they go; a subscriber or exporter that " +
			"buffers (an OpenTelemetry batch processor, a log shipper) needs a bound and a policy for what " +
			"does not fit.",
		Params: []ParamSpec{
			IntParam("records", "records logged per second", 1000, 1, 100000),
			IntParam("record_size", "bytes of each record's payload (the request's headers, say)", 4096, 16, 1<<20),
			DurationParam("flush", "time between two shipments to the collector", 500*time.Millisecond, time.Millisecond, time.Minute),
			IntParam("max_bytes", "bytes kept before the batch is dropped and started over", 256<<20, 64<<10, 256<<20),
			IntParam("keep", "with fix, the records kept for the next try at most", 1000, 1, 100000),
			FixParam(),
		},
		Caps: "The batch never holds more than max_bytes (default 256 MiB) of records: on reaching it the " +
			"handler drops it, logs a warning and starts over. It is freed when the workload stops.",
		Rule: "unbounded-growth",
		Fix: "The handler keeps at most keep records (default 1,000) for the next try and drops the oldest, " +
			"counting what it dropped: the heap stays flat however long the collector is down.",
		Run: runTracingPileup,
	})
}

// shippingHandler is a slog.Handler that renders records as JSON lines and
// keeps them in a batch for a collector.
type shippingHandler struct {
	env      *Env
	mu       sync.Mutex
	pending  [][]byte
	bytes    int
	maxBytes int
	keep     int // with the fix: records kept at most; 0 without
	dropped  int
}

func (h *shippingHandler) size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pending)
}

func (h *shippingHandler) droppedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

func (h *shippingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *shippingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *shippingHandler) WithGroup(string) slog.Handler            { return h }

func (h *shippingHandler) Handle(_ context.Context, r slog.Record) error {
	size := 64 + len(r.Message)
	r.Attrs(func(a slog.Attr) bool { size += len(a.Key) + len(a.Value.String()) + 8; return true })
	line := make([]byte, 0, size)
	line = append(line, `{"time":"`...)
	line = r.Time.AppendFormat(line, time.RFC3339Nano)
	line = append(line, `","msg":`...)
	line = strconv.AppendQuote(line, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		line = append(line, `,"`...)
		line = append(line, a.Key...)
		line = append(line, `":`...)
		line = strconv.AppendQuote(line, a.Value.String())
		return true
	})
	line = append(line, "}\n"...)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bytes+len(line) > h.maxBytes {
		h.env.Log.Warn("log batch reached its cap; dropping it and starting over",
			"records", len(h.pending), "bytes", h.bytes, "max_bytes", h.maxBytes)
		h.pending, h.bytes = nil, 0
	}
	h.pending = append(h.pending, line)
	h.bytes += len(line)
	return nil
}

// errCollectorDown is what every shipment gets: the collector is down.
var errCollectorDown = errors.New("log collector unreachable")

// ship sends the batch to the collector; what fails to go stays for the
// next try.
func (h *shippingHandler) ship() error {
	h.mu.Lock()
	batch := h.pending
	h.pending = nil
	h.mu.Unlock()
	err := errCollectorDown // sending batch: the collector is down
	h.mu.Lock()
	defer h.mu.Unlock()
	// The bug: a failed shipment keeps the whole batch for the next try, without a bound.
	kept := append(batch, h.pending...)
	if h.keep > 0 && len(kept) > h.keep {
		// The fix: what waits for the collector has a bound; the oldest go.
		n := len(kept) - h.keep
		h.dropped += n
		kept = append([][]byte(nil), kept[n:]...)
	}
	h.pending, h.bytes = kept, 0
	for _, l := range kept {
		h.bytes += len(l)
	}
	return err
}

func runTracingPileup(ctx context.Context, env *Env) error {
	p := env.Params
	h := &shippingHandler{env: env, maxBytes: p.Int("max_bytes")}
	if p.Bool("fix") {
		h.keep = p.Int("keep")
	}
	log := slog.New(h)
	payload := make([]byte, p.Int("record_size"))
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	headers := string(payload)
	go env.Spawn(ctx, "shipper")(func(ctx context.Context) {
		everyTick(ctx, p.Duration("flush"), func() {
			if err := h.ship(); err != nil {
				env.Log.Debug("log shipment failed; records kept for the next try", "err", err,
					"records", h.size(), "dropped", h.droppedCount())
			}
		})
	})
	go env.Spawn(ctx, "requests")(func(ctx context.Context) {
		id := 0
		paced(ctx, p.Int("records"), func() {
			id++
			log.InfoContext(ctx, "request handled", "request", id, "status", 200, "headers", headers)
			env.Op()
		})
	})
	<-ctx.Done()
	return nil
}
