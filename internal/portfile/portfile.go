// Package portfile keeps the files through which a process that serves the
// inspection API (inspectd, or a program embedding the agent) says where:
// one file per process in the user config dir's inspectd/agents, named
// after its pid and holding its address. `inspect-cli ps` and PID targets
// read them.
package portfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Dir is where the port files are.
func Dir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "inspectd", "agents"), nil
}

// Write writes this process' port file, holding addr, and returns its path.
func Write(addr string) (string, error) {
	if _, err := Parse([]byte(addr)); err != nil {
		return "", err
	}
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, strconv.Itoa(os.Getpid()))
	return path, os.WriteFile(path, []byte(addr), 0o644)
}

// maxSize bounds what is read of a port file: an address is short.
const maxSize = 1024

// Read returns the address in the port file of process pid, and the file's
// path (also with an error, when the file is there but does not hold an
// address: say which file).
func Read(pid int) (addr, path string, err error) {
	dir, err := Dir()
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, strconv.Itoa(pid))
	f, err := os.Open(path)
	if err != nil {
		return "", path, err
	}
	defer f.Close()
	b := make([]byte, maxSize+1)
	n, err := f.Read(b)
	if err != nil && err != io.EOF {
		return "", path, fmt.Errorf("%s: %w", path, err)
	}
	if n > maxSize {
		return "", path, fmt.Errorf("%s: more than %d bytes: not a port file", path, maxSize)
	}
	addr, err = Parse(b[:n])
	if err != nil {
		return "", path, fmt.Errorf("%s: %w", path, err)
	}
	return addr, path, nil
}

// Parse reads a port file's content: one host:port (spaces and a line end
// around it are allowed), the port from 1 to 65535. The error quotes what
// is wrong.
func Parse(b []byte) (string, error) {
	s := string(bytes.TrimSpace(b))
	if s == "" {
		return "", errors.New("empty: want host:port")
	}
	if len(s) > maxSize {
		return "", fmt.Errorf("%d bytes: want host:port", len(s))
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q: want host:port", clip(s))
	}
	if host == "" || !utf8.ValidString(host) || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '/' }) {
		return "", fmt.Errorf("%q: want a host name or address before the port", clip(s))
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("%q: want a port from 1 to 65535", clip(s))
	}
	return s, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	n := 64
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// RunIsolated runs a package's tests (testing.M) with the user config dir
// in a temporary directory, so that the daemons and agents they start write
// their port files there, not among the user's; it returns Run's code. A
// test binary that a test runs as a helper process keeps the config dir it
// was given, where the test looks for its port file.
func RunIsolated(m interface{ Run() int }) int {
	const isolated = "INSPECTD_TEST_CONFIG_ISOLATED"
	if os.Getenv(isolated) != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "inspectd-config")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	os.Setenv("XDG_CONFIG_HOME", dir)
	os.Setenv(isolated, "1")
	return m.Run()
}
