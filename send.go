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
	// Expected is the size the sender expects: a regular file's size as
	// its upload began; 0 if unknown (stdin, a followed log). Size, once
	// known, is what counts.
	Expected int64
	// Resumed: Send continued an interrupted upload of the same name; a
	// receiver's File continued a partial copy (File.ResumeFrom).
	Resumed bool
	// ResumedBytes is, with Resumed, how many bytes the interrupted upload
	// had stored, or the partial copy held: they were checked, not moved
	// again.
	ResumedBytes int64
	Skipped      bool   // SendFile: the batch had already sent this file unchanged (SendOptions.Batch)
	Entry        string // the announcing entry in the files stream
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
	c.stats.sent(info, err)
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
	token := c.token()
	defer c.abandon(token)
	defer inFlight(&c.stats.sending)()
	rec := wire.File{Kind: wire.KindFile, Name: meta.Name, Mode: meta.Mode, ModTime: meta.ModTime,
		ChunkSize: c.opt.ChunkSize, Sender: token, Live: file == nil, Expect: max(sizeOf(st), 0)}
	info := &FileInfo{Channel: channel, Name: meta.Name, Mode: meta.Mode.Perm(), ModTime: meta.ModTime, Size: -1, Expected: rec.Expect}
	t := c.transfers.start(channel, meta.Name, false, sizeOf(st))
	defer t.end()
	opt.Progress = t.progress(opt.Progress)

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
		t.setID(res.ID)
		info.ID, info.Entry = res.ID, res.Entry
		if res.Status == store.BeginNew {
			break
		}
		differs, err := u.resume(ctx, r)
		if err != nil {
			return nil, err
		}
		if differs == "" {
			info.Resumed, info.ResumedBytes = true, u.committed
			t.resumedAt(u.committed)
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
// refuses at once if no group has joined it: a channel is listed
// only once a sender could announce files on it.
func (c *Client) openLive(ctx context.Context, ch store.Channel, maxBytes int64) error {
	if maxBytes > 0 {
		if err := c.SetBudget(ctx, ch.Keys().Channel(), maxBytes); err != nil {
			return err
		}
	}
	if n, err := ch.GroupCount(ctx); err != nil {
		return err
	} else if n == 0 {
		return noGroups(ch)
	}
	return c.register(ctx, ch)
}

func noGroups(ch store.Channel) error {
	return fmt.Errorf("%w %s: start a receiver first (Client.Receive), or join a group (Client.Join); groups get only files sent after they join",
		ErrNoGroups, ch.Keys().Channel())
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
			return res, c.register(ctx, ch) // listed once something was announced
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
