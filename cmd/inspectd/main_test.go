package main

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A port in use is a usage error: exit status 2, with one line that says
// which flag chooses another; so is a gops address in use.
func TestPortInUseExits2(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--listen", busy, "--gops-addr", "off"}, []string{"listen on " + busy, "address already in use", "--listen"}},
		{[]string{"--listen", "127.0.0.1:0", "--gops-addr", busy}, []string{"gops agent on " + busy, "address already in use", "--gops-addr"}},
	} {
		cmd := exec.Command(inspectdBinary(t), append(c.args, "--workloads", "none")...)
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("inspectd %s: %v; want exit status 2\n%s", strings.Join(c.args, " "), err, out)
			continue
		}
		last := strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(last, '\n'); i >= 0 {
			last = last[i+1:]
		}
		for _, w := range c.want {
			if !strings.Contains(last, w) {
				t.Errorf("inspectd %s: last line %q lacks %q", strings.Join(c.args, " "), last, w)
			}
		}
	}
}
