package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/grafana/pyroscope-go"
	"github.com/prometheus/client_golang/prometheus"
)

// pyroscopeProfileTypes is every profile type pyroscope-go v1.5.0 offers.
// goroutine_leak reads the goroutineleak profile, which forces a full GC: it
// is read once per upload interval, no more.
var pyroscopeProfileTypes = []pyroscope.ProfileType{
	pyroscope.ProfileCPU,
	pyroscope.ProfileAllocObjects, pyroscope.ProfileAllocSpace,
	pyroscope.ProfileInuseObjects, pyroscope.ProfileInuseSpace,
	pyroscope.ProfileGoroutines,
	pyroscope.ProfileMutexCount, pyroscope.ProfileMutexDuration,
	pyroscope.ProfileBlockCount, pyroscope.ProfileBlockDuration,
	pyroscope.ProfileGoroutineLeak,
}

// pyroscopeFlushTimeout and pyroscopeStopTimeout bound the last upload at
// shutdown, inside ShutdownTimeout.
const (
	pyroscopeFlushTimeout = 2500 * time.Millisecond
	pyroscopeStopTimeout  = 1 * time.Second
)

// pyroscopeAgent is the continuous profiler pushing to a Pyroscope server.
type pyroscopeAgent struct {
	prof   *pyroscope.Profiler
	log    *slog.Logger
	cancel context.CancelFunc // aborts uploads in flight
	client *http.Client
	plog   *pyroscopeLogger  // counts upload failures
	tags   map[string]string // host, version and --pyroscope-tag
	states *statePusher      // the goroutine-states profile; nil until started
}

// startPyroscope starts pushing every profile type to cfg.PyroscopeURL and
// registers inspectd_pyroscope_upload_failures_total on reg.
//
// Memory stays bounded when the server is down or slow: pyroscope-go queues
// at most 20 upload jobs (one profile each) and drops further ones with an
// error, uploads on 5 goroutines, and our HTTP client gives every upload at
// most the upload interval (at least 5 s, at most 30 s).
func startPyroscope(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*pyroscopeAgent, error) {
	failures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "inspectd_pyroscope_upload_failures_total",
		Help: "Profiles pyroscope-go failed to upload to the Pyroscope server (errors, non-200 answers, timeouts) or dropped because its upload queue was full.",
	})
	if err := reg.Register(failures); err != nil {
		return nil, err
	}
	tags := map[string]string{"version": version()}
	if host, err := os.Hostname(); err == nil {
		tags["host"] = host
	}
	for k, v := range cfg.PyroscopeTags {
		tags[k] = v
	}
	timeout := min(max(cfg.PyroscopeUploadRate, 5*time.Second), 30*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{
		Transport: &http.Transport{MaxConnsPerHost: 5, IdleConnTimeout: time.Minute},
		// Like pyroscope-go's own client: no redirects, they would drop the
		// Authorization header.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
	plog := newPyroscopeLogger(log, cfg.PyroscopeUploadRate, failures)
	a := &pyroscopeAgent{log: log, cancel: cancel, client: client, plog: plog, tags: maps.Clone(tags)}
	prof, err := pyroscope.Start(pyroscope.Config{
		ApplicationName:   cfg.PyroscopeApp,
		Tags:              tags,
		ServerAddress:     cfg.PyroscopeURL,
		BasicAuthUser:     cfg.PyroscopeUser,
		BasicAuthPassword: cfg.PyroscopePassword,
		TenantID:          cfg.PyroscopeTenant,
		UploadRate:        cfg.PyroscopeUploadRate,
		Logger:            plog,
		ProfileTypes:      pyroscopeProfileTypes,
		HTTPClient:        ctxClient{ctx: ctx, c: client},
	})
	if err != nil {
		cancel()
		reg.Unregister(failures)
		return nil, fmt.Errorf("pyroscope: %w", err)
	}
	a.prof = prof
	log.Info("pyroscope: pushing profiles", "url", cfg.PyroscopeURL, "app", cfg.PyroscopeApp,
		"every", cfg.PyroscopeUploadRate, "tenant", cfg.PyroscopeTenant)
	return a, nil
}

// stop uploads what was profiled since the last upload (Flush(true), then
// Stop), within pyroscopeFlushTimeout + pyroscopeStopTimeout: past the
// first, uploads in flight are aborted so that Stop can return. The
// goroutine-states pusher stops alongside, within the same bounds.
func (a *pyroscopeAgent) stop() {
	var states sync.WaitGroup
	if a.states != nil {
		states.Go(a.states.stop)
		defer states.Wait()
	}
	flushed := make(chan struct{})
	go func() {
		a.prof.Flush(true)
		close(flushed)
	}()
	select {
	case <-flushed:
	case <-time.After(pyroscopeFlushTimeout):
		a.log.Warn("pyroscope: the last upload did not finish in time; abandoning it", "timeout", pyroscopeFlushTimeout)
	}
	a.cancel()
	stopped := make(chan struct{})
	go func() {
		<-flushed
		_ = a.prof.Stop()
		a.client.CloseIdleConnections()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(pyroscopeStopTimeout):
		a.log.Warn("pyroscope: the profiler did not stop in time", "timeout", pyroscopeStopTimeout)
	}
}

// ctxClient sends pyroscope-go's uploads (made with context.Background) under
// ctx, so that shutdown can abort them.
type ctxClient struct {
	ctx context.Context
	c   *http.Client
}

func (c ctxClient) Do(req *http.Request) (*http.Response, error) {
	return c.c.Do(req.WithContext(c.ctx))
}

// pyroscopeLogger adapts slog to pyroscope-go's Logger. pyroscope-go reports
// failures only through Errorf: upload errors ("upload profile: ...", which
// covers connection errors, timeouts and non-200 answers), a full upload
// queue ("remote upload queue is full ...") and panics while uploading
// ("recover stack ..."). Those are counted as upload failures. Errors are
// logged at most once per gap, which starts at the upload interval and
// doubles with each line logged while the failures go on (up to
// maxPyroscopeLogGap), so an unreachable server costs a few lines an hour,
// not one per upload; the next line says how many were suppressed.
type pyroscopeLogger struct {
	log      *slog.Logger
	every    time.Duration
	failures prometheus.Counter

	mu         sync.Mutex
	logged     time.Time // the last line logged
	seen       time.Time // the last error
	gap        time.Duration
	suppressed int
}

// maxPyroscopeLogGap bounds the gap between two logged upload errors.
const maxPyroscopeLogGap = 10 * time.Minute

func newPyroscopeLogger(log *slog.Logger, every time.Duration, failures prometheus.Counter) *pyroscopeLogger {
	return &pyroscopeLogger{log: log.With("component", "pyroscope"), every: every, failures: failures, gap: every}
}

func (l *pyroscopeLogger) Infof(format string, args ...any) {
	// pyroscope-go's info lines are its start-up banner, one line per setting.
	l.log.Debug(fmt.Sprintf(format, args...))
}

func (l *pyroscopeLogger) Debugf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

func (l *pyroscopeLogger) Errorf(format string, args ...any) {
	if isUploadFailure(format) {
		l.failures.Inc()
	}
	now := time.Now()
	l.mu.Lock()
	if !l.seen.IsZero() && now.Sub(l.seen) > 2*l.gap {
		l.gap = l.every // a quiet spell: the uploads got through again
	}
	l.seen = now
	if !l.logged.IsZero() && now.Sub(l.logged) < l.gap {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	if !l.logged.IsZero() {
		l.gap = min(2*l.gap, max(maxPyroscopeLogGap, l.every))
	}
	l.logged = now
	suppressed, next := l.suppressed, l.gap
	l.suppressed = 0
	l.mu.Unlock()
	l.log.Error(pyroscopeError(format, args), "suppressed", suppressed, "next_in", next)
}

// pyroscopeError is one readable line for an error of pyroscope-go: an
// upload's network error names the server and the cause, not the whole
// ingest URL with its query.
func pyroscopeError(format string, args []any) string {
	for _, a := range args {
		var ue *url.Error
		if err, ok := a.(error); ok && errors.As(err, &ue) {
			host := ue.URL
			if u, err := url.Parse(ue.URL); err == nil {
				host = u.Host
			}
			return fmt.Sprintf("uploading profiles to %s: %v", host, ue.Err)
		}
	}
	msg := fmt.Sprintf(format, args...)
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

func isUploadFailure(format string) bool {
	return strings.HasPrefix(format, "upload profile") ||
		strings.HasPrefix(format, "remote upload queue is full") ||
		strings.HasPrefix(format, "recover stack")
}
