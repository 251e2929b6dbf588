package tracewin

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// chunkBuf reads like one slice appended to at the end and cut at the
// front, whatever the chunk size and however writes, reads and drops
// interleave: ops drives both, a byte at a time picking the operation and
// its size.
func checkChunkBuf(t *testing.T, size int, ops []byte) {
	t.Helper()
	c := newChunkBuf(size)
	var ref []byte
	next := byte(0)
	for i, op := range ops {
		n := int(op >> 2)
		switch op & 3 {
		case 0, 1: // write n bytes, varint-looking: high bits set on some
			p := make([]byte, n)
			for j := range p {
				next++
				p[j] = next * 37
			}
			c.Write(p)
			ref = append(ref, p...)
		case 2: // read up to n bytes
			p := make([]byte, n)
			got := c.Read(p)
			want := min(n, len(ref))
			if got != want || !bytes.Equal(p[:got], ref[:want]) {
				t.Fatalf("op %d: read %d bytes %x, want %d bytes %x", i, got, p[:got], want, ref[:want])
			}
			ref = ref[want:]
		case 3: // drop n bytes
			c.Discard(n)
			ref = ref[min(n, len(ref)):]
		}
		if c.Len() != len(ref) {
			t.Fatalf("op %d: Len %d, want %d", i, c.Len(), len(ref))
		}
		for j := range ref {
			if c.At(j) != ref[j] {
				t.Fatalf("op %d: At(%d) = %#x, want %#x", i, j, c.At(j), ref[j])
			}
		}
		for j := 0; j <= len(ref)+1; j++ {
			v, m := c.Uvarint(j)
			var wv uint64
			var wm int
			if j < len(ref) {
				wv, wm = binary.Uvarint(ref[j:])
			}
			if v != wv || m != wm {
				t.Fatalf("op %d: Uvarint(%d) = %d, %d, want %d, %d", i, j, v, m, wv, wm)
			}
		}
		if len(ref) > 0 {
			p := make([]byte, 7)
			k := c.Peek(p, len(ref)/2)
			if want := ref[len(ref)/2:]; !bytes.Equal(p[:k], want[:min(7, len(want))]) {
				t.Fatalf("op %d: Peek at %d gave %x, want %x", i, len(ref)/2, p[:k], want)
			}
		}
		if len(c.chunks) > 0 && c.off >= c.size {
			t.Fatalf("op %d: the first chunk is all read (off %d) and still held", i, c.off)
		}
		if len(c.spare) > maxSpareChunks {
			t.Fatalf("op %d: %d spare chunks", i, len(c.spare))
		}
	}
}

func TestChunkBuf(t *testing.T) {
	ops := []byte{
		20 << 2, 3<<2 | 2, 40 << 2, 11<<2 | 3, 63<<2 | 2, 63<<2 | 2, // write, read across chunks, drain
		5 << 2, 63 << 2, 63 << 2, 30<<2 | 3, 1<<2 | 2, 63<<2 | 3, 63<<2 | 3, // refill, drop past the end
		9 << 2, 0<<2 | 2, 0<<2 | 3, 9<<2 | 2, // empty reads and drops
	}
	for _, size := range []int{1, 2, 7, 16, 64, 1 << 10} {
		checkChunkBuf(t, size, ops)
	}
}

// Writes that are drained as they come reuse the spare chunks: no
// allocation once the buffer is warm.
func TestChunkBufReusesChunks(t *testing.T) {
	c := newChunkBuf(1 << 10)
	p := make([]byte, 3000)
	out := make([]byte, 4096)
	c.Write(p)
	c.Read(out)
	if n := testing.AllocsPerRun(100, func() {
		c.Write(p)
		for c.Len() > 0 {
			c.Read(out[:1000])
		}
	}); n != 0 {
		t.Errorf("%v allocations per write and read", n)
	}
}

func FuzzChunkBuf(f *testing.F) {
	f.Add(uint8(7), []byte{20 << 2, 3<<2 | 2, 40 << 2, 11<<2 | 3, 63<<2 | 2})
	f.Fuzz(func(t *testing.T, size uint8, ops []byte) {
		checkChunkBuf(t, int(size%64)+1, ops)
	})
}
