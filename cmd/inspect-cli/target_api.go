package main

// Targets over HTTP: inspectd and its agent, which serve the inspection
// API, and a goroutine dump over net/http/pprof, which every HTTP target
// serves.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/format"
	"github.com/inspectd/inspectd/internal/source/remote"
	"github.com/inspectd/inspectd/internal/tui"
)

// apiModel is the inspection API of inspectd or its agent: the model, the
// watch stream and the findings are the target's own.
type apiModel struct {
	t      *target
	c      *api.Client
	stderr io.Writer
	// confirmed: the target answered the probe as the API does (else it
	// gave no answer that tells, and is taken for the API).
	confirmed bool
	stream    *http.Client // the watch stream's, capped per event
}

// apiTarget is the inspection API at c.
func (e *env) apiTarget(name string, c *api.Client, confirmed bool) *target {
	t := &target{name: name, is: name, http: c, lab: c}
	a := &apiModel{t: t, c: c, confirmed: confirmed, stderr: e.stderr, stream: e.streamClient()}
	t.model, t.sites, t.watch, t.findings = a, a, a, a
	t.dump = &httpDump{t: t, c: c, lim: e.limits}
	return t
}

func (a *apiModel) snapshot(ctx context.Context, window time.Duration) (*api.Snapshot, error) {
	defer a.slow(window)()
	s, err := a.c.Snapshot(ctx, window)
	if err != nil {
		return nil, a.t.fail(err)
	}
	if s.Target == "" {
		s.Target = a.t.name
	}
	return s, nil
}

// slow says on a terminal, when a snapshot takes more than a second, what
// the target may be doing: recording the window from the request on (it
// traces nothing while nobody watches). It returns the function that ends
// the wait.
func (a *apiModel) slow(window time.Duration) (done func()) {
	if !isTerminal(a.stderr) {
		return func() {}
	}
	t := time.AfterFunc(time.Second, func() {
		fmt.Fprintf(a.stderr, "waiting for %s: a target nobody watched records its %s window from this request on...\n", a.t.name, format.Duration(window))
	})
	return func() { t.Stop() }
}

// query asks the target for the tasks q selects: only they travel.
func (a *apiModel) query(ctx context.Context, window time.Duration, q api.Query) (*api.Snapshot, error) {
	defer a.slow(window)()
	s, err := a.c.SnapshotQuery(ctx, window, q)
	if err != nil {
		return nil, a.t.fail(err)
	}
	if s.Target == "" {
		s.Target = a.t.name
	}
	return s, nil
}

func (a *apiModel) task(ctx context.Context, id int64, window time.Duration) (*api.Task, error) {
	task, err := a.c.Task(ctx, id, window)
	if err != nil {
		return nil, a.t.fail(err)
	}
	return task, nil
}

func (a *apiModel) writeTask(w io.Writer, task *api.Task, window time.Duration) {
	tui.WriteTask(w, task, "", window)
}

func (a *apiModel) sites(ctx context.Context, window time.Duration) (*siteList, error) {
	l, err := a.c.Sites(ctx, window)
	if err != nil {
		return nil, a.t.fail(err)
	}
	return &siteList{target: a.t.name, SiteList: *l}, nil
}

// watch follows the target's /api/v1/watch stream, which reconnects by
// itself: a target that cannot be reached yet is waited for.
func (a *apiModel) watch(ctx context.Context, interval, window time.Duration, page *api.Query) (*feed, error) {
	s := tui.NewStream(a.c.Base, a.c.Token, interval, window)
	s.HTTP = a.stream
	f := &feed{updates: s.C, fetch: a.c.Task, name: a.t.name, fail: a.streamFail}
	if page != nil {
		s.SetQuery(*page)
		f.query = s.SetQuery
	}
	go s.Run(ctx)
	return f, nil
}

// streamFail is the one line of a watch stream that never delivered an
// update (the stream's errors are plain: it reports them to the screen).
func (a *apiModel) streamFail(err error) error {
	t, msg := a.t, err.Error()
	if le, ok := remote.AsLimit(err); ok {
		return failLimit(t.name, le)
	}
	if why, ok := notAnswer(err); ok {
		return failf(2, "%s %s: is it inspectd, or a program with its agent?", t.name, why)
	}
	switch {
	case strings.Contains(msg, ": 401"):
		return failf(2, "%s needs a token: pass --token TOKEN or set INSPECT_TOKEN (%s)", t.name, msg)
	case strings.Contains(msg, "/api/v1/watch"):
		return failf(2, "%s: %s", t.name, msg)
	}
	return failf(2, "cannot reach %s: %s (is inspectd running? start it with: go run ./cmd/inspectd)", t.name, cause(err))
}

// diagnose reads the target's own findings, once a second over the wait.
func (a *apiModel) diagnose(ctx context.Context, d *diagnosis) (string, error) {
	if len(d.o.cfg.Thresholds) > 0 && a.confirmed {
		return "", failf(2, "--threshold applies to targets diagnosed here; %s runs its own rules (set inspectd --diagnose-threshold)", a.t.name)
	}
	n, tries := 0, 0
	var lastErr error
	for first := true; first || d.watching(); first = false {
		if ctx.Err() != nil {
			break
		}
		tries++
		began, deadline := time.Now(), d.snapshotEnd()
		fl, err := within(ctx, deadline, func(ctx context.Context) (*api.FindingList, error) {
			var fl api.FindingList
			err := a.c.Do(ctx, http.MethodGet, "/api/v1/findings?window="+url.QueryEscape(d.o.window.String()), nil, &fl)
			return &fl, err
		}, nil)
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			return "", failf(exitInterrupted, "interrupted")
		case err != nil && n == 0 && !isTimeout(err):
			return "", a.t.fail(err)
		case err != nil:
			lastErr = err
			d.miss(tries, d.missWhy(err, deadline.Sub(began), "GET /api/v1/findings unanswered", a.t.fail))
		default:
			n++
			d.add(fl.Findings)
		}
		if !sleepCtx(ctx, min(time.Second, d.left())) && errors.Is(ctx.Err(), context.Canceled) {
			return "", failf(exitInterrupted, "interrupted")
		}
	}
	if n == 0 {
		return "", d.nothing(a.t, lastErr, a.t.fail)
	}
	return "the target's own rules", nil
}

// httpDump is the goroutine dump of net/http/pprof:
// /debug/pprof/goroutine?debug=2, after checking its cost.
type httpDump struct {
	t   *target
	c   *api.Client
	lim remote.Limits
}

func (h *httpDump) goroutines(ctx context.Context, force bool) ([]dump.Goroutine, []string, error) {
	t := h.t
	n, err := h.count(ctx)
	if err != nil {
		return nil, nil, err
	}
	if n > maxStacksGoroutines && !force {
		return nil, nil, failf(2, "%s has %d goroutines: a full dump would stop its world for ~%s; pass --force to dump anyway",
			t.name, n, format.Duration(time.Duration(n)*6*time.Microsecond))
	}
	began := time.Now()
	resp, err := h.c.Open(ctx, "/debug/pprof/goroutine?debug=2")
	if err != nil {
		return nil, nil, t.fail(err)
	}
	defer resp.Body.Close()
	body := remote.Limit(resp.Body, h.lim.Dump, remote.CapDump, "the goroutine dump (debug=2)", remote.ParseLines)
	gs, err := dump.ParseDump(body)
	if le, ok := remote.Exceeded(body); ok {
		return nil, nil, failLimit(t.name, le)
	}
	if len(gs) == 0 {
		return nil, nil, failf(2, "%s: /debug/pprof/goroutine?debug=2 gave no goroutine dump: %v", t.name, err)
	}
	notes := []string{fmt.Sprintf("the debug=2 dump stops the target's world for ~6µs per goroutine (~%s here); fetched in %s",
		format.Duration(time.Duration(len(gs))*6*time.Microsecond), format.Duration(time.Since(began)))}
	if err != nil {
		notes = append(notes, fmt.Sprintf("the dump has problems, shown as far as read: %v", err))
	}
	return gs, notes, nil
}

// count reads "goroutine profile: total N" from the debug=1 profile, which
// runtime.GoroutineProfile builds without a long pause.
func (h *httpDump) count(ctx context.Context) (int, error) {
	t := h.t
	resp, err := h.c.Open(ctx, "/debug/pprof/goroutine?debug=1")
	if err != nil {
		if api.IsNotFound(err) {
			return 0, failf(2, "%s does not serve net/http/pprof (/debug/pprof/goroutine: 404)", t.name)
		}
		return 0, t.fail(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	n, err := strconv.Atoi(rest)
	if !ok || err != nil {
		return 0, failf(2, "%s: /debug/pprof/goroutine?debug=1 does not start with \"goroutine profile: total N\": %q", t.name, clip(line, 80))
	}
	return n, nil
}
