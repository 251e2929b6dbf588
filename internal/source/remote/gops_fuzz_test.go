package remote

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The answers of a gops agent are outside input: anything may listen on
// the port a target names. Run one fuzz target for a while with
//
//	go test -run '^$' -fuzz '^FuzzGopsStats$' -fuzztime 60s ./internal/source/remote

// FuzzGopsStats reads any stats answer: no panic; figures that are counts
// (a goroutine at least, no negative thread or P count); the figures of a
// well-formed answer read back as written; an error quotes the answer.
func FuzzGopsStats(f *testing.F) {
	f.Add([]byte("goroutines: 12\nOS threads: 9\nGOMAXPROCS: 8\nnum CPU: 8\n"), int64(3), int64(2), int64(1))
	f.Add([]byte("goroutines: -1\nOS threads: -9\nGOMAXPROCS: 99999999999\n"), int64(1), int64(0), int64(0))
	f.Add([]byte("goroutines 5\r\ngoroutines:\t7\r\n: 3\n"), int64(1<<40), int64(1<<62), int64(1<<31))
	f.Add([]byte("<html>"), int64(0), int64(-1), int64(-1))
	f.Fuzz(func(t *testing.T, answer []byte, goroutines, threads, procs int64) {
		st, err := parseGopsStats(answer)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "stats without a goroutine count: \"") {
				t.Fatalf("error %q", err)
			}
		} else if st.Goroutines < 1 || st.Threads < 0 || st.GOMAXPROCS < 0 || st.GoVersion != "" {
			t.Fatalf("%q read as %+v", answer, st)
		}
		// What an agent writes reads back.
		well := fmt.Sprintf("goroutines: %d\nOS threads: %d\nGOMAXPROCS: %d\nnum CPU: 2\n", goroutines, threads, procs)
		st, err = parseGopsStats([]byte(well))
		switch {
		case goroutines < 1:
			if err == nil {
				t.Fatalf("%q read as %+v; want an error", well, st)
			}
		case err != nil:
			t.Fatalf("%q: %v", well, err)
		case st.Goroutines != goroutines || st.Threads != max(threads, 0) || int64(st.GOMAXPROCS) != max(procs, 0) && procs <= 1<<31-1:
			t.Fatalf("%q read as %+v", well, st)
		}
	})
}

// FuzzGopsVersion reads any answer to the version request: a version it
// takes is one line of printable text that starts like runtime.Version();
// what runtime.Version() gives reads back; an error quotes the answer.
func FuzzGopsVersion(f *testing.F) {
	for _, s := range []string{"go1.27.3", "go1.21.0 X:nocoverageredesign\n", "devel go1.28-0123abcd Tue Jan 6 10:00:00 2026 +0000",
		"go1.27.3\x1b[2J", "gopher\n<html>", "HTTP/1.1 400 Bad Request\r\n", "", "go\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		v, err := parseGopsVersion(answer)
		if err != nil {
			if v != "" || !strings.HasSuffix(err.Error(), " is not a Go version") || !strings.HasPrefix(err.Error(), `"`) {
				t.Fatalf("%q, %v", v, err)
			}
			return
		}
		if !strings.HasPrefix(v, "go") && !strings.HasPrefix(v, "devel") || !utf8.ValidString(v) ||
			strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) }) || strings.TrimSpace(v) != v {
			t.Fatalf("%q taken for a version: %q", answer, v)
		}
		if again, err := parseGopsVersion([]byte(v + "\n")); err != nil || again != v {
			t.Fatalf("%q reads back as %q, %v", v, again, err)
		}
	})
}

// FuzzGopsPort reads any gops port file: a port it takes is decimal, from
// 1 to 65535; every such port, as the agent writes it, reads back.
func FuzzGopsPort(f *testing.F) {
	for _, s := range []string{"40123", "40123\n", "+80", "-1", "0", "65536", "0x50", "1_0", " 7 ", "\x00"} {
		f.Add([]byte(s), uint16(80))
	}
	f.Fuzz(func(t *testing.T, file []byte, port uint16) {
		if p, err := parseGopsPort(file); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 || strings.ContainsAny(p, "+-_ \t\n") {
				t.Fatalf("%q read as port %q", file, p)
			}
		} else if !strings.HasPrefix(err.Error(), "not a port from 1 to 65535: ") {
			t.Fatalf("error %q", err)
		}
		p, err := parseGopsPort([]byte(strconv.Itoa(int(port))))
		if port == 0 && err == nil || port > 0 && (err != nil || p != strconv.Itoa(int(port))) {
			t.Fatalf("port %d read as %q, %v", port, p, err)
		}
	})
}
