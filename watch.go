package filecast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/fswatch"
	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// WatchOptions configure Watch. The zero value works.
type WatchOptions struct {
	// Name identifies the watcher in the channel: a watcher started again
	// with the same Name sends what arrived while it was down and nothing
	// it had sent. default: derived from the host name and the directory
	Name string
	// Settle is how long a file must stay unchanged (size, modification
	// time, inode) to count as complete. default: DefaultSettle
	Settle time.Duration
	// Exclude holds glob patterns (path.Match syntax) of files not to send,
	// matched against the base name and against the path relative to the
	// directory. Dot files and directories, *.tmp, *.part and *~ are never
	// sent: they are how writers keep a file out of sight until it is done.
	Exclude []string
	// RemoveSent deletes each file once its upload is complete, if it has
	// not changed since it was read.
	RemoveSent bool
	// Poll, if positive, makes the watcher look for changes at this
	// interval instead of using file system notifications (see
	// FollowOptions.Poll).
	Poll time.Duration
	// MaxBytes sets the channel's budget, as SendOptions.MaxBytes.
	MaxBytes int64
	// OnWait is told why a file waits for budget (SendOptions.OnWait).
	OnWait func(Wait)
	// OnEvent, if set, is told what happens to the files. It is called
	// from the watcher's goroutines, never two calls at once.
	OnEvent func(WatchEvent)
}

// WatchTTL is how long a watcher's record of what it sent outlives its
// last file (and its last start): a watcher down for longer sends its
// directory again.
const WatchTTL = 30 * 24 * time.Hour

// WatchOp says what happened to a watched file.
type WatchOp int

const (
	// WatchSent: a file, or a new version of it, was sent.
	WatchSent WatchOp = iota
	// WatchUnchanged: a file there was when the watcher started had been
	// sent, as it is, by an earlier run.
	WatchUnchanged
	// WatchRemoved: a sent file was deleted (WatchOptions.RemoveSent).
	WatchRemoved
	// WatchFailed: a file could not be sent now (Err); it is tried again
	// when it changes, and every half minute.
	WatchFailed
	// WatchPolling: file system notifications are unavailable (Err); the
	// watcher polls.
	WatchPolling
)

// WatchEvent is what WatchOptions.OnEvent is told.
type WatchEvent struct {
	Op   WatchOp
	Path string   // the file on disk
	File FileInfo // Sent, Unchanged: as sent
	Err  error
}

// Watch sends every regular file that appears in dir or below it, is
// renamed into it, or changes, once it is complete, until ctx ends: a drop
// folder. Each file is named by its slash-separated path relative to dir,
// and each version of it is sent once. The watcher keeps its record of
// what it sent in Redis (a batch, SendOptions.Batch, kept WatchTTL): run
// again with the same Name, it sends what arrived while it was down and
// nothing it had sent.
//
// On cancel Watch returns ctx.Err(); a file it was sending is resumed by
// the next run. It returns early on errors that affect every file
// (ErrUnavailable, ErrAuth, ErrNoGroups, ErrFull); a file that cannot be
// read is reported (WatchFailed) and tried again. A dir that does not exist
// or cannot be read is ErrUsage.
func (c *Client) Watch(ctx context.Context, channel, dir string, opt WatchOptions) error {
	w, err := c.newWatcher(ctx, channel, dir, opt)
	if err != nil {
		return &Error{Op: "watch", Channel: channel, Name: dir, Err: err}
	}
	err = w.run(ctx)
	if err != nil && ctx.Err() == nil {
		err = &Error{Op: "watch", Channel: channel, Name: dir, Err: err}
	}
	return err
}

// WatchName returns the default WatchOptions.Name for dir.
func WatchName(dir string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return "watch-" + chunk.Sum([]byte(host + "\x00" + dir)).String()[:16]
}

// watchWorkers is how many files a watcher sends at once.
const watchWorkers = 4

// watcher runs one Watch.
type watcher struct {
	ctx  context.Context
	c    *Client
	ch   store.Channel
	opt  WatchOptions
	dir  string // absolute
	w    *fswatch.Watcher
	evMu sync.Mutex

	// Owned by the run loop:
	seen    map[string]observed // every file found, as last seen
	changed map[string]time.Time
	done    map[string]observed // as it was when it was last sent (or found sent)
	failed  map[string]failure
	sending map[string]bool
}

// observed is what a file looked like; a change in any means a new version.
type observed struct {
	size  int64
	mtime time.Time
	id    fileID
}

func observe(st fs.FileInfo) observed {
	return observed{size: st.Size(), mtime: st.ModTime(), id: idOf(st)}
}

type failure struct {
	obs observed // as it was when it failed
	at  time.Time
	err string
}

// retryFailed is how long a file that could not be sent waits before it
// is tried again unchanged.
const retryFailed = 30 * time.Second

func (c *Client) newWatcher(ctx context.Context, channel, dir string, opt WatchOptions) (*watcher, error) {
	ch, err := c.channel(channel)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	// The errors are wrapped in an Error naming the directory (Watch).
	if st, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, errors.Unwrap(err))
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%w: not a directory", ErrUsage)
	}
	if f, err := os.Open(abs); err != nil {
		return nil, fmt.Errorf("%w: cannot read it: %w", ErrUsage, errors.Unwrap(err))
	} else if _, err := f.ReadDir(1); err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, fmt.Errorf("%w: cannot read it: %w", ErrUsage, errors.Unwrap(err))
	} else {
		f.Close()
	}
	for _, x := range opt.Exclude {
		if _, err := path.Match(x, ""); err != nil {
			return nil, fmt.Errorf("%w: exclude pattern %q: %w", ErrUsage, x, err)
		}
	}
	if opt.Name == "" {
		opt.Name = WatchName(abs)
	}
	if err := wire.CheckChannel("watcher name", opt.Name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if opt.Settle == 0 {
		opt.Settle = DefaultSettle
	}
	if opt.Settle < 0 || opt.Poll < 0 {
		return nil, fmt.Errorf("%w: Settle and Poll must not be negative", ErrUsage)
	}
	if err := c.openLive(ctx, ch, opt.MaxBytes); err != nil {
		return nil, err
	}
	return &watcher{c: c, ch: ch, opt: opt, dir: abs, seen: map[string]observed{}, changed: map[string]time.Time{},
		done: map[string]observed{}, failed: map[string]failure{}, sending: map[string]bool{}}, nil
}

func (w *watcher) event(e WatchEvent) {
	if w.opt.OnEvent == nil {
		return
	}
	w.evMu.Lock()
	defer w.evMu.Unlock()
	w.opt.OnEvent(e)
}

// ignored reports whether rel (slash-separated, relative to the directory)
// is kept out of sight: a dot file or directory, a temporary name, or
// excluded.
func (w *watcher) ignored(rel string) bool {
	base := path.Base(rel)
	for part := range strings.SplitSeq(rel, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	if strings.HasSuffix(base, ".tmp") || strings.HasSuffix(base, ".part") || strings.HasSuffix(base, "~") {
		return true
	}
	for _, x := range w.opt.Exclude {
		if ok, _ := path.Match(x, base); ok {
			return true
		}
		if ok, _ := path.Match(x, rel); ok {
			return true
		}
	}
	return false
}

// rel returns p relative to the directory, slash-separated, if it is below it.
func (w *watcher) rel(p string) (string, bool) {
	r, err := filepath.Rel(w.dir, p)
	if err != nil || r == "." || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(r), true
}

type sendResult struct {
	rel  string
	obs  observed // as it was queued
	info *FileInfo
	err  error
}

func (w *watcher) run(ctx context.Context) error {
	w.ctx = ctx
	var pollOnce sync.Once
	w.w = fswatch.New(fswatch.Options{Poll: w.opt.Poll, ForcePoll: w.opt.Poll > 0, Rescan: 10 * time.Second,
		OnPoll: func(reason error) {
			pollOnce.Do(func() { w.event(WatchEvent{Op: WatchPolling, Err: reason}) })
		}})
	defer w.w.Close()
	if err := w.ch.KeepBatch(ctx, w.opt.Name, WatchTTL); err != nil {
		return err
	}
	w.scan(w.dir)
	if err := w.prune(ctx); err != nil {
		return err
	}

	wctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	queue := make(chan sendResult)
	results := make(chan sendResult)
	var workers sync.WaitGroup
	for range watchWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for job := range queue {
				job.info, job.err = w.c.SendFile(wctx, w.ch.Keys().Channel(), filepath.Join(w.dir, filepath.FromSlash(job.rel)), job.rel,
					SendOptions{Batch: w.opt.Name, recordTTL: WatchTTL, OnWait: w.opt.OnWait})
				results <- job
			}
		}()
	}
	tick := time.NewTicker(max(w.opt.Settle/4, 10*time.Millisecond))
	defer tick.Stop()
	var ready []sendResult // settled files waiting for a worker
	inflight := 0
	var fatal error
	for {
		var next chan<- sendResult
		var job sendResult
		if len(ready) > 0 && fatal == nil && wctx.Err() == nil {
			next, job = queue, ready[0]
		}
		if (fatal != nil || wctx.Err() != nil) && inflight == 0 {
			break
		}
		select {
		case next <- job:
			ready = ready[1:]
			inflight++
		case r := <-results:
			inflight--
			delete(w.sending, r.rel)
			if err := w.finish(wctx, r); err != nil && fatal == nil {
				fatal = err
				stop(err)
			}
		case e := <-w.w.Events:
			if e.Path == "" {
				w.scan(w.dir)
				w.retryFailed()
			} else {
				w.look(e.Path)
			}
		case <-tick.C:
			ready = append(ready, w.settled()...)
		case <-wctx.Done():
		}
	}
	close(queue)
	workers.Wait()
	if fatal != nil {
		return fatal
	}
	return ctx.Err()
}

// scan walks p (the directory, or a directory that appeared in it),
// watching every directory and noting every file.
func (w *watcher) scan(p string) {
	filepath.WalkDir(p, func(p string, d fs.DirEntry, err error) error {
		rel, below := w.rel(p)
		if err != nil || below && w.ignored(rel) {
			if d != nil && d.IsDir() && p != w.dir {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			w.w.Add(p) // a directory that cannot be watched is still rescanned
			return nil
		}
		w.look(p)
		return nil
	})
}

// look notes what the file at p looks like now.
func (w *watcher) look(p string) {
	rel, ok := w.rel(p)
	if !ok || w.ignored(rel) {
		return
	}
	st, err := os.Stat(p)
	switch {
	case err != nil: // gone: nothing to send, and nothing to remember it by
		if _, known := w.seen[rel]; known {
			delete(w.seen, rel)
			delete(w.changed, rel)
			delete(w.failed, rel)
			if _, sent := w.done[rel]; sent && !w.sending[rel] {
				delete(w.done, rel)
				w.ch.Forget(w.ctx, w.opt.Name, rel) // else pruned at the next start
			}
		}
		return
	case st.IsDir():
		if _, known := w.seen[rel]; !known {
			w.seen[rel] = observed{}
			w.scan(p) // a directory renamed in brings its files
		}
		return
	case !st.Mode().IsRegular():
		return
	}
	obs := observe(st)
	if old, known := w.seen[rel]; !known || old != obs {
		w.seen[rel] = obs
		w.changed[rel] = time.Now()
	}
}

// settled returns the files unchanged for Settle that were not sent as
// they are, and looks at the others again.
func (w *watcher) settled() []sendResult {
	var out []sendResult
	for rel, since := range w.changed {
		if w.sending[rel] {
			continue
		}
		w.look(filepath.Join(w.dir, filepath.FromSlash(rel)))
		obs, ok := w.seen[rel]
		if !ok {
			continue // gone
		}
		if w.changed[rel] != since || time.Since(since) < w.opt.Settle {
			continue // still changing
		}
		delete(w.changed, rel)
		if done, ok := w.done[rel]; ok && done == obs {
			continue // sent as it is
		}
		if f, ok := w.failed[rel]; ok && f.obs == obs && time.Since(f.at) < retryFailed {
			continue // unchanged since it failed: wait a while
		}
		w.sending[rel] = true
		out = append(out, sendResult{rel: rel, obs: obs})
	}
	return out
}

// retryFailed lets files that could not be sent be tried again.
func (w *watcher) retryFailed() {
	for rel, f := range w.failed {
		if time.Since(f.at) >= retryFailed {
			w.changed[rel] = time.Time{} // settled already
		}
	}
}

// finish handles the outcome of one send; it returns the errors that end
// the watch.
func (w *watcher) finish(ctx context.Context, r sendResult) error {
	local := filepath.Join(w.dir, filepath.FromSlash(r.rel))
	if r.err != nil {
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(r.err, ErrUnavailable), errors.Is(r.err, ErrAuth), errors.Is(r.err, ErrNoGroups),
			errors.Is(r.err, ErrFull), errors.Is(r.err, ErrEviction):
			return r.err
		}
		if f := w.failed[r.rel]; f.err != r.err.Error() {
			w.event(WatchEvent{Op: WatchFailed, Path: local, Err: r.err})
		}
		w.failed[r.rel] = failure{obs: r.obs, at: time.Now(), err: r.err.Error()}
		return nil
	}
	delete(w.failed, r.rel)
	w.done[r.rel] = r.obs
	op := WatchSent
	if r.info.Skipped {
		op = WatchUnchanged
	}
	w.event(WatchEvent{Op: op, Path: local, File: *r.info})
	// What was sent is what was seen, unless it changed meanwhile: then it
	// is a new version, sent in its turn.
	st, err := os.Stat(local)
	if err != nil || observe(st) != r.obs || r.info.Size != r.obs.size || !r.info.ModTime.Equal(r.obs.mtime) {
		w.look(local)
		return nil
	}
	if w.opt.RemoveSent {
		if err := os.Remove(local); err != nil {
			w.event(WatchEvent{Op: WatchFailed, Path: local, Err: fmt.Errorf("remove sent file: %w", err)})
			return nil
		}
		delete(w.seen, r.rel)
		delete(w.done, r.rel)
		w.event(WatchEvent{Op: WatchRemoved, Path: local, File: *r.info})
		return w.ch.Forget(ctx, w.opt.Name, r.rel)
	}
	return nil
}

// prune drops from the record the files that are no longer there, so it
// does not grow without end, and so a file removed and put back is sent.
func (w *watcher) prune(ctx context.Context) error {
	sent, err := w.ch.SentAll(ctx, w.opt.Name)
	if err != nil {
		return err
	}
	var gone []string
	for name := range sent {
		if _, ok := w.seen[name]; !ok {
			gone = append(gone, name)
		}
	}
	return w.ch.Forget(ctx, w.opt.Name, gone...)
}
