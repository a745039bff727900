package filecast

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"time"

	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// followBlock is how long a reader blocks on a file's index before it
// checks that the upload still exists.
const followBlock = 5 * time.Second

// File is one file being received: an io.Reader over its content that
// follows the upload while the sender is still writing it, fetches up to
// Options.ReadAhead chunks ahead, and checks every chunk against its digest
// before handing a byte on. At the end it checks the size and whole-file
// digest: Read returns io.EOF only if they match, ErrCorrupt otherwise.
//
// Read errors are sticky and wrap ErrCorrupt, ErrGone, ErrAborted,
// ErrUnavailable or the context's error. A File is not safe for concurrent
// use. Files from Open must be closed; Receive closes the files it hands
// to a handler.
type File struct {
	FileInfo

	c   *Client
	ch  store.Channel
	rec *wire.File

	// The File serves io.Reader, whose Read takes no context: it keeps the
	// context it was opened with (as net/http keeps a request's) and Close
	// cancels it.
	ctx    context.Context
	cancel context.CancelCauseFunc // the cause: Close, or a failed progress report
	wg     sync.WaitGroup

	started bool
	next    int64 // first chunk the fetcher fetches
	queue   chan *fetched
	bufs    *chunk.Pool // chunk buffers: the fetches in flight and cur
	cur     []byte      // unread part of the current chunk
	curBuf  []byte      // the buffer holding the current chunk
	curSeq  int64
	hash    *chunk.Hasher
	n       int64
	err     error
	closed  bool // Close has run: Stats counts how each reader ended once

	// Progress reporting, for a group receiving a file larger than the budget.
	group         string
	member, entry string
	rep           *reporter // nil outside a group
	syncer        interface{ Sync() error }

	t *transfer // the file in flight, for Client.Transfers; nil if opened outside Receive
}

type fetched struct {
	e    wire.Entry
	data []byte
	err  error
	done chan struct{}
}

// Open returns a streaming reader for file id of channel, outside any
// group: it acknowledges nothing and holds nothing back. The caller must
// Close it. Errors wrap ErrGone (no such file), ErrCorrupt or ErrUsage.
func (c *Client) Open(ctx context.Context, channel, id string) (*File, error) {
	ch, err := c.channel(channel)
	if err != nil {
		return nil, err
	}
	return c.open(ctx, ch, id, "", nil)
}

// Stat describes file id of channel as it is now. Size is -1 while it is
// being uploaded (Expected is then the size the sender expects, if known).
// A file that is not (or no longer) in Redis is ErrGone.
func (c *Client) Stat(ctx context.Context, channel, id string) (*FileInfo, error) {
	ch, err := c.channel(channel)
	if err != nil {
		return nil, err
	}
	rec, err := ch.File(ctx, id)
	if err != nil {
		return nil, &Error{Op: "stat", Channel: channel, ID: id, Err: corrupt(err)}
	}
	info := &FileInfo{Channel: channel, ID: id, Name: rec.Name, Size: rec.Size, Expected: rec.Expect, Mode: rec.Mode,
		ModTime: rec.ModTime, Entry: rec.Entry}
	if rec.State == wire.Complete {
		info.Digest = rec.Digest.String()
	}
	return info, nil
}

// Awaits reports whether group is still to get file id of channel: it is in
// Redis, and the group must consume it and has not acknowledged it (nor
// given it up). A receiver keeping a partial copy of a file that no
// longer awaits its group keeps a leftover.
func (c *Client) Awaits(ctx context.Context, channel, group, id string) (bool, error) {
	ch, err := c.channel(channel)
	if err != nil {
		return false, err
	}
	return ch.Awaits(ctx, id, group)
}

func (c *Client) open(ctx context.Context, ch store.Channel, id, group string, rec *wire.File) (*File, error) {
	if rec == nil {
		var err error
		if rec, err = ch.File(ctx, id); err != nil {
			return nil, &Error{Op: "open", Channel: ch.Keys().Channel(), ID: id, Err: corrupt(err)}
		}
	}
	if rec.Kind != wire.KindFile {
		return nil, &Error{Op: "open", Channel: ch.Keys().Channel(), ID: id, Err: fmt.Errorf("%w: not a file but a %s", ErrUsage, rec.Kind)}
	}
	fctx, cancel := context.WithCancelCause(ctx)
	f := &File{
		FileInfo: FileInfo{Channel: ch.Keys().Channel(), ID: id, Name: rec.Name, Size: rec.Size, Expected: rec.Expect,
			Mode: rec.Mode, ModTime: rec.ModTime, Entry: rec.Entry},
		c: c, ch: ch, rec: rec, ctx: fctx, cancel: cancel,
		next: 1, queue: make(chan *fetched, c.opt.ReadAhead), hash: chunk.NewHasher(), group: group,
		// The queue holds ReadAhead fetches; one more is taken by the
		// fetcher while it waits for room, one is being read.
		bufs: chunk.NewPool(rec.ChunkSize, c.opt.ReadAhead+2),
	}
	if rec.State == wire.Complete {
		f.Digest = rec.Digest.String()
	}
	if group != "" {
		budget, err := c.budget(ctx, ch)
		if err != nil {
			cancel(nil)
			return nil, err
		}
		f.rep = newReporter(f, max(min(budget/4, 16<<20)/int64(rec.ChunkSize), 1))
	}
	return f, nil
}

// SetSyncer makes the File call s.Sync before it reports chunks as durably
// consumed. A receiver that writes to disk passes its *os.File, so a file
// larger than the budget is released from Redis only once it is on disk.
func (f *File) SetSyncer(s interface{ Sync() error }) { f.syncer = s }

// ResumeFrom checks a partial copy of the file, as left by an interrupted
// receiver, against the chunk digests, and continues after the longest
// prefix of whole chunks that matches. It returns that prefix's length:
// the caller keeps that many bytes of its copy and appends what Read
// returns. It must be called before the first Read.
func (f *File) ResumeFrom(partial io.Reader) (int64, error) {
	if f.started {
		return 0, fmt.Errorf("%w: ResumeFrom after Read", ErrUsage)
	}
	br := bufio.NewReaderSize(partial, 64<<10)
	if _, err := br.Peek(1); err != nil {
		return 0, nil // nothing to keep (the usual case: a new file)
	}
	stored, err := f.ch.Stored(f.ctx, f.ID, 1<<62, f.rec.ChunkSize)
	if err != nil {
		return 0, corrupt(err)
	}
	if stored.Offset > 0 {
		// The first chunks were trimmed, index entries and all, once every
		// group had consumed them: only a copy that holds all of them, as
		// their digest shows, can be continued.
		if _, err := io.CopyN(f.hash, br, stored.Offset); err != nil || f.hash.Sum() != stored.Prefix {
			f.hash = chunk.NewHasher()
			return 0, nil
		}
		f.n, f.next = stored.Offset, stored.First
	}
	buf := make([]byte, f.rec.ChunkSize)
	for _, e := range stored.Entries {
		if e.Kind != wire.ChunkEntry {
			break
		}
		if _, err := io.ReadFull(br, buf[:e.Len]); err != nil || chunk.Sum(buf[:e.Len]) != e.Digest {
			break
		}
		f.hash.Write(buf[:e.Len])
		f.n += int64(e.Len)
		f.next = e.Seq + 1
	}
	if f.rep != nil {
		f.rep.consume(f.next - 1)
	}
	if f.t != nil {
		f.t.resumedAt(f.n)
	}
	if f.n > 0 {
		f.Resumed, f.ResumedBytes = true, f.n
	}
	return f.n, nil
}

// Read implements io.Reader.
func (f *File) Read(p []byte) (int, error) {
	for len(f.cur) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		f.advance()
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// WriteTo implements io.WriterTo, so io.Copy hands each chunk to w
// without an intermediate buffer.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for len(f.cur) == 0 {
			if f.err == io.EOF {
				return total, nil
			}
			if f.err != nil {
				return total, f.err
			}
			f.advance()
		}
		n, err := w.Write(f.cur)
		total += int64(n)
		f.cur = f.cur[n:]
		if err != nil {
			return total, err
		}
	}
}

// Lines returns an iterator over the lines of the file, without their
// line endings. See the package function Lines.
func (f *File) Lines() iter.Seq2[[]byte, error] { return Lines(f) }

// Close stops fetching and waits for the fetching goroutines.
func (f *File) Close() error {
	if !f.closed {
		f.closed = true
		f.c.stats.readEnded(f.err)
	}
	f.cancel(nil)
	if f.started {
		for range f.queue { // unblock the fetcher, drop what it fetched
		}
	}
	f.wg.Wait()
	return nil
}

// advance moves to the next chunk or end state.
func (f *File) advance() {
	if f.rep != nil {
		f.rep.consume(f.curSeq)
	}
	if f.curBuf != nil {
		f.bufs.Put(f.curBuf)
		f.curBuf = nil
	}
	if !f.started {
		f.started = true
		f.wg.Add(1)
		go f.fetch()
		if f.rep != nil {
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.rep.run()
			}()
		}
	}
	var x *fetched
	var ok bool
	select {
	case x, ok = <-f.queue:
	default:
		// Caught up with the fetcher: the sender may be waiting for budget
		// that our progress frees.
		if f.rep != nil {
			f.rep.caughtUp()
		}
		select {
		case x, ok = <-f.queue:
		case <-f.ctx.Done():
			f.err = context.Cause(f.ctx)
			return
		}
	}
	if !ok {
		f.err = context.Cause(f.ctx)
		if f.err == nil {
			f.err = fmt.Errorf("read %s: fetcher stopped", f.Name)
		}
		return
	}
	select {
	case <-x.done:
	case <-f.ctx.Done():
		f.err = context.Cause(f.ctx)
		return
	}
	if x.err != nil {
		f.err = x.err
		return
	}
	switch x.e.Kind {
	case wire.ChunkEntry:
		f.hash.Write(x.data)
		f.n += int64(len(x.data))
		if f.t != nil {
			f.t.done.Store(f.n)
		}
		if x.e.HasPrefix && f.hash.Sum() != x.e.Prefix {
			f.bufs.Put(x.data)
			f.err = fmt.Errorf("%w: %s up to the end of chunk %d (%d bytes) does not match its digest", ErrCorrupt, f.Name, x.e.Seq, f.n)
			return
		}
		f.cur, f.curBuf, f.curSeq = x.data, x.data, x.e.Seq
		f.c.stats.bytesRead.Add(int64(len(x.data)))
	case wire.EOFEntry:
		switch {
		case f.n != x.e.Size:
			f.err = fmt.Errorf("%w: %s is %d bytes, its end record says %d", ErrCorrupt, f.Name, f.n, x.e.Size)
		case f.hash.Sum() != x.e.Digest:
			f.err = fmt.Errorf("%w: %s whole-file digest %s, want %s", ErrCorrupt, f.Name, f.hash.Sum(), x.e.Digest)
		default:
			f.Size, f.Digest = f.n, x.e.Digest.String()
			if f.t != nil {
				f.t.size.Store(f.n)
			}
			f.err = io.EOF
		}
	case wire.AbortEntry:
		f.err = fmt.Errorf("%w by the sender: %s", ErrAborted, x.e.Reason)
	}
}

// fetch follows the index and starts a verified GET per chunk, in order,
// at most ReadAhead ahead of the reader.
func (f *File) fetch() {
	defer f.wg.Done()
	defer close(f.queue)
	var fetchers sync.WaitGroup
	defer fetchers.Wait()
	push := func(x *fetched) bool {
		select {
		case f.queue <- x:
			return true
		case <-f.ctx.Done():
			return false
		}
	}
	fail := func(err error) {
		x := &fetched{err: err, done: make(chan struct{})}
		close(x.done)
		push(x)
	}
	after := f.next - 1
	warned := false
	for {
		es, err := f.ch.FollowIndex(f.ctx, f.ID, after, 64, followBlock, f.rec.ChunkSize)
		if err != nil {
			fail(corrupt(err))
			return
		}
		if len(es) == 0 {
			rec, err := f.ch.File(f.ctx, f.ID)
			if err != nil {
				fail(corrupt(err))
				return
			}
			if rec.State != wire.Uploading {
				// The upload ended, and the script that ended it added the end
				// entry in the same step: it must be there now.
				if es, err := f.ch.Index(f.ctx, f.ID, after+1, after+1, f.rec.ChunkSize); err != nil || len(es) == 0 {
					fail(fmt.Errorf("%w: the upload of %s is %s, but its index ends after chunk %d without an end entry", ErrCorrupt, f.Name, rec.State, after))
					return
				}
				continue
			}
			if silent := time.Since(rec.Heartbeat); silent > f.c.opt.Lease && !warned {
				warned = true
				f.c.log.Warn("sender has gone silent; waiting for it to resume (or for the upload to be aborted: Client.Abort, Client.AbortStale)",
					"channel", f.Channel, "file", f.Name, "silent", silent.Round(time.Second))
			}
			continue
		}
		for _, e := range es {
			if e.Seq != after+1 {
				fail(f.jumped(after, e.Seq))
				return
			}
			after = e.Seq
			x := &fetched{e: e, done: make(chan struct{})}
			if !push(x) {
				return
			}
			if e.Kind != wire.ChunkEntry {
				close(x.done)
				return
			}
			fetchers.Add(1)
			go func() {
				defer fetchers.Done()
				defer close(x.done)
				x.data, x.err = f.get(x.e)
			}()
		}
	}
}

// jumped explains an index that continues at seq after chunk after: its
// entries in between were trimmed, once every group had consumed them, or
// the index is damaged.
func (f *File) jumped(after, seq int64) error {
	rec, err := f.ch.File(f.ctx, f.ID)
	switch {
	case err != nil:
		return corrupt(err)
	case after < rec.Low-1 && seq <= rec.Low:
		return fmt.Errorf("%w: chunks %d to %d of %s were released once every group had consumed them (a live upload, or one that streamed through a full budget), so they cannot be read again",
			ErrGone, after+1, rec.Low-1, f.Name)
	}
	return fmt.Errorf("%w: index of %s jumps from %d to %d", ErrCorrupt, f.Name, after, seq)
}

// get reads one chunk into a buffer of the pool and verifies it.
func (f *File) get(e wire.Entry) ([]byte, error) {
	buf, err := f.bufs.GetLen(f.ctx, e.Len)
	if err != nil {
		return nil, err
	}
	b, size, err := f.ch.ReadChunk(f.ctx, store.Upload{ID: f.ID, Spread: f.rec.Spread(), Epoch: e.Epoch}, e.Seq, buf,
		func(b []byte, size int64) bool { return f.verify(e, b, size) == nil })
	switch {
	case errors.Is(err, store.ErrGone):
		err = f.missing(e)
	case err == nil:
		err = f.verify(e, b, size)
	}
	if err != nil {
		f.bufs.Put(buf)
		return nil, err
	}
	return b, nil
}

// verify checks chunk e as read from Redis: b, of a value size bytes long.
func (f *File) verify(e wire.Entry, b []byte, size int64) error {
	if size != int64(e.Len) {
		return fmt.Errorf("%w: chunk %d of %s is %d bytes, its index entry says %d", ErrCorrupt, e.Seq, f.Name, size, e.Len)
	}
	if chunk.Sum(b) != e.Digest {
		return fmt.Errorf("%w: chunk %d of %s does not match its digest", ErrCorrupt, e.Seq, f.Name)
	}
	return nil
}

// missing explains why chunk e is not in Redis.
func (f *File) missing(e wire.Entry) error {
	rec, err := f.ch.File(f.ctx, f.ID)
	switch {
	case err != nil:
		return corrupt(err)
	case e.Seq < rec.Low:
		return fmt.Errorf("%w: chunk %d of %s was released once every group had consumed it (the file streamed through a full budget), so it cannot be read again", ErrGone, e.Seq, f.Name)
	}
	return fmt.Errorf("%w: chunk %d of %s is missing from redis", ErrCorrupt, e.Seq, f.Name)
}

// Keep renews this member's claim on the file and reports ErrLost if
// another member took it over. A handler calls it right before it makes
// its output visible (a rename, a commit), so a member that was frozen
// past its lease does not deliver a file twice.
func (f *File) Keep(ctx context.Context) error {
	if f.member == "" {
		return nil
	}
	ok, err := f.ch.Renew(ctx, f.group, f.member, f.entry)
	if err != nil {
		return err
	}
	if !ok {
		return ErrLost
	}
	return nil
}

// Lines returns an iterator over the lines of r without their line
// endings ("\n" or "\r\n"). A line may be up to 64 MiB long. The slice is
// valid until the next iteration. A read error ends the iteration with
// that error.
func Lines(r io.Reader) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 64<<20)
		for s.Scan() {
			line := s.Bytes()
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if !yield(line, nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			yield(nil, err)
		}
	}
}
