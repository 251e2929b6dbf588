package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/workload"
)

// fuzzLab serves the lab's API over a registry of one workload, "fuzz",
// that takes a parameter of every type and does nothing until stopped.
func fuzzLab(t testing.TB) (http.Handler, *workload.Supervisor) {
	reg := workload.NewRegistry()
	reg.Register(workload.Spec{
		Name: "fuzz", Lesson: "none", Kind: workload.Healthy, Description: "waits",
		Params: []workload.ParamSpec{
			workload.IntParam("n", "a count", 1, 0, 100),
			workload.FloatParam("f", "a share", 0.5, 0, 1),
			workload.DurationParam("d", "a pause", 10*time.Millisecond, time.Millisecond, time.Minute),
			workload.BoolParam("b", "a switch", false),
			workload.EnumParam("mode", "a choice", "a", "a", "b"),
		},
		Run: func(ctx context.Context, env *workload.Env) error { <-ctx.Done(); return nil },
	})
	sup := workload.NewSupervisor(reg, workload.Options{})
	t.Cleanup(sup.StopAll)
	mux := http.NewServeMux()
	(&lab{sup: sup}).route(mux)
	return mux, sup
}

func post(h http.Handler, path, body string) (int, []byte) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
	return rec.Code, rec.Body.Bytes()
}

// FuzzLabParams posts any body to start a workload, as a client of the
// lab's API may: the answer is 200 with values of the parameters' types
// within their bounds, which posted back give the same; or 400 with an
// error in one printable line that names the body or the parameter at
// fault. (A number or a boolean may come as a JSON string, its text, as
// inspect-cli sends every --param.)
//
//	go test -run '^$' -fuzz '^FuzzLabParams$' -fuzztime 60s ./internal/daemon
func FuzzLabParams(f *testing.F) {
	for _, s := range []string{
		"", "  ", `{}`, `{"params": null}`, `{"params": {}}`,
		`{"params": {"n": 5, "f": 0.25, "d": "250ms", "b": true, "mode": "b"}}`,
		`{"params": {"n": "20"}}`, `{"params": {"n": 2.0}}`, `{"params": {"n": 1e2}}`, `{"params": {"n": -0}}`,
		`{"params": {"f": "0.5"}}`, `{"params": {"f": 1e-400}}`, `{"params": {"b": "true"}}`,
		`{"params": {"d": 5}}`, `{"params": {"d": " 1s "}}`, `{"params": {"d": "1h"}}`,
		`{"params": {"mode": "c"}}`, `{"params": {"speed": 1}}`, `{"params": {"n": null}}`,
		`{"params": {"n": 1}} {}`, `{"params": {"n": 1}, "extra": 2}`, `[1]`, `{"params": {"\u001b[2J": 1}}`,
	} {
		f.Add([]byte(s))
	}
	h, sup := fuzzLab(f)
	specs := map[string]workload.ParamSpec{}
	if st, err := sup.StatusOf("fuzz"); err == nil {
		for _, p := range st.Spec.Params {
			specs[p.Name] = p
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, answer := post(h, "/api/v1/workloads/fuzz/start", string(body))
		if code != http.StatusOK {
			var e api.Error
			if code != http.StatusBadRequest || json.Unmarshal(answer, &e) != nil || e.Error == "" || strings.ContainsFunc(e.Error, unicode.IsControl) {
				t.Fatalf("%s: %d %s; want 200, or 400 with an error in one line", body, code, answer)
			}
			if !strings.HasPrefix(e.Error, "request body") && !strings.HasPrefix(e.Error, `workload fuzz: parameter "`) {
				t.Fatalf("%s: %q names neither the body nor a parameter", body, e.Error)
			}
			return
		}
		defer sup.Stop("fuzz")
		var w api.Workload
		if err := json.Unmarshal(answer, &w); err != nil || !w.Running {
			t.Fatalf("%s: %s (%v); want the workload running", body, answer, err)
		}
		values := map[string]any{}
		for _, p := range w.Params {
			values[p.Name] = p.Value
			spec := specs[p.Name]
			if _, err := workload.Resolve("fuzz", []workload.ParamSpec{spec}, map[string]any{p.Name: p.Value}); err != nil {
				t.Fatalf("%s: %s = %#v answered, which is not a value of it: %v", body, p.Name, p.Value, err)
			}
		}
		// Posted back, the values in force give the same.
		if err := sup.Stop("fuzz"); err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(api.StartRequest{Params: values})
		code, answer = post(h, "/api/v1/workloads/fuzz/start", string(again))
		var w2 api.Workload
		if code != http.StatusOK || json.Unmarshal(answer, &w2) != nil || !reflect.DeepEqual(w2.Params, w.Params) {
			t.Fatalf("the values in force %s, posted back: %d %s", again, code, answer)
		}
	})
}
