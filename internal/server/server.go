// Package server is the HTTP surface of the inspectd daemon: the control API of
// the workload lab, the standard Go diagnostics endpoints and Prometheus metrics,
// on one mux.
//
// Routes:
//
//	GET  /healthz                              "ok" while the daemon serves
//	GET  /metrics                              Prometheus metrics (runtime/metrics, workloads)
//	GET  /api/v1/workloads                     the catalog with each workload's state and parameters
//	GET  /api/v1/workloads/{name}              one workload
//	POST /api/v1/workloads/{name}/start        start it; body {"params": {...}} is optional
//	POST /api/v1/workloads/{name}/stop         stop it
//	POST /api/v1/workloads/{name}/params       restart it with new parameters
//	GET  /api/v1/snapshot?window=5s            tasks, wait sites, process metrics, findings
//	GET  /api/v1/tasks/{id}?window=5s          one task with histograms and its full stack
//	GET  /api/v1/sites?window=5s               wait sites
//	GET  /api/v1/findings?window=5s            findings
//	GET  /api/v1/watch?interval=1s&window=5s   server-sent events: what changed, every interval
//	GET  /debug/pprof/...                      net/http/pprof, including goroutineleak
//	GET  /debug/fgprof?seconds=N               wall-clock profile (github.com/felixge/fgprof)
//	GET  /ui/                                  the embedded pprof web UI: links to live profiles
//	GET  /ui/{type}?seconds=N&tagfocus=k=v     capture a profile, redirect to its flame graph
//	GET  /ui/{session}/flamegraph              the pprof web UI of a captured profile (also /, /top, /peek, /source, /download)
//
// With a token, every /api, /debug and /ui request needs "Authorization: Bearer <token>".
package server

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"

	"github.com/felixge/fgprof"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/workload"
)

// Options configure the handler. Each part is optional: the embedded agent
// serves the inspection endpoints and pprof without workloads or metrics.
type Options struct {
	Supervisor *workload.Supervisor
	Gatherer   prometheus.Gatherer
	Logger     *slog.Logger
	// Token, when set, is required as a bearer token on /api and /debug.
	Token string
	// Prober serves the inspection endpoints (snapshot, tasks, sites,
	// findings, watch); without one they are absent.
	Prober Prober
	// CPUProfile, when set, serves GET /debug/pprof/profile instead of
	// net/http/pprof's Profile. The daemon sets it to pyroscope-go's
	// http/pprof handler while Pyroscope runs: pyroscope-go keeps the CPU
	// profiler busy, so the stock handler would answer 500.
	CPUProfile http.Handler
	// PauseTrace, when set, is called before GET /debug/pprof/trace runs
	// and its result when it ends. The runtime runs one runtime/trace.Start
	// at a time beside the flight recorder, and the probes' live stream is
	// one: probes.Collector.PauseLive gives way to the request.
	PauseTrace func() (resume func())
	// UI serves the embedded pprof web UI under /ui/ (flame graphs of live
	// profiles of this process, no Graphviz needed).
	UI bool
}

// maxBody bounds request bodies: parameters are a few hundred bytes.
const maxBody = 1 << 20

type server struct {
	sup   *workload.Supervisor
	probe Prober
	log   *slog.Logger
}

// New returns the daemon's HTTP handler.
func New(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{sup: opts.Supervisor, log: opts.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError)}))
	}
	if opts.Supervisor != nil {
		mux.HandleFunc("GET /api/v1/workloads", s.listWorkloads)
		mux.HandleFunc("GET /api/v1/workloads/{name}", s.getWorkload)
		mux.HandleFunc("POST /api/v1/workloads/{name}/start", s.startWorkload)
		mux.HandleFunc("POST /api/v1/workloads/{name}/stop", s.stopWorkload)
		mux.HandleFunc("POST /api/v1/workloads/{name}/params", s.changeParams)
	}
	if opts.Prober != nil {
		s.routeProbes(mux, opts.Prober)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})

	// Every pattern under /debug/pprof/ names its method: net/http/pprof uses
	// "GET /debug/pprof/" itself, and mixing method-less patterns there panics.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	if opts.CPUProfile != nil {
		mux.Handle("GET /debug/pprof/profile", opts.CPUProfile)
	} else {
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	}
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	if pause := opts.PauseTrace; pause != nil {
		mux.HandleFunc("GET /debug/pprof/trace", func(w http.ResponseWriter, r *http.Request) {
			defer pause()()
			pprof.Trace(w, r)
		})
	} else {
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /debug/fgprof", fgprof.Handler())
	if opts.UI {
		newUI(opts.Logger, opts.CPUProfile).route(mux)
	}

	if opts.Token == "" {
		return mux
	}
	return requireToken(opts.Token, mux)
}

// requireToken guards /api, /debug and /ui with a bearer token; /healthz and
// /metrics stay open for health checks and scrapers. A browser, which sends
// no bearer token, may give the token as the password of basic auth (any
// user name): it asks for one on the 401.
func requireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/debug/") || p == "/ui" || strings.HasPrefix(p, "/ui/") {
			ok := subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) == 1
			if _, pass, basic := r.BasicAuth(); basic {
				ok = subtle.ConstantTimeCompare([]byte(pass), []byte(token)) == 1
			}
			if !ok {
				w.Header().Add("WWW-Authenticate", `Bearer realm="inspectd"`)
				w.Header().Add("WWW-Authenticate", `Basic realm="inspectd: the token is the password", charset="UTF-8"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <token> (or, from a browser, the token as the basic auth password)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) listWorkloads(w http.ResponseWriter, r *http.Request) {
	var out api.WorkloadList
	for _, st := range s.sup.Status() {
		out.Workloads = append(out.Workloads, toAPI(st))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getWorkload(w http.ResponseWriter, r *http.Request) {
	st, err := s.sup.StatusOf(r.PathValue("name"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPI(st))
}

func (s *server) startWorkload(w http.ResponseWriter, r *http.Request) {
	s.withParams(w, r, s.sup.Start)
}

func (s *server) changeParams(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if st, err := s.sup.StatusOf(name); err == nil && !st.Running {
		writeError(w, http.StatusConflict, fmt.Sprintf("workload %s is not running: start it with these parameters instead", name))
		return
	}
	s.withParams(w, r, s.sup.Restart)
}

// withParams decodes the optional StartRequest body and applies fn to it.
func (s *server) withParams(w http.ResponseWriter, r *http.Request, fn func(string, map[string]any) error) {
	name := r.PathValue("name")
	var req api.StartRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, `request body: want {"params": {"name": value, ...}}: `+err.Error())
			return
		}
		if _, err := dec.Token(); err != io.EOF {
			writeError(w, http.StatusBadRequest, `request body: want one {"params": {"name": value, ...}} and nothing after it`)
			return
		}
	}
	if err := fn(name, req.Params); err != nil {
		writeErr(w, err)
		return
	}
	st, err := s.sup.StatusOf(name)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPI(st))
}

func (s *server) stopWorkload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.sup.Stop(name); err != nil {
		writeErr(w, err)
		return
	}
	st, _ := s.sup.StatusOf(name)
	writeJSON(w, http.StatusOK, toAPI(st))
}

func toAPI(st workload.Status) api.Workload {
	values := st.Params.Map()
	w := api.Workload{
		Name: st.Spec.Name, Lesson: st.Spec.Lesson, Kind: string(st.Spec.Kind),
		Description: st.Spec.Description, Caps: st.Spec.Caps,
		Params:  make([]api.Param, 0, len(st.Spec.Params)),
		Running: st.Running, Since: st.Since, Operations: st.Ops,
		Panics: st.Panics, Restarts: st.Restarts, LastError: st.LastErr, Detached: st.Detached,
	}
	for _, p := range st.Spec.Params {
		w.Params = append(w.Params, api.Param{
			Name: p.Name, Type: string(p.Type), Help: p.Help,
			Default: workload.Wire(p.Default), Min: workload.Wire(p.Min), Max: workload.Wire(p.Max), Choices: p.Choices,
			Value: values[p.Name],
		})
	}
	return w
}

// writeErr maps supervisor errors to status codes.
func writeErr(w http.ResponseWriter, err error) {
	var pe *workload.ParamError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, workload.ErrUnknown):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, workload.ErrRunning), errors.Is(err, workload.ErrNotRunning):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.Error{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// CheckToken reports what is wrong with a bearer token ("" is none): it
// goes in an Authorization header, where spaces at its ends are lost and
// other characters do not travel.
func CheckToken(token string) error {
	for _, c := range []byte(token) {
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%q has a space or a character that is not printable ASCII, which a bearer token cannot carry", token)
		}
	}
	return nil
}

// IsLoopback reports whether addr (host:port) binds only loopback interfaces.
// An empty host binds every interface.
func IsLoopback(addr string) (bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return false, fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}
