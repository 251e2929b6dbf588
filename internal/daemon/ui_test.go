package daemon

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inspectd/inspectd/internal/pprofui"
	"github.com/inspectd/inspectd/internal/server"
	"github.com/inspectd/inspectd/internal/workload"
)

// TestUI captures live profiles of workloads running in this process and
// reads their flame graphs through the embedded pprof web UI.
func TestUI(t *testing.T) {
	sup := workload.NewSupervisor(workload.Default, workload.Options{Registerer: prometheus.NewRegistry()})
	srv := httptest.NewServer(newHandler(server.Options{Token: "tok"}, sup, prometheus.NewRegistry()))
	t.Cleanup(func() {
		srv.Close()
		sup.StopAll()
	})
	for _, name := range []string{"contention", "hello"} {
		if err := sup.Start(name, nil); err != nil {
			t.Fatal(err)
		}
	}
	get := func(path string) (int, string) {
		code, b := do(t, srv, call{method: "GET", path: path, token: "tok"})
		return code, string(b)
	}

	if code, _ := do(t, srv, call{method: "GET", path: "/ui/"}); code != http.StatusUnauthorized {
		t.Errorf("GET /ui/ without the token = %d, want 401", code)
	}
	if code, _ := do(t, srv, call{method: "GET", path: "/ui/heap"}); code != http.StatusUnauthorized {
		t.Errorf("GET /ui/heap without the token = %d, want 401", code)
	}
	// A browser gives the token as basic auth's password, after the 401
	// asks for it.
	basic := func(pass string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/ui/", nil)
		req.SetBasicAuth("me", pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := basic("tok"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /ui/ with the token as basic auth's password = %d, want 200", resp.StatusCode)
	}
	if resp := basic("nope"); resp.StatusCode != http.StatusUnauthorized || !slices.ContainsFunc(resp.Header.Values("WWW-Authenticate"),
		func(v string) bool { return strings.HasPrefix(v, "Basic ") }) {
		t.Errorf("GET /ui/ with a wrong password = %d, WWW-Authenticate %q; want 401 asking for basic auth", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	code, page := get("/ui/")
	if code != http.StatusOK || !strings.Contains(page, `href="./cpu"`) {
		t.Fatalf("GET /ui/ = %d %s", code, page)
	}

	// CPU: the workloads' functions are in the flame graph page.
	code, page = get("/ui/cpu?seconds=1")
	if code != http.StatusOK {
		t.Fatalf("GET /ui/cpu = %d %s", code, page)
	}
	if !strings.Contains(page, "workload.runContention") {
		t.Error("the CPU flame graph does not name workload.runContention")
	}

	// tagfocus keeps one workload's goroutines.
	code, page = get("/ui/goroutine?tagfocus=workload=hello")
	if code != http.StatusOK {
		t.Fatalf("GET /ui/goroutine = %d %s", code, page)
	}
	if !strings.Contains(page, "workload.runHello") || strings.Contains(page, "workload.runContention") {
		t.Error("the goroutine flame graph focused on workload=hello should name runHello and not runContention")
	}
	// Values separated by commas, as pprof's -tagfocus takes them.
	code, page = get("/ui/goroutine?tagfocus=workload=hello,contention")
	if code != http.StatusOK || !strings.Contains(page, "workload.runHello") || !strings.Contains(page, "workload.runContention") {
		t.Errorf("GET /ui/goroutine?tagfocus=workload=hello,contention = %d, want both workloads", code)
	}
	// Another session's focus is its own: the CPU profile's pages keep
	// every workload.
	for _, p := range []string{"/ui/s1/flamegraph", "/ui/s1/top"} {
		if code, page := get(p); code != http.StatusOK || !strings.Contains(page, "workload.runContention") {
			t.Errorf("GET %s after a focused session = %d, without workload.runContention", p, code)
		}
	}

	for _, kind := range []string{"fgprof", "heap", "mutex", "block"} {
		q := ""
		if kind == "fgprof" {
			q = "?seconds=1"
		}
		if code, page := get("/ui/" + kind + q); code != http.StatusOK {
			t.Errorf("GET /ui/%s = %d %.300s", kind, code, page)
		}
	}
	// The session's other pages and its root, which redirects to the flame graph.
	for _, p := range []string{"/ui/s1/", "/ui/s1/top", "/ui/s2/flamegraph?tf=workload%3Dhello"} {
		if code, page := get(p); code != http.StatusOK {
			t.Errorf("GET %s = %d %.300s", p, code, page)
		}
	}

	// Only the last pprofui.MaxUISessions profiles are kept.
	for range pprofui.MaxUISessions {
		if code, page := get("/ui/goroutine"); code != http.StatusOK {
			t.Fatalf("GET /ui/goroutine = %d %.300s", code, page)
		}
	}
	if code, _ := get("/ui/s1/flamegraph"); code != http.StatusNotFound {
		t.Errorf("GET /ui/s1/flamegraph after %d more profiles = %d, want 404", pprofui.MaxUISessions, code)
	}
	_, page = get("/ui/")
	if n := strings.Count(page, "/flamegraph\">"); n != pprofui.MaxUISessions {
		t.Errorf("/ui/ lists %d sessions, want %d", n, pprofui.MaxUISessions)
	}

	for _, c := range []struct {
		path string
		want int
	}{
		{"/ui/nope", 404},
		{"/ui/cpu?seconds=0", 400},
		{"/ui/cpu?seconds=61", 400},
		{"/ui/goroutine?seconds=2", 400},
		{"/ui/heap?tagfocus=workload=(", 400},
		{"/ui/s999/flamegraph", 404},
		{"/ui/s14/nope", 404},
	} {
		if code, page := get(c.path); code != c.want {
			t.Errorf("GET %s = %d %s, want %d", c.path, code, page, c.want)
		}
	}
}
