package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/spf13/cobra"
)

// FuzzProfileWeb serves pprof's web UI for any file a target's profile
// download left, as `inspect-cli profile --web` does (until ctrl-c: here
// the command is cut short at once): it never panics, serves what parses
// as a profile, and refuses anything else in one line, exit status 2,
// naming the file.
//
//	go test -run '^$' -fuzz '^FuzzProfileWeb$' -fuzztime 60s ./cmd/inspect-cli
func FuzzProfileWeb(f *testing.F) {
	for _, name := range []string{"goroutine", "heap"} {
		var buf bytes.Buffer
		if err := pprof.Lookup(name).WriteTo(&buf, 0); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte("<html><title>404</title></html>"))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Add([]byte{})
	dir := f.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // ctrl-c before it starts: serveWeb returns once it listens
	f.Fuzz(func(t *testing.T, in []byte) {
		file := filepath.Join(dir, "profile.pb.gz")
		if err := os.WriteFile(file, in, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := &cobra.Command{}
		cmd.SetContext(ctx)
		var out bytes.Buffer
		cmd.SetOut(&out)
		err := serveWeb(cmd, file)
		_, perr := profile.ParseData(in)
		var ce *cliError
		switch {
		case err == nil && perr != nil:
			t.Fatalf("served a file that is not a profile (%v)", perr)
		case err == nil && !strings.HasPrefix(out.String(), "flame graph: http://127.0.0.1:"):
			t.Fatalf("served, and said %q", out.String())
		case err != nil && (!errors.As(err, &ce) || ce.code != 2 || strings.Contains(ce.msg, "\n")):
			t.Fatalf("%#v: want one line and exit status 2", err)
		case err != nil && perr != nil && !strings.HasPrefix(ce.msg, file+": "):
			t.Fatalf("%q: want it to name %s", ce.msg, file)
		}
	})
}
