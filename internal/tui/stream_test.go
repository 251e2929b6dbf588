package tui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/inspectd/inspectd/internal/api"
)

func TestReadEvents(t *testing.T) {
	in := ": comment\r\nevent: update\r\ndata: {\"seq\":1}\r\n\r\nevent: error\ndata: a\ndata: b\n\ndata: plain\n\nevent: update\ndata: cut"
	var got []string
	err := ReadEvents(strings.NewReader(in), func(event string, data []byte) error {
		got = append(got, event+"="+string(data))
		return nil
	})
	want := []string{`update={"seq":1}`, "error=a\nb", "message=plain"}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

func TestStreamReconnects(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/watch" || r.URL.Query().Get("interval") != "100ms" || r.URL.Query().Get("window") != "1s" {
			http.Error(w, "bad request "+r.URL.String(), 400)
			return
		}
		n := conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		b, _ := json.Marshal(api.Update{Seq: 1, Full: true, Tasks: []api.Task{{ID: int64(n), State: "running"}}})
		fmt.Fprintf(w, "event: update\ndata: %s\n\n", b)
		w.(http.Flusher).Flush()
		if n == 1 {
			return // drop the first connection after one update
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	s := NewStream(srv.URL, "", 100*time.Millisecond, time.Second)
	s.MinBackoff = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	next := func() tea.Msg {
		select {
		case m := <-s.C:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no message from the stream")
			return nil
		}
	}
	if m, ok := next().(ConnMsg); !ok || m.State != Connected || m.Reconnected {
		t.Errorf("first: %#v, want connected", m)
	}
	if m, ok := next().(UpdateMsg); !ok || m.Update.Tasks[0].ID != 1 {
		t.Errorf("second: %#v, want the update of connection 1", m)
	}
	if m, ok := next().(ConnMsg); !ok || m.State != Reconnecting || m.Err == nil {
		t.Errorf("third: %#v, want reconnecting with an error", m)
	}
	if m, ok := next().(ConnMsg); !ok || m.State != Connected || !m.Reconnected || m.Down <= 0 {
		t.Errorf("fourth: %#v, want reconnected", m)
	}
	if m, ok := next().(UpdateMsg); !ok || m.Update.Tasks[0].ID != 2 {
		t.Errorf("fifth: %#v, want the update of connection 2", m)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, ok := <-s.C; ok {
		t.Error("C not closed")
	}
}

// FuzzReadEvents feeds the stream parser arbitrary bytes (it must not
// panic, whatever a target sends) and, split from them, an event it must
// read back as written: name, and data lines joined by newlines.
func FuzzReadEvents(f *testing.F) {
	f.Add("update", "{\"seq\":1}", []byte("event: update\ndata: {}\n\n"))
	f.Add("error", "a\nb", []byte(": c\r\ndata:x\r\n\r\nevent:\n\n"))
	f.Add("update", " lead", []byte("data"))
	f.Fuzz(func(t *testing.T, name, data string, raw []byte) {
		_ = ReadEvents(bytes.NewReader(raw), func(string, []byte) error { return nil })

		name = strings.TrimSpace(name)
		if name == "" || strings.ContainsAny(name, "\r\n") || strings.ContainsRune(data, '\r') {
			return
		}
		var in strings.Builder
		fmt.Fprintf(&in, "event: %s\n", name)
		for line := range strings.SplitSeq(data, "\n") {
			fmt.Fprintf(&in, "data: %s\n", line)
		}
		in.WriteString("\n")
		var got []string
		err := ReadEvents(strings.NewReader(in.String()), func(event string, d []byte) error {
			got = append(got, event, string(d))
			return nil
		})
		if err != nil || len(got) != 2 || got[0] != name || got[1] != data {
			t.Fatalf("read %q back as %q (err %v)", in.String(), got, err)
		}
	})
}
