package remote

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
)

func readAllLimited(t *testing.T, data []byte, max int64, p Parse) ([]byte, error) {
	t.Helper()
	// Small reads, so that records split across them.
	return io.ReadAll(Limit(io.NopCloser(&chunky{data: data, n: 7}), max, CapSnapshot, "test", p))
}

// chunky reads n bytes at a time.
type chunky struct {
	data []byte
	n    int
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[k:]
	return k, nil
}

func TestLimitBytes(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1000)
	if b, err := readAllLimited(t, data, 1000, ParseBytes); err != nil || len(b) != 1000 {
		t.Errorf("at the cap: %d bytes, %v; want all, no error", len(b), err)
	}
	_, err := readAllLimited(t, data, 999, ParseBytes)
	le, ok := AsLimit(err)
	if !ok || le.Limit != 999 || le.Kind != CapSnapshot || le.Records {
		t.Errorf("past the cap: %v, want a LimitError of 999 bytes, not records", err)
	}
	if b, err := readAllLimited(t, data, 0, ParseBytes); err != nil || len(b) != 1000 {
		t.Errorf("no cap: %d bytes, %v", len(b), err)
	}
}

// JSON records cost what a decoder builds of them: an array of empty
// objects passes a cap its bytes are far below, while real objects of
// the same count do not weigh more than their bytes and members.
func TestLimitJSONWeights(t *testing.T) {
	empty := []byte(`{"tasks":[` + strings.Repeat(`{},`, 1000) + `{}]}`)
	_, err := readAllLimited(t, empty, 100_000, ParseJSON)
	if le, ok := AsLimit(err); !ok || !le.Records {
		t.Errorf("1001 empty objects (%d bytes) under a cap of 100,000: %v; want a LimitError by records", len(empty), err)
	}
	task := `{"id":12345,"name":"main.worker","state":"waiting","wait_reason":"chan receive","created_by":{"function":"main.(*Server).Serve","file":"/home/build/go/pkg/mod/example.com/server@v1.2.3/server.go","line":311},` +
		`"location":{"function":"main.worker","file":"/src/main.go","line":42},"stats":{"total_ns":1000,"idle_ns":1000,"polls":3,"longest_run_ns":20000},"labels":{"workload":"web","role":"worker"}}`
	real := []byte(`{"tasks":[` + strings.Repeat(task+",", 999) + task + `]}`)
	// ~400 bytes each, longer than a struct: their bytes, 17 members of
	// 8 and an element of 16, within 1.75x.
	if _, err := readAllLimited(t, real, int64(len(real))*175/100, ParseJSON); err != nil {
		t.Errorf("1000 real tasks (%d bytes) under 1.75x their size: %v", len(real), err)
	}
	// Brackets and commas in strings are text, not records.
	text := []byte(`{"target":"` + strings.Repeat(`{[,`, 10_000) + `"}`)
	if _, err := readAllLimited(t, text, int64(len(text)), ParseJSON); err != nil {
		t.Errorf("brackets in a string counted as records: %v", err)
	}
	escaped := []byte(`{"target":"` + strings.Repeat(`\"{,`, 10_000) + `"}`)
	if _, err := readAllLimited(t, escaped, int64(len(escaped)), ParseJSON); err != nil {
		t.Errorf("brackets after escaped quotes counted as records: %v", err)
	}
	ints := []byte(`[` + strings.Repeat(`0,`, 10_000) + `0]`)
	if _, err := readAllLimited(t, ints, int64(len(ints))*4, ParseJSON); err == nil {
		t.Errorf("10,001 numbers of 2 bytes under 4x their bytes: want a LimitError (a slot each)")
	}
}

// A watch stream is counted one event at a time.
func TestLimitEvents(t *testing.T) {
	event := "event: update\ndata: " + `{"tasks":[` + strings.Repeat(`{"id":1,"name":"x","state":"waiting","stats":{"total_ns":1}},`, 20) + `{}]}` + "\n\n"
	stream := []byte(strings.Repeat(event, 1000))
	if _, err := readAllLimited(t, stream, 64<<10, ParseEvents); err != nil {
		t.Errorf("1000 events each under the cap: %v", err)
	}
	long := []byte("event: update\ndata: " + strings.Repeat("x", 10_000) + "\n\n")
	if _, err := readAllLimited(t, long, 5000, ParseEvents); err == nil {
		t.Errorf("an event of 10,000 bytes under a cap of 5,000: no error")
	}
	// Blank lines without data do not reset the count: garbage is not
	// a stream of events.
	garbage := []byte(strings.Repeat("xxxxxxx\n\n", 1000))
	if _, err := readAllLimited(t, garbage, 5000, ParseEvents); err == nil {
		t.Errorf("9,000 bytes without an update under a cap of 5,000: no error")
	}
}

func TestReadProtoBomb(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	zeros := make([]byte, 1<<20)
	for range 64 {
		gz.Write(zeros)
	}
	gz.Close()
	_, err := readProto(bytes.NewReader(buf.Bytes()), 16<<20, "the goroutine profile")
	if le, ok := AsLimit(err); !ok || !strings.Contains(le.What, "gunzipped") {
		t.Errorf("64 MiB of zeros in %d gzipped bytes under 16 MiB: %v", buf.Len(), err)
	}
	// A million empty messages (field 2, length 0): 2 MB, a struct each.
	msgs := bytes.Repeat([]byte{0x12, 0x00}, 1<<20)
	_, err = readProto(bytes.NewReader(msgs), 16<<20, "the goroutine profile")
	if le, ok := AsLimit(err); !ok || !le.Records {
		t.Errorf("1M empty messages under 16 MiB: %v; want a LimitError by records", err)
	}
	if n := protoMessages(msgs[:20]); n != 10 {
		t.Errorf("protoMessages: %d, want 10", n)
	}
	var le *LimitError
	if _, err := readProto(bytes.NewReader([]byte{0x12, 0x00}), 16<<20, "p"); errors.As(err, &le) {
		t.Errorf("one message: %v", err)
	}
}
