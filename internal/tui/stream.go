package tui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/inspectd/inspectd/internal/api"
)

// ConnState is the state of the watch stream.
type ConnState int

const (
	Connecting   ConnState = iota // before the first connection
	Connected                     // receiving updates
	Reconnecting                  // lost, retrying with backoff
)

func (s ConnState) String() string {
	switch s {
	case Connected:
		return "connected"
	case Reconnecting:
		return "reconnecting"
	}
	return "connecting"
}

// UpdateMsg is one update of the watch stream.
type UpdateMsg struct{ Update api.Update }

// ConnMsg reports a change of the stream's connection.
type ConnMsg struct {
	State ConnState
	Err   error         // why the stream is down (Reconnecting), or an error event
	Retry time.Duration // Reconnecting: the wait before the next attempt
	// After a reconnection: how long the stream was down and how many
	// updates that cost (down / interval).
	Reconnected bool
	Down        time.Duration
	Lost        int64
}

// Stream follows GET /api/v1/watch (server-sent events), reconnecting with
// backoff, and delivers UpdateMsg and ConnMsg values on C.
type Stream struct {
	Base, Token string
	Interval    time.Duration
	Window      time.Duration
	HTTP        *http.Client // no overall timeout: the stream is long-lived
	C           chan tea.Msg

	MinBackoff, MaxBackoff time.Duration

	mu        sync.Mutex
	query     api.Query          // what the stream asks the target to select
	requeried bool               // the connection ended for a new query
	cancel    context.CancelFunc // ends the current connection
}

// SetQuery has the stream ask the target for the tasks q selects: the
// current connection ends and the next one asks for q (its first update
// is full).
func (s *Stream) SetQuery(q api.Query) {
	s.mu.Lock()
	if s.query == q {
		s.mu.Unlock()
		return
	}
	s.query, s.requeried = q, true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// NewStream returns a stream of the target at base (as api.Client.Base).
func NewStream(base, token string, interval, window time.Duration) *Stream {
	return &Stream{
		Base: base, Token: token, Interval: interval, Window: window,
		HTTP: &http.Client{}, C: make(chan tea.Msg, 1),
		MinBackoff: 250 * time.Millisecond, MaxBackoff: 5 * time.Second,
	}
}

// Listen is the command that waits for the next message of s; the model
// issues it again after each.
func Listen(c <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		msg, ok := <-c
		if !ok {
			return nil
		}
		return msg
	}
}

// Run connects and reconnects until ctx ends. It closes C when it returns.
func (s *Stream) Run(ctx context.Context) {
	defer close(s.C)
	backoff := s.MinBackoff
	var downSince time.Time
	for ctx.Err() == nil {
		conn, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		s.cancel, s.requeried = cancel, false
		s.mu.Unlock()
		got, err := s.follow(conn, func() {
			// The first update of a connection arrived.
			if downSince.IsZero() {
				s.send(ctx, ConnMsg{State: Connected})
				return
			}
			down := time.Since(downSince)
			s.send(ctx, ConnMsg{State: Connected, Reconnected: true, Down: down, Lost: int64(down / s.Interval)})
		})
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		requeried := s.requeried
		s.mu.Unlock()
		if requeried {
			continue // a new query: at once, and no outage
		}
		if got {
			// Lost after updates: count the outage from now. A target
			// never reached yet leaves downSince zero, so the first
			// connection is not called a reconnection.
			backoff = s.MinBackoff
			downSince = time.Now()
		}
		s.send(ctx, ConnMsg{State: Reconnecting, Err: err, Retry: backoff})
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.MaxBackoff)
	}
}

func (s *Stream) send(ctx context.Context, m tea.Msg) {
	select {
	case s.C <- m:
	case <-ctx.Done():
	}
}

// follow reads one connection until it ends; got says whether it delivered
// an update. first runs before the first update is sent.
func (s *Stream) follow(ctx context.Context, first func()) (got bool, err error) {
	s.mu.Lock()
	q := s.query.Values()
	s.mu.Unlock()
	q.Set("interval", s.Interval.String())
	q.Set("window", s.Window.String())
	req, err := http.NewRequestWithContext(ctx, "GET", s.Base+"/api/v1/watch?"+q.Encode(), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var e api.Error
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return false, fmt.Errorf("%s: %d %s", req.URL.Path, resp.StatusCode, msg)
	}
	err = ReadEvents(resp.Body, func(event string, data []byte) error {
		switch event {
		case "update":
			var u api.Update
			if err := json.Unmarshal(data, &u); err != nil {
				return fmt.Errorf("decoding update: %w", err)
			}
			if !got {
				got = true
				first()
			}
			s.send(ctx, UpdateMsg{Update: u})
		case "error":
			var e api.Error
			_ = json.Unmarshal(data, &e)
			s.send(ctx, ConnMsg{State: Connected, Err: errors.New(e.Error)})
		}
		return ctx.Err()
	})
	if err == nil {
		err = errors.New("stream closed by the target")
	}
	return got, err
}

// ReadEvents parses server-sent events ("event: NAME" and "data: ..." lines,
// an empty line ends an event) and calls fn for each. Lines have no length
// limit: a full update of 100,000 tasks is one long data line.
func ReadEvents(r io.Reader, fn func(event string, data []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	event := ""
	var data []byte
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			switch {
			case len(line) == 0:
				if data != nil {
					if event == "" {
						event = "message"
					}
					if ferr := fn(event, data); ferr != nil {
						return ferr
					}
				}
				event, data = "", nil
			case line[0] == ':':
			case bytes.HasPrefix(line, []byte("event:")):
				event = string(bytes.TrimSpace(line[len("event:"):]))
			case bytes.HasPrefix(line, []byte("data:")):
				d := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
				if data != nil {
					data = append(data, '\n')
				} else {
					data = []byte{}
				}
				data = append(data, d...)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
