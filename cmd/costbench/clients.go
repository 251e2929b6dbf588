//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newHTTPClient returns a client that counts the bytes as sent: it asks for
// no compression (nothing here compresses anyway).
func newHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableCompression:  true,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
	}}
}

// fetched is one answer read whole.
type fetched struct {
	took       time.Duration // from the request to the last byte
	bytes      int64
	head       []byte // the first bytes
	goroutines int    // lines that start with "goroutine ", in a text dump
}

// fetch GETs url and reads its body to the end.
func fetch(ctx context.Context, c *http.Client, url string) (fetched, error) {
	began := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fetched{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fetched{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fetched{}, fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return readAll(resp.Body, began)
}

// readAll reads r to its end, counting.
func readAll(r io.Reader, began time.Time) (fetched, error) {
	var cw countWriter
	_, err := io.Copy(&cw, r)
	if err != nil {
		return fetched{}, fmt.Errorf("reading the answer after %d bytes: %w", cw.n, err)
	}
	return fetched{took: time.Since(began), bytes: cw.n, head: cw.head, goroutines: cw.goroutines}, nil
}

// countWriter counts bytes, keeps the first 512, and counts the lines that
// start with "goroutine " (the headers of a goroutine dump).
type countWriter struct {
	n          int64
	head       []byte
	goroutines int
	matched    int // bytes of "goroutine " matched at the current line's start; -1: not at a line start
}

var dumpHeader = []byte("goroutine ")

func (w *countWriter) Write(p []byte) (int, error) {
	if len(w.head) < 512 {
		w.head = append(w.head, p[:min(len(p), 512-len(w.head))]...)
	}
	w.n += int64(len(p))
	for _, c := range p {
		switch {
		case c == '\n':
			w.matched = 0
		case w.matched < 0:
		case c == dumpHeader[w.matched]:
			w.matched++
			if w.matched == len(dumpHeader) {
				w.goroutines++
				w.matched = -1
			}
		default:
			w.matched = -1
		}
	}
	return len(p), nil
}

// loadGen is a closed loop of HTTP clients: each sends its next request as
// soon as the last one is answered, over a kept-alive connection.
type loadGen struct {
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	recording atomic.Bool
	clients   []*loadClient
	failed    atomic.Int64
	lastErr   atomic.Value // error
}

type loadClient struct {
	mu  sync.Mutex
	lat []time.Duration
}

func startLoad(ctx context.Context, url string, clients int) *loadGen {
	ctx, cancel := context.WithCancel(ctx)
	l := &loadGen{cancel: cancel}
	hc := newHTTPClient(clients)
	for range clients {
		c := &loadClient{}
		l.clients = append(l.clients, c)
		l.wg.Go(func() {
			for ctx.Err() == nil {
				began := time.Now()
				_, err := fetch(ctx, hc, url)
				took := time.Since(began)
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					l.failed.Add(1)
					l.lastErr.Store(err)
					time.Sleep(10 * time.Millisecond)
				case l.recording.Load():
					c.mu.Lock()
					c.lat = append(c.lat, took)
					c.mu.Unlock()
				}
			}
		})
	}
	return l
}

// record starts keeping latencies; take returns those kept and stops.
func (l *loadGen) record() { l.recording.Store(true) }

func (l *loadGen) take() []time.Duration {
	l.recording.Store(false)
	var all []time.Duration
	for _, c := range l.clients {
		c.mu.Lock()
		all = append(all, c.lat...)
		c.lat = nil
		c.mu.Unlock()
	}
	return all
}

// err says whether requests failed.
func (l *loadGen) err() error {
	if n := l.failed.Load(); n > 0 {
		return fmt.Errorf("%d requests failed, the last: %v", n, l.lastErr.Load())
	}
	return nil
}

func (l *loadGen) stop() {
	l.cancel()
	l.wg.Wait()
}

// watcher follows a server-sent event stream (GET /api/v1/watch), reads
// every event and keeps only their sizes.
type watcher struct {
	cancel  context.CancelFunc
	done    chan struct{}
	began   time.Time
	mu      sync.Mutex
	updates []watchUpdate
	bytes   int64 // of the stream's body so far
	err     error // why the stream ended, once done is closed
	lastErr string
}

// watchUpdate is one "update" event.
type watchUpdate struct {
	at     time.Time
	bytes  int    // of its data (the JSON of the update)
	full   bool   // the update says "full": every task
	source string // what the snapshot behind it was built from
	time   string // the snapshot's time: updates that share one carry the same
	// window: it has a window of trace (window_ns above 0); without one,
	// it says that the target records and has none yet.
	window bool
	// traced is the share of the window asked for (watchWindow) the target
	// traced (the overhead budget's doing); 0 without a window.
	traced float64
}

// updateWindow reads an update's window_ns off its start; updateObserved
// its observed_ns off its end.
var (
	updateWindow   = regexp.MustCompile(`"window_ns":\s*([0-9]+)`)
	updateObserved = regexp.MustCompile(`"observed_ns":\s*([0-9]+)`)
)

// tracedShare is the share of the window the watch asks for (watchWindow)
// that an update's target traced, from the start and the end of its JSON:
// its observed_ns, or its window_ns when the whole of that was traced.
func tracedShare(head, tail []byte) float64 {
	traced, err := strconv.ParseFloat(headField(updateObserved, tail), 64)
	if err != nil {
		// observed_ns is left out when the whole window was traced
		traced, _ = strconv.ParseFloat(headField(updateWindow, head), 64)
	}
	return min(traced/float64(watchWindow), 1)
}

// startWatch connects to url and follows it until stop.
func startWatch(ctx context.Context, url string) (*watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel, done: make(chan struct{}), began: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := newHTTPClient(1).Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watching %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("watching %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	go func() {
		defer close(w.done)
		defer resp.Body.Close()
		err := w.follow(resp.Body)
		if ctx.Err() != nil {
			err = nil
		}
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}()
	return w, nil
}

// follow parses events ("event: NAME", "data: ...", a blank line) without
// holding a whole one: a full update of 100,000 tasks is tens of MB.
func (w *watcher) follow(body io.Reader) error {
	br := bufio.NewReaderSize(body, 1<<20)
	var (
		event   string
		data    int
		head    []byte
		tail    []byte // the last bytes of the data
		inData  bool
		atStart = true
	)
	for {
		chunk, err := br.ReadSlice('\n')
		w.mu.Lock()
		w.bytes += int64(len(chunk))
		w.mu.Unlock()
		if atStart {
			switch {
			case bytes.HasPrefix(chunk, []byte("event: ")):
				event, inData = string(bytes.TrimSpace(chunk[len("event: "):])), false
			case bytes.HasPrefix(chunk, []byte("data: ")):
				inData = true
				chunk = chunk[len("data: "):]
				head = append(head[:0], chunk[:min(len(chunk), 256)]...)
				tail = tail[:0]
			case len(bytes.TrimSpace(chunk)) == 0 && err == nil:
				w.event(event, data, head, tail)
				event, data, inData = "", 0, false
			default:
				inData = false
			}
		}
		if inData {
			data += len(bytes.TrimRight(chunk, "\n"))
			const keep = 512
			tail = append(tail, chunk[max(0, len(chunk)-keep):]...)
			tail = tail[max(0, len(tail)-keep):]
		}
		atStart = err == nil // a line longer than the buffer continues
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return errors.New("the target closed the stream")
		case err != nil:
			return err
		}
	}
}

func (w *watcher) event(name string, size int, head, tail []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch name {
	case "update":
		w.updates = append(w.updates, watchUpdate{at: time.Now(), bytes: size, full: bytes.Contains(head, []byte(`"full":true`)), source: headField(snapshotSource, head), time: headField(snapshotTime, head),
			window: strings.TrimLeft(headField(updateWindow, head), "0") != "", traced: tracedShare(head, tail)})
	case "error":
		w.lastErr = clip(string(head), 200)
	}
}

// counts are the updates and bytes received so far.
func (w *watcher) counts() (updates int, n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.updates), w.bytes
}

// traced is the median share of their windows the target traced, over the
// updates from the from-th on that have a window; 0 if none has.
func (w *watcher) traced(from int) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var shares []float64
	for _, u := range w.updates[min(from, len(w.updates)):] {
		if u.window {
			shares = append(shares, u.traced)
		}
	}
	if len(shares) == 0 {
		return 0
	}
	return median(shares)
}

// first is how long after connecting the first update came, 0 if none has.
func (w *watcher) first() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.updates) == 0 {
		return 0
	}
	return w.updates[0].at.Sub(w.began)
}

// firstWindow is how long after connecting the first update with a
// window of trace came, 0 if none has.
func (w *watcher) firstWindow() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range w.updates {
		if u.window {
			return u.at.Sub(w.began)
		}
	}
	return 0
}

// longestGap is the longest time without an update, from connecting to
// now.
func (w *watcher) longestGap() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, gap := w.began, time.Duration(0)
	for _, u := range w.updates {
		gap = max(gap, u.at.Sub(last))
		last = u.at
	}
	return max(gap, time.Since(last))
}

// failure says why the stream ended before stop, if it did.
func (w *watcher) failure() error {
	select {
	case <-w.done:
	default:
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		return nil
	}
	if w.lastErr != "" {
		return fmt.Errorf("%w (its last error event: %s)", w.err, w.lastErr)
	}
	return w.err
}

// stop closes the stream and returns the updates received.
func (w *watcher) stop() []watchUpdate {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.updates
}
