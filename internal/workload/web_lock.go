package workload

import (
	"context"
	"net/http"
	"time"
)

func init() {
	Register(Spec{
		Name:   "web-lock",
		Lesson: WebLesson + ", tokio_blocking",
		Kind:   Broken,
		Description: "The web service of the web-service lesson, with one handler written the way a " +
			"hurried change writes it: POST /items/{id}/reprice, which a repricing job calls again and again beside " +
			"the clients' reads, locks the store, reads the item, asks the " +
			"downstream pricing service for a price, stores it and only then unlocks. The store stays " +
			"locked for the whole round trip to the other service, so every GET /items/{id}, which needs " +
			"the lock for a microsecond, queues behind it: reads take as long as a downstream call, the " +
			"requests per second drop and the p99 climbs, while the CPU idles. In Go it shows as request " +
			"goroutines in sync.Mutex.Lock and one request goroutine waiting for the downstream answer " +
			"with the lock held: the talk's warning against blocking where others wait, met in a service.",
		Params: append(webLoadParams(8, 200, 2*time.Second),
			DurationParam("downstream", "how long the pricing service takes to answer", 100*time.Millisecond, time.Millisecond, 10*time.Second),
			DurationParam("reprice_every", "pause of the repricing client between two reprices", 0, 0, time.Minute),
			FixParam(),
		),
		Caps: "No cap needed: the load generator's clients bound the requests in flight (one each), and " +
			"every goroutine stops with the workload.",
		Rule: "lock-held-blocking",
		Fix: "The handler locks the store to read the item, unlocks, calls the pricing service, then locks " +
			"again only to store the new price: reads no longer wait for the downstream service.",
		Figures: webFigures,
		Run:     runWebLock,
	})
}

func runWebLock(ctx context.Context, env *Env) error {
	p := env.Params
	pricing, err := startPricing(ctx, env, p.Duration("downstream"))
	if err != nil {
		return err
	}
	s := &webService{env: env, store: newMemStore(webItems), pricing: pricing}
	reprice := s.repriceHoldingLock
	if p.Bool("fix") {
		reprice = s.repriceReleasingLock
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", s.getItem)
	mux.HandleFunc("POST /items/{id}/reprice", reprice)
	base, err := serveWeb(ctx, env, "server", mux)
	if err != nil {
		return err
	}
	runWebLoad(ctx, env, base, []webOp{webRead.with(1)}, p.Duration("reprice_every"), webWrite)
	<-ctx.Done()
	return nil
}

// repriceHoldingLock answers POST /items/{id}/reprice with the store locked
// from the read to the write.
func (s *webService) repriceHoldingLock(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	item, ok := s.store.Get(id)
	if !ok {
		s.mu.Unlock()
		http.Error(w, "no such item", http.StatusNotFound)
		return
	}
	// The bug: the store stays locked across the call to the downstream service.
	price, err := s.pricing.Quote(r.Context(), id)
	if err == nil {
		item.Price = price
		s.store.Put(item)
	}
	s.mu.Unlock()
	if err != nil {
		http.Error(w, "pricing: "+err.Error(), http.StatusBadGateway)
		return
	}
	webJSON(w, item)
}

// repriceReleasingLock is repriceHoldingLock with the fix.
func (s *webService) repriceReleasingLock(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	item, ok := s.store.Get(id)
	s.mu.Unlock()
	if !ok {
		http.Error(w, "no such item", http.StatusNotFound)
		return
	}
	// The fix: the downstream call is made with the store unlocked.
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
