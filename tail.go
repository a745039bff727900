package filecast

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// fileID identifies a file across renames: its device and inode, and when
// it was created where the file system records it, since a file removed
// leaves its inode number to the next one created.
type fileID struct {
	dev, ino uint64
	born     int64 // Unix ns; 0 if unknown
}

func idOf(st fs.FileInfo) fileID {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(s.Dev), ino: s.Ino}
	}
	return fileID{}
}

// identify returns the identity of the file at path, and what Stat says.
func identify(path string) (fileID, fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileID{}, nil, err
	}
	id := idOf(st)
	id.born = bornAt(path, nil)
	return id, st, nil
}

// identifyOpen returns the identity of the open file f, and what Stat says.
func identifyOpen(f *os.File) (fileID, fs.FileInfo, error) {
	st, err := f.Stat()
	if err != nil {
		return fileID{}, nil, err
	}
	id := idOf(st)
	id.born = bornAt("", f)
	return id, st, nil
}

// tailKeep is how many of the last bytes read a tail keeps, to notice a
// truncation that the file has since outgrown, and to find the copy a
// copytruncate rotation made.
const tailKeep = 256

// tail reads one generation of a followed file, like tail -F: from its
// start offset, then every byte appended, blocking at the end for more. It
// ends (io.EOF):
//   - when the file was rotated away (renamed or removed, or its path now
//     names another file) and no byte was added for linger;
//   - when it was truncated below what was read: then it first reads the
//     rest from the copy a copytruncate rotation left beside it, if there
//     is one, and calls truncated so a new generation starts.
//
// Read is not safe for concurrent use; poke is.
type tail struct {
	ctx  context.Context
	log  *slog.Logger
	path string // the path it is followed at
	id   fileID // the file's identity, to tell when path names another
	f    *os.File
	src  *os.File // f, or the copy it is finished from
	off  int64    // offset in src of the next byte to read
	// last holds up to tailKeep bytes of the file ending at lastEnd: the
	// last bytes read, or, before anything was read from a file followed
	// from its start, its first bytes as they were when it was opened (so
	// a truncation before the first read is noticed too).
	last    []byte
	lastEnd int64
	linger  time.Duration
	// recheck bounds the wait for more when no notification comes.
	recheck time.Duration
	wake    chan struct{}
	// stop, when closed, stops the tail at the end of what is there: with
	// io.EOF if its file was removed (no later reader could read the rest,
	// so it ends here), else with errStopped (a later run continues it).
	stop <-chan struct{}
	// truncated is called once, on the reading goroutine, when the file was
	// truncated below what was read, with the copy the rest is read from
	// (zero if none was found).
	truncated func(copy fileID)

	rotated  time.Time // when path was first seen to name another file
	lastData time.Time
	copying  bool
	cut      bool // it ended because its file was truncated (the file goes on)
	ended    bool
	why      string // why it ended, once it has
}

func newTail(ctx context.Context, log *slog.Logger, path string, f *os.File, id fileID, off int64, linger, recheck time.Duration) *tail {
	t := &tail{ctx: ctx, log: log, path: path, id: id, f: f, src: f, off: off, linger: linger, recheck: recheck,
		wake: make(chan struct{}, 1), lastData: time.Now()}
	if n := min(off, tailKeep); n > 0 { // what a restart read before: the truncation check starts from it
		t.last = make([]byte, n)
		if _, err := f.ReadAt(t.last, off-n); err != nil {
			t.last = nil
		}
		t.lastEnd = off
	} else if off == 0 {
		// What is there already, to be read next: a copytruncate before
		// the first read must not go unnoticed.
		b := make([]byte, tailKeep)
		n, _ := f.ReadAt(b, 0)
		t.last, t.lastEnd = b[:n], int64(n)
	}
	return t
}

// errStopped: a tail was stopped while its file may still grow.
var errStopped = errors.New("stopped")

// poke tells the tail the file may have changed.
func (t *tail) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Read implements io.Reader.
func (t *tail) Read(p []byte) (int, error) {
	for {
		if t.ended {
			return 0, io.EOF
		}
		if !t.copying && !t.unchanged() {
			t.truncate()
			continue
		}
		n, err := t.src.ReadAt(p, t.off)
		if n > 0 {
			t.off += int64(n)
			t.keep(p[:n])
			t.lastData = time.Now()
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if t.finished() {
			t.ended = true
			if t.why == "" {
				t.why = "its file was rotated away"
			}
			return 0, io.EOF
		}
		if err := t.wait(); err != nil {
			return 0, err
		}
	}
}

// keep remembers the last bytes read (b, which end at off).
func (t *tail) keep(b []byte) {
	defer func() { t.lastEnd = t.off }()
	if t.lastEnd != t.off-int64(len(b)) {
		t.last = t.last[:0] // the first bytes sampled at open give way to those read
	}
	if len(b) >= tailKeep {
		t.last = append(t.last[:0], b[len(b)-tailKeep:]...)
		return
	}
	t.last = append(t.last, b...)
	if over := len(t.last) - tailKeep; over > 0 {
		t.last = append(t.last[:0], t.last[over:]...)
	}
}

// unchanged reports whether the bytes before the read position are still
// the ones read: a file truncated and written again past that position
// would otherwise go on with another file's bytes.
func (t *tail) unchanged() bool {
	if len(t.last) == 0 {
		return true
	}
	return holds(t.src, t.lastEnd, t.last)
}

// holds reports whether f holds b just before offset end.
func holds(f *os.File, end int64, b []byte) bool {
	got := make([]byte, len(b))
	n, _ := f.ReadAt(got, end-int64(len(b)))
	return n == len(b) && bytes.Equal(got, b)
}

// finished reports, at the end of what is there, whether the generation is
// over: truncated (with no copy to finish from), or rotated away and quiet
// for linger.
func (t *tail) finished() bool {
	if t.copying {
		return true // a copy does not grow
	}
	if st, err := t.src.Stat(); err == nil && st.Size() < max(t.off, t.lastEnd) {
		t.truncate()
		return t.ended
	}
	id, st, err := identify(t.path)
	switch {
	case err == nil && st.Mode().IsRegular() && id == t.id:
		t.rotated = time.Time{}
		return false
	case err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return false // cannot tell (a permission changed): keep reading
	}
	now := time.Now()
	if t.rotated.IsZero() {
		t.rotated = now
		t.log.Info("followed file rotated away; reading what its writer still adds", "path", t.path, "linger", t.linger)
	}
	quiet := t.rotated
	if t.lastData.After(quiet) {
		quiet = t.lastData
	}
	return now.Sub(quiet) >= t.linger
}

// truncate handles a file truncated below what was read: a new generation
// starts, and this one ends with the bytes the copy beside it holds, if a
// copytruncate rotation made one.
func (t *tail) truncate() {
	t.cut = true
	cp := t.findCopy()
	if t.truncated != nil {
		var id fileID
		if cp != nil {
			id = t.copyIDOf(cp)
		}
		t.truncated(id)
		t.truncated = nil
	}
	if cp != nil {
		t.log.Info("followed file truncated; finishing this generation from the copy beside it",
			"path", t.path, "copy", cp.Name(), "at", t.off)
		t.src, t.copying = cp, true
		t.why = "its file was truncated; the rest came from the copy " + filepath.Base(cp.Name())
		return
	}
	t.log.Info("followed file truncated below what was read, and no copy of it was found", "path", t.path, "read", t.off)
	t.ended = true
	t.why = "its file was truncated (no copy of it was found: what was written just before, if anything, went with it)"
}

// findCopy looks beside the followed file for the copy a copytruncate
// rotation made of it: a file named like it (app.log.1, app.log-20261206),
// at least as long as what was read, holding the last bytes read where
// they were read.
func (t *tail) findCopy() *os.File {
	if len(t.last) == 0 {
		return nil
	}
	dir, base := filepath.Split(t.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	type cand struct {
		path string
		mod  time.Time
	}
	var cands []cand
	for _, e := range entries {
		if e.Name() == base || !strings.HasPrefix(e.Name(), base) || !e.Type().IsRegular() {
			continue
		}
		id, st, err := identify(filepath.Join(dir, e.Name()))
		if err != nil || st.Size() < max(t.off, t.lastEnd) || id == t.id {
			continue
		}
		cands = append(cands, cand{filepath.Join(dir, e.Name()), st.ModTime()})
	}
	slices.SortFunc(cands, func(a, b cand) int { return b.mod.Compare(a.mod) }) // newest first
	for _, c := range cands {
		f, err := os.Open(c.path)
		if err != nil {
			continue
		}
		if holds(f, t.lastEnd, t.last) {
			return f
		}
		f.Close()
	}
	return nil
}

// wait blocks until the tail is poked, recheck passes (sooner while
// lingering), or ctx ends.
func (t *tail) wait() error {
	d := t.recheck
	if !t.rotated.IsZero() {
		d = min(d, t.linger/4)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.wake:
	case <-timer.C:
	case <-t.stop:
		if st, err := t.src.Stat(); err == nil && removed(st) {
			// Read what is left, and end: nobody could read it later.
			if n, _ := t.src.ReadAt(make([]byte, 1), t.off); n == 0 {
				t.ended, t.why = true, "its file was removed; read to its end as the follower stopped"
			}
			return nil
		}
		return errStopped
	case <-t.ctx.Done():
		return t.ctx.Err()
	}
	return nil
}

// removed reports whether a file has no name left (it is read through an
// open descriptor only).
func removed(st fs.FileInfo) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	return ok && s.Nlink == 0
}

// copyID returns the copy the tail finished from, if any.
func (t *tail) copyID() fileID {
	if !t.copying {
		return fileID{}
	}
	return t.copyIDOf(t.src)
}

func (t *tail) copyIDOf(f *os.File) fileID {
	id, _, _ := identifyOpen(f)
	return id
}

// Close closes the files.
func (t *tail) Close() error {
	if t.src != t.f {
		t.src.Close()
	}
	return t.f.Close()
}
