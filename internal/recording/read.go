package recording

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Reader reads a recording. Open indexes the lines (from the index fields,
// without decompressing them) and reads the header; Entry decodes a line on
// demand.
type Reader struct {
	Header Header
	// Entries describe the lines after the header: Entries[i] is line i+2.
	Entries []Meta
	// Err is the line where reading stopped before the end of the file (a
	// *LineError: cut short or corrupt); the entries before it are usable.
	// Entry may find more corrupt lines later.
	Err error

	ra    io.ReaderAt
	offs  []int64 // where entry i's gzip member starts
	lens  []int64 // and its length
	plain [][]byte
	close func() error
}

// Open opens and indexes the recording in file.
func Open(file string) (*Reader, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory", file)
	}
	r, err := NewReader(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	r.close = f.Close
	return r, nil
}

// Close closes the file of a Reader made by Open.
func (r *Reader) Close() error {
	if r.close == nil {
		return nil
	}
	return r.close()
}

// IsRecording says whether file starts like a recording: an indexed gzip
// member, or a header line (plain or gzip'd). It reads the first line only.
func IsRecording(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		return false
	}
	if m, _, err := readIndex(f, 0, fi.Size()); err == nil {
		return m.Kind == KindHeader
	}
	var src io.Reader = bufio.NewReader(io.LimitReader(f, 1<<20))
	if isGzip(src.(*bufio.Reader)) {
		zr, err := gzip.NewReader(src)
		if err != nil {
			return false
		}
		src = io.LimitReader(zr, 1<<20)
	}
	line, _ := bufio.NewReader(src).ReadBytes('\n')
	_, err = checkHeader(line)
	return err == nil || errors.As(err, new(*VersionError))
}

func isGzip(br *bufio.Reader) bool {
	b, err := br.Peek(2)
	return err == nil && b[0] == 0x1f && b[1] == 0x8b
}

// NewReader indexes the recording in ra, of size bytes.
func NewReader(ra io.ReaderAt, size int64) (*Reader, error) {
	if size == 0 {
		return nil, errors.New("empty file: not an inspectd recording")
	}
	m, n, err := readIndex(ra, 0, size)
	if errors.Is(err, errNoIndex) {
		return readPlain(io.NewSectionReader(ra, 0, size))
	}
	if err != nil {
		if errors.Is(err, ErrCut) {
			return nil, &LineError{Line: 1, Err: err}
		}
		return nil, errors.New("not an inspectd recording (it does not start with a recording's header)")
	}
	r := &Reader{ra: ra}
	if m.Kind != KindHeader {
		return nil, fmt.Errorf("not an inspectd recording (line 1 is %q, not a header)", m.Kind)
	}
	b, err := r.member(0, n)
	if err != nil {
		return nil, &LineError{Line: 1, Err: err}
	}
	if r.Header, err = checkHeader(b); err != nil {
		return nil, err
	}
	for off, line := n, 2; off < size; line++ {
		m, n, err := readIndex(ra, off, size)
		if err != nil {
			r.Err = &LineError{Line: line, Err: err}
			break
		}
		if m.Kind == KindHeader {
			r.Err = &LineError{Line: line, Err: errors.New("a second header: two recordings concatenated?")}
			break
		}
		r.Entries = append(r.Entries, m)
		r.offs = append(r.offs, off)
		r.lens = append(r.lens, n)
		off += n
	}
	return r, nil
}

// checkHeader decodes line 1.
func checkHeader(b []byte) (Header, error) {
	var h Header
	if err := json.Unmarshal(b, &h); err != nil || h.Format != Format {
		return h, errors.New("not an inspectd recording (line 1 is not its header)")
	}
	if h.Version != Version {
		return h, &VersionError{Version: h.Version}
	}
	return h, nil
}

// Entry decodes entry i (line i+2).
func (r *Reader) Entry(i int) (Entry, error) {
	if i < 0 || i >= len(r.Entries) {
		return Entry{}, fmt.Errorf("recording: no entry %d (of %d)", i, len(r.Entries))
	}
	fail := func(err error) (Entry, error) { return Entry{}, &LineError{Line: i + 2, Err: err} }
	var b []byte
	if r.plain != nil {
		b = r.plain[i]
	} else {
		var err error
		if b, err = r.member(r.offs[i], r.lens[i]); err != nil {
			return fail(err)
		}
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return fail(fmt.Errorf("bad JSON: %w", err))
	}
	if want := r.Entries[i].Kind; e.Kind != want {
		return fail(fmt.Errorf("the line says kind %q, its index %q", e.Kind, want))
	}
	switch {
	case e.Kind == KindUpdate && e.Update == nil,
		e.Kind == KindConn && e.Conn == nil,
		e.Kind == KindEnd && e.End == nil:
		return fail(fmt.Errorf("a %q line without its %q field", e.Kind, e.Kind))
	}
	return e, nil
}

// Check reads every entry and returns the first that cannot be read (a
// *LineError), or nil: the index reaches entries past a damaged one, so a
// reader that skips ahead does not see the damage by itself.
func (r *Reader) Check() error {
	for i := range r.Entries {
		if _, err := r.Entry(i); err != nil {
			return err
		}
	}
	return nil
}

// Ended returns the end line, if the recording was closed cleanly.
func (r *Reader) Ended() (End, bool) {
	n := len(r.Entries)
	if n == 0 || r.Entries[n-1].Kind != KindEnd {
		return End{}, false
	}
	e, err := r.Entry(n - 1)
	if err != nil {
		return End{}, false
	}
	return *e.End, true
}

// member decompresses the gzip member of n bytes at off.
func (r *Reader) member(off, n int64) ([]byte, error) {
	// The trailer's ISIZE sizes the buffer (a hint: it may lie).
	var isize [4]byte
	if _, err := r.ra.ReadAt(isize[:], off+n-4); err != nil {
		return nil, ErrCut
	}
	zr, err := gzip.NewReader(io.NewSectionReader(r.ra, off, n))
	if err != nil {
		return nil, fmt.Errorf("corrupt: %w", err)
	}
	zr.Multistream(false)
	buf := bytes.NewBuffer(make([]byte, 0, min(int(binary.LittleEndian.Uint32(isize[:])), 64*int(n), 1<<28)+512))
	if _, err := buf.ReadFrom(zr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("corrupt: its compressed data ends early")
		}
		return nil, fmt.Errorf("corrupt: %w", err)
	}
	return buf.Bytes(), nil
}

// errNoIndex is a gzip member without our index field, or no gzip at all:
// the file may still be plain or gzip'd JSON lines.
var errNoIndex = errors.New("no index field: not written by inspect-cli record")

// readIndex reads the gzip header of the member at off and returns its
// index field: the line's Meta and the member's length.
func readIndex(ra io.ReaderAt, off, size int64) (Meta, int64, error) {
	var m Meta
	var fixed [fixedHeader + 2]byte
	k, _ := ra.ReadAt(fixed[:], off)
	if k >= 2 && (fixed[0] != 0x1f || fixed[1] != 0x8b) || k == 1 && fixed[0] != 0x1f {
		if off == 0 {
			return m, 0, errNoIndex
		}
		return m, 0, errors.New("corrupt: not the start of a gzip member")
	}
	if k < len(fixed) {
		return m, 0, ErrCut
	}
	if fixed[2] != 8 {
		return m, 0, errors.New("corrupt: not a deflate gzip member")
	}
	if fixed[3]&0x04 == 0 {
		if off == 0 {
			return m, 0, errNoIndex
		}
		return m, 0, errors.New("corrupt: a gzip member without an index field")
	}
	xlen := int64(binary.LittleEndian.Uint16(fixed[fixedHeader:]))
	if off+int64(len(fixed))+xlen > size {
		return m, 0, ErrCut
	}
	extra := make([]byte, xlen)
	if k, _ := ra.ReadAt(extra, off+int64(len(fixed))); k < len(extra) {
		return m, 0, ErrCut
	}
	var n int64
	var haveMeta bool
	for len(extra) >= 4 {
		id, l := string(extra[:2]), int(binary.LittleEndian.Uint16(extra[2:4]))
		if 4+l > len(extra) {
			break
		}
		data := extra[4 : 4+l]
		switch id {
		case "IL":
			if l == 8 {
				n = int64(binary.LittleEndian.Uint64(data))
			}
		case "IM":
			haveMeta = json.Unmarshal(data, &m) == nil
		}
		extra = extra[4+l:]
	}
	switch {
	case n == 0 || !haveMeta:
		if off == 0 {
			return m, 0, errNoIndex
		}
		return m, 0, errors.New("corrupt: the index field is unreadable")
	case n < int64(len(fixed))+xlen+8+2:
		return m, 0, fmt.Errorf("corrupt: the index field gives a length of %d bytes", n)
	case n > size-off:
		return m, 0, ErrCut
	}
	return m, n, nil
}

// readPlain reads JSON lines, gzip'd as one stream or not, into memory.
func readPlain(src io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	var in io.Reader = br
	if isGzip(br) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errors.New("not an inspectd recording (a gzip file, but unreadable: " + err.Error() + ")")
		}
		in = zr
	}
	// A cut or corrupt stream still gives the lines before the damage.
	data, readErr := io.ReadAll(in)
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		if readErr != nil {
			return nil, &LineError{Line: 1, Err: readErr}
		}
		return nil, errors.New("empty: not an inspectd recording")
	}
	r := &Reader{plain: [][]byte{}}
	first := lines[0]
	if readErr != nil && len(lines) == 1 && !bytes.HasSuffix(first, []byte("\n")) {
		return nil, &LineError{Line: 1, Err: ErrCut}
	}
	var err error
	if r.Header, err = checkHeader(first); err != nil {
		return nil, err
	}
	for i, l := range lines[1:] {
		line := i + 2
		cut := !bytes.HasSuffix(l, []byte("\n"))
		if len(bytes.TrimSpace(l)) == 0 && !cut {
			// An empty line: skip it, but keep the numbering of zcat.
			r.Entries = append(r.Entries, Meta{Kind: "blank"})
			r.plain = append(r.plain, nil)
			continue
		}
		var m struct {
			Kind   string    `json:"kind"`
			Time   time.Time `json:"time"`
			Update *struct {
				Full  bool       `json:"full"`
				Tasks []struct{} `json:"tasks"`
			} `json:"update"`
		}
		if err := json.Unmarshal(l, &m); err != nil || m.Kind == "" || m.Kind == KindHeader {
			switch {
			case cut && readErr != nil:
				err = fmt.Errorf("cut short (%v)", readErr)
			case cut:
				err = ErrCut
			case err == nil:
				err = errors.New("not an entry: no kind")
			default:
				err = fmt.Errorf("bad JSON: %w", err)
			}
			r.Err = &LineError{Line: line, Err: err}
			break
		}
		meta := Meta{Kind: m.Kind, Time: m.Time}
		if m.Update != nil {
			meta.Full, meta.Tasks = m.Update.Full, len(m.Update.Tasks)
		}
		r.Entries = append(r.Entries, meta)
		r.plain = append(r.plain, l)
	}
	if r.Err == nil && readErr != nil {
		r.Err = &LineError{Line: len(lines) + 1, Err: fmt.Errorf("the file is damaged after line %d: %v", len(lines), readErr)}
	}
	return r, nil
}
