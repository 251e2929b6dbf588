package workload

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"
)

func init() {
	Register(Spec{
		Name:   "web-ignored-ctx",
		Lesson: WebLesson + ", tokio_select",
		Kind:   Broken,
		Description: "The web service of the web-service lesson, with a report endpoint written the way " +
			"many are: GET /items/{id}/report starts a goroutine that builds the report in steps and " +
			"waits for its result or for the request's context to end, whichever comes first. The " +
			"clients give up after timeout, before most reports are ready; the handler then returns, but " +
			"the goroutine it started is handed the request's context and never looks at it: it builds " +
			"the rest of a report nobody will read, for seconds after its request is over. Under load they " +
			"pile up: goroutines that outlive the request goroutine that started them, and the figure " +
			"outliving_goroutines counts them. In the talk a select! drops the losing future, which " +
			"cancels it; a goroutine must watch its context to be cancelled at all.",
		Params: append(webLoadParams(8, 50, time.Second),
			DurationParam("work", "mean time a report takes (uniform between half and one and a half times this)", 4*time.Second, 10*time.Millisecond, time.Minute),
			DurationParam("step", "length of one step of a report", 100*time.Millisecond, time.Millisecond, 10*time.Second),
			IntParam("max_goroutines", "report goroutines alive at once; past it the endpoint answers 503", 200, 1, 5000),
			FixParam(),
		),
		Caps: "At most max_goroutines report goroutines (default 200) at once; each ends on its own at " +
			"most one and a half times work (default 6s) after it started, also after the workload stops.",
		MaxLeft: func(p Params) int {
			if p.Bool("fix") {
				return 0
			}
			return p.Int("max_goroutines")
		},
		Rule: "outlived-context",
		Fix: "The report goroutine waits for each step in a select on ctx.Done and the step's timer, and " +
			"returns when the request's context ends: nothing outlives its request. Report goroutines " +
			"started before the fix still run out their reports.",
		Figures: append(webFigures[:len(webFigures):len(webFigures)],
			FigureSpec{Name: "outliving_goroutines", Help: "Report goroutines still at work for a request that is over"}),
		Run: runWebIgnoredCtx,
	})
}

func runWebIgnoredCtx(ctx context.Context, env *Env) error {
	p := env.Params
	s := &webService{env: env, store: newMemStore(webItems)}
	live := &webLive{max: int64(p.Int("max_goroutines"))}
	var outliving atomic.Int64 // report goroutines whose handler has returned
	build := buildReportIgnoringCtx
	if p.Bool("fix") {
		build = buildReportHonouringCtx
	}
	work, step := p.Duration("work"), p.Duration("step")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", s.getItem)
	mux.HandleFunc("GET /items/{id}/report", func(w http.ResponseWriter, r *http.Request) {
		if !live.reserve() {
			http.Error(w, "too many reports in progress", http.StatusServiceUnavailable)
			return
		}
		length := work/2 + rand.N(work)
		res := make(chan int, 1) // room for the result: the goroutine never blocks on it
		// Who finished first, for the figure: 0 neither yet, 1 the handler, 2 the report.
		var first atomic.Int32
		go env.SpawnDetached(r.Context(), "report")(func(ctx context.Context) {
			defer live.release()
			res <- build(ctx, length, step)
			if !first.CompareAndSwap(0, 2) {
				outliving.Add(-1)
			}
		})
		select {
		case lines := <-res:
			webJSON(w, map[string]any{"id": r.PathValue("id"), "lines": lines})
		case <-r.Context().Done():
			// The client gave up, and the handler with it.
		}
		if first.CompareAndSwap(0, 1) {
			outliving.Add(1)
		}
	})
	base, err := serveWeb(ctx, env, "server", mux)
	if err != nil {
		return err
	}
	go env.Spawn(ctx, "figures")(func(ctx context.Context) {
		everyTick(ctx, time.Second, func() {
			env.SetFigure("outliving_goroutines", float64(max(0, outliving.Load())))
		})
	})
	runWebLoad(ctx, env, base, []webOp{webRead.with(0.8), webReport.with(0.2)}, 0)
	<-ctx.Done()
	return nil
}

// buildReportIgnoringCtx builds a report in steps for length.
func buildReportIgnoringCtx(ctx context.Context, length, step time.Duration) (lines int) {
	end := time.Now().Add(length)
	// The bug: ctx is right here, and the loop never consults it.
	for time.Now().Before(end) {
		time.Sleep(step)
		lines++
	}
	return lines
}

// buildReportHonouringCtx is buildReportIgnoringCtx with the fix.
func buildReportHonouringCtx(ctx context.Context, length, step time.Duration) (lines int) {
	end := time.Now().Add(length)
	for time.Now().Before(end) {
		// The fix: wait for the step or the end of the request, whichever comes first.
		if !pauseFor(ctx, step) {
			return lines
		}
		lines++
	}
	return lines
}
