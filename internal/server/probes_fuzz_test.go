package server

import (
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
)

// lenientNumbers would let FuzzDurationParam accept bare numbers in Go's
// syntax (1_0, 0x1p4, 1e1, +5); durationParam takes digits and a point
// only.
const lenientNumbers = false

// plainSeconds is a bare number as people write seconds: digits, with a
// fraction or not.
var plainSeconds = regexp.MustCompile(`^([0-9]+\.?[0-9]*|\.[0-9]+)$`)

// FuzzDurationParam reads any ?window= a client may send: no panic; a value
// it takes is within the bounds and is a Go duration or a number of
// seconds, read as such; one it refuses is an error that names the
// parameter and what is allowed, in one printable line.
//
//	go test -run '^$' -fuzz '^FuzzDurationParam$' -fuzztime 60s ./internal/server
func FuzzDurationParam(f *testing.F) {
	for _, s := range []string{"", "5s", "2", "0.5", "1m", "100ms", "99ms", "61s", "1h", "-1s", "1e1", "1_0", "0x1p4", "Inf", "NaN",
		"+5", " 5", "5s ", "1.5.1", "9999999999999999999", "1e400", "5\x00", "\x1b[2J", "µs", "1µs", "2s500ms", ".5"} {
		f.Add(s)
	}
	const lo, hi, def = 100 * time.Millisecond, MaxWindow, DefaultWindow
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest("GET", "/api/v1/snapshot?window="+url.QueryEscape(v), nil)
		d, err := durationParam(r, "window", def, lo, hi)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "query parameter window=") || !strings.Contains(msg, "want ") || strings.ContainsFunc(msg, unicode.IsControl) {
				t.Fatalf("window=%q: %q; want an error that names the parameter and what it takes, in one line", v, msg)
			}
			if gd, gerr := time.ParseDuration(v); gerr == nil && gd >= lo && gd <= hi {
				t.Fatalf("window=%q, a duration within bounds, refused: %v", v, err)
			}
			return
		}
		if d < lo || d > hi {
			t.Fatalf("window=%q read as %v, outside [%v, %v]", v, d, lo, hi)
		}
		if v == "" {
			if d != def {
				t.Fatalf("no window read as %v, want the default %v", d, def)
			}
			return
		}
		if gd, gerr := time.ParseDuration(v); gerr == nil {
			if d != gd {
				t.Fatalf("window=%q read as %v, want %v", v, d, gd)
			}
			return
		}
		n, ferr := strconv.ParseFloat(v, 64)
		switch {
		case ferr != nil:
			t.Fatalf("window=%q, neither a duration nor a number, read as %v", v, d)
		case !plainSeconds.MatchString(v) && !lenientNumbers:
			t.Fatalf("window=%q read as %v: want digits for a number of seconds", v, d)
		case d != time.Duration(n*float64(time.Second)):
			t.Fatalf("window=%q read as %v, want %v seconds", v, d, n)
		}
	})
}
