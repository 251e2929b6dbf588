package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/inspectd/inspectd/internal/source"
)

// The gops agent's requests (github.com/google/gops/signal): one byte on a
// fresh TCP connection; the agent writes its answer and closes it. It serves
// one connection at a time.
const (
	gopsStackTrace = 0x1 // pprof.Lookup("goroutine").WriteTo(conn, 2): a full dump
	gopsVersion    = 0x4 // runtime.Version()
	gopsStats      = 0x7 // goroutines, OS threads, GOMAXPROCS, num CPU
	gopsTrace      = 0x8 // an execution trace of 5s
)

// gopsTraceLength is how long the gops agent traces.
const gopsTraceLength = 5 * time.Second

// GopsFetcher reads a gops agent (github.com/google/gops/agent): its stack
// dump, stats, version and 5s trace. It has no goroutine profile and no
// goroutineleak profile.
type GopsFetcher struct {
	Addr string // host:port
	tracker
}

// NewGopsFetcher returns the fetcher of the gops agent at addr (host:port).
func NewGopsFetcher(addr string) *GopsFetcher { return &GopsFetcher{Addr: addr} }

// Target is gops://host:port.
func (g *GopsFetcher) Target() string { return "gops://" + g.Addr }

// Kind is KindGops.
func (g *GopsFetcher) Kind() string { return KindGops }

// request sends sig and returns the connection to read the answer from. The
// agent must start answering within first, and finish within total.
func (g *GopsFetcher) request(ctx context.Context, sig byte, first, total time.Duration) (io.ReadCloser, error) {
	done := g.start(fmt.Sprintf("gops request 0x%x", sig))
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", g.Addr)
	if err != nil {
		done()
		return nil, fmt.Errorf("gops agent %s: %w", g.Addr, err)
	}
	deadline := time.Now().Add(total)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	firstDeadline := time.Now().Add(first)
	if deadline.Before(firstDeadline) {
		firstDeadline = deadline
	}
	conn.SetDeadline(firstDeadline)
	if _, err := conn.Write([]byte{sig}); err != nil {
		done()
		conn.Close()
		return nil, fmt.Errorf("gops agent %s: %w", g.Addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	return &gopsConn{conn: conn, deadline: deadline, stop: stop, done: done, addr: g.Addr, sig: sig}, nil
}

// gopsConn reads an answer: the first byte within the first deadline, the
// rest within the total one.
type gopsConn struct {
	conn     net.Conn
	deadline time.Time
	stop     func() bool
	done     func()
	addr     string
	sig      byte
	started  bool
}

func (c *gopsConn) Read(p []byte) (int, error) {
	n, err := c.conn.Read(p)
	if n > 0 && !c.started {
		c.started = true
		c.conn.SetDeadline(c.deadline)
	}
	if err != nil && err != io.EOF {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if !c.started {
				if speaksHTTP(c.addr) {
					return n, fmt.Errorf("%s is an HTTP server, not a gops agent: try http://%s", c.addr, c.addr)
				}
				return n, fmt.Errorf("gops agent %s: no answer to request 0x%x (not a gops agent, busy with another client, or it could not start: a trace already running?)", c.addr, c.sig)
			}
			return n, fmt.Errorf("gops agent %s: request 0x%x: timed out", c.addr, c.sig)
		}
		return n, fmt.Errorf("gops agent %s: %w", c.addr, err)
	}
	return n, err
}

func (c *gopsConn) Close() error {
	c.stop()
	c.done()
	return c.conn.Close()
}

// ask sends sig and reads the whole (small) answer.
func (g *GopsFetcher) ask(ctx context.Context, sig byte) ([]byte, error) {
	rc, err := g.request(ctx, sig, 5*time.Second, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("gops agent %s: empty answer to request 0x%x", g.Addr, sig)
	}
	return b, nil
}

// GoroutineProfile is not served by a gops agent.
func (g *GopsFetcher) GoroutineProfile(ctx context.Context) (io.ReadCloser, error) {
	return nil, fmt.Errorf("goroutine profile: %w", source.ErrUnsupported)
}

// LeakProfile is not served by a gops agent.
func (g *GopsFetcher) LeakProfile(ctx context.Context) (io.ReadCloser, error) {
	return nil, fmt.Errorf("goroutineleak profile: %w", source.ErrUnsupported)
}

// Stats asks the agent's stats and version.
func (g *GopsFetcher) Stats(ctx context.Context) (Stats, error) {
	b, err := g.ask(ctx, gopsStats)
	if err != nil {
		return Stats{}, err
	}
	st, err := parseGopsStats(b)
	if err != nil {
		return Stats{}, fmt.Errorf("gops agent %s: %w", g.Addr, err)
	}
	if v, err := g.ask(ctx, gopsVersion); err == nil {
		st.GoVersion, _ = parseGopsVersion(v)
	}
	return st, nil
}

// parseGopsStats reads a gops agent's stats answer, lines of "name: value"
// ("goroutines: 12", "OS threads: 9", "GOMAXPROCS: 8", "num CPU: 8"). It
// needs a goroutine count of 1 or more; a figure that is not a count (a
// negative one) is left out.
func parseGopsStats(b []byte) (Stats, error) {
	var st Stats
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			continue
		}
		switch strings.TrimSpace(k) {
		case "goroutines":
			st.Goroutines = n
		case "OS threads":
			st.Threads = n
		case "GOMAXPROCS":
			if n <= math.MaxInt32 {
				st.GOMAXPROCS = int(n)
			}
		}
	}
	if st.Goroutines == 0 {
		return Stats{}, fmt.Errorf("stats without a goroutine count: %q", clipBytes(b, 80))
	}
	return st, nil
}

// Dump asks for a full goroutine dump (debug=2).
func (g *GopsFetcher) Dump(ctx context.Context) (io.ReadCloser, error) {
	return g.request(ctx, gopsStackTrace, 30*time.Second, 2*time.Minute)
}

// Trace asks for the agent's execution trace, which lasts 5s whatever d.
func (g *GopsFetcher) Trace(ctx context.Context, d time.Duration) (io.ReadCloser, time.Duration, error) {
	rc, err := g.request(ctx, gopsTrace, 5*time.Second, gopsTraceLength+time.Minute)
	return rc, gopsTraceLength, err
}

// GopsVersion asks the gops agent at addr its Go version: it tells whether
// addr is a gops agent. Safe to send to anything: one byte, then it reads.
func GopsVersion(ctx context.Context, addr string) (string, error) {
	g := &GopsFetcher{Addr: addr}
	rc, err := g.request(ctx, gopsVersion, time.Second, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 256))
	if err != nil {
		return "", err
	}
	v, err := parseGopsVersion(b)
	if err != nil {
		return "", fmt.Errorf("%s does not answer like a gops agent: %w", addr, err)
	}
	return v, nil
}

// parseGopsVersion reads a gops agent's answer to the version request:
// runtime.Version(), such as "go1.27.3" or "devel go1.28-0123abcd Tue Jan 6
// 10:00:00 2026 +0000", on one line of printable text.
func parseGopsVersion(b []byte) (string, error) {
	v := strings.TrimSpace(string(b))
	if !strings.HasPrefix(v, "go") && !strings.HasPrefix(v, "devel") || len(v) > 200 || !utf8.ValidString(v) ||
		strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' || r == '<' }) {
		return "", fmt.Errorf("%q is not a Go version", clipBytes(b, 60))
	}
	return v, nil
}

// GopsPortFile is where the gops agent of process pid writes its port:
// $GOPS_CONFIG_DIR/<pid>, else os.UserConfigDir()/gops/<pid> (as gops's
// internal.PIDFile).
func GopsPortFile(pid int) (string, error) {
	dir := os.Getenv("GOPS_CONFIG_DIR")
	if dir == "" {
		cfg, err := os.UserConfigDir()
		if err != nil {
			home := os.Getenv("HOME")
			if home == "" {
				return "", err
			}
			cfg = filepath.Join(home, ".config")
		}
		dir = filepath.Join(cfg, "gops")
	}
	return filepath.Join(dir, strconv.Itoa(pid)), nil
}

// GopsAddr returns the address of process pid's gops agent from its port
// file (the agent listens on 127.0.0.1 unless told otherwise, and gops
// itself connects there), and the file it read.
func GopsAddr(pid int) (addr, file string, err error) {
	file, err = GopsPortFile(pid)
	if err != nil {
		return "", "", err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", file, err
	}
	port, err := parseGopsPort(b)
	if err != nil {
		return "", file, fmt.Errorf("%s: %w", file, err)
	}
	return net.JoinHostPort("127.0.0.1", port), file, nil
}

// parseGopsPort reads a gops port file: the port, from 1 to 65535, in
// decimal digits (the agent writes strconv.Itoa of its port).
func parseGopsPort(b []byte) (string, error) {
	port := strings.TrimSpace(string(b))
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("not a port from 1 to 65535: %q", clipBytes(b, 40))
	}
	return port, nil
}

func clipBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// speaksHTTP reports whether addr answers an HTTP request: a target given
// as gops:// that is a web server waits in silence for a request line.
func speaksHTTP(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "HEAD / HTTP/1.0\r\n\r\n"); err != nil {
		return false
	}
	var b [5]byte
	_, err = io.ReadFull(conn, b[:])
	return err == nil && string(b[:]) == "HTTP/"
}
