package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Client talks to an inspectd daemon or an embedded agent.
type Client struct {
	// Base is the target's URL, e.g. http://127.0.0.1:7777.
	Base  string
	Token string
	HTTP  *http.Client
}

// NewClient returns a client for base ("127.0.0.1:7777" or a full URL).
func NewClient(base, token string) *Client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 60 * time.Second, Transport: NewTransport(AnswerTimeout)}}
}

// AnswerTimeout bounds the wait for the headers of an answer that is not a
// capture: a snapshot of a million goroutines is built in seconds, and a
// port that accepts connections but never answers must not hold a client
// for its whole timeout.
const AnswerTimeout = 30 * time.Second

// NewTransport is http.DefaultTransport's settings with a bound on the wait
// for an answer's headers (zero: none).
func NewTransport(answer time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = answer
	return t
}

// IsAnswerTimeout reports whether err is a target's silence past the
// transport's bound on the wait for an answer (NewTransport): it accepted
// the connection but sent nothing.
func IsAnswerTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout() && strings.Contains(err.Error(), "awaiting response headers")
}

// StatusError is an error answer of the API.
type StatusError struct {
	Code    int
	Message string
	URL     string
	// NotAPI: the answer is not the API's JSON error (another server's
	// page, net/http's "404 page not found"); Message sums it up.
	NotAPI bool
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.URL, e.Code, http.StatusText(e.Code), e.Message)
}

// Do sends a request and decodes a JSON answer into out (unless out is nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return statusError(req, resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: decoding answer: %w", req.URL.Redacted(), err)
	}
	return nil
}

// statusError reads an error answer: the API's JSON error, or a summary
// of whatever else the target sent.
func statusError(req *http.Request, resp *http.Response) *StatusError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e Error
	notAPI := json.Unmarshal(b, &e) != nil || e.Error == ""
	if notAPI {
		e.Error = sumUp(b)
	} else if e.Error = printableLine(e.Error); e.Error == "" {
		e.Error = "an error without a message"
	}
	return &StatusError{Code: resp.StatusCode, Message: e.Error, URL: req.URL.Redacted(), NotAPI: notAPI}
}

// sumUp is one line for an answer body that is not the API's: an HTML
// page's title, else its first line of text, clipped.
func sumUp(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	// Only ASCII letters fold here, so that an index in lower is one in s
	// (strings.ToLower may change the length of other text).
	lower := bytes.ToLower([]byte(asciiOnly(s)))
	if i := bytes.Index(lower, []byte("<title>")); i >= 0 {
		rest, restLower := s[i+len("<title>"):], lower[i+len("<title>"):]
		if j := bytes.Index(restLower, []byte("</title>")); j >= 0 {
			s = "a page titled " + strconv.Quote(strings.Join(strings.Fields(rest[:j]), " "))
		}
	} else if strings.HasPrefix(s, "<") {
		s = "an HTML page"
	}
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = printableLine(s)
	if len(s) > 120 {
		s = clip(s, 120) + "..."
	}
	if s == "" {
		s = "an empty answer"
	}
	return s
}

// asciiOnly is s with every byte that is not ASCII replaced by '?': the
// same length, and no byte of a multi-byte character can fold into ASCII.
func asciiOnly(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 0x80 {
			b[i] = '?'
		}
	}
	return string(b)
}

// printableLine is s as one line a terminal shows as it is: control
// characters (escape sequences, carriage returns, newlines) become spaces,
// invalid UTF-8 the replacement character.
func printableLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return strings.TrimSpace(s)
}

// clip cuts s to at most n bytes, between two characters.
func clip(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Workloads lists the lab's workloads.
func (c *Client) Workloads(ctx context.Context) ([]Workload, error) {
	var l WorkloadList
	err := c.Do(ctx, "GET", "/api/v1/workloads", nil, &l)
	return l.Workloads, err
}

// StartWorkload starts a workload with raw parameter values.
func (c *Client) StartWorkload(ctx context.Context, name string, params map[string]any) (Workload, error) {
	var w Workload
	err := c.Do(ctx, "POST", "/api/v1/workloads/"+url.PathEscape(name)+"/start", StartRequest{Params: params}, &w)
	return w, err
}

// StopWorkload stops a workload.
func (c *Client) StopWorkload(ctx context.Context, name string) (Workload, error) {
	var w Workload
	err := c.Do(ctx, "POST", "/api/v1/workloads/"+url.PathEscape(name)+"/stop", nil, &w)
	return w, err
}

// Workload fetches one workload of the lab.
func (c *Client) Workload(ctx context.Context, name string) (Workload, error) {
	var w Workload
	err := c.Do(ctx, "GET", "/api/v1/workloads/"+url.PathEscape(name), nil, &w)
	return w, err
}

// ChangeParams restarts a running workload with new raw parameter values;
// those params does not name keep theirs.
func (c *Client) ChangeParams(ctx context.Context, name string, params map[string]any) (Workload, error) {
	var w Workload
	err := c.Do(ctx, "POST", "/api/v1/workloads/"+url.PathEscape(name)+"/params", StartRequest{Params: params}, &w)
	return w, err
}

// Findings fetches GET /api/v1/findings: the findings of the target's own
// diagnosis, now.
func (c *Client) Findings(ctx context.Context) (*FindingList, error) {
	var l FindingList
	if err := c.Do(ctx, "GET", "/api/v1/findings", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// windowQuery formats the window query parameter ("" for the server's default).
func windowQuery(window time.Duration) string {
	if window <= 0 {
		return ""
	}
	return "?window=" + url.QueryEscape(window.String())
}

// Snapshot fetches GET /api/v1/snapshot over the last window of trace
// (0: the server's default, 5s).
func (c *Client) Snapshot(ctx context.Context, window time.Duration) (*Snapshot, error) {
	return c.SnapshotQuery(ctx, window, Query{})
}

// SnapshotQuery fetches GET /api/v1/snapshot with a query: only the tasks
// it selects, with the counts beside them (View). A target that does not
// know queries (an older one) answers every task: the query is applied
// here then, so the answer is the same.
func (c *Client) SnapshotQuery(ctx context.Context, window time.Duration, q Query) (*Snapshot, error) {
	v := q.Values()
	if window > 0 {
		v.Set("window", window.String())
	}
	path := "/api/v1/snapshot"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var s Snapshot
	if err := c.Do(ctx, "GET", path, nil, &s); err != nil {
		return nil, err
	}
	if s.TaskCount == 0 && (len(s.Tasks) > 0 || !q.IsZero()) {
		return q.Select(&s), nil
	}
	return &s, nil
}

// Task fetches GET /api/v1/tasks/{id}: one task with its histograms and full
// stack. A 404 answer (IsNotFound) means the goroutine has exited or never existed.
func (c *Client) Task(ctx context.Context, id int64, window time.Duration) (*Task, error) {
	var t Task
	if err := c.Do(ctx, "GET", fmt.Sprintf("/api/v1/tasks/%d", id)+windowQuery(window), nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Sites fetches GET /api/v1/sites: the wait sites over the window.
func (c *Client) Sites(ctx context.Context, window time.Duration) (*SiteList, error) {
	var s SiteList
	if err := c.Do(ctx, "GET", "/api/v1/sites"+windowQuery(window), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Open sends GET path (with the token) and returns the response of a 2xx
// answer for the caller to read and close: pprof profiles, traces, dumps.
// Other answers are returned as a *StatusError.
func (c *Client) Open(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.Base+path, nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, statusError(req, resp)
	}
	return resp, nil
}
