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

// Source yields the chunks of one input stream.
type Source interface {
	// Next returns the next chunk: at most the chunk size, at least one byte.
	// The slice is valid until the buffer is given back with Release. At the
	// end of input Next returns io.EOF; on failure, the read error.
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

// Get waits for a free buffer.
func (p *Pool) Get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.free:
		if b == nil {
			b = make([]byte, p.size)
		}
		return b[:p.size], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

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

// NewIdle returns a Source for input that may arrive slowly (a pipe, a
// terminal, a socket): a chunk is cut when it is full or when no byte has
// arrived for idle, so a receiver sees slow input within about idle. It
// reads in a goroutine that stops at the end of input, on a read error, or
// when Close is called (a Read blocked in r is abandoned, as with os.Stdin).
func NewIdle(r io.Reader, pool *Pool, idle time.Duration) *Idle {
	s := &Idle{pool: pool, idle: idle, pieces: make(chan piece, 4), done: make(chan struct{}), spare: make(chan []byte, 4)}
	for range 4 {
		s.spare <- make([]byte, 256<<10)
	}
	go s.read(r)
	return s
}

// Idle is the Source returned by NewIdle.
type Idle struct {
	pool   *Pool
	idle   time.Duration
	pieces chan piece
	spare  chan []byte
	done   chan struct{}
	once   sync.Once

	cur  []byte // chunk being filled
	n    int
	rest piece // unconsumed part of the last piece
	err  error
}

type piece struct {
	b, buf []byte
	err    error
}

func (s *Idle) read(r io.Reader) {
	defer close(s.pieces)
	for {
		var buf []byte
		select {
		case buf = <-s.spare:
		case <-s.done:
			return
		}
		n, err := r.Read(buf)
		select {
		case s.pieces <- piece{b: buf[:n], buf: buf, err: err}:
		case <-s.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Close stops the reading goroutine. It does not close the underlying reader.
func (s *Idle) Close() { s.once.Do(func() { close(s.done) }) }

// Next implements Source.
func (s *Idle) Next(ctx context.Context) ([]byte, error) {
	if s.cur == nil {
		if s.err != nil {
			return nil, s.err
		}
		buf, err := s.pool.Get(ctx)
		if err != nil {
			return nil, err
		}
		s.cur, s.n = buf, 0
	}
	var timer *time.Timer
	var timeout <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for s.n < len(s.cur) && s.err == nil {
		if len(s.rest.b) == 0 && s.rest.buf != nil {
			s.spare <- s.rest.buf
			s.rest = piece{err: s.rest.err} // the error comes after the data
		}
		if len(s.rest.b) > 0 {
			c := copy(s.cur[s.n:], s.rest.b)
			s.n += c
			s.rest.b = s.rest.b[c:]
			continue
		}
		if s.rest.err != nil {
			s.err = s.rest.err
			break
		}
		if s.n > 0 && timeout == nil {
			timer = time.NewTimer(s.idle)
			timeout = timer.C
		}
		select {
		case p, ok := <-s.pieces:
			if !ok {
				s.err = io.EOF
				break
			}
			s.rest = p
			if len(p.b) > 0 && timer != nil { // data arrived: restart the idle clock
				timer.Reset(s.idle)
			}
		case <-timeout:
			return s.cut(), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if errors.Is(s.err, io.EOF) {
		s.err = io.EOF
	}
	if s.n == 0 {
		s.pool.Put(s.cur)
		s.cur = nil
		return nil, s.err
	}
	return s.cut(), nil
}

func (s *Idle) cut() []byte {
	b := s.cur[:s.n]
	s.cur, s.n = nil, 0
	return b
}
