package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/source"
)

// Inspector builds the task model the inspection endpoints serve, with its
// findings: diagnose.Inspector is one.
type Inspector interface {
	// Snapshot builds the model over the last window of execution trace.
	Snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error)
	// Task returns one task with its histograms and full stack; an error
	// wrapping api.ErrNoTask when no such goroutine is alive or was in the window.
	Task(ctx context.Context, id int64, window time.Duration) (*api.Task, error)
}

// Defaults and bounds of the inspection endpoints' query parameters.
const (
	DefaultWindow   = 5 * time.Second
	MaxWindow       = 60 * time.Second
	DefaultInterval = time.Second
	MinInterval     = 100 * time.Millisecond
)

// routeProbes adds the inspection endpoints:
//
//	GET /api/v1/snapshot?window=5s     tasks, sites, process metrics and findings
//	GET /api/v1/tasks/{id}?window=5s   one task with histograms and its full stack
//	GET /api/v1/sites?window=5s        the wait sites
//	GET /api/v1/findings?window=5s     the findings
//	GET /api/v1/watch?interval=1s&window=5s
//	                                   server-sent events: one "update" event per interval
//	                                   with what changed since the previous one (api.Update)
//
// window is how much recent execution trace the numbers cover (default 5s,
// at most 60s). snapshot and watch take a query (api.Query: sort, reverse,
// filter, state, offset, limit, group) and answer only the tasks it
// selects, with the counts beside them: a client sends for what it shows.
// At most maxInspect requests and maxWatchers streams are served at once;
// more are answered 503 with Retry-After.
func (s *server) routeProbes(mux *http.ServeMux, p Inspector) {
	s.probe = p
	inspect, watchers := make(chan struct{}, maxInspect), make(chan struct{}, maxWatchers)
	mux.HandleFunc("GET /api/v1/snapshot", limit(inspect, s.snapshot))
	mux.HandleFunc("GET /api/v1/tasks/{id}", limit(inspect, s.task))
	mux.HandleFunc("GET /api/v1/sites", limit(inspect, s.sites))
	mux.HandleFunc("GET /api/v1/findings", limit(inspect, s.findings))
	mux.HandleFunc("GET /api/v1/watch", limit(watchers, s.watch))
}

// Caps on what is served at once: requests share the snapshot being built,
// but each holds a connection, a handler and its encoding.
const (
	maxInspect  = 32
	maxWatchers = 16
)

// limit serves h while sem has room, else answers 503 with Retry-After.
func limit(sem chan struct{}, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			h(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("busy: %d requests of this kind are being answered; try again in a second", cap(sem)))
		}
	}
}

// durationParam reads a duration query parameter within [lo, hi].
func durationParam(r *http.Request, name string, def, lo, hi time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		// A bare number means seconds, as in /debug/pprof/profile?seconds=N.
		n, err2 := strconv.ParseFloat(v, 64)
		if err2 != nil || strings.Trim(v, "0123456789.") != "" {
			return 0, fmt.Errorf("query parameter %s=%q: want a duration such as 5s", name, v)
		}
		d = time.Duration(n * float64(time.Second))
	}
	if strings.Contains(v, "_") {
		return 0, fmt.Errorf("query parameter %s=%q: want a duration such as 5s", name, v)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("query parameter %s=%s: want from %v to %v", name, v, lo, hi)
	}
	return d, nil
}

func (s *server) snapshotFor(w http.ResponseWriter, r *http.Request) (*api.Snapshot, bool) {
	window, err := durationParam(r, "window", DefaultWindow, 100*time.Millisecond, MaxWindow)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	snap, err := s.probe.Snapshot(r.Context(), window)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "building the snapshot: "+err.Error())
		return nil, false
	}
	return snap, true
}

func (s *server) snapshot(w http.ResponseWriter, r *http.Request) {
	q, err := api.ParseQuery(r.URL.Query())
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if snap, ok := s.snapshotFor(w, r); ok {
		writeSnapshot(r.Context(), w, q.Select(snap), s.charge)
	}
}

func (s *server) sites(w http.ResponseWriter, r *http.Request) {
	if snap, ok := s.snapshotFor(w, r); ok {
		WriteJSON(w, http.StatusOK, api.SiteList{Time: snap.Time, WindowNS: snap.WindowNS, Sites: snap.Sites})
	}
}

func (s *server) findings(w http.ResponseWriter, r *http.Request) {
	if snap, ok := s.snapshotFor(w, r); ok {
		WriteJSON(w, http.StatusOK, api.FindingList{Time: snap.Time, Findings: snap.Findings})
	}
}

func (s *server) task(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		WriteError(w, http.StatusBadRequest, fmt.Sprintf("task id %q: want a goroutine id (a positive integer)", r.PathValue("id")))
		return
	}
	window, err := durationParam(r, "window", DefaultWindow, 100*time.Millisecond, MaxWindow)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	t, err := s.probe.Task(r.Context(), id, window)
	switch {
	case errors.Is(err, api.ErrNoTask):
		WriteError(w, http.StatusNotFound, fmt.Sprintf("no goroutine %d: it has exited or never existed", id))
	case err != nil:
		WriteError(w, http.StatusInternalServerError, "reading task: "+err.Error())
	default:
		WriteJSON(w, http.StatusOK, t)
	}
}

// watch streams updates as server-sent events until the client goes away or
// the server shuts down. A client that reads slower than the interval gets
// fewer updates, each saying how many it missed: a tick comes while the
// client has not taken the last update (on Linux, with ConnContext), or
// while the snapshot was built or written, goes without one.
func (s *server) watch(w http.ResponseWriter, r *http.Request) {
	interval, err := durationParam(r, "interval", DefaultInterval, MinInterval, time.Minute)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	window, err := durationParam(r, "window", DefaultWindow, 100*time.Millisecond, MaxWindow)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	q, err := api.ParseQuery(r.URL.Query())
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	ctx := r.Context()
	conn := requestConn(ctx)
	// A client that stops reading must not hold the handler forever.
	stall := max(10*time.Second, 5*interval)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var (
		prev             *api.Snapshot
		seq              int64
		missed, building int64
	)
	// An update does not wait for a whole window on a program nobody
	// watched: the first comes with what is recorded so far.
	sctx := source.AcceptPartial(ctx)
	// Nor for new numbers past its time: the first within an interval of
	// the request, the next within half of one after their tick, with what
	// the source has by then (a snapshot says how old it is).
	due := time.Now().Add(interval)
	for {
		began := time.Now()
		snap, err := s.probe.Snapshot(source.AnswerBy(sctx, due), window)
		built := time.Since(began)
		if ctx.Err() != nil {
			return
		}
		var event string
		var payload []byte
		var encErr error
		// Selecting, comparing and encoding the rows is CPU the program
		// spends on inspection: charged.
		s.charge(source.OnThread(func() {
			var v any
			var nr *source.NotRecorded
			switch {
			case errors.As(err, &nr):
				// Nothing recorded yet: an update that says so, and the
				// next one is whole.
				u := api.Diff(nil, q.Select(nr.Snapshot))
				seq++
				u.Seq, u.Missed, u.MissedBuilding = seq, missed, building
				event, v, snap = "update", u, nil
				prev = nil
			case err != nil:
				event, v = "error", api.Error{Error: "building the snapshot: " + err.Error()}
			default:
				snap = q.Select(snap)
				u := api.Diff(prev, snap)
				seq++
				u.Seq, u.Missed, u.MissedBuilding = seq, missed, building
				event, v = "update", u
			}
			payload, encErr = json.Marshal(v)
		}) * 3 / 2)
		if encErr != nil {
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(stall))
		if err := writeEvent(w, event, payload); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if snap != nil {
			prev = snap
		}
		written := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			// Updates written while the client has not taken the last one
			// would wait in the socket's buffers, stale when read.
			n, ok := unsent(conn)
			if !ok || n == 0 {
				break
			}
			if time.Since(written) > stall {
				return
			}
		}
		due = time.Now().Add(interval / 2)
		// The ticker drops the ticks that passed while we built or wrote,
		// and the ones above went without an update.
		missed = max(0, int64(time.Since(began)/interval)-1)
		building = min(missed, int64(built/interval))
	}
}

func writeEvent(w http.ResponseWriter, event string, data []byte) error {
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
	return err
}

// charge charges cpu, what serving a snapshot took of the program's CPU,
// to the source of the snapshots (source.Charge).
func (s *server) charge(cpu time.Duration) { source.Charge(s.probe, cpu) }
