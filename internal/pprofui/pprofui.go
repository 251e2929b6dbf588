// Package pprofui serves google/pprof's web UI (the code behind
// `go tool pprof -http`) for a profile held in memory, as handlers to mount
// on any mux. The daemon serves it under /ui/ and inspect-cli on a loopback
// port for a downloaded profile. The flame graph needs no Graphviz.
package pprofui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/driver"
	"github.com/google/pprof/profile"
)

// driverMu serialises driver.PProf, which sets package-level state of the
// pprof driver.
var driverMu sync.Mutex

// Handlers runs the pprof driver on p as `pprof -http` would, keeping the
// handlers it registers (the flame graph at "/flamegraph", "/top", "/peek",
// "/source", "/download") instead of starting a server. The driver keeps
// its options in package-level state, shared by every set of handlers it
// made: options such as -tagfocus would apply to all of them, so a caller
// that wants one profile focused filters its samples before.
func Handlers(p *profile.Profile, log *slog.Logger) (map[string]http.Handler, error) {
	driverMu.Lock()
	defer driverMu.Unlock()
	var handlers map[string]http.Handler
	out := &driverUI{log: log}
	err := driver.PProf(&driver.Options{
		Flagset: &driverFlags{
			args: []string{"inspectd"},
			values: map[string]string{
				"http":       "127.0.0.1:1", // a port is named so the driver binds nothing
				"no_browser": "true",
				"symbolize":  "none", // the runtime's profiles are symbolized already
			},
		},
		Fetch: profileFetcher{p},
		UI:    out,
		HTTPServer: func(args *driver.HTTPServerArgs) error {
			handlers = args.Handlers
			return nil
		},
	})
	if err != nil {
		if msg := strings.TrimSpace(out.errs.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	if handlers == nil {
		return nil, errors.New("the driver registered no handlers")
	}
	// Saving configurations would write to the user's home directory.
	delete(handlers, "/saveconfig")
	delete(handlers, "/deleteconfig")
	return handlers, nil
}

// profileFetcher hands the driver the captured profile.
type profileFetcher struct{ p *profile.Profile }

func (f profileFetcher) Fetch(string, time.Duration, time.Duration) (*profile.Profile, string, error) {
	return f.p, "", nil
}

// driverUI is the driver's terminal: nothing is read, messages are logged.
type driverUI struct {
	log  *slog.Logger
	errs bytes.Buffer
}

func (d *driverUI) ReadLine(string) (string, error) { return "", io.EOF }
func (d *driverUI) Print(args ...any)               { d.log.Debug("pprof driver", "msg", fmt.Sprint(args...)) }
func (d *driverUI) PrintErr(args ...any) {
	fmt.Fprintln(&d.errs, args...)
	d.log.Debug("pprof driver", "err", fmt.Sprint(args...))
}
func (d *driverUI) IsTerminal() bool                    { return false }
func (d *driverUI) WantBrowser() bool                   { return false }
func (d *driverUI) SetAutoComplete(func(string) string) {}

// driverFlags is the driver's command line: every flag takes its default
// unless values names it.
type driverFlags struct {
	args   []string
	values map[string]string
	extra  []string
}

func (f *driverFlags) Bool(name string, def bool, _ string) *bool {
	v := def
	if s, ok := f.values[name]; ok {
		v, _ = strconv.ParseBool(s)
	}
	return &v
}

func (f *driverFlags) Int(name string, def int, _ string) *int {
	v := def
	if s, ok := f.values[name]; ok {
		v, _ = strconv.Atoi(s)
	}
	return &v
}

func (f *driverFlags) Float64(name string, def float64, _ string) *float64 {
	v := def
	if s, ok := f.values[name]; ok {
		v, _ = strconv.ParseFloat(s, 64)
	}
	return &v
}

func (f *driverFlags) String(name string, def string, _ string) *string {
	v := def
	if s, ok := f.values[name]; ok {
		v = s
	}
	return &v
}

func (f *driverFlags) StringList(name string, def string, _ string) *[]*string {
	v := def
	if s, ok := f.values[name]; ok {
		v = s
	}
	if v == "" {
		return &[]*string{}
	}
	return &[]*string{&v}
}

func (f *driverFlags) ExtraUsage() string      { return strings.Join(f.extra, "\n") }
func (f *driverFlags) AddExtraUsage(eu string) { f.extra = append(f.extra, eu) }
func (f *driverFlags) Parse(func()) []string   { return f.args }
