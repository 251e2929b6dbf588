package pprofui

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/felixge/fgprof"
	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/server"
)

// The embedded pprof web UI: GET /ui/{type}?seconds=N&tagfocus=k=v captures a
// profile of this process, hands it to github.com/google/pprof/driver (the
// code behind `go tool pprof -http`) and keeps the handlers the driver
// registers as a session, served under /ui/{session}/. The flame graph needs
// no Graphviz. Only the last MaxUISessions profiles are kept.

// MaxUISessions bounds the profiles the UI keeps in memory.
const MaxUISessions = 8

// maxUISeconds bounds how long one capture may last.
const maxUISeconds = 60

// maxProfileBytes bounds one captured profile.
const maxProfileBytes = 64 << 20

// uiTypes are the profiles /ui/{type} captures, with their default duration:
// cpu and fgprof sample for a while; the others are snapshots unless seconds
// is given (then heap, mutex and block are deltas over that time).
var uiTypes = map[string]struct {
	defSeconds int
	delta      bool
	help       string
}{
	"cpu":           {5, true, "on-CPU samples (while Pyroscope runs, through pyroscope-go's handler)"},
	"fgprof":        {5, true, "wall-clock samples, on and off CPU (felixge/fgprof)"},
	"heap":          {0, true, "live and allocated memory; with seconds, allocations during that time"},
	"mutex":         {0, true, "lock contention; with seconds, contention during that time"},
	"block":         {0, true, "blocking events; with seconds, blocking during that time"},
	"goroutine":     {0, false, "every goroutine's stack, with its labels"},
	"goroutineleak": {0, false, "leaked goroutines (forces a full GC)"},
}

var uiTypeOrder = []string{"cpu", "fgprof", "heap", "mutex", "block", "goroutine", "goroutineleak"}

type uiSession struct {
	id       string
	kind     string
	tagfocus string
	created  time.Time
	handlers map[string]http.Handler
}

// UI is the daemon's flame-graph pages: profiles of this process captured
// on request and shown in the pprof web UI.
type UI struct {
	log *slog.Logger
	cpu http.Handler

	mu       sync.Mutex
	next     int
	sessions []*uiSession // oldest first, at most MaxUISessions
}

// NewUI returns the pages; cpu serves CPU profiles (nil: net/http/pprof's).
func NewUI(log *slog.Logger, cpu http.Handler) *UI {
	if cpu == nil {
		cpu = http.HandlerFunc(pprof.Profile)
	}
	return &UI{log: log, cpu: cpu}
}

// Route adds the pages to mux:
//
//	GET /ui/                          links to live profiles
//	GET /ui/{type}?seconds=N&tagfocus=k=v  capture a profile, redirect to its flame graph
//	GET /ui/{session}/flamegraph      the pprof web UI of a captured profile (also /, /top, /peek, /source, /download)
func (u *UI) Route(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui/{$}", u.index)
	mux.HandleFunc("GET /ui/{name}", u.capture)
	mux.HandleFunc("GET /ui/{session}/{rest...}", u.serveSession)
}

var uiIndex = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>inspectd: flame graphs</title></head>
<body>
<h1>inspectd: flame graphs of this process</h1>
<p>Each link captures a live profile and opens its flame graph in the pprof web UI.
Add <code>?seconds=N</code> to change the duration, <code>&amp;tagfocus=workload=leak</code> to keep only one workload's samples.</p>
<ul>
{{range .Types}}<li><a href="./{{.Name}}">{{.Name}}</a>: {{.Help}}</li>
{{end}}</ul>
{{if .Sessions}}<h2>Recent profiles</h2>
<ul>
{{range .Sessions}}<li><a href="./{{.ID}}/flamegraph">{{.ID}}</a>: {{.Kind}}{{if .Tagfocus}} (tagfocus {{.Tagfocus}}){{end}}, {{.Created}}</li>
{{end}}</ul>{{end}}
</body></html>
`))

func (u *UI) index(w http.ResponseWriter, r *http.Request) {
	type typ struct{ Name, Help string }
	type sess struct{ ID, Kind, Tagfocus, Created string }
	var data struct {
		Types    []typ
		Sessions []sess
	}
	for _, n := range uiTypeOrder {
		data.Types = append(data.Types, typ{n, uiTypes[n].help})
	}
	u.mu.Lock()
	for i := len(u.sessions) - 1; i >= 0; i-- {
		s := u.sessions[i]
		data.Sessions = append(data.Sessions, sess{s.id, s.kind, s.tagfocus, s.created.Format(time.RFC3339)})
	}
	u.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = uiIndex.Execute(w, data)
}

// capture takes a profile, opens it in the pprof driver and redirects to its
// flame graph.
func (u *UI) capture(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("name")
	t, ok := uiTypes[kind]
	if !ok {
		server.WriteError(w, http.StatusNotFound, fmt.Sprintf("no profile type %q; want one of %s", kind, strings.Join(uiTypeOrder, ", ")))
		return
	}
	seconds := t.defSeconds
	if v := r.URL.Query().Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxUISeconds || (n == 0 && (kind == "cpu" || kind == "fgprof")) {
			server.WriteError(w, http.StatusBadRequest, fmt.Sprintf("seconds %q: want a whole number from 1 to %d", v, maxUISeconds))
			return
		}
		if !t.delta && n > 0 {
			server.WriteError(w, http.StatusBadRequest, fmt.Sprintf("seconds %q: the %s profile is a snapshot; leave seconds out", v, kind))
			return
		}
		seconds = n
	}
	tagfocus := r.URL.Query().Get("tagfocus")
	match, err := tagMatcher(tagfocus)
	if err != nil {
		server.WriteError(w, http.StatusBadRequest, fmt.Sprintf("tagfocus %q: %v; want key=regexp, e.g. workload=leak", tagfocus, err))
		return
	}
	p, err := u.take(r, kind, seconds)
	if err != nil {
		server.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("capturing the %s profile: %v", kind, err))
		return
	}
	if match != nil {
		// Here, not by the driver's -tagfocus: its options are global to
		// the process and would focus every other session's pages too.
		p.FilterSamplesByTag(match, nil)
	}
	handlers, err := Handlers(p, u.log)
	if err != nil {
		server.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("pprof web UI: %v", err))
		return
	}
	u.mu.Lock()
	u.next++
	s := &uiSession{id: "s" + strconv.Itoa(u.next), kind: kind, tagfocus: tagfocus, created: time.Now(), handlers: handlers}
	u.sessions = append(u.sessions, s)
	if len(u.sessions) > MaxUISessions {
		u.sessions[0] = nil
		u.sessions = u.sessions[1:]
	}
	u.mu.Unlock()
	u.log.Debug("pprof web UI session", "session", s.id, "type", kind, "seconds", seconds, "tagfocus", tagfocus)
	http.Redirect(w, r, "/ui/"+s.id+"/flamegraph", http.StatusSeeOther)
}

// take captures a profile of this process through the same handlers that
// serve /debug/pprof and /debug/fgprof.
func (u *UI) take(r *http.Request, kind string, seconds int) (*profile.Profile, error) {
	var h http.Handler
	switch kind {
	case "cpu":
		h = u.cpu
	case "fgprof":
		h = fgprof.Handler()
	case "heap", "mutex", "block", "goroutine", "goroutineleak":
		h = pprof.Handler(kind)
	}
	q := url.Values{}
	if seconds > 0 {
		q.Set("seconds", strconv.Itoa(seconds))
	}
	req := r.Clone(r.Context())
	req.URL = &url.URL{Path: "/debug/pprof/" + kind, RawQuery: q.Encode()}
	req.RequestURI = req.URL.RequestURI()
	req.Form = nil
	cw := &captureWriter{header: http.Header{}}
	h.ServeHTTP(cw, req)
	if cw.code != 0 && cw.code != http.StatusOK {
		return nil, fmt.Errorf("%d %s", cw.code, strings.TrimSpace(cw.buf.String()))
	}
	if cw.full {
		return nil, fmt.Errorf("profile larger than %d bytes", maxProfileBytes)
	}
	return profile.Parse(&cw.buf)
}

func (u *UI) serveSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session")
	u.mu.Lock()
	var s *uiSession
	for _, c := range u.sessions {
		if c.id == id {
			s = c
		}
	}
	u.mu.Unlock()
	if s == nil {
		server.WriteError(w, http.StatusNotFound, fmt.Sprintf("no profile session %q (only the last %d are kept); capture one at /ui/{type}: %s",
			id, MaxUISessions, strings.Join(uiTypeOrder, ", ")))
		return
	}
	rest := "/" + r.PathValue("rest")
	if rest == "/" {
		// The driver's "/" is the call graph, which needs Graphviz.
		http.Redirect(w, r, "flamegraph", http.StatusSeeOther)
		return
	}
	h, ok := s.handlers[rest]
	if !ok {
		server.WriteError(w, http.StatusNotFound, fmt.Sprintf("no page %s in profile session %s", rest, id))
		return
	}
	h.ServeHTTP(w, r)
}

// tagMatcher turns pprof's tagfocus syntax ("key=regexp" or "regexp" for any
// label value) into a sample filter; nil when tagfocus is empty.
func tagMatcher(tagfocus string) (profile.TagMatch, error) {
	if tagfocus == "" {
		return nil, nil
	}
	key, expr, ok := strings.Cut(tagfocus, "=")
	if !ok {
		key, expr = "", tagfocus
	}
	// As pprof reads it: comma-separated values, any of which matches.
	var res []*regexp.Regexp
	for _, e := range strings.Split(expr, ",") {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, err
		}
		res = append(res, re)
	}
	return func(s *profile.Sample) bool {
		for k, vs := range s.Label {
			if key != "" && k != key {
				continue
			}
			for _, v := range vs {
				for _, re := range res {
					if re.MatchString(v) {
						return true
					}
				}
			}
		}
		return false
	}, nil
}

// captureWriter keeps a handler's response in memory, up to maxProfileBytes.
type captureWriter struct {
	header http.Header
	code   int
	buf    bytes.Buffer
	full   bool
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}
func (c *captureWriter) Write(p []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	if c.buf.Len()+len(p) > maxProfileBytes {
		c.full = true
		return 0, errors.New("profile too large")
	}
	return c.buf.Write(p)
}
