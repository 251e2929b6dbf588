package dump_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/inspectd/inspectd/internal/dump"
	"github.com/inspectd/inspectd/internal/stack"
)

// FuzzParseDump checks that the parser never panics, that its two entry points
// agree, that what it returns is well formed, and that cutting the input
// yields a prefix of the goroutines.
//
//	go test -run x -fuzz FuzzParseDump -fuzztime 60s ./internal/dump
//
// Inputs that broke it are kept in testdata/fuzz/FuzzParseDump.
func FuzzParseDump(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/dumps/*.txt")
	crash, _ := filepath.Glob("testdata/crash/*.txt")
	for _, name := range append(seeds, crash...) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		// Small seeds fuzz faster: the head and the tail of each file.
		f.Add(b[:min(len(b), 4096)])
		f.Add(b[max(0, len(b)-4096):])
	}
	for _, s := range []string{
		"",
		"goroutine 7 [chan receive, 3 minutes, locked to thread] {a: b, \"c d\": \"e\\\"f\\x00\\u00e9\"}:\nmain.f(...)\n\t/a.go:1\n...2 frames elided...\ncreated by main.g in goroutine 1\n\t/a.go:2 +0x1\n",
		"goroutine 7 [select (leaked) labels:{\"a\": \"b]\"}]:\nmain.f()\n\t/a.go:1 +0x1\n[originating from goroutine 3]:\nmain.h(...)\n\t/a.go:5 +0x1\ncreated by main.i\n\t/a.go:6 +0x1\n",
		"panic: x\n\ngoroutine 1 gp=0x1 m=0 mp=0x2 [running]:\n\tgoroutine running on other thread; stack unavailable\nrax    0x0\n-----\n\nSIGQUIT: quit\nexit status 2\n",
		"goroutine 5 [syscall]:\nnon-Go function at pc=0x1\nC.f\n\tpc=0x2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		gs, err := dump.ParseDumpBytes(in)
		gs2, err2 := dump.ParseDump(bytes.NewReader(in))
		if !reflect.DeepEqual(gs, gs2) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("ParseDump and ParseDumpBytes disagree:\n%d goroutines, %v\n%d goroutines, %v", len(gs), err, len(gs2), err2)
		}
		if err == nil && len(gs) == 0 {
			t.Fatal("no goroutines and no error")
		}
		if err != nil {
			var pe *dump.ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Line > bytes.Count(in, []byte("\n"))+1 || pe.More < 0 {
				t.Fatalf("error %#v", err)
			}
		}
		for _, g := range gs {
			checkGoroutine(t, g, err)
		}
		// A cut gives a prefix.
		cut := len(in) / 2
		if len(in) > 0 {
			cut = int(in[0]) * len(in) / 256
		}
		part, _ := dump.ParseDumpBytes(in[:cut])
		if msg := dumpPrefixOf(part, gs); msg != "" {
			t.Fatalf("cut at %d: %s", cut, msg)
		}
	})
}

func checkGoroutine(t *testing.T, g dump.Goroutine, err error) {
	t.Helper()
	bad := func(what string) { t.Fatalf("%s: %+v", what, g) }
	if g.ID <= 0 || g.ParentID < 0 || g.Bubble < 0 || g.WaitMinutes < 0 {
		bad("negative number")
	}
	if g.Status == "" || g.State < stack.Running || g.State > stack.Syscall {
		bad("no status or state")
	}
	if (g.State == stack.Waiting) != (g.WaitReason != "") || g.State == stack.Waiting && g.WaitReason != g.Status {
		bad("wait reason")
	}
	if len(g.Frames) == 0 && !g.StackUnavailable && err == nil {
		bad("no frames and no error")
	}
	for _, f := range g.Frames {
		if f.Func == "" || f.Line < 0 {
			bad("frame without function")
		}
	}
	if g.CreatedBy.Func == "" && !g.CreatedBy.IsZero() || g.ParentID != 0 && g.CreatedBy.IsZero() {
		bad("created by")
	}
	for _, a := range g.Ancestors {
		if a.ID < 0 {
			bad("ancestor id")
		}
		for _, f := range a.Frames {
			if f.Func == "" {
				bad("ancestor frame without function")
			}
		}
	}
	_ = g.Location()
}
