package main

// What inspect-cli reads from a target is capped per download (--max-bytes):
// a target that answers without end, or with an answer built to blow up its
// parser, costs a cap, not the machine.

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/format"
	"github.com/inspectd/inspectd/internal/source/remote"
)

const maxBytesHelp = `caps on what is read from the target, per download: SIZE for all, or KIND=SIZE, KIND one of
snapshot (a JSON answer of the inspection API), event (one update of its watch stream),
profile, dump (a goroutine dump), trace (per second traced); SIZE as 64MiB, 2GiB, 500MB or
bytes (default snapshot=64MiB,event=64MiB,profile=64MiB,dump=96MiB,trace=128MiB a second);
past a cap the command stops with one line and exit status 2`

// parseMaxBytes reads --max-bytes values into the limits.
func parseMaxBytes(vals []string) (remote.Limits, error) {
	l := remote.DefaultLimits()
	for _, v := range vals {
		kind, size, ok := strings.Cut(v, "=")
		if !ok {
			size, kind = kind, ""
		}
		n, err := parseSize(size)
		if err != nil {
			return l, failf(2, "--max-bytes %q: %v", v, err)
		}
		if kind == "" {
			for _, k := range remote.CapKinds {
				l.Set(k, n)
			}
			continue
		}
		if !l.Set(kind, n) {
			return l, failf(2, "--max-bytes %q: no download %q: want one of %s", v, kind, strings.Join(remote.CapKinds, ", "))
		}
	}
	return l, nil
}

// parseSize reads a size: digits, then a unit (B, KB, MB, GB of 1000;
// KiB, MiB, GiB, or K, M, G, of 1024), 1 KiB at least.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("want a size such as 512MiB, 2GiB or 100000000")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is too large", s[:i])
	}
	units := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1e3, "m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9, "t": 1 << 40, "tib": 1 << 40, "tb": 1e12}
	u, ok := units[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q: want B, KiB, MiB, GiB, KB, MB or GB", s[i:])
	}
	if n > (1<<62)/u {
		return 0, fmt.Errorf("%s is too large", s)
	}
	if n*u < 1<<10 {
		return 0, fmt.Errorf("want 1KiB or more")
	}
	return n * u, nil
}

// capHint is the flag that raises the cap e hit.
func capHint(e *remote.LimitError) string {
	return fmt.Sprintf("--max-bytes %s=SIZE raises it", e.Kind)
}

// failLimit is the one line of a download past its cap.
func failLimit(target string, e *remote.LimitError) error {
	how := e.Kind + " cap"
	if e.Kind == remote.CapTrace {
		how += ", per second traced"
	}
	if e.Records {
		how += ", counting what its records cost to parse"
	}
	return failf(2, "%s: %s passed its cap of %s (%s): %s", target, e.What, format.Bytes(e.Limit), how, capHint(e))
}

// unexpected is an answer of the target that is not what was asked for:
// it answered (it can be reached), with something else.
type unexpected struct {
	path, contentType, want string
}

func (u *unexpected) Error() string {
	ct := u.contentType
	if ct == "" {
		ct = "no Content-Type"
	}
	return fmt.Sprintf("answered %s with %s, not %s", u.path, ct, u.want)
}

// capTransport caps the bodies of the answers of the inspection API (JSON
// and the watch stream) and refuses a watch answer that is not an event
// stream.
type capTransport struct {
	base http.RoundTripper
	lim  remote.Limits
}

func (c *capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil || resp.StatusCode >= 300 {
		return resp, err
	}
	path := req.URL.Path
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case strings.HasSuffix(path, "/api/v1/watch"):
		if mt != "text/event-stream" {
			resp.Body.Close()
			return nil, &unexpected{path: path, contentType: ct, want: "an event stream (text/event-stream)"}
		}
		resp.Body = remote.Limit(resp.Body, c.lim.Event, remote.CapEvent, "an update of "+path, remote.ParseEvents)
	case strings.Contains(path, "/api/"):
		resp.Body = remote.Limit(resp.Body, c.lim.Snapshot, remote.CapSnapshot, path, remote.ParseJSON)
	}
	return resp, nil
}

// client is an API client of base whose answers are capped.
func (e *env) client(base string) *api.Client {
	c := api.NewClient(base, e.token)
	c.HTTP = &http.Client{Timeout: c.HTTP.Timeout, Transport: &capTransport{base: c.HTTP.Transport, lim: e.limits}}
	return c
}

// streamClient is the client of a watch stream: no overall timeout (it
// lasts), each event capped.
func (e *env) streamClient() *http.Client {
	return &http.Client{Transport: &capTransport{base: http.DefaultTransport.(*http.Transport).Clone(), lim: e.limits}}
}

// notAnswer says how err shows that the target answered, but not with what
// was asked for (garbage, a web page, a JSON of something else), as
// opposed to not answering at all; ok is false for other errors.
func notAnswer(err error) (string, bool) {
	var u *unexpected
	if errors.As(err, &u) {
		return u.Error(), true
	}
	msg := oneLine(err)
	// tui.Stream: an event whose data is not an update.
	if why, ok := strings.CutPrefix(msg, "decoding update: "); ok {
		return fmt.Sprintf("answered /api/v1/watch with an event stream whose updates are not the inspection API's JSON (%s)", clip(why, 100)), true
	}
	// api.Client.Do: "URL: decoding answer: why".
	if i := strings.Index(msg, ": decoding answer: "); i >= 0 {
		path := msg[:i]
		if pu, perr := url.Parse(path); perr == nil && pu.Path != "" {
			path = pu.Path
		}
		return fmt.Sprintf("answered %s, but not with the inspection API's JSON (%s)", path, clip(msg[i+len(": decoding answer: "):], 100)), true
	}
	return "", false
}
