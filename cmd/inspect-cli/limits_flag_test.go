package main

import (
	"strings"
	"testing"

	"github.com/inspectd/inspectd/internal/source/remote"
)

func TestParseMaxBytes(t *testing.T) {
	l, err := parseMaxBytes([]string{"snapshot=1GiB", "trace=500MB", "dump=2048k"})
	if err != nil {
		t.Fatal(err)
	}
	d := remote.DefaultLimits()
	if l.Snapshot != 1<<30 || l.TracePerSecond != 500e6 || l.Dump != 2<<20 || l.Event != d.Event || l.Profile != d.Profile {
		t.Errorf("got %+v", l)
	}
	l, err = parseMaxBytes([]string{"256MiB", "event=1G"})
	if err != nil || l.Snapshot != 256<<20 || l.Profile != 256<<20 || l.TracePerSecond != 256<<20 || l.Event != 1<<30 {
		t.Errorf("a size for all, then one: %+v, %v", l, err)
	}
	for _, bad := range []string{"snapshot=", "nope=1GiB", "1XB", "100", "-5MiB", "99999999999999999999", "9000000TiB"} {
		if _, err := parseMaxBytes([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// A cap set on the command line applies, and says which flag raises it.
func TestMaxBytesFlag(t *testing.T) {
	addr := startDaemon(t)
	_, errs, code := cli(t, "tasks", addr, "--max-bytes", "snapshot=4KiB", "--limit", "0", "--window", "1s")
	if code != 2 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "/api/v1/snapshot passed its cap of 4 KiB") || !strings.Contains(errs, "--max-bytes snapshot=SIZE") {
		t.Errorf("exit %d, stderr %q; want 2 and the snapshot cap in one line", code, errs)
	}
	if _, errs, code = cli(t, "tasks", addr, "--max-bytes", "snapshot=64MiB", "--window", "1s"); code != 0 {
		t.Errorf("under the cap: exit %d: %s", code, errs)
	}
	if _, errs, code = cli(t, "tasks", addr, "--max-bytes", "lots"); code != 2 || !strings.Contains(errs, `--max-bytes "lots"`) {
		t.Errorf("a bad size: exit %d, %q", code, errs)
	}
}
