package workload

import (
	"context"
	"net/http"
	"time"
)

func init() {
	Register(Spec{
		Name:   "web-service",
		Lesson: WebLesson,
		Kind:   Healthy,
		Description: "An HTTP service on a loopback port, built the way the talk builds an Axum service: " +
			"the handlers get their dependencies injected (a store behind an interface, and a client of " +
			"a downstream pricing service, itself served on another port) instead of reaching for " +
			"globals. GET /items/{id} reads the store, POST /items/{id}/reprice asks the pricing service " +
			"for a price and stores it, GET /items/{id}/report builds a report in steps. A load generator " +
			"of the workload's own drives it with a mix of the three, and its figures (requests per " +
			"second, errors, p99 latency) are on /metrics and in the catalog. Axum passes shared state " +
			"through State<Arc<...>> extractors and runs each request as a task; Go's net/http runs each " +
			"connection in a goroutine, and a handler is a method of a struct that holds its " +
			"dependencies. The handlers lock the store only to read or write it, call the downstream " +
			"service with the request's context, and stop their work when that context is done.",
		Params: append(webLoadParams(8, 100, time.Second),
			DurationParam("downstream", "how long the pricing service takes to answer", 20*time.Millisecond, time.Millisecond, 10*time.Second),
			DurationParam("report", "how long a report takes to build", 100*time.Millisecond, time.Millisecond, time.Minute),
		),
		Figures: webFigures,
		Run:     runWebService,
	})
}

func runWebService(ctx context.Context, env *Env) error {
	p := env.Params
	pricing, err := startPricing(ctx, env, p.Duration("downstream"))
	if err != nil {
		return err
	}
	s := &webService{env: env, store: newMemStore(webItems), pricing: pricing}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", s.getItem)
	mux.HandleFunc("POST /items/{id}/reprice", s.reprice)
	report := p.Duration("report")
	mux.HandleFunc("GET /items/{id}/report", func(w http.ResponseWriter, r *http.Request) {
		s.report(w, r, report)
	})
	base, err := serveWeb(ctx, env, "server", mux)
	if err != nil {
		return err
	}
	runWebLoad(ctx, env, base, []webOp{webRead.with(0.85), webWrite.with(0.1), webReport.with(0.05)}, 0)
	<-ctx.Done()
	return nil
}

// reprice answers POST /items/{id}/reprice: read the item under the lock,
// ask the downstream service without it, and store the new price under it.
func (s *webService) reprice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	item, ok := s.store.Get(id)
	s.mu.Unlock()
	if !ok {
		http.Error(w, "no such item", http.StatusNotFound)
		return
	}
	price, err := s.pricing.Quote(r.Context(), id)
	if err != nil {
		http.Error(w, "pricing: "+err.Error(), http.StatusBadGateway)
		return
	}
	item.Price = price
	s.mu.Lock()
	s.store.Put(item)
	s.mu.Unlock()
	webJSON(w, item)
}

// report answers GET /items/{id}/report: the report is built in steps, in
// the handler's goroutine, and stops when the request's context is done.
func (s *webService) report(w http.ResponseWriter, r *http.Request, took time.Duration) {
	const steps = 10
	for range steps {
		if !pauseFor(r.Context(), took/steps) {
			return // the client gave up: so does the work
		}
	}
	webJSON(w, map[string]any{"id": r.PathValue("id"), "lines": steps})
}
