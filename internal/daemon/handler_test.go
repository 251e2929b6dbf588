package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/server"
	"github.com/inspectd/inspectd/internal/workload"
)

// newServer serves the daemon's handler with the real catalog on a
// loopback listener.
func newServer(t *testing.T, token string) (*httptest.Server, *workload.Supervisor) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsAll)))
	sup := workload.NewSupervisor(workload.Default, workload.Options{Registerer: reg})
	srv := httptest.NewServer(newHandler(server.Options{Token: token}, sup, reg))
	t.Cleanup(func() {
		srv.Close()
		sup.StopAll()
	})
	return srv, sup
}

type call struct {
	method, path, body, token string
}

func do(t *testing.T, srv *httptest.Server, c call) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

func TestWorkloadAPI(t *testing.T) {
	srv, _ := newServer(t, "")

	code, body := do(t, srv, call{method: "GET", path: "/api/v1/workloads"})
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	list := decode[api.WorkloadList](t, body)
	if len(list.Workloads) != len(workload.Default.Names()) {
		t.Errorf("list has %d workloads, registry %d", len(list.Workloads), len(workload.Default.Names()))
	}
	var hello *api.Workload
	for i, w := range list.Workloads {
		if w.Name == "hello" {
			hello = &list.Workloads[i]
		}
	}
	if hello == nil || hello.Running || hello.Kind != "healthy" || len(hello.Params) == 0 ||
		hello.Params[0].Name != "interval" || hello.Params[0].Default != "100ms" || hello.Params[0].Value != "100ms" {
		t.Fatalf("hello as listed: %+v", hello)
	}

	steps := []struct {
		name     string
		call     call
		wantCode int
		want     string // substring of the body
	}{
		{"start with parameters", call{method: "POST", path: "/api/v1/workloads/hello/start", body: `{"params":{"interval":"10ms"}}`}, 200, `"value": "10ms"`},
		{"double start", call{method: "POST", path: "/api/v1/workloads/hello/start"}, 409, "already running"},
		{"get", call{method: "GET", path: "/api/v1/workloads/hello"}, 200, `"running": true`},
		{"change parameters", call{method: "POST", path: "/api/v1/workloads/hello/params", body: `{"params":{"interval":"20ms"}}`}, 200, `"value": "20ms"`},
		{"bad parameter change keeps it running", call{method: "POST", path: "/api/v1/workloads/hello/params", body: `{"params":{"interval":"2h"}}`}, 400, `interval`},
		{"still running", call{method: "GET", path: "/api/v1/workloads/hello"}, 200, `"value": "20ms"`},
		{"stop", call{method: "POST", path: "/api/v1/workloads/hello/stop"}, 200, `"running": false`},
		{"stopped: what ran", call{method: "GET", path: "/api/v1/workloads/hello"}, 200, `"ran": "20ms"`},
		{"stop again", call{method: "POST", path: "/api/v1/workloads/hello/stop"}, 409, "not running"},
		{"params of a stopped workload", call{method: "POST", path: "/api/v1/workloads/hello/params", body: `{"params":{"interval":"20ms"}}`}, 409, "not running"},
		{"out of bounds", call{method: "POST", path: "/api/v1/workloads/hello/start", body: `{"params":{"interval":"2h"}}`}, 400, `parameter \"interval\": bad value \"2h\": want duration from 1ms to 1m0s`},
		{"wrong type", call{method: "POST", path: "/api/v1/workloads/hello/start", body: `{"params":{"interval":5}}`}, 400, `interval`},
		{"unknown parameter", call{method: "POST", path: "/api/v1/workloads/hello/start", body: `{"params":{"speed":5}}`}, 400, `\"speed\": unknown parameter; known: interval`},
		{"malformed body", call{method: "POST", path: "/api/v1/workloads/hello/start", body: `{"params":`}, 400, "request body"},
		{"unknown body field", call{method: "POST", path: "/api/v1/workloads/hello/start", body: `{"interval":"10ms"}`}, 400, "unknown field"},
		{"text after the body", call{method: "POST", path: "/api/v1/workloads/hello/start", body: `{"params":{"interval":"10ms"}} trailing`}, 400, "nothing after it"},
		{"unknown workload", call{method: "POST", path: "/api/v1/workloads/nope/start"}, 404, `unknown workload \"nope\"`},
		{"unknown workload get", call{method: "GET", path: "/api/v1/workloads/nope"}, 404, "nope"},
		{"unknown endpoint", call{method: "GET", path: "/api/v1/nothing"}, 404, "no endpoint"},
		{"wrong method", call{method: "DELETE", path: "/api/v1/workloads/hello/start"}, 404, "no endpoint DELETE"},
	}
	// A broken workload's fix, rule and figures; the parameter fix changes it live.
	code, body = do(t, srv, call{method: "POST", path: "/api/v1/workloads/web-lock/start", body: `{"params":{"rate":50}}`})
	if code != 200 {
		t.Fatalf("start web-lock: %d %s", code, body)
	}
	web := decode[api.Workload](t, body)
	if web.Rule != "lock-held-blocking" || web.Fix == "" || web.Kind != "broken" {
		t.Errorf("web-lock: rule %q, fix %q", web.Rule, web.Fix)
	}
	code, body = do(t, srv, call{method: "POST", path: "/api/v1/workloads/web-lock/params", body: `{"params":{"fix":true}}`})
	if code != 200 || !strings.Contains(string(body), `"value": true`) {
		t.Errorf("fix: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body = do(t, srv, call{method: "GET", path: "/api/v1/workloads/web-lock"})
		if w := decode[api.Workload](t, body); w.Figures["requests_per_second"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web-lock reports no requests per second after 10s: %s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, body = do(t, srv, call{method: "POST", path: "/api/v1/workloads/web-lock/stop"})
	stopped := decode[api.Workload](t, body)
	for _, p := range stopped.Params {
		if want := map[string]any{"rate": 50.0, "fix": true}[p.Name]; want != nil && p.Ran != want {
			t.Errorf("stopped web-lock: parameter %s ran with %v, want %v", p.Name, p.Ran, want)
		}
	}
	if code != 200 || len(stopped.Figures) != 0 {
		t.Errorf("stop web-lock: %d, figures %v after the stop", code, stopped.Figures)
	}

	for _, s := range steps {
		code, body := do(t, srv, s.call)
		if code != s.wantCode || !strings.Contains(string(body), s.want) {
			t.Errorf("%s: %s %s = %d %s; want %d with %q", s.name, s.call.method, s.call.path, code, body, s.wantCode, s.want)
		}
		if code >= 400 {
			if e := decode[api.Error](t, body); e.Error == "" {
				t.Errorf("%s: error body without message: %s", s.name, body)
			}
		}
	}
}

func TestToken(t *testing.T) {
	srv, _ := newServer(t, "s3cret")
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/api/v1/workloads", "", 401},
		{"/api/v1/workloads", "wrong", 401},
		{"/api/v1/workloads", "s3cret", 200},
		{"/debug/pprof/", "", 401},
		{"/debug/pprof/goroutineleak?debug=1", "s3cret", 200},
		{"/debug/fgprof?seconds=0", "", 401},
		{"/healthz", "", 200},
		{"/metrics", "", 200},
	} {
		if code, body := do(t, srv, call{method: "GET", path: c.path, token: c.token}); code != c.want {
			t.Errorf("GET %s with token %q = %d %s, want %d", c.path, c.token, code, body, c.want)
		}
	}
}

func TestDiagnosticsEndpoints(t *testing.T) {
	srv, sup := newServer(t, "")
	if err := sup.Start("hello", nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{"/healthz", "ok"},
		{"/debug/pprof/", "goroutineleak"},
		{"/debug/pprof/goroutineleak?debug=1", "goroutineleak profile: total"},
		{"/debug/pprof/goroutine?debug=2", `workload: hello`},
		{"/debug/pprof/cmdline", ""},
		{"/debug/fgprof?seconds=1&format=folded", "workload.runHello"},
		{"/metrics", "go_sched_latencies_seconds_bucket"},
		{"/metrics", `inspectd_workload_operations_total{workload="hello"}`},
		{"/metrics", `inspectd_workload_running{kind="healthy",workload="hello"} 1`},
	} {
		code, body := do(t, srv, call{method: "GET", path: c.path})
		if code != 200 || !strings.Contains(string(body), c.want) {
			t.Errorf("GET %s = %d, want 200 with %q; got %.300s", c.path, code, c.want, body)
		}
	}
}

// The API client the CLI uses, against the real handler.
func TestClient(t *testing.T) {
	srv, _ := newServer(t, "tok")
	ctx := context.Background()
	c := api.NewClient(srv.URL, "tok")
	list, err := c.Workloads(ctx)
	if err != nil || len(list) == 0 {
		t.Fatalf("Workloads: %v (%d)", err, len(list))
	}
	w, err := c.StartWorkload(ctx, "hello", map[string]any{"interval": "5ms"})
	if err != nil || !w.Running || w.Params[0].Value != "5ms" {
		t.Fatalf("StartWorkload: %v %+v", err, w)
	}
	if _, err := c.StartWorkload(ctx, "nope", nil); !api.IsNotFound(err) || !strings.Contains(err.Error(), `unknown workload "nope"`) {
		t.Errorf("unknown workload: %v", err)
	}
	if w, err = c.StopWorkload(ctx, "hello"); err != nil || w.Running {
		t.Errorf("StopWorkload: %v %+v", err, w)
	}
	bad := api.NewClient(strings.TrimPrefix(srv.URL, "http://"), "wrong")
	var se *api.StatusError
	if _, err := bad.Workloads(ctx); !errors.As(err, &se) || se.Code != 401 {
		t.Errorf("wrong token: %v", err)
	}
}
