package filecast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// upload stores the chunks of one file.
type upload struct {
	c    *Client
	ch   store.Channel
	id   string
	name string
	pool *chunk.Pool
	hash *chunk.Hasher
	opt  SendOptions
	seq  int64 // chunks read from the source so far (committed, after a resume)
	size int64 // bytes read from the source so far
	// committed counts the bytes committed; the commit goroutine owns it
	// while run runs.
	committed int64

	stopped error // why Redis refused more chunks (set by store)

	// spread and epoch name the upload's chunk keys: a protocol 2 file
	// (on a cluster), and the upload epoch a resume moved it to.
	spread bool
	epoch  int64
}

// ref names the upload's chunks for the store.
func (u *upload) ref() store.Upload { return store.Upload{ID: u.id, Spread: u.spread, Epoch: u.epoch} }

// started notes a new upload: of protocol 2 if rec is.
func (u *upload) started(id string, rec *wire.File) {
	u.id, u.spread, u.epoch = id, rec.Spread(), 0
}

// reopen resumes the upload in the store (see store.Channel.Resume) and
// returns how many chunks it had committed.
func (u *upload) reopen(ctx context.Context) (int64, error) {
	r, err := u.ch.Resume(ctx, u.id)
	if err != nil {
		return 0, err
	}
	u.spread, u.epoch = r.Spread, r.Epoch
	return r.Chunks, nil
}

// resume continues the upload u.id: it re-reads the committed chunks from r
// and checks them. If r differs it says where, and leaves the upload as it
// is for the caller to abort or complete (completeAsSent).
func (u *upload) resume(ctx context.Context, r io.Reader) (differs string, err error) {
	u.reset()
	rec, err := u.ch.File(ctx, u.id)
	if err != nil {
		return "", corrupt(err)
	}
	if rec.ChunkSize != u.c.opt.ChunkSize {
		return fmt.Sprintf("resumed with chunk size %d instead of %d", u.c.opt.ChunkSize, rec.ChunkSize), nil
	}
	n, err := u.reopen(ctx)
	if err != nil {
		return "", err
	}
	stored, err := u.ch.Stored(ctx, u.id, n, wire.MaxChunkSize)
	if err != nil {
		return "", corrupt(err)
	}
	if stored.Offset > 0 { // chunks trimmed with their index entries: check their digest
		m, err := io.CopyN(u.hash, r, stored.Offset)
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		if m != stored.Offset || u.hash.Sum() != stored.Prefix {
			return fmt.Sprintf("source changed in its first %d bytes", stored.Offset), nil
		}
		u.size = stored.Offset
	}
	buf := make([]byte, u.c.opt.ChunkSize)
	for _, e := range stored.Entries {
		if e.Kind != wire.ChunkEntry || e.Len > len(buf) {
			return fmt.Sprintf("index entry %d unusable for resume", e.Seq), nil
		}
		m, err := io.ReadFull(r, buf[:e.Len])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return "", err
		}
		if m != e.Len || chunk.Sum(buf[:m]) != e.Digest {
			return fmt.Sprintf("source changed at chunk %d", e.Seq), nil
		}
		u.hash.Write(buf[:m])
		u.size += int64(m)
	}
	u.seq, u.committed = n, u.size
	u.c.log.Info("resuming upload", "id", u.id, "chunks", u.seq, "bytes", u.size)
	return "", nil
}

// committedTail returns how many bytes the upload has committed and the
// index entry of its last chunk still kept (zero if none is): enough to
// tell cheaply whether a source may hold what was sent.
func (u *upload) committedTail(ctx context.Context) (int64, wire.Entry, error) {
	n, err := u.reopen(ctx)
	if err != nil {
		return 0, wire.Entry{}, err
	}
	stored, err := u.ch.Stored(ctx, u.id, n, wire.MaxChunkSize)
	if err != nil {
		return 0, wire.Entry{}, corrupt(err)
	}
	size, last := stored.Offset, wire.Entry{}
	for _, e := range stored.Entries {
		size, last = size+int64(e.Len), e
	}
	return size, last, nil
}

// reset forgets what was read from a source, to read one from its start.
func (u *upload) reset() {
	u.hash, u.size, u.seq, u.committed, u.stopped = chunk.NewHasher(), 0, 0, 0, nil
}

// completeAsSent completes the upload with the chunks committed so far,
// for a source that cannot continue it (a followed file that vanished or
// changed while its sender was down): their prefix digest is the file's
// digest, so nothing needs to be read again. record, if not nil, gives the
// batch record to complete it with. It returns the size and digest.
func (u *upload) completeAsSent(ctx context.Context, record func(size int64, digest wire.Digest) *store.Record) (int64, wire.Digest, error) {
	n, err := u.reopen(ctx)
	if err != nil {
		return 0, wire.Digest{}, err
	}
	stored, err := u.ch.Stored(ctx, u.id, n, wire.MaxChunkSize)
	if err != nil {
		return 0, wire.Digest{}, corrupt(err)
	}
	size, digest := stored.Offset, stored.Prefix
	if size == 0 {
		digest = chunk.NewHasher().Sum()
	}
	for _, e := range stored.Entries {
		if e.Kind != wire.ChunkEntry || !e.HasPrefix {
			return 0, wire.Digest{}, fmt.Errorf("%w: chunk %d of the upload has no prefix digest to complete it with", ErrCorrupt, e.Seq)
		}
		size, digest = size+int64(e.Len), e.Prefix
	}
	var rec *store.Record
	if record != nil {
		rec = record(size, digest)
	}
	if _, err := u.ch.Complete(ctx, u.id, size, digest, rec); err != nil {
		return 0, wire.Digest{}, err
	}
	u.c.stats.filesSent.Add(1)
	return size, digest, nil
}

// abortCancelled aborts the upload after ctx was cancelled
// (SendOptions.AbortOnCancel) and returns the error Send reports.
func (u *upload) abortCancelled(ctx context.Context, name string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	reason := fmt.Sprintf("the sender was interrupted after %d bytes, and its input cannot be read again", u.committed)
	if err := u.ch.Abort(actx, u.id, reason); err != nil {
		return fmt.Errorf("%w (and aborting the upload failed: %w; Client.Abort or Client.AbortStale aborts it)", ctx.Err(), err)
	}
	return fmt.Errorf("%w after %d bytes of %s: %w (its input cannot be read again)", ErrAborted, u.committed, name, ctx.Err())
}

// stored is one chunk on its way into Redis.
type stored struct {
	ref  store.ChunkRef
	buf  []byte
	err  error
	done chan struct{} // closed when the SET has finished
}

// run reads src to its end and stores every chunk. Three stages overlap:
// this goroutine reads and hashes; store reserves budget for every chunk
// read so far in one call and starts their SETs (up to ReadAhead in
// flight); commit publishes stored chunks in order, as many per call as are
// ready. Batching keeps the round trips to Redis off the data's path.
func (u *upload) run(ctx context.Context, src chunk.Source) error {
	if s, ok := src.(interface{ Close() }); ok {
		defer s.Close()
	}
	g, gctx := errgroup.WithContext(ctx)
	read := make(chan *stored, u.c.opt.ReadAhead)
	queue := make(chan *stored, u.c.opt.ReadAhead)
	g.Go(func() error { return u.commit(gctx, queue) })
	g.Go(func() error { return u.beat(gctx) })
	g.Go(func() error { return u.store(gctx, g, read, queue) })
	readErr := func() error {
		defer close(read)
		for {
			buf, err := src.Next(gctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			u.hash.Write(buf)
			u.size += int64(len(buf))
			u.seq++
			s := &stored{ref: store.ChunkRef{Seq: u.seq, Len: len(buf), Prefix: u.hash.Sum()}, buf: buf, done: make(chan struct{})}
			select {
			case read <- s:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
	}()
	err := g.Wait()
	if u.stopped != nil {
		return u.stopped
	}
	if readErr != nil && (ctx.Err() != nil || !errors.Is(readErr, context.Canceled)) {
		err = readErr // else the reader only saw the cancel caused by err
	}
	if err == nil || errors.Is(err, errDone) {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

var errDone = errors.New("upload done")

// store takes the chunks read so far, reserves budget for as many as fit
// in one call, waiting while the channel is full, and starts their SETs.
func (u *upload) store(ctx context.Context, g *errgroup.Group, read <-chan *stored, queue chan<- *stored) error {
	defer close(queue)
	var waiting budgetWait
	defer func() { u.c.stats.waitEnded(waiting.since); u.waited(ctx, &waiting) }()
	var batch []*stored
	refs := make([]store.ChunkRef, 0, u.c.opt.ReadAhead)
	open := true
	for open || len(batch) > 0 {
		if len(batch) == 0 {
			select {
			case s, ok := <-read:
				if !ok {
					return nil
				}
				batch = append(batch, s)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	more: // add whatever else has been read meanwhile
		for open && len(batch) < u.c.opt.ReadAhead {
			select {
			case s, ok := <-read:
				if !ok {
					open = false
					break more
				}
				batch = append(batch, s)
			default:
				break more
			}
		}
		refs = refsOf(refs, batch)
		granted, after, err := u.ch.Reserve(ctx, u.id, refs, DefaultMaxBytes)
		if errors.Is(err, store.ErrGone) {
			// The upload was aborted. Stop storing, but let commit take the
			// SETs still in flight: for an upload that is over, commit.lua
			// deletes their chunks, so none is left behind.
			u.stopped = err
			return nil
		}
		if err != nil {
			return err
		}
		for _, s := range batch[:granted] {
			select {
			case queue <- s:
			case <-ctx.Done():
				return ctx.Err()
			}
			g.Go(func() error {
				defer close(s.done)
				s.ref.Digest = chunk.Sum(s.buf)
				s.err = u.ch.PutChunk(ctx, u.ref(), s.ref.Seq, s.buf)
				return s.err
			})
		}
		batch = append(batch[:0], batch[granted:]...)
		if len(batch) == 0 {
			u.c.stats.waitEnded(waiting.since)
			u.waited(ctx, &waiting)
			continue
		}
		// Full: wake on the next "bytes freed" event; re-check at least
		// every second in case the event stream was trimmed or the server
		// restarted.
		u.waiting(ctx, &waiting)
		if err := u.ch.WaitEvent(ctx, after, time.Second); err != nil {
			return err
		}
	}
	return nil
}

// commit publishes stored chunks in order, as many per call as have been
// stored, and recycles their buffers.
func (u *upload) commit(ctx context.Context, queue <-chan *stored) error {
	var next *stored // taken from the queue, not yet stored
	batch := make([]*stored, 0, u.c.opt.ReadAhead)
	refs := make([]store.ChunkRef, 0, u.c.opt.ReadAhead)
	for {
		s := next
		next = nil
		if s == nil {
			var ok bool
			select {
			case s, ok = <-queue:
				if !ok {
					return errDone // stops the heartbeat
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		batch = append(batch[:0], s)
	more: // add the chunks after it that are stored already
		for len(batch) < cap(batch) {
			select {
			case n, ok := <-queue:
				if !ok {
					break more
				}
				select {
				case <-n.done:
					batch = append(batch, n)
				default:
					next = n
					break more
				}
			default:
				break more
			}
		}
		for _, s := range batch {
			if s.err != nil {
				return s.err
			}
		}
		refs = refsOf(refs, batch)
		if err := u.ch.Commit(ctx, u.ref(), refs); err != nil {
			if errors.Is(err, store.ErrGone) {
				u.drain(ctx, next, queue) // commit deletes the chunks stored after the abort
			}
			return err
		}
		for _, s := range batch {
			u.committed += int64(s.ref.Len)
			u.c.stats.bytesSent.Add(int64(s.ref.Len))
			u.pool.Put(s.buf)
		}
		if u.opt.Progress != nil {
			u.opt.Progress(u.committed)
		}
	}
}

// refsOf returns the refs of chunks, reusing dst.
func refsOf(dst []store.ChunkRef, chunks []*stored) []store.ChunkRef {
	dst = dst[:0]
	for _, s := range chunks {
		dst = append(dst, s.ref)
	}
	return dst
}

// drain waits for the stores still in flight after the upload was aborted
// and lets commit delete what they stored, so no chunk key is left behind.
func (u *upload) drain(ctx context.Context, next *stored, queue <-chan *stored) {
	gone := func(s *stored) {
		<-s.done
		if s.err == nil {
			u.ch.Commit(ctx, u.ref(), []store.ChunkRef{s.ref})
		}
	}
	if next != nil {
		gone(next)
	}
	for s := range queue {
		gone(s)
	}
}

// beat keeps the upload's heartbeat fresh while the source is slow.
func (u *upload) beat(ctx context.Context) error {
	t := time.NewTicker(u.c.opt.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := u.ch.Beat(ctx, u.id); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
