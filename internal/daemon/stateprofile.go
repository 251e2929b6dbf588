package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/grafana/pyroscope-go/upstream"
	"github.com/grafana/pyroscope-go/upstream/remote"

	"github.com/inspectd/inspectd/internal/model"
	"github.com/inspectd/inspectd/internal/source/inproc"
)

// statePusher pushes the goroutine-states profile (model.StateProfile:
// per goroutine, the time in each state and wait reason, under a root frame
// naming it) to the Pyroscope server every upload interval, beside
// pyroscope-go's own profiles: same server, basic auth, tenant, application
// name and tags; failures are counted by the same logger, in
// inspectd_pyroscope_upload_failures_total.
//
// Each profile covers the time since the previous one (at most the flight
// recorder's window), so consecutive profiles neither overlap nor leave
// gaps; the last one, at shutdown, covers the rest.
type statePusher struct {
	col    *inproc.Collector
	rem    *remote.Remote
	log    *slog.Logger
	name   string // app{tags}, as pyroscope-go names its uploads
	every  time.Duration
	cancel context.CancelFunc // aborts the snapshot and uploads in flight
	ctx    context.Context
	client *http.Client

	quit chan struct{} // closed by stop
	done chan struct{} // closed when the loop has made its last upload
}

// stateProfileSampleConfig tells Pyroscope how to show the sample type.
var stateProfileSampleConfig = map[string]*upstream.SampleType{
	model.StateProfileSampleType: {
		DisplayName: model.StateProfileSampleType,
		Units:       "nanoseconds",
		Aggregation: "sum",
	},
}

// startStatePusher starts pushing the goroutine-states profile of col beside
// the profiler a, with a's server, credentials, tags and failure counting.
func startStatePusher(cfg Config, a *pyroscopeAgent, col *inproc.Collector) (*statePusher, error) {
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{
		Transport:     &http.Transport{MaxConnsPerHost: 2, IdleConnTimeout: time.Minute},
		CheckRedirect: a.client.CheckRedirect,
		Timeout:       a.client.Timeout,
	}
	rem, err := remote.NewRemote(remote.Config{
		Address:           cfg.PyroscopeURL,
		BasicAuthUser:     cfg.PyroscopeUser,
		BasicAuthPassword: cfg.PyroscopePassword,
		TenantID:          cfg.PyroscopeTenant,
		Threads:           2,
		Timeout:           client.Timeout,
		Logger:            a.plog,
		HTTPClient:        ctxClient{ctx: ctx, c: client},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("pyroscope goroutine states: %w", err)
	}
	s := &statePusher{
		col: col, rem: rem, log: a.log.With("component", "pyroscope-states"),
		name: uploadName(cfg.PyroscopeApp, a.tags), every: cfg.PyroscopeUploadRate,
		cancel: cancel, ctx: ctx, client: client,
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	rem.Start()
	go s.loop()
	return s, nil
}

// uploadName is app{k=v,...} with the tags sorted by key, the form of
// pyroscope-go's upload names.
func uploadName(app string, tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(app)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + tags[k])
	}
	b.WriteByte('}')
	return b.String()
}

func (s *statePusher) loop() {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-t.C:
			last = s.push(last)
		case <-s.quit:
			// The rest since the last upload, unless it is next to nothing.
			if time.Since(last) >= 100*time.Millisecond {
				s.push(last)
			}
			s.rem.Flush()
			return
		}
	}
}

// push uploads the goroutine-states profile of the time since last and
// returns the end of the window it covered.
func (s *statePusher) push(last time.Time) time.Time {
	now := time.Now()
	p, err := s.col.StateProfile(s.ctx, now.Sub(last))
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("pyroscope: building the goroutine states profile", "err", err)
		}
		return now
	}
	if len(p.Sample) == 0 {
		return now
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil { // gzipped
		s.log.Warn("pyroscope: encoding the goroutine states profile", "err", err)
		return now
	}
	end := time.Unix(0, p.TimeNanos+p.DurationNanos)
	if p.TimeNanos == 0 {
		end = now
	}
	s.rem.Upload(&upstream.UploadJob{
		Name:             s.name,
		StartTime:        end.Add(-time.Duration(p.DurationNanos)),
		EndTime:          end,
		SpyName:          "gospy",
		SampleRate:       100,
		Units:            "nanoseconds",
		AggregationType:  "sum",
		Format:           upstream.FormatPprof,
		Profile:          buf.Bytes(),
		SampleTypeConfig: stateProfileSampleConfig,
	})
	return now
}

// stop makes the last upload, within pyroscopeFlushTimeout (past it, the
// snapshot and uploads in flight are abandoned), then stops the uploader
// within pyroscopeStopTimeout.
func (s *statePusher) stop() {
	close(s.quit)
	select {
	case <-s.done:
	case <-time.After(pyroscopeFlushTimeout):
		s.log.Warn("pyroscope: the last goroutine states upload did not finish in time; abandoning it", "timeout", pyroscopeFlushTimeout)
	}
	s.cancel()
	stopped := make(chan struct{})
	go func() {
		// Uploads fail at once now, so the loop's Flush returns.
		<-s.done
		s.rem.Stop()
		s.client.CloseIdleConnections()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(pyroscopeStopTimeout):
		s.log.Warn("pyroscope: the goroutine states uploader did not stop in time", "timeout", pyroscopeStopTimeout)
	}
}
