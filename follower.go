package filecast

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/filecast/filecast/internal/fswatch"
	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// A follower's state lives in Redis, so that a restart, even after
// SIGKILL, continues exactly:
//   - the generations it left open are the unfinished uploads whose
//     record's origin names it (generation.origin): their file is found
//     again by its inode;
//   - the generations it completed are recorded, in the same step that
//     completes them, in its batch record (SendOptions.Batch) under their
//     name, with their inode and that of the copy they were finished from:
//     a rotated copy that lived entirely while the follower was down is
//     one whose inode is in neither (discover);
//   - the time it first started (store.MarkFollower): files there were
//     then start at their end, and rotated copies older than it are never
//     sent.

// FollowTTL is how long a follower's record of the generations it
// completed outlives its last generation and its last start.
const FollowTTL = 30 * 24 * time.Hour

// follower runs one Follow.
type follower struct {
	c       *Client
	ch      store.Channel
	opt     FollowOptions
	specs   []followSpec
	first   bool      // this is its first run: files there are start at their end
	started time.Time // its first run began
	w       *fswatch.Watcher

	// ctx ends when the follower is to stop (its caller's ctx ends) or a
	// generation failed. Generations run under gen, which outlives it by
	// drainFor: at a stop, a generation whose file was removed (so no
	// later run could read it) reads it to its end and completes it
	// (stopping tells them); the others stop at once and stay open.
	ctx       context.Context
	cancel    context.CancelCauseFunc
	gen       context.Context
	cancelGen context.CancelCauseFunc
	stopping  chan struct{}
	wg        sync.WaitGroup
	msgs      chan genMsg
	evMu      sync.Mutex // OnEvent is never called twice at once

	// Owned by the run loop:
	current  map[fileID]*generation // the generation reading each followed file's new bytes
	reading  map[fileID]*generation // every file a running generation reads, copies included
	gens     map[*generation]bool   // every running generation
	locating int                    // resumed generations still looking for their file
	// done holds the files completed generations read, true for those
	// read to their end (rotated away, or a copy): a file truncated at the
	// end of its generation went on with bytes of another.
	done    map[fileID]bool
	names   map[string]bool   // generation names in use or used
	watched map[string]bool   // directories under watch
	absent  map[string]string // spec paths with nothing to follow, and why (said once)
	skipped map[string]bool   // files that could not be opened (said once)
	last    time.Time         // the newest stamp given
}

type msgKind int

const (
	// msgEnded: the generation's goroutine returned (err); done lists the
	// files it read, if it completed.
	msgEnded msgKind = iota
	// msgReleased: the generation no longer reads its file's new bytes (the
	// file was truncated, or it is finished from a copy, copy): its path
	// may hold a file for a new generation.
	msgReleased
	// msgLocated: a resumed generation found its file, or found none.
	msgLocated
)

type genMsg struct {
	gen  *generation
	kind msgKind
	err  error
	copy fileID // msgReleased: the copy it reads instead, if any
	done []read // msgEnded
}

func (c *Client) newFollower(ctx context.Context, channel string, paths []string, opt FollowOptions) (*follower, error) {
	ch, err := c.channel(channel)
	if err != nil {
		return nil, err
	}
	specs, err := parseSpecs(paths)
	if err != nil {
		return nil, err
	}
	for _, x := range opt.Exclude {
		if _, err := filepath.Match(x, ""); err != nil {
			return nil, fmt.Errorf("%w: exclude pattern %q: %w", ErrUsage, x, err)
		}
	}
	if opt.Name == "" {
		opt.Name = FollowName(paths)
	}
	if err := wire.CheckChannel("follower name", opt.Name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if opt.Flush == 0 {
		opt.Flush = DefaultFlush
	}
	if opt.Linger == 0 {
		opt.Linger = DefaultLinger
	}
	if opt.Flush < 0 || opt.Linger < 0 || opt.Poll < 0 {
		return nil, fmt.Errorf("%w: Flush, Linger and Poll must not be negative", ErrUsage)
	}
	// Refuse before anything is recorded: a follower that marked itself
	// started would send the files there are from their start next time.
	if err := c.openLive(ctx, ch, opt.MaxBytes); err != nil {
		return nil, err
	}
	started, first, err := ch.MarkFollower(ctx, opt.Name, c.token())
	if err != nil {
		return nil, err
	}
	fl := &follower{c: c, ch: ch, opt: opt, specs: specs, first: first, started: started, msgs: make(chan genMsg, 16),
		current: map[fileID]*generation{}, reading: map[fileID]*generation{}, gens: map[*generation]bool{},
		done: map[fileID]bool{}, names: map[string]bool{}, watched: map[string]bool{},
		absent: map[string]string{}, skipped: map[string]bool{}}
	if err := fl.loadDone(ctx); err != nil {
		return nil, err
	}
	return fl, nil
}

// loadDone reads the record of completed generations, and forgets those
// whose files are gone from every followed directory, so it does not grow
// without end.
func (fl *follower) loadDone(ctx context.Context) error {
	if err := fl.ch.KeepBatch(ctx, fl.opt.Name, FollowTTL); err != nil {
		return err
	}
	sent, err := fl.ch.SentAll(ctx, fl.opt.Name)
	if err != nil {
		return err
	}
	there := map[fileID]bool{}
	for _, s := range fl.specs {
		entries, _ := os.ReadDir(s.dir)
		for _, e := range entries {
			if id, _, err := identify(filepath.Join(s.dir, e.Name())); err == nil {
				there[id] = true
			}
		}
	}
	var gone []string
	for name, v := range sent {
		fl.names[name] = true
		s, err := wire.ParseSent(v)
		g, cp, whole, ok := parseDone(s.Source, fl.opt.Name)
		if err != nil || !ok {
			continue
		}
		if !there[g.id] && !there[cp] {
			gone = append(gone, name)
			continue
		}
		fl.done[g.id] = fl.done[g.id] || whole
		if cp != (fileID{}) {
			fl.done[cp] = true
		}
	}
	return fl.ch.Forget(ctx, fl.opt.Name, gone...)
}

func (fl *follower) event(e FollowEvent) {
	if fl.opt.OnEvent == nil {
		return
	}
	fl.evMu.Lock()
	defer fl.evMu.Unlock()
	fl.opt.OnEvent(e)
}

// run follows until ctx ends or a generation fails, then waits for every
// generation to stop.
func (fl *follower) run(ctx context.Context) error {
	fl.ctx, fl.cancel = context.WithCancelCause(ctx)
	defer fl.cancel(nil)
	fl.gen, fl.cancelGen = context.WithCancelCause(context.WithoutCancel(ctx))
	defer fl.cancelGen(nil)
	fl.stopping = make(chan struct{})
	go func() {
		<-fl.ctx.Done()
		close(fl.stopping)
		if ctx.Err() == nil { // a generation failed: stop them all now
			fl.cancelGen(context.Cause(fl.ctx))
			return
		}
		t := time.AfterFunc(drainFor, func() { fl.cancelGen(ctx.Err()) })
		<-fl.gen.Done()
		t.Stop()
	}()
	var pollOnce sync.Once
	fl.w = fswatch.New(fswatch.Options{Poll: fl.opt.Poll, ForcePoll: fl.opt.Poll > 0, OnPoll: func(reason error) {
		pollOnce.Do(func() { fl.event(FollowEvent{Op: FollowPolling, Err: reason}) })
	}})
	defer fl.w.Close()
	if err := fl.resumeOpen(); err != nil {
		fl.cancel(err)
	}
	initial := true
	rescan := func() {
		for _, s := range fl.specs {
			fl.watch(s.dir)
			if s.kind == specFile {
				fl.check(filepath.Join(s.dir, s.base), initial)
				continue
			}
			for _, p := range s.paths(fl.opt.Exclude) {
				fl.check(p, initial)
			}
		}
		initial = false
		fl.discover()
	}
	if fl.ctx.Err() == nil {
		rescan()
	}
	for len(fl.gens) > 0 || fl.ctx.Err() == nil {
		var events <-chan fswatch.Event
		if fl.ctx.Err() == nil {
			events = fl.w.Events
		}
		select {
		case e := <-events:
			fl.pokeAll()
			if e.Path == "" {
				rescan()
				continue
			}
			if _, ok := fl.nameOf(e.Path); ok {
				fl.check(e.Path, false)
			}
		case m := <-fl.msgs:
			fl.handle(m)
		case <-fl.ctx.Done():
		}
	}
	fl.wg.Wait()
	fl.cancelGen(nil)
	if err := context.Cause(fl.ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}

// drainFor bounds how long a stopping follower reads files that were
// removed to their end.
const drainFor = 10 * time.Second

// watch adds dir to the watcher, once it exists.
func (fl *follower) watch(dir string) {
	if fl.watched[dir] {
		return
	}
	if err := fl.w.Add(dir); err != nil {
		return // not there yet: the next rescan tries again
	}
	fl.watched[dir] = true
}

// pokeAll tells every generation its file may have changed.
func (fl *follower) pokeAll() {
	for g := range fl.gens {
		if t := g.tail.Load(); t != nil {
			t.poke()
		}
	}
}

func (fl *follower) handle(m genMsg) {
	g := m.gen
	switch m.kind {
	case msgLocated:
		fl.locating--
		return
	case msgReleased:
		if fl.current[g.id] == g {
			delete(fl.current, g.id)
		}
		if m.copy != (fileID{}) {
			fl.reading[m.copy] = g
		}
	case msgEnded:
		delete(fl.gens, g)
		for _, m := range []map[fileID]*generation{fl.current, fl.reading} {
			for id, cur := range m {
				if cur == g {
					delete(m, id)
				}
			}
		}
		for _, r := range m.done {
			fl.done[r.id] = fl.done[r.id] || r.whole
		}
		if m.err != nil && fl.ctx.Err() == nil && !errors.Is(m.err, errStopped) {
			fl.cancel(m.err)
		}
	}
	if fl.ctx.Err() == nil {
		fl.check(g.path, false) // its path may hold a file to follow anew
	}
}

// check starts a generation for the file at path if none reads it.
func (fl *follower) check(path string, initial bool) {
	id, st, err := identify(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fl.missing(path, errNotThere)
		return
	case err != nil:
		fl.missing(path, err)
		return
	case st.IsDir():
		fl.missing(path, errors.New("it is a directory"))
		return
	case !st.Mode().IsRegular():
		fl.missing(path, errors.New("it is not a regular file"))
		return
	}
	if why, ok := fl.absent[path]; ok {
		delete(fl.absent, path)
		fl.c.log.Info("file to follow appeared", "path", path, "was", why)
	}
	if fl.current[id] != nil || fl.reading[id] != nil {
		return
	}
	name, ok := fl.nameOf(path)
	if !ok {
		return
	}
	start := int64(0)
	if initial && fl.first && !fl.opt.FromStart {
		start = st.Size()
	}
	if g := fl.open(path, path, name, fl.stamp(time.Now()), start); g != nil {
		fl.current[g.id] = g
	}
}

// open starts a generation named name-stamp of the file at file, followed
// at path, from offset start; it says once if the file cannot be read.
func (fl *follower) open(path, file, name string, stamp time.Time, start int64) *generation {
	f, err := os.Open(file)
	g := &generation{path: path, start: start, f: f}
	if err == nil {
		g.id, _, err = identifyOpen(f)
	}
	if err == nil {
		g.name = fl.unique(name, stamp)
		err = wire.CheckName(g.name)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		if !fl.skipped[file] {
			fl.skipped[file] = true
			fl.event(FollowEvent{Op: FollowSkipped, Path: file, Err: err})
		}
		return nil
	}
	delete(fl.skipped, file)
	fl.reading[g.id] = g
	fl.startGen(g)
	return g
}

var errNotThere = errors.New("it does not exist (yet)")

// missing says once that path has nothing to follow.
func (fl *follower) missing(path string, err error) {
	why := err.Error()
	if fl.absent[path] == why {
		return
	}
	isSpec := slices.ContainsFunc(fl.specs, func(s followSpec) bool { return s.kind == specFile && filepath.Join(s.dir, s.base) == path })
	if !isSpec {
		return // a file of a directory or glob that went: nothing to wait for
	}
	fl.absent[path] = why
	fl.event(FollowEvent{Op: FollowWaiting, Path: path, Err: err})
}

// nameOf returns the name path is followed under.
func (fl *follower) nameOf(path string) (string, bool) {
	for _, s := range fl.specs {
		if name, ok := s.match(path, fl.opt.Exclude); ok {
			return name, true
		}
	}
	return "", false
}

// stampFormat is the UTC time in the name of a generation, to the
// microsecond: generations born in the same millisecond still sort in order.
const stampFormat = "20060102T150405.000000Z"

// stamp returns now for a new generation, later than every stamp given.
func (fl *follower) stamp(now time.Time) time.Time {
	now = now.UTC().Truncate(time.Microsecond)
	if !now.After(fl.last) {
		now = fl.last.Add(time.Microsecond)
	}
	fl.last = now
	return now
}

// unique returns name-stamp, moved on by a microsecond while another
// generation has that name (a begin of a name in use would resume it).
func (fl *follower) unique(name string, stamp time.Time) string {
	for {
		n := name + "-" + stamp.UTC().Format(stampFormat)
		if !fl.names[n] {
			fl.names[n] = true
			return n
		}
		stamp = stamp.Add(time.Microsecond)
	}
}

// resumeOpen finds the generations an earlier run of this follower left
// open and starts continuing them.
func (fl *follower) resumeOpen() error {
	up, err := fl.ch.Unfinished(fl.ctx)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(up))
	for name := range up {
		fl.names[name] = true
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		rec, err := fl.ch.File(fl.ctx, up[name])
		if err != nil {
			continue // released meanwhile, or not ours to judge
		}
		g, ok := parseOrigin(rec.Origin, fl.opt.Name)
		if !ok {
			continue
		}
		g.name = name
		if t, err := time.Parse(stampFormat, name[strings.LastIndexByte(name, '-')+1:]); err == nil && t.After(fl.last) {
			fl.last = t
		}
		// The scans that follow must not start its file anew, nor take a
		// copy it may finish from for a file of its own, until it has
		// looked (msgLocated).
		fl.current[g.id], fl.reading[g.id] = g, g
		fl.locating++
		fl.startGen(g)
	}
	return nil
}

// startGen runs a generation in a goroutine of its own.
func (fl *follower) startGen(g *generation) {
	fl.gens[g] = true
	fl.wg.Add(1)
	go func() {
		defer fl.wg.Done()
		done, err := fl.send(g)
		fl.msgs <- genMsg{gen: g, kind: msgEnded, err: err, done: done}
	}()
}

// compressed matches the names of compressed rotated copies: never a
// generation of their own (their bytes are another generation's).
var compressed = regexp.MustCompile(`\.(gz|zst|xz|bz2|lz4|zip)$`)

// discover starts a generation for each rotated copy of a followed file
// that no generation read to its end: one that was written and rotated
// away while the follower was down (or faster than it could notice), or
// the bytes a file got after a truncation that ended its generation, if
// it was rotated away before a generation read them. A rotated copy is a
// file beside a followed one whose name is the followed name and a rotation
// suffix (app.log.1, app.log-20261206); it is taken once its last change is
// older than Linger and a second (by then a copytruncate copy has been
// claimed by the generation it finishes), and only if it changed after the
// follower first started (older copies were never meant to be sent). It is
// named after the file it was rotated from and when the copy was created
// (or, where the file system does not record that, last changed), so that
// it sorts between the generations before and after it.
func (fl *follower) discover() {
	if fl.locating > 0 {
		return // a resumed generation may still claim a copy
	}
	quiet := time.Now().Add(-fl.opt.Linger - time.Second)
	for _, s := range fl.specs {
		entries, err := os.ReadDir(s.dir)
		if err != nil {
			continue
		}
		var bases []string // the names followed in this directory
		for _, e := range entries {
			if name, ok := fl.nameOf(filepath.Join(s.dir, e.Name())); ok {
				bases = append(bases, name)
			}
		}
		if s.kind == specFile {
			bases = append(bases, s.base)
		}
		for g := range fl.gens {
			if filepath.Dir(g.path) == s.dir {
				bases = append(bases, filepath.Base(g.path))
			}
		}
		for _, e := range entries {
			p := filepath.Join(s.dir, e.Name())
			base, ok := rotatedFrom(e.Name(), bases)
			if !ok || !e.Type().IsRegular() || compressed.MatchString(e.Name()) {
				continue
			}
			id, st, err := identify(p)
			if err != nil || st.ModTime().Before(fl.started) || st.ModTime().After(quiet) {
				continue
			}
			if fl.done[id] || fl.reading[id] != nil {
				continue // read to its end already, or being read
			}
			fl.c.log.Info("a rotated copy no generation read; sending it", "file", p)
			born := st.ModTime()
			if id.born != 0 {
				born = time.Unix(0, id.born)
			}
			fl.open(filepath.Join(s.dir, base), p, base, born, 0)
		}
	}
}

// rotatedFrom returns which of bases name is a rotated copy of.
func rotatedFrom(name string, bases []string) (string, bool) {
	for _, b := range bases {
		if rest, ok := strings.CutPrefix(name, b); ok && len(rest) > 1 && (rest[0] == '.' || rest[0] == '-') && rotatedName.MatchString(name) {
			return b, true
		}
	}
	return "", false
}
