package tracewin

import "encoding/binary"

// chunkBuf is a byte queue kept in chunks of one size: written at the end,
// read and dropped at the front. The live stream is such a queue, tens of MB
// a second at a million goroutines with a backlog of a hundred MB or more;
// one slice appended to at one end and cut at the other copies the whole
// backlog every time it grows (some 5 GB a minute there), and dropping
// generations unread cloned what was kept. Chunks are never copied:
// dropping bytes lets whole chunks go, and a few are kept for reuse, so a
// stream read as it comes allocates nothing.
//
// Every chunk but the last is full, so a byte's place follows from its
// offset. The zero value is not usable: newChunkBuf sets the chunk size.
type chunkBuf struct {
	size   int      // bytes per chunk
	chunks [][]byte // chunks[0] holds bytes from off on
	off    int
	n      int      // bytes held
	spare  [][]byte // emptied chunks, at most maxSpareChunks
}

const (
	defaultChunk   = 512 << 10
	maxSpareChunks = 4
)

func newChunkBuf(size int) chunkBuf {
	return chunkBuf{size: max(size, 1)}
}

// Len is the number of bytes held.
func (c *chunkBuf) Len() int { return c.n }

// Write appends p.
func (c *chunkBuf) Write(p []byte) {
	for len(p) > 0 {
		k := len(c.chunks)
		if k == 0 || len(c.chunks[k-1]) == c.size {
			c.chunks = append(c.chunks, c.newChunk())
			k++
		}
		last := c.chunks[k-1]
		m := min(len(p), c.size-len(last))
		c.chunks[k-1] = append(last, p[:m]...)
		p = p[m:]
		c.n += m
	}
}

func (c *chunkBuf) newChunk() []byte {
	if k := len(c.spare); k > 0 {
		ch := c.spare[k-1]
		c.spare[k-1] = nil
		c.spare = c.spare[:k-1]
		return ch[:0]
	}
	return make([]byte, 0, c.size)
}

// At returns the byte i bytes past the front; i < Len().
func (c *chunkBuf) At(i int) byte {
	j := c.off + i
	return c.chunks[j/c.size][j%c.size]
}

// Peek copies the bytes from i past the front into p, as many as are held
// and fit, and returns how many it copied.
func (c *chunkBuf) Peek(p []byte, i int) int {
	n := 0
	for n < len(p) && i+n < c.n {
		j := c.off + i + n
		n += copy(p[n:min(len(p), c.n-i)], c.chunks[j/c.size][j%c.size:])
	}
	return n
}

// Uvarint decodes a varint i bytes past the front, as binary.Uvarint:
// n == 0 when the bytes held end within it, n < 0 when it overflows.
func (c *chunkBuf) Uvarint(i int) (v uint64, n int) {
	if i >= c.n {
		return 0, 0
	}
	j := c.off + i
	if k := j / c.size; k < len(c.chunks) {
		// Within one chunk, or in the last: no copy.
		if ch := c.chunks[k][j%c.size:]; len(ch) >= binary.MaxVarintLen64 || k == len(c.chunks)-1 {
			return binary.Uvarint(ch)
		}
	}
	var tmp [binary.MaxVarintLen64]byte
	return binary.Uvarint(tmp[:c.Peek(tmp[:], i)])
}

// Read moves up to len(p) bytes from the front into p and returns how many.
func (c *chunkBuf) Read(p []byte) int {
	n := c.Peek(p, 0)
	c.Discard(n)
	return n
}

// Discard drops the first n bytes (all of them if fewer are held).
func (c *chunkBuf) Discard(n int) {
	if n >= c.n {
		for _, ch := range c.chunks {
			c.free(ch)
		}
		clear(c.chunks)
		c.chunks, c.off, c.n = c.chunks[:0], 0, 0
		return
	}
	c.n -= n
	c.off += n
	k := c.off / c.size
	if k == 0 {
		return
	}
	for _, ch := range c.chunks[:k] {
		c.free(ch)
	}
	n0 := len(c.chunks)
	c.chunks = c.chunks[:copy(c.chunks, c.chunks[k:])]
	clear(c.chunks[len(c.chunks):n0])
	c.off -= k * c.size
}

func (c *chunkBuf) free(ch []byte) {
	if len(c.spare) < maxSpareChunks {
		c.spare = append(c.spare, ch)
	}
}

// Reset drops every byte and the spare chunks.
func (c *chunkBuf) Reset() {
	*c = newChunkBuf(c.size)
}
