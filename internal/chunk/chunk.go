// Package chunk splits a byte stream into chunks and computes and checks
// their digests. It knows nothing of Redis.
package chunk

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/filecast/filecast/internal/wire"
)

// Sum returns the digest of one chunk.
func Sum(b []byte) wire.Digest { return xxh3.Hash128(b).Bytes() }

// Hasher computes the whole-file digest over a stream of chunks.
type Hasher struct{ h *xxh3.Hasher }

// NewHasher returns a Hasher for a new file.
func NewHasher() *Hasher { return &Hasher{h: xxh3.New()} }

// Write adds p to the digest. It never fails.
func (h *Hasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Sum returns the digest of everything written so far.
func (h *Hasher) Sum() wire.Digest { return h.h.Sum128().Bytes() }

// Source yields the chunks of one input stream. A Source that reads in a
// goroutine of its own (Live) also has a Close method, which the caller
// calls once it stops calling Next.
type Source interface {
	// Next returns the next chunk: at most the chunk size, at least one byte,
	// in a buffer of the Source's Pool that the caller gives back with
	// Pool.Put once done with it. At the end of input Next returns io.EOF;
	// on failure, the read error.
	Next(ctx context.Context) ([]byte, error)
}

// Pool hands out chunk buffers of one size and bounds how many exist.
type Pool struct {
	size int
	free chan []byte
}

// NewPool returns a pool of n buffers of size bytes, allocated lazily.
func NewPool(size, n int) *Pool {
	p := &Pool{size: size, free: make(chan []byte, n)}
	for range n {
		p.free <- nil
	}
	return p
}

// Get waits for a free buffer of the pool's size.
func (p *Pool) Get(ctx context.Context) ([]byte, error) { return p.GetLen(ctx, p.size) }

// GetLen waits for a free buffer and returns it with length n, which may
// exceed the pool's size: its memory is reused when large enough, and
// replaced otherwise. A reader of small files holds small buffers.
func (p *Pool) GetLen(ctx context.Context, n int) ([]byte, error) {
	select {
	case b := <-p.free:
		if cap(b) < n {
			b = make([]byte, n)
		}
		return b[:n], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Put returns a buffer obtained from Get or GetLen.
func (p *Pool) Put(b []byte) { p.free <- b[:cap(b)] }

// Size returns the buffer size.
func (p *Pool) Size() int { return p.size }

// Ramp holds the sizes of a file's first chunks before they reach the
// pool's size. Small first chunks are read, hashed, stored and fetched in
// a fraction of the time of a full one, while the pipeline behind them
// fills up, so a receiver gets the first bytes of a file within a few
// milliseconds. Each is 64 bytes less than a power of two, like the
// default chunk size, to fit Redis's allocator.
var Ramp = []int{64<<10 - 64, 256<<10 - 64}

// NewFull returns a Source that fills every chunk completely before it
// returns it (except the last), the first ones sized by Ramp. Use it for
// regular files, which never block.
func NewFull(r io.Reader, pool *Pool) Source { return &full{r: r, pool: pool} }

// ResumeFull is NewFull for a file of which chunks chunks were read
// before: it cuts the next chunks where NewFull would have, so that a
// resumed upload has the chunks an uninterrupted one would have had.
func ResumeFull(r io.Reader, pool *Pool, chunks int64) Source {
	return &full{r: r, pool: pool, n: int(min(chunks, int64(len(Ramp))))}
}

type full struct {
	r    io.Reader
	pool *Pool
	n    int // chunks returned
	err  error
}

func (f *full) Next(ctx context.Context) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	size := f.pool.Size()
	if f.n < len(Ramp) {
		size = min(size, Ramp[f.n])
	}
	// Buffers grow as the ramp does: a small file never costs a full chunk.
	buf, err := f.pool.GetLen(ctx, size)
	if err != nil {
		return nil, err
	}
	f.n++
	n, err := io.ReadFull(f.r, buf)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		f.err = io.EOF
	case err != nil:
		f.err = err
	}
	if n == 0 {
		f.pool.Put(buf)
		return nil, f.err
	}
	return buf[:n], nil
}

// NewLive returns a Source for input that may arrive slowly or steadily (a
// pipe, a terminal, a socket, a growing log): a chunk is cut when it is
// full, when the input pauses for flush/4, and at the latest flush after
// its first byte arrived, however steadily bytes keep coming. So every byte
// is handed on within flush of its arrival, while fast input still fills
// whole chunks.
//
// It reads r in a goroutine that stops at the end of input, on a read
// error, or when Close is called (a Read blocked in r is then abandoned, as
// with os.Stdin). A partial chunk is handed on in a buffer of its own size,
// so a source that trickles holds one chunk buffer, not one per chunk in
// flight.
func NewLive(r io.Reader, pool *Pool, flush time.Duration) *Live {
	s := &Live{pool: pool, flush: flush, idle: flush / 4, pieces: make(chan piece, liveSpares),
		done: make(chan struct{}), spare: make(chan []byte, liveSpares)}
	for range liveSpares {
		s.spare <- nil
	}
	go s.read(r)
	return s
}

// Read buffers of a Live source: they start small and double, up to
// liveReadMax, while reads fill them, so a trickle costs little memory
// and a fast pipe is read in large pieces.
const (
	liveSpares  = 4
	liveReadMin = 16 << 10
	liveReadMax = 256 << 10
)

// Live is the Source returned by NewLive.
type Live struct {
	pool        *Pool
	flush, idle time.Duration
	pieces      chan piece
	spare       chan []byte
	done        chan struct{}
	once        sync.Once

	cur   []byte    // chunk being filled, a buffer of the pool
	n     int       // bytes in cur
	first time.Time // arrival of cur's first byte
	last  time.Time // arrival of the newest bytes in cur
	rest  piece     // unconsumed part of the last piece
	err   error
}

// piece is what one Read returned, and when.
type piece struct {
	b, buf []byte
	at     time.Time
	err    error
}

func (s *Live) read(r io.Reader) {
	defer close(s.pieces)
	size := liveReadMin
	for {
		var buf []byte
		select {
		case buf = <-s.spare:
		case <-s.done:
			return
		}
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		n, err := r.Read(buf[:size])
		if n == size && size < liveReadMax {
			size *= 2 // the input is fast: read more at once
		}
		select {
		case s.pieces <- piece{b: buf[:n], buf: buf, at: time.Now(), err: err}:
		case <-s.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Close stops the reading goroutine. It does not close the underlying reader.
func (s *Live) Close() { s.once.Do(func() { close(s.done) }) }

// Next implements Source.
func (s *Live) Next(ctx context.Context) ([]byte, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for s.err == nil && (s.cur == nil || s.n < len(s.cur)) {
		if len(s.rest.b) == 0 && s.rest.buf != nil {
			s.spare <- s.rest.buf
			s.rest = piece{err: s.rest.err} // the error comes after the data
		}
		if len(s.rest.b) > 0 {
			if s.cur == nil {
				buf, err := s.pool.Get(ctx)
				if err != nil {
					return nil, err
				}
				s.cur = buf
			}
			if s.n == 0 {
				s.first = s.rest.at
			}
			c := copy(s.cur[s.n:], s.rest.b)
			s.n += c
			s.last = s.rest.at
			s.rest.b = s.rest.b[c:]
			continue
		}
		if s.rest.err != nil {
			s.err = s.rest.err
			break
		}
		var due <-chan time.Time
		if s.n > 0 {
			wait := min(time.Until(s.first.Add(s.flush)), time.Until(s.last.Add(s.idle)))
			if wait <= 0 {
				return s.cut(ctx)
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			due = timer.C
		}
		select {
		case p, ok := <-s.pieces:
			if !ok {
				s.rest = piece{err: io.EOF}
				continue
			}
			s.rest = p
		case <-due:
			return s.cut(ctx)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if errors.Is(s.err, io.EOF) {
		s.err = io.EOF
	}
	if s.n == 0 {
		if s.cur != nil {
			s.pool.Put(s.cur)
			s.cur = nil
		}
		return nil, s.err
	}
	return s.cut(ctx)
}

// cut hands on the bytes in cur: cur itself when it is at least half
// full, else a copy in a buffer of their size, keeping cur for the next
// chunk.
func (s *Live) cut(ctx context.Context) ([]byte, error) {
	n := s.n
	if n >= len(s.cur)/2 || s.err != nil {
		b := s.cur[:n]
		s.cur, s.n = nil, 0
		return b, nil
	}
	b, err := s.pool.GetLen(ctx, n)
	if err != nil {
		return nil, err
	}
	copy(b, s.cur[:n])
	s.n = 0
	return b, nil
}

// Count returns how many chunks NewFull cuts a file of size bytes into
// with chunks of chunkSize bytes: the first ones sized by Ramp (when
// smaller than chunkSize), then chunkSize each. A file of 0 bytes has none.
func Count(size int64, chunkSize int) int64 {
	if size <= 0 || chunkSize <= 0 {
		return 0
	}
	var n int64
	for _, r := range Ramp {
		s := int64(min(r, chunkSize))
		if size <= s {
			return n + 1
		}
		size -= s
		n++
	}
	return n + (size+int64(chunkSize)-1)/int64(chunkSize)
}
