package filecast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// Meta describes a file being sent.
type Meta struct {
	Name    string      // slash-separated relative path; see wire.CheckName
	Mode    fs.FileMode // permission bits; default 0644
	ModTime time.Time   // default: now
}

// FileInfo describes a file in a channel.
type FileInfo struct {
	Channel string
	ID      string // unique within the channel
	Name    string
	Size    int64 // -1 while unknown
	Mode    fs.FileMode
	ModTime time.Time
	Digest  string // XXH3-128 of the content, hex; empty until known
	Resumed bool   // Send: an interrupted upload of the same name was continued
	Skipped bool   // SendFile: the batch had already sent this file unchanged (SendOptions.Batch)
	Entry   string // the announcing entry in the files stream
}

// SendFile sends the file at path under name (the base name if empty),
// keeping its mode and modification time. See Send.
func (c *Client) SendFile(ctx context.Context, channel, path, name string, opt SendOptions) (*FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Op: "send", Channel: channel, Name: path, Err: fmt.Errorf("%w: %w", ErrUsage, err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &Error{Op: "send", Channel: channel, Name: path, Err: err}
	}
	if st.IsDir() {
		return nil, &Error{Op: "send", Channel: channel, Name: path, Err: fmt.Errorf("%w: is a directory", ErrUsage)}
	}
	if name == "" {
		name = st.Name()
	}
	meta := Meta{Name: name, Mode: st.Mode().Perm(), ModTime: st.ModTime()}.normalized()
	if opt.Batch != "" && st.Size() > c.smallLimit() { // a small file's one call asks itself
		info, err := c.sentBefore(ctx, channel, sourceOf(f), meta, st.Size(), opt.Batch)
		if info != nil || err != nil {
			return info, err
		}
	}
	return c.sendWrapped(ctx, channel, f, meta, opt, opt.Batch != "")
}

// smallLimit is the size up to which a regular file of a batch is
// published in one call (putSmall): what fits in the first chunk.
func (c *Client) smallLimit() int64 { return int64(min(chunk.Ramp[0], c.opt.ChunkSize)) }

// normalized fills in the defaults of Meta.
func (m Meta) normalized() Meta {
	if m.Mode == 0 {
		m.Mode = 0o644
	}
	if m.ModTime.IsZero() {
		m.ModTime = time.Now()
	}
	return m
}

// regularFile returns r as a regular file, with what Stat said of it, or
// nil: regular files are read whole, in one call when small, and recorded
// in batches by path.
func regularFile(r io.Reader) (*os.File, fs.FileInfo) {
	f, ok := r.(*os.File)
	if !ok {
		return nil, nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, nil
	}
	return f, st
}

// sourceOf names where f (a regular file, or nil) is read from, for a
// batch record: its absolute path, or "".
func sourceOf(f *os.File) string {
	if f == nil {
		return ""
	}
	abs, err := filepath.Abs(f.Name())
	if err != nil {
		return ""
	}
	return abs
}

// sentBefore returns the FileInfo of the earlier send by batch of the file
// read from source, or nil if the batch has not sent it as it is now.
func (c *Client) sentBefore(ctx context.Context, channel, source string, meta Meta, size int64, batch string) (*FileInfo, error) {
	fail := func(err error) (*FileInfo, error) {
		return nil, &Error{Op: "send", Channel: channel, Name: meta.Name, Err: err}
	}
	ch, err := c.channel(channel)
	if err != nil {
		return fail(err)
	}
	if err := wire.CheckChannel("batch", batch); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrUsage, err))
	}
	s, ok, err := ch.Sent(ctx, batch, meta.Name)
	if err != nil {
		return fail(err)
	}
	if !ok {
		return nil, nil
	}
	if s.Source != source || s.Size != size || !s.ModTime.Equal(meta.ModTime) || s.Mode != meta.Mode.Perm() {
		c.log.Info("the batch sent another file, or this one before it changed, under this name; sending it",
			"name", meta.Name, "batch", batch, "source", s.Source)
		return nil, nil
	}
	return &FileInfo{Channel: channel, ID: s.ID, Name: meta.Name, Size: s.Size, Mode: s.Mode, ModTime: s.ModTime,
		Digest: s.Digest.String(), Skipped: true}, nil
}

// Send publishes the bytes of r to channel as one file. The file is
// announced before its first chunk is stored, so receivers start reading
// while Send still uploads; Send waits while the channel's budget is full.
//
// If an earlier Send of the same name to the same channel was interrupted
// (killed, cancelled, or its connection lost for longer than RetryFor), Send
// continues that upload: it re-reads r, checks that the bytes already
// stored match, and stores only the rest, so receivers see one file. If
// they do not match, the old upload is aborted and, when r is seekable, a
// new one starts; otherwise Send fails with ErrAborted.
//
// On cancel Send returns ctx.Err() and leaves the upload resumable.
// Errors are *Error wrapping ErrNoGroups, ErrBusy, ErrUsage, ErrFull,
// ErrUnavailable, ErrAuth or the read error of r.
func (c *Client) Send(ctx context.Context, channel string, r io.Reader, meta Meta, opt SendOptions) (*FileInfo, error) {
	return c.sendWrapped(ctx, channel, r, meta, opt, false)
}

// sendWrapped is Send; with skipSame (SendFile in a batch), a small file
// the batch already sent unchanged is skipped by the call that would
// publish it.
func (c *Client) sendWrapped(ctx context.Context, channel string, r io.Reader, meta Meta, opt SendOptions, skipSame bool) (*FileInfo, error) {
	info, err := c.send(ctx, channel, r, meta, opt, skipSame)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = &Error{Op: "send", Channel: channel, Name: meta.Name, Err: err}
	}
	return info, err
}

func (c *Client) send(ctx context.Context, channel string, r io.Reader, meta Meta, opt SendOptions, skipSame bool) (*FileInfo, error) {
	ch, err := c.channel(channel)
	if err != nil {
		return nil, err
	}
	if err := wire.CheckName(meta.Name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	meta = meta.normalized()
	if opt.Flush == 0 {
		opt.Flush = DefaultFlush
	}
	file, st := regularFile(r)
	var record *store.Record
	if opt.Batch != "" {
		if err := wire.CheckChannel("batch", opt.Batch); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUsage, err)
		}
		ttl := BatchTTL
		if opt.recordTTL > 0 {
			ttl = opt.recordTTL
		}
		record = &store.Record{Batch: opt.Batch, TTL: ttl, Sent: wire.Sent{Source: sourceOf(file)}}
	}
	if opt.MaxBytes > 0 {
		if err := c.SetBudget(ctx, channel, opt.MaxBytes); err != nil {
			return nil, err
		}
	}
	if err := c.register(ctx, ch); err != nil {
		return nil, err
	}
	token := c.token()
	defer c.abandon(token)
	rec := wire.File{Kind: wire.KindFile, Name: meta.Name, Mode: meta.Mode, ModTime: meta.ModTime,
		ChunkSize: c.opt.ChunkSize, Sender: token, Live: file == nil}
	info := &FileInfo{Channel: channel, Name: meta.Name, Mode: meta.Mode.Perm(), ModTime: meta.ModTime, Size: -1}

	if record != nil { // see putSmall
		done, err := c.putSmall(ctx, ch, file, st, &rec, record, info, opt, skipSame)
		if err != nil {
			return nil, err
		}
		if done {
			return info, nil
		}
	}
	u := &upload{c: c, ch: ch, name: meta.Name, pool: chunk.NewPool(c.opt.ChunkSize, c.opt.ReadAhead+2), hash: chunk.NewHasher(), opt: opt}
	for attempt := 0; ; attempt++ {
		res, err := c.begin(ctx, ch, &rec, opt.Batch)
		if err != nil {
			return nil, err
		}
		u.started(res.ID, &rec)
		info.ID, info.Entry = res.ID, res.Entry
		if res.Status == store.BeginNew {
			break
		}
		differs, err := u.resume(ctx, r)
		if err != nil {
			return nil, err
		}
		if differs == "" {
			info.Resumed = true
			break
		}
		c.log.Info("the input differs from the interrupted upload; aborting it", "id", u.id, "why", differs)
		if err := u.ch.Abort(ctx, u.id, differs+"; sent again as a new file"); err != nil {
			return nil, err
		}
		s, seekable := r.(io.Seeker)
		if !seekable || attempt > 0 {
			return nil, fmt.Errorf("%w: the input differs from the interrupted upload of %s (%s), which was aborted; send it again", ErrAborted, meta.Name, differs)
		}
		if _, err := s.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		u.reset()
	}
	// A regular file is read whole; anything else is cut as it arrives.
	var src chunk.Source
	if file != nil {
		src = chunk.ResumeFull(r, u.pool, u.seq)
	} else {
		src = chunk.NewLive(r, u.pool, opt.Flush)
	}
	for rollbacks := 1; ; rollbacks++ {
		err := u.run(ctx, src)
		if err == nil {
			break
		}
		if ctx.Err() != nil && opt.AbortOnCancel {
			return nil, u.abortCancelled(ctx, meta.Name)
		}
		// A failover to a replica that lacked the last chunks: a file goes
		// on from what Redis kept, cut where it was before.
		s, seekable := r.(io.Seeker)
		if !errors.Is(err, store.ErrRolledBack) || file == nil || !seekable || rollbacks > 3 {
			return nil, err
		}
		c.log.Warn("redis lost chunks it had confirmed (a failover?); going on from what it kept", "file", meta.Name, "err", err)
		if _, err := s.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		differs, err := u.resume(ctx, r)
		if err != nil {
			return nil, err
		}
		if differs != "" {
			return nil, fmt.Errorf("%w: after redis lost chunks of %s it had confirmed, %s; send it again", ErrAborted, meta.Name, differs)
		}
		u.pool = chunk.NewPool(c.opt.ChunkSize, c.opt.ReadAhead+2) // the failed run's buffers are not all back
		src = chunk.ResumeFull(r, u.pool, u.seq)
	}
	info.Size, info.Digest = u.size, u.hash.Sum().String()
	if record != nil {
		record.Sent = wire.Sent{Size: u.size, ModTime: meta.ModTime, Mode: meta.Mode.Perm(), Digest: u.hash.Sum(), ID: u.id,
			Source: record.Sent.Source}
	}
	if _, err := ch.Complete(ctx, u.id, u.size, u.hash.Sum(), record); err != nil {
		return nil, err
	}
	return info, nil
}

// openLive readies channel for a sender that runs until stopped (Follow,
// Watch): it sets the budget if one is given, lists the channel, and
// refuses at once if no group has joined it.
func (c *Client) openLive(ctx context.Context, ch store.Channel, maxBytes int64) error {
	if maxBytes > 0 {
		if err := c.SetBudget(ctx, ch.Keys().Channel(), maxBytes); err != nil {
			return err
		}
	}
	if err := c.register(ctx, ch); err != nil {
		return err
	}
	if n, err := ch.GroupCount(ctx); err != nil {
		return err
	} else if n == 0 {
		return noGroups(ch)
	}
	return nil
}

func noGroups(ch store.Channel) error {
	return fmt.Errorf("%w %s: start a receiver first (filecast recv %s --group NAME); groups get only files sent after they join",
		ErrNoGroups, ch.Keys().Channel(), ch.Keys().Channel())
}

// putSmall publishes a regular file that fits in the first chunk in one
// script call (store.Put) instead of five round trips. It reports false,
// with r rewound, when the file must take the long way: it is larger, or
// an interrupted upload of its name is to be resumed, or the budget is
// full (the long way waits for it). Only files of a batch take this way:
// their batch record is what tells a retried call, whose reply was lost
// after every group had consumed and released the file, that it was
// published.
func (c *Client) putSmall(ctx context.Context, ch store.Channel, f *os.File, st fs.FileInfo, rec *wire.File, record *store.Record,
	info *FileInfo, opt SendOptions, skipSame bool) (bool, error) {
	if f == nil || st.Size() > c.smallLimit() {
		return false, nil
	}
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return false, nil
	}
	rewind := func() (bool, error) {
		_, err := f.Seek(start, io.SeekStart)
		return false, err
	}
	data := make([]byte, st.Size()+1) // one more, to notice a file that grew
	n, err := io.ReadFull(f, data)
	if err != io.ErrUnexpectedEOF && err != io.EOF || int64(n) != st.Size() {
		return rewind()
	}
	data = data[:n]
	d := chunk.Sum(data)
	record.Sent = wire.Sent{Size: int64(n), ModTime: rec.ModTime, Mode: rec.Mode.Perm(), Digest: d, Source: record.Sent.Source}
	for {
		id := newID()
		record.Sent.ID = id
		res, err := ch.Put(ctx, store.PutArgs{ID: id, Name: rec.Name, Sender: rec.Sender, Value: data, Digest: d,
			DefaultMax: DefaultMaxBytes, Record: record, SkipSame: skipSame, Fields: rec.Fields()})
		if err != nil {
			return false, err
		}
		switch res.Status {
		case store.BeginNew:
			info.ID, info.Entry, info.Size, info.Digest = res.ID, res.Entry, int64(n), d.String()
			if opt.Progress != nil && n > 0 {
				opt.Progress(int64(n))
			}
			return true, nil
		case store.BeginNoGroups:
			return false, noGroups(ch)
		case store.PutSlow:
			return rewind()
		case store.PutSkipped:
			s, err := wire.ParseSent(res.Sent)
			if err != nil { // a damaged record never makes a file look sent
				skipSame = false
				continue
			}
			info.ID, info.Size, info.Mode, info.ModTime, info.Digest, info.Skipped = s.ID, s.Size, s.Mode, s.ModTime, s.Digest.String(), true
			return true, nil
		case store.BeginCollision: // a fresh random id was taken; draw another
		default:
			return false, fmt.Errorf("publish small file: unexpected reply %q", res.Status)
		}
	}
}

// begin announces rec, taking over the upload of a dead sender on this host.
// A mark ends batch, if given (EndBatch); a file checks that it may be
// recorded in it.
func (c *Client) begin(ctx context.Context, ch store.Channel, rec *wire.File, batch string) (store.BeginResult, error) {
	if rec.Kind == wire.KindFile && c.st.Spread() {
		rec.Version = wire.Version2 // on a cluster, chunks spread over every primary
	}
	takeover := false
	for {
		res, err := ch.Begin(ctx, store.BeginArgs{ID: newID(), Name: rec.Name, Kind: rec.Kind, Sender: rec.Sender,
			Stale: c.opt.Lease, Takeover: takeover, Batch: batch, Fields: rec.Fields()})
		if err != nil {
			return res, err
		}
		switch res.Status {
		case store.BeginNew, store.BeginResume:
			return res, nil
		case store.BeginNoGroups:
			return res, noGroups(ch)
		case store.BeginBusy:
			if !takeover && c.deadOnThisHost(res.Sender) {
				takeover = true
				continue
			}
			return res, fmt.Errorf("%w: %s is being uploaded by %s (last seen %v ago); wait for it, or for it to go silent for %v",
				ErrBusy, rec.Name, res.Sender, res.Age.Round(time.Millisecond), c.opt.Lease)
		}
		// BeginCollision: a fresh random id was taken; draw another.
	}
}

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
	return size, digest, nil
}

// abortCancelled aborts the upload after ctx was cancelled
// (SendOptions.AbortOnCancel) and returns the error Send reports.
func (u *upload) abortCancelled(ctx context.Context, name string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	reason := fmt.Sprintf("the sender was interrupted after %d bytes, and its input cannot be read again", u.committed)
	if err := u.ch.Abort(actx, u.id, reason); err != nil {
		return fmt.Errorf("%w (and aborting the upload failed: %w; filecast clean aborts it)", ctx.Err(), err)
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
			waiting = budgetWait{}
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

// Unfinished returns the names of the files whose upload to channel began
// and has not ended: in progress, or interrupted (a Send of the same name
// resumes it). A caller sending many files sends these first: an
// interrupted upload holds budget that only its completion frees.
func (c *Client) Unfinished(ctx context.Context, channel string) ([]string, error) {
	ch, err := c.channel(channel)
	if err != nil {
		return nil, err
	}
	up, err := ch.Unfinished(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(up))
	for name := range up {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// SendEOF marks the end of a batch on channel: a receiver running with
// ReceiveOptions.UntilEOF returns once its group has handled every file
// sent before the mark.
func (c *Client) SendEOF(ctx context.Context, channel string) error {
	return c.mark(ctx, channel, "")
}

// EndBatch forgets batch's record of the files it sent
// (SendOptions.Batch): sending the batch again then sends every file. With
// eof it also marks the end of the batch on channel (SendEOF) in the same
// step, so an interruption cannot leave the mark placed and the batch
// remembered, or the reverse.
func (c *Client) EndBatch(ctx context.Context, channel, batch string, eof bool) error {
	if err := wire.CheckChannel("batch", batch); err != nil {
		return &Error{Op: "end batch", Channel: channel, Err: fmt.Errorf("%w: %w", ErrUsage, err)}
	}
	if eof {
		return c.mark(ctx, channel, batch)
	}
	ch, err := c.channel(channel)
	if err != nil {
		return &Error{Op: "end batch", Channel: channel, Err: err}
	}
	if err := ch.ForgetBatch(ctx, batch); err != nil {
		return &Error{Op: "end batch", Channel: channel, Err: err}
	}
	return nil
}

func (c *Client) mark(ctx context.Context, channel, batch string) error {
	ch, err := c.channel(channel)
	if err != nil {
		return err
	}
	rec := wire.File{Kind: wire.KindMark, Sender: c.token()}
	_, err = c.begin(ctx, ch, &rec, batch)
	return err
}
