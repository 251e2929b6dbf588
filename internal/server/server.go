// Package server is the inspection HTTP surface that the daemon and the
// embedded agent share: the task model (snapshots, tasks, wait sites,
// findings and the watch stream) of an Inspector, the standard Go
// diagnostics endpoints (net/http/pprof, fgprof), a health check, and a
// bearer token in front of them. It takes an Inspector (a source whose
// snapshots are diagnosed) and gives an http.Handler; the daemon mounts its
// own routes beside (the workload lab's control API, /metrics, /ui) through
// Options.Routes, so that the agent carries none of them.
//
// Routes:
//
//	GET  /healthz                              "ok" while the server serves
//	GET  /api/v1/snapshot?window=5s            tasks, wait sites, process metrics, findings
//	GET  /api/v1/tasks/{id}?window=5s          one task with histograms and its full stack
//	GET  /api/v1/sites?window=5s               wait sites
//	GET  /api/v1/findings?window=5s            findings
//	GET  /api/v1/watch?interval=1s&window=5s   server-sent events: what changed, every interval
//	GET  /debug/pprof/...                      net/http/pprof, including goroutineleak
//	GET  /debug/fgprof?seconds=N               wall-clock profile (github.com/felixge/fgprof)
//
// With a token, every /api, /debug and /ui request needs "Authorization: Bearer <token>".
package server

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/felixge/fgprof"

	"github.com/inspectd/inspectd/internal/api"
)

// Options configure the handler. Each part is optional.
type Options struct {
	Logger *slog.Logger
	// Token, when set, is required as a bearer token on /api, /debug and /ui.
	Token string
	// Inspector serves the inspection endpoints (snapshot, tasks, sites,
	// findings, watch); without one they are absent.
	Inspector Inspector
	// CPUProfile, when set, serves GET /debug/pprof/profile instead of
	// net/http/pprof's Profile. The daemon sets it to pyroscope-go's
	// http/pprof handler while Pyroscope runs: pyroscope-go keeps the CPU
	// profiler busy, so the stock handler would answer 500.
	CPUProfile http.Handler
	// PauseTrace, when set, is called before GET /debug/pprof/trace runs
	// and its result when it ends. The runtime runs one runtime/trace.Start
	// at a time, and the in-process source's own trace is one: it gives
	// way to the request.
	PauseTrace func() (resume func())
	// Routes, when set, adds the caller's own routes to the mux (the
	// daemon's workload API, /metrics, /ui). Patterns under /debug/pprof/
	// must name their method (see New).
	Routes func(mux *http.ServeMux)
}

// MaxBody bounds request bodies: parameters are a few hundred bytes.
const MaxBody = 1 << 20

type server struct {
	probe Inspector
	log   *slog.Logger
}

// New returns the inspection HTTP handler.
func New(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{log: opts.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	if opts.Inspector != nil {
		s.routeProbes(mux, opts.Inspector)
	}
	if opts.Routes != nil {
		opts.Routes(mux)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
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
	mux.HandleFunc("GET /debug/fgprof", fgprofHandler)

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
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/debug/") || p == "/ui" || strings.HasPrefix(p, "/ui/") {
			// The scheme is case-insensitive (RFC 9110 11.1): "bearer" too.
			scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			ok := strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) == 1
			if _, pass, basic := r.BasicAuth(); basic {
				ok = subtle.ConstantTimeCompare([]byte(pass), []byte(token)) == 1
			}
			if !ok {
				w.Header().Add("WWW-Authenticate", `Bearer realm="inspectd"`)
				w.Header().Add("WWW-Authenticate", `Basic realm="inspectd: the token is the password", charset="UTF-8"`)
				WriteError(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <token> (or, from a browser, the token as the basic auth password)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// WriteError answers the API's JSON error, {"error": msg}, with code.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, api.Error{Error: msg})
}

// WriteJSON answers v as indented JSON with code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
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

// maxFgprofSeconds bounds a wall-clock profile, as /ui bounds its captures.
const maxFgprofSeconds = 60

// fgprofHandler serves GET /debug/fgprof?seconds=N&format=pprof|folded:
// github.com/felixge/fgprof's wall-clock profile of N seconds (default 30,
// at most 60), which stops when the client goes away.
func fgprofHandler(w http.ResponseWriter, r *http.Request) {
	seconds := 30
	if s := r.URL.Query().Get("seconds"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxFgprofSeconds {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("query parameter seconds=%q: want a whole number from 1 to %d", s, maxFgprofSeconds))
			return
		}
		seconds = n
	}
	f := fgprof.Format(r.URL.Query().Get("format"))
	switch f {
	case "":
		f = fgprof.FormatPprof
	case fgprof.FormatPprof, fgprof.FormatFolded:
	default:
		WriteError(w, http.StatusBadRequest, fmt.Sprintf("query parameter format=%q: want pprof or folded", f))
		return
	}
	if f == fgprof.FormatPprof {
		w.Header().Set("Content-Type", "application/octet-stream")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	stop := fgprof.Start(w, f)
	t := time.NewTimer(time.Duration(seconds) * time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
	_ = stop()
}
