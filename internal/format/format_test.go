package format

import (
	"go/build"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{1, "1ns"},
		{999, "999ns"},
		{1000, "1µs"},
		{1500, "1.5µs"},
		{12_345, "12.3µs"},
		{123_456, "123µs"},
		{999_400, "999µs"},
		{999_500, "1ms"}, // rounds up to the next unit: written in it
		{999_960, "1ms"},
		{1_234_567, "1.23ms"},
		{9_996_000, "10ms"}, // not 10.0ms
		{12_345_678, "12.3ms"},
		{123_456_789, "123ms"},
		{200 * time.Millisecond, "200ms"},
		{999_940_000, "1s"},
		{1_234_567_890, "1.23s"},
		{1_500_000_000, "1.5s"},
		{12_345_678_901, "12.3s"},
		{59_940_000_000, "59.9s"},
		{59_960_000_000, "1m0s"},
		{90 * time.Second, "1m30s"},
		{123_456 * time.Millisecond, "2m3s"},
		{time.Hour + 2*time.Minute + 3*time.Second, "1h2m3s"},
		{-1_234_567, "-1.23ms"},
		{-90 * time.Second, "-1m30s"},
	} {
		if got := Duration(c.d); got != c.want {
			t.Errorf("Duration(%d) = %q, want %q", int64(c.d), got, c.want)
		}
		if got := Nanos(int64(c.d)); got != c.want {
			t.Errorf("Nanos(%d) = %q, want %q", int64(c.d), got, c.want)
		}
	}
}

func TestFrame(t *testing.T) {
	for _, c := range []struct {
		f    api.Frame
		want string
	}{
		{api.Frame{Function: "github.com/x/app/queue.(*Q).Put", File: "/src/app/queue/q.go", Line: 42}, "queue.(*Q).Put q.go:42"},
		{api.Frame{Function: "main.main", File: "/src/main.go", Line: 7}, "main.main main.go:7"},
		{api.Frame{Function: "runtime.goexit"}, "runtime.goexit"},
		{api.Frame{File: "/src/x.go", Line: 3}, "x.go:3"},
		{api.Frame{}, "-"},
	} {
		if got := Frame(c.f); got != c.want {
			t.Errorf("Frame(%+v) = %q, want %q", c.f, got, c.want)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{12_345, "12.1 KiB"},
		{1023 << 10, "1023 KiB"},  // whole units above 999
		{1023<<10 + 600, "1 MiB"}, // rounds up to the next unit: written in it
		{3 << 20, "3 MiB"},
		{123_456_789, "118 MiB"},
		{5 << 30, "5 GiB"},
		{3 << 40, "3 TiB"},
		{-2048, "-2 KiB"},
	} {
		if got := Bytes(c.n); got != c.want {
			t.Errorf("Bytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		share float64
		want  string
	}{
		{0, "0%"},
		{1, "100%"},
		{0.01, "1%"},
		{0.005, "0.5%"},
		{0.1234, "12.3%"},
		{0.98765, "98.8%"},
		{0.99996, "100%"},
		{0.0000123, "0.00123%"},
		{2.5, "250%"},
		{math.NaN(), "-"},
		{math.Inf(1), "-"},
	} {
		if got := Percent(c.share); got != c.want {
			t.Errorf("Percent(%v) = %q, want %q", c.share, got, c.want)
		}
	}
}

// The diagnosis links this package, and the embedded agent the diagnosis:
// it imports the standard library and the API's wire types, nothing else.
func TestImportsStayLight(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") && imp != "github.com/inspectd/inspectd/internal/api" {
			t.Errorf("package format imports %s", imp)
		}
	}
}
