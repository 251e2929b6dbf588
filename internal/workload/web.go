package workload

// What the web-service lesson and its broken forms share: a service with
// its dependencies injected (a store behind an interface, a client of a
// downstream service), served over HTTP on a loopback port, and a bounded
// load generator that drives it and reports its requests per second and
// latency percentiles. Each workload's own file wires them together with
// its handlers: web_service.go the healthy ones, web_lock.go and
// web_ignored_ctx.go a bug each, with its fix beside it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// webItem is what the service stores and serves.
type webItem struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Price int64  `json:"price"`
}

// webStore is where the service keeps its items. The in-memory one is a
// plain map, not safe for concurrent use: the service guards it with a lock
// of its own (webService.mu), as code around a client that is not safe for
// concurrent use must.
type webStore interface {
	Get(id string) (webItem, bool)
	Put(item webItem)
}

type memStore struct{ items map[string]webItem }

func newMemStore(n int) *memStore {
	s := &memStore{items: make(map[string]webItem, n)}
	for i := range n {
		id := strconv.Itoa(i)
		s.items[id] = webItem{ID: id, Name: "item " + id, Price: 100}
	}
	return s
}

func (s *memStore) Get(id string) (webItem, bool) { it, ok := s.items[id]; return it, ok }
func (s *memStore) Put(item webItem)              { s.items[item.ID] = item }

// webPricing is the downstream service the handlers ask for prices.
type webPricing interface {
	Quote(ctx context.Context, id string) (int64, error)
}

// httpPricing asks the pricing service over HTTP.
type httpPricing struct {
	base   string
	client *http.Client
}

func (p *httpPricing) Quote(ctx context.Context, id string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/quote/"+id, nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var q struct{ Price int64 }
	if err := json.NewDecoder(resp.Body).Decode(&q); err != nil {
		return 0, fmt.Errorf("pricing: %w", err)
	}
	return q.Price, nil
}

// webService is the service: its handlers get what they use from here,
// injected by the workload that builds it.
type webService struct {
	env     *Env
	mu      sync.Mutex // guards store
	store   webStore
	pricing webPricing
}

// webItems is how many items the store holds.
const webItems = 100

// getItem answers GET /items/{id}: the store is locked only to read.
func (s *webService) getItem(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	item, ok := s.store.Get(r.PathValue("id"))
	s.mu.Unlock()
	if !ok {
		http.Error(w, "no such item", http.StatusNotFound)
		return
	}
	webJSON(w, item)
}

func webJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// webClient is an HTTP client that opens a connection per request. Idle
// keep-alive connections would live on in goroutines of net/http that the
// dial goroutine, long gone, created; a connection per request ends with it.
func webClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
}

// serveWeb serves h on a free loopback port in a goroutine labelled role
// until ctx is done, and returns its base URL. Requests carry ctx (and its
// labels): a handler's goroutines are the workload's.
func serveWeb(ctx context.Context, env *Env, role string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%s: listen: %w", role, err)
	}
	srv := &http.Server{
		Handler:           h,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go env.Spawn(ctx, role)(func(ctx context.Context) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.Log.Warn("web server failed", "role", role, "err", err)
		}
	})
	go env.Spawn(ctx, role)(func(ctx context.Context) {
		<-ctx.Done()
		// Requests in flight get a moment to finish, then their
		// connections are closed.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	})
	return "http://" + ln.Addr().String(), nil
}

// startPricing starts the downstream pricing service, which answers each
// quote after latency, and returns a client of it.
func startPricing(ctx context.Context, env *Env, latency time.Duration) (*httpPricing, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /quote/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !pauseFor(r.Context(), latency) {
			return
		}
		webJSON(w, map[string]int64{"price": 90 + rand.Int64N(20)})
	})
	base, err := serveWeb(ctx, env, "pricing", mux)
	if err != nil {
		return nil, err
	}
	return &httpPricing{base: base, client: webClient()}, nil
}

// webOp is one kind of request the load generator makes.
type webOp struct {
	name   string  // "read", "write", "report"
	weight float64 // its share of the requests
	method string
	path   func(id string) string
}

var (
	webRead   = webOp{name: "read", method: http.MethodGet, path: func(id string) string { return "/items/" + id }}
	webWrite  = webOp{name: "write", method: http.MethodPost, path: func(id string) string { return "/items/" + id + "/reprice" }}
	webReport = webOp{name: "report", method: http.MethodGet, path: func(id string) string { return "/items/" + id + "/report" }}
)

// with returns op with weight w.
func (op webOp) with(w float64) webOp { op.weight = w; return op }

// webFigures are the figures every web workload reports.
var webFigures = []FigureSpec{
	{Name: "requests_per_second", Help: "Requests the web service answered with success per second, over the last 5s"},
	{Name: "errors_per_second", Help: "Requests that failed or timed out per second, over the last 5s"},
	{Name: "p99_seconds", Help: "99th percentile of the web service's request latency, over the last 5s"},
	{Name: "read_p99_seconds", Help: "99th percentile of the latency of GET /items/{id} alone, over the last 5s"},
}

// webLoadParams are the load generator's parameters, shared by the web
// workloads with their own defaults.
func webLoadParams(clients, rate int, timeout time.Duration) []ParamSpec {
	return []ParamSpec{
		IntParam("clients", "load generator: concurrent clients, each waiting for its answer before the next request", clients, 1, 64),
		IntParam("rate", "load generator: requests per second, all clients together, at most", rate, 1, 2000),
		DurationParam("timeout", "load generator: how long a client waits for an answer before it gives up", timeout, 10*time.Millisecond, time.Minute),
	}
}

// runWebLoad drives the service at base with the mix of ops until ctx is
// done, in a goroutine per client, and reports the figures every second.
// Each op of solo gets a client of its own besides, which makes that
// request again as soon as it has its answer (after pause): a batch job
// beside the interactive traffic.
func runWebLoad(ctx context.Context, env *Env, base string, ops []webOp, pause time.Duration, solo ...webOp) {
	p := env.Params
	clients, timeout := p.Int("clients"), p.Duration("timeout")
	interval := time.Duration(float64(clients) / float64(p.Int("rate")) * float64(time.Second))
	stats := newWebStats()
	client := webClient()
	var total float64
	for _, op := range ops {
		total += op.weight
	}
	for range clients {
		go env.Spawn(ctx, "client")(func(ctx context.Context) {
			next := time.Now()
			for ctx.Err() == nil {
				op := ops[len(ops)-1]
				x := rand.Float64() * total
				for _, o := range ops {
					if x < o.weight {
						op = o
						break
					}
					x -= o.weight
				}
				began := time.Now()
				ok := webRequest(ctx, client, op.method, base+op.path(strconv.Itoa(rand.IntN(webItems))), timeout)
				if ctx.Err() != nil {
					return
				}
				stats.record(op.name, time.Since(began), ok)
				if ok {
					env.Op()
				}
				next = next.Add(interval)
				if now := time.Now(); next.Before(now) {
					next = now
				}
				pauseFor(ctx, time.Until(next))
			}
		})
	}
	for _, op := range solo {
		go env.Spawn(ctx, "client")(func(ctx context.Context) {
			for ctx.Err() == nil {
				began := time.Now()
				ok := webRequest(ctx, client, op.method, base+op.path(strconv.Itoa(rand.IntN(webItems))), timeout)
				if ctx.Err() != nil {
					return
				}
				stats.record(op.name, time.Since(began), ok)
				if ok {
					env.Op()
				}
				pauseFor(ctx, pause)
			}
		})
	}
	go env.Spawn(ctx, "figures")(func(ctx context.Context) {
		everyTick(ctx, time.Second, func() {
			f := stats.rotate()
			for _, spec := range webFigures {
				env.SetFigure(spec.Name, f[spec.Name])
			}
		})
	})
}

// webRequest makes one request and reports whether it succeeded in time.
func webRequest(ctx context.Context, client *http.Client, method, url string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err == nil && resp.StatusCode < 400
}

// webStats keeps the last seconds of requests, one bucket a second.
type webStats struct {
	mu      sync.Mutex
	buckets []webBucket // the current one last
}

type webBucket struct {
	ok, failed int
	latencies  map[string][]time.Duration // by op, at most webSamples each
}

const (
	webKeep    = 5    // seconds of buckets the figures cover
	webSamples = 2000 // latencies kept per op and bucket
)

func newWebStats() *webStats {
	return &webStats{buckets: []webBucket{{latencies: map[string][]time.Duration{}}}}
}

func (s *webStats) record(op string, d time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.buckets[len(s.buckets)-1]
	if ok {
		b.ok++
	} else {
		b.failed++
	}
	if len(b.latencies[op]) < webSamples {
		b.latencies[op] = append(b.latencies[op], d)
	}
}

// rotate starts a new bucket and returns the figures of the full ones.
func (s *webStats) rotate() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	full := s.buckets
	var ok, failed int
	var all, reads []time.Duration
	for _, b := range full {
		ok += b.ok
		failed += b.failed
		for op, ls := range b.latencies {
			all = append(all, ls...)
			if op == webRead.name {
				reads = append(reads, ls...)
			}
		}
	}
	secs := float64(len(full))
	s.buckets = append(s.buckets, webBucket{latencies: map[string][]time.Duration{}})
	if len(s.buckets) > webKeep {
		s.buckets = s.buckets[len(s.buckets)-webKeep:]
	}
	return map[string]float64{
		"requests_per_second": float64(ok) / secs,
		"errors_per_second":   float64(failed) / secs,
		"p99_seconds":         p99(all).Seconds(),
		"read_p99_seconds":    p99(reads).Seconds(),
	}
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, len(ds)*99/100)]
}

// webLive counts goroutines a handler started and bounds them.
type webLive struct {
	n   atomic.Int64
	max int64
}

// reserve counts one more, or reports that the bound is reached.
func (l *webLive) reserve() bool {
	if l.n.Add(1) > l.max {
		l.n.Add(-1)
		return false
	}
	return true
}

func (l *webLive) release() { l.n.Add(-1) }
