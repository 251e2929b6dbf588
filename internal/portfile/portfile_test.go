package portfile

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(RunIsolated(m)) }

// What Write writes, Read reads back; a file that holds no address is an
// error naming the file.
func TestWriteRead(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:7777", "[::1]:1", "localhost:65535"} {
		path, err := Write(addr)
		if err != nil {
			t.Fatalf("Write(%q): %v", addr, err)
		}
		got, file, err := Read(os.Getpid())
		if err != nil || got != addr || file != path {
			t.Errorf("Read after Write(%q): %q, %s, %v; want it back from %s", addr, got, file, err, path)
		}
	}
	if _, err := Write("127.0.0.1:0"); err == nil {
		t.Error("Write of port 0")
	}
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	for content, want := range map[string]string{
		"":                        "empty",
		"7777":                    "want host:port",
		"127.0.0.1:+80":           "want a port from 1 to 65535",
		"127.0.0.1:99999":         "want a port from 1 to 65535",
		"\x1bx:80":                "want a host name",
		strings.Repeat("x", 5000): "not a port file",
	} {
		if err := os.WriteFile(filepath.Join(dir, "1"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, file, err := Read(1)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), file+": ") {
			t.Errorf("port file %.20q: %v; want an error of %s that says %q", content, err, file, want)
		}
	}
	if _, file, err := Read(2); !os.IsNotExist(err) || file != filepath.Join(dir, strconv.Itoa(2)) {
		t.Errorf("no port file: %s, %v", file, err)
	}
}

// FuzzParse reads any port file's content: an address it accepts is
// host:port with a port from 1 to 65535, reads back as itself, and is what
// Write would write; an error says what it wants.
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 60s ./internal/portfile
func FuzzParse(f *testing.F) {
	for _, s := range []string{"127.0.0.1:7777", "[::1]:8080\n", "  localhost:1  ", "127.0.0.1:0", "127.0.0.1:+80",
		"127.0.0.1:65536", ":80", "a:b:80", "[::1]", "host name:80", "\xff:80", "127.0.0.1:0x50", "127.0.0.1:1_0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		addr, err := Parse(b)
		if err != nil {
			if !strings.Contains(err.Error(), "want") {
				t.Fatalf("error %q says nothing of what is wanted", err)
			}
			return
		}
		host, port, err := net.SplitHostPort(addr)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 || strings.TrimSpace(addr) != addr {
			t.Fatalf("accepted %q: host %q port %q (%v, %v)", addr, host, port, err, perr)
		}
		if again, err := Parse([]byte(addr)); err != nil || again != addr {
			t.Fatalf("%q reads back as %q, %v", addr, again, err)
		}
	})
}
