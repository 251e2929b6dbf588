package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// A Pyroscope server that is down for an hour costs a few log lines, each
// naming the server and the cause, not one per upload with the whole ingest
// URL; once the uploads get through again, the next failure is logged at once.
func TestPyroscopeLoggerBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		failures := prometheus.NewCounter(prometheus.CounterOpts{Name: "failures"})
		l := newPyroscopeLogger(slog.New(slog.NewTextHandler(&buf, nil)), time.Second, failures)
		err := &url.Error{Op: "Post", URL: "http://127.0.0.1:1/ingest?name=inspectd&from=1&until=2&spyName=gospy&" + strings.Repeat("x", 400),
			Err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused")}
		for range 3600 {
			l.Errorf("upload profile: %v", err)
			time.Sleep(time.Second)
		}
		lines := strings.Count(buf.String(), "\n")
		if lines < 5 || lines > 20 {
			t.Errorf("%d lines logged for an hour of failures every second, want 5 to 20:\n%s", lines, buf.String())
		}
		if !strings.Contains(buf.String(), "uploading profiles to 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused") ||
			strings.Contains(buf.String(), "xxxx") {
			t.Errorf("the lines do not name the server and the cause alone:\n%s", buf.String())
		}
		var m dto.Metric
		if err := failures.Write(&m); err != nil || m.GetCounter().GetValue() != 3600 {
			t.Errorf("%v failures counted (%v), want 3600", m.GetCounter().GetValue(), err)
		}
		time.Sleep(time.Hour) // the uploads got through
		l.Errorf("upload profile: %v", err)
		if n := strings.Count(buf.String(), "\n"); n != lines+1 {
			t.Errorf("the first failure after a quiet hour was not logged (%d lines, then %d)", lines, n)
		}
	})
}
