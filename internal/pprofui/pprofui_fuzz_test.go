package pprofui

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// pages are the pages of a session a user opens, with their queries. Not
// /source and /disasm: they read the source files and binaries the profile
// names from this machine's disk (seconds for a profile of this process),
// which tells nothing of how the profile is read.
var pages = []string{"/flamegraph", "/top", "/peek?f=.", "/download"}

// A profile of this process gives every page of the UI.
func TestHandlersServeThePages(t *testing.T) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	handlers, err := Handlers(p, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range pages {
		if code, body := serve(handlers, page); code != http.StatusOK {
			t.Errorf("GET %s: %d %.200s", page, code, body)
		}
	}
}

// serve asks the session's handlers for page, as the mux would.
func serve(handlers map[string]http.Handler, page string) (int, string) {
	path, _, _ := strings.Cut(page, "?")
	h, ok := handlers[path]
	if !ok {
		return http.StatusNotFound, ""
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", page, nil))
	return rec.Code, rec.Body.String()
}

// FuzzHandlers hands the pprof web UI any profile that parses, as
// `inspect-cli profile --web` does with what a target sent: neither the
// driver nor a page may panic, and a profile the driver refuses is an
// error, not a set of handlers.
//
//	go test -run '^$' -fuzz '^FuzzHandlers$' -fuzztime 60s ./internal/pprofui
func FuzzHandlers(f *testing.F) {
	for _, name := range []string{"goroutine", "heap", "mutex"} {
		var buf bytes.Buffer
		if err := pprof.Lookup(name).WriteTo(&buf, 0); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	fn := &profile.Function{ID: 1, Name: "main.f", Filename: "/a.go"}
	loc := &profile.Location{ID: 1, Address: 0x10, Line: []profile.Line{{Function: fn, Line: 3}}}
	for _, p := range []*profile.Profile{
		// No sample types, no samples.
		{},
		// Two sample types, labels, a zero and a negative value.
		{SampleType: []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}, {Type: "inuse_space", Unit: "bytes"}},
			Function: []*profile.Function{fn}, Location: []*profile.Location{loc},
			Sample: []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{0, -5},
				Label: map[string][]string{"workload": {"lab"}}, NumLabel: map[string][]int64{"bytes": {64}}}}},
	} {
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := profile.ParseData(in)
		if err != nil {
			return
		}
		handlers, err := Handlers(p, slog.New(slog.DiscardHandler))
		if err != nil {
			if handlers != nil || err.Error() == "" {
				t.Fatalf("handlers %v with error %v", handlers, err)
			}
			return
		}
		if _, ok := handlers["/flamegraph"]; !ok {
			t.Fatalf("no flame graph among %d pages", len(handlers))
		}
		for _, page := range pages {
			func() {
				defer func() {
					if r := recover(); r != nil {
						panic(fmt.Sprintf("GET %s panicked: %v", page, r))
					}
				}()
				serve(handlers, page)
			}()
		}
	})
}
