package filecast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/fswatch"
	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// FollowOptions configure Follow. The zero value works.
type FollowOptions struct {
	// Name identifies the follower in the channel: a follower started again
	// with the same Name continues exactly where the stored data ends.
	// default: derived from the host name and the paths, so the same
	// command on the same host continues
	Name string
	// FromStart sends the files there are when a follower of this Name
	// first starts from their first byte; by default it sends only what
	// is appended from then on, like tail -F. Files that appear later, and
	// every file after a restart, are always sent from their first byte.
	FromStart bool
	// Flush bounds how long an appended byte waits before it is stored.
	// default: DefaultFlush
	Flush time.Duration
	// Linger is how long a file that was rotated away (renamed, removed, or
	// replaced at its path) is still read for bytes its writer adds late,
	// before its generation is completed. default: 2s
	Linger time.Duration
	// Poll, if positive, makes the follower look for changes at this
	// interval instead of using file system notifications. Without it the
	// follower polls every 250ms only when notifications are unavailable
	// or their limit is reached (FollowPolling says so).
	Poll time.Duration
	// Exclude holds glob patterns (path.Match syntax) of base names not to
	// follow in a directory or glob. Names of rotated copies (app.log.1,
	// app.log.2.gz, app.log-20261206, *.gz, *.old) and dot files are never
	// followed there: they are earlier generations.
	Exclude []string
	// MaxBytes sets the channel's budget, as SendOptions.MaxBytes.
	MaxBytes int64
	// OnEvent, if set, is told what happens to the followed files. It is
	// called from the follower's goroutines, never two calls at once.
	OnEvent func(FollowEvent)
}

// DefaultLinger is the default of FollowOptions.Linger.
const DefaultLinger = 2 * time.Second

// FollowOp says what happened to a followed file.
type FollowOp int

const (
	// FollowStarted: a generation began, for a file that appeared, was
	// rotated in, or was truncated, or (from its end) for a file there was
	// when the follower first started.
	FollowStarted FollowOp = iota
	// FollowResumed: a generation an earlier run left open continues.
	FollowResumed
	// FollowCompleted: a generation ended and was completed: its file was
	// rotated away, truncated, or (Err set) changed or vanished while the
	// follower was down, so it holds what had been sent.
	FollowCompleted
	// FollowWaiting: a path has no file to follow yet (it does not exist,
	// or is not a regular file). Err says which.
	FollowWaiting
	// FollowSkipped: a file cannot be read now (Err); it is tried again.
	FollowSkipped
	// FollowPolling: file system notifications are unavailable (Err says
	// why); the follower polls.
	FollowPolling
)

// FollowEvent is what FollowOptions.OnEvent is told.
type FollowEvent struct {
	Op   FollowOp
	Path string   // the file on disk
	File FileInfo // the generation: Started, Resumed, Completed
	// Offset is where in the file the generation started (Started) or
	// continues (Resumed).
	Offset int64
	// Reason says why a generation was completed: its file was rotated
	// away, or truncated.
	Reason string
	Err    error
}

// Follow sends the files at paths as they grow, like tail -F, until ctx
// ends. A path is a file, a directory (its files, not its
// subdirectories) or a glob of file names in one directory (app/*.log);
// files that appear later are followed too, and a path that does not exist
// yet is waited for.
//
// Every generation of a file is its own upload, named
// NAME-YYYYMMDDTHHMMSS.mmmZ after the file's name and the UTC time the
// generation began (so a directory receiver keeps every generation), and
// receivers get its bytes within Flush of their being appended. A
// generation ends, and is completed, when its file is rotated away (renamed
// or removed: logrotate's create; its path then names a new file, a new
// generation) and its writer has added nothing for Linger, or when the
// file is truncated below what was sent (copytruncate: the rest is read
// from the copy beside it). Follow keeps its state in Redis, not in a local
// file: run again with the same Name after any stop, even SIGKILL, it
// continues every open generation exactly where the stored data ends,
// after checking that the file still holds what was sent, finds a
// generation's file renamed beside it, or completes the generation with
// what was sent when its file vanished or changed while it was down.
//
// On cancel Follow returns ctx.Err() and leaves its open generations to be
// continued. Other errors are those of Send; a path that exists but cannot
// be read when Follow starts is ErrUsage.
func (c *Client) Follow(ctx context.Context, channel string, paths []string, opt FollowOptions) error {
	fl, err := c.newFollower(ctx, channel, paths, opt)
	if err != nil {
		return &Error{Op: "follow", Channel: channel, Err: err}
	}
	err = fl.run(ctx)
	if err != nil && ctx.Err() == nil {
		err = &Error{Op: "follow", Channel: channel, Err: err}
	}
	return err
}

// followSpec is one path given to Follow.
type followSpec struct {
	arg  string // as given
	dir  string // the directory it lives in, watched
	base string // file: its name; glob: the pattern of names
	kind specKind
}

type specKind int

const (
	specFile specKind = iota
	specDir
	specGlob
)

// rotatedName matches the names logrotate and its kin give earlier
// generations: numbered (app.log.1, app.log.2.gz), dated (app.log-20261206),
// compressed or set aside.
var rotatedName = regexp.MustCompile(`\.[0-9]+(\.(gz|zst|xz|bz2|lz4))?$|\.(gz|zst|xz|bz2|lz4|zip|old|bak)$|-[0-9]{8}([0-9]{2,6})?(\.[a-z0-9]+)?$`)

// match returns the name a file at path is followed under, if the spec
// covers it.
func (s followSpec) match(path string, exclude []string) (string, bool) {
	dir, base := filepath.Split(path)
	if filepath.Clean(dir) != s.dir {
		return "", false
	}
	switch s.kind {
	case specFile:
		return base, base == s.base
	case specGlob:
		if ok, _ := filepath.Match(s.base, base); !ok {
			return "", false
		}
	}
	if strings.HasPrefix(base, ".") || rotatedName.MatchString(base) {
		return "", false
	}
	for _, x := range exclude {
		if ok, _ := filepath.Match(x, base); ok {
			return "", false
		}
	}
	return base, true
}

// paths lists the files the spec covers now.
func (s followSpec) paths(exclude []string) []string {
	if s.kind == specFile {
		return []string{filepath.Join(s.dir, s.base)}
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(s.dir, e.Name())
		if _, ok := s.match(p, exclude); ok {
			out = append(out, p)
		}
	}
	return out
}

// parseSpecs checks the paths given to Follow.
func parseSpecs(paths []string) ([]followSpec, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no path to follow", ErrUsage)
	}
	var specs []followSpec
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUsage, p, err)
		}
		dir, base := filepath.Split(abs)
		s := followSpec{arg: p, dir: filepath.Clean(dir), base: base}
		if strings.ContainsAny(filepath.Clean(dir), "*?[") {
			return nil, fmt.Errorf("%w: %s: only the last element of a path to follow may be a pattern", ErrUsage, p)
		}
		if strings.ContainsAny(base, "*?[") {
			if _, err := filepath.Match(base, ""); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrUsage, p, err)
			}
			s.kind = specGlob
		} else if st, err := os.Stat(abs); err == nil && st.IsDir() {
			s.kind, s.dir, s.base = specDir, abs, ""
		}
		// What exists must be readable now; what does not is waited for.
		target := abs
		if s.kind == specGlob {
			target = s.dir
		}
		if f, err := os.Open(target); err == nil {
			f.Close()
		} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("%w: cannot follow %s: %w", ErrUsage, p, errors.Unwrap(err))
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// FollowName returns the default FollowOptions.Name for paths: the same
// paths on the same host give the same name.
func FollowName(paths []string) string {
	host, _ := os.Hostname()
	var b strings.Builder
	b.WriteString(host)
	for _, p := range paths {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		b.WriteString("\x00" + p)
	}
	return "follow-" + chunk.Sum([]byte(b.String())).String()[:16]
}

// follower runs one Follow.
type follower struct {
	c     *Client
	ch    store.Channel
	opt   FollowOptions
	specs []followSpec
	first bool // no follower of this name ran before: files there are start at their end
	w     *fswatch.Watcher

	ctx    context.Context
	cancel context.CancelCauseFunc // a generation failed
	wg     sync.WaitGroup
	msgs   chan genMsg
	evMu   sync.Mutex // OnEvent is never called twice at once

	// Owned by the run loop:
	current   map[fileID]*generation // the generation reading each file's new bytes
	gens      map[*generation]bool   // every running generation
	watched   map[string]bool        // directories under watch
	absent    map[string]string      // spec paths with nothing to follow, and why (said once)
	skipped   map[string]bool        // files that could not be opened (said once)
	lastStamp time.Time
}

// generation is one upload of a followed file.
type generation struct {
	name  string   // as sent: the file's name and when the generation began
	path  string   // the path it is followed at
	id    fileID   // the file whose bytes it reads
	start int64    // offset in the file of its first byte
	f     *os.File // the file opened, until its tail takes it
	// resume is set for a generation an earlier run left open.
	resume bool
	tail   atomic.Pointer[tail] // set while it streams
}

// origin is the generation's wire.File.Origin: what a restarted follower
// needs to find its file again.
func (g *generation) origin(follower string) string {
	return fmt.Sprintf("follow %s %d %d %d %s", follower, g.id.dev, g.id.ino, g.start, g.path)
}

// parseOrigin reads an origin written by origin, for follower.
func parseOrigin(s, follower string) (*generation, bool) {
	f := strings.SplitN(s, " ", 6)
	if len(f) != 6 || f[0] != "follow" || f[1] != follower {
		return nil, false
	}
	dev, err1 := strconv.ParseUint(f[2], 10, 64)
	ino, err2 := strconv.ParseUint(f[3], 10, 64)
	start, err3 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || !filepath.IsAbs(f[5]) {
		return nil, false
	}
	return &generation{id: fileID{dev, ino}, start: start, path: f[5], resume: true}, true
}

type msgKind int

const (
	msgEnded msgKind = iota // the generation's goroutine returned (err)
	// msgReleased: the generation no longer reads its file's new bytes (the
	// file was truncated, or it continues from a copy): its path may hold
	// a file for a new generation.
	msgReleased
)

type genMsg struct {
	gen  *generation
	kind msgKind
	err  error
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
	if opt.MaxBytes > 0 {
		if err := c.SetBudget(ctx, channel, opt.MaxBytes); err != nil {
			return nil, err
		}
	}
	if err := c.register(ctx, ch); err != nil {
		return nil, err
	}
	// Refuse before anything is recorded: a follower that marked itself
	// started would send the files there are from their start next time.
	if n, err := ch.GroupCount(ctx); err != nil {
		return nil, err
	} else if n == 0 {
		return nil, noGroups(ch)
	}
	first, err := ch.MarkFollower(ctx, opt.Name, c.token())
	if err != nil {
		return nil, err
	}
	return &follower{c: c, ch: ch, opt: opt, specs: specs, first: first, msgs: make(chan genMsg, 16),
		current: map[fileID]*generation{}, gens: map[*generation]bool{}, watched: map[string]bool{},
		absent: map[string]string{}, skipped: map[string]bool{}}, nil
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
	var pollOnce sync.Once
	fl.w = fswatch.New(fswatch.Options{Poll: fl.opt.Poll, ForcePoll: fl.opt.Poll > 0, OnPoll: func(reason error) {
		pollOnce.Do(func() {
			fl.event(FollowEvent{Op: FollowPolling, Err: reason})
		})
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
			for _, s := range fl.specs {
				if _, ok := s.match(e.Path, fl.opt.Exclude); ok {
					fl.check(e.Path, false)
					break
				}
			}
		case m := <-fl.msgs:
			fl.handle(m)
		case <-fl.ctx.Done():
		}
	}
	fl.wg.Wait()
	if err := context.Cause(fl.ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}

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
	for id, cur := range fl.current {
		if cur == g {
			delete(fl.current, id)
		}
	}
	if m.kind == msgEnded {
		delete(fl.gens, g)
		if m.err != nil && fl.ctx.Err() == nil {
			fl.cancel(m.err)
		}
	}
	if fl.ctx.Err() == nil {
		fl.check(g.path, false) // its path may hold a file to follow anew
	}
}

// check starts a generation for the file at path if none reads it.
func (fl *follower) check(path string, initial bool) {
	st, err := os.Stat(path)
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
	id := idOf(st)
	if fl.current[id] != nil {
		return
	}
	name, ok := fl.nameOf(path)
	if !ok {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		if !fl.skipped[path] {
			fl.skipped[path] = true
			fl.event(FollowEvent{Op: FollowSkipped, Path: path, Err: err})
		}
		return
	}
	delete(fl.skipped, path)
	start := int64(0)
	if initial && fl.first && !fl.opt.FromStart {
		start = st.Size()
	}
	g := &generation{name: fl.stamp(name), path: path, id: id, start: start, f: f}
	if err := wire.CheckName(g.name); err != nil {
		f.Close()
		if !fl.skipped[path] {
			fl.skipped[path] = true
			fl.event(FollowEvent{Op: FollowSkipped, Path: path, Err: err})
		}
		return
	}
	fl.current[id] = g
	fl.startGen(g)
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

// stamp returns the name of a generation of name beginning now, distinct
// from every other this follower named.
func (fl *follower) stamp(name string) string {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if !now.After(fl.lastStamp) {
		now = fl.lastStamp.Add(time.Millisecond)
	}
	fl.lastStamp = now
	return name + "-" + now.Format("20060102T150405.000Z")
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
		if t, err := time.Parse("20060102T150405.000Z", name[strings.LastIndexByte(name, '-')+1:]); err == nil && t.After(fl.lastStamp) {
			fl.lastStamp = t
		}
		fl.current[g.id] = g // the scan that follows must not start it anew
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
		err := fl.send(g)
		fl.msgs <- genMsg{gen: g, kind: msgEnded, err: err}
	}()
}

// send uploads one generation: it begins (or, for one an earlier run left
// open, resumes) its upload, streams what is appended to its file, and
// completes it when the file is rotated away or truncated.
func (fl *follower) send(g *generation) error {
	c, ctx := fl.c, fl.ctx
	token := c.token()
	defer c.abandon(token)
	var st fs.FileInfo
	if g.f != nil {
		defer g.f.Close()
		var err error
		if st, err = g.f.Stat(); err != nil {
			return err
		}
	}
	rec := wire.File{Kind: wire.KindFile, Name: g.name, Mode: 0o644, ModTime: time.Now(), ChunkSize: c.opt.ChunkSize,
		Sender: token, Live: true, Origin: g.origin(fl.opt.Name)}
	if st != nil {
		rec.Mode, rec.ModTime = st.Mode().Perm(), st.ModTime()
	}
	res, err := c.begin(ctx, fl.ch, &rec, "")
	if err != nil {
		return err
	}
	u := &upload{c: c, ch: fl.ch, id: res.ID, pool: chunk.NewPool(c.opt.ChunkSize, c.opt.ReadAhead+2), hash: chunk.NewHasher(),
		opt: SendOptions{Flush: fl.opt.Flush}}
	info := FileInfo{Channel: fl.ch.Keys().Channel(), ID: res.ID, Name: g.name, Mode: rec.Mode, ModTime: rec.ModTime, Size: -1, Entry: res.Entry}
	var t *tail
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	if res.Status == store.BeginResume {
		info.Resumed = true
		t, err = fl.locate(tctx, u, g)
		if err != nil {
			return err
		}
		if t == nil { // its file changed or vanished while the follower was down
			size, digest, err := u.completeAsSent(ctx)
			if err != nil {
				return err
			}
			info.Size, info.Digest = size, digest.String()
			fl.event(FollowEvent{Op: FollowCompleted, Path: g.path, File: info,
				Err: errors.New("its file changed or vanished while the follower was down; completed with what had been sent")})
			fl.msgs <- genMsg{gen: g, kind: msgReleased} // a file at its path is a new generation
			return nil
		}
		fl.event(FollowEvent{Op: FollowResumed, Path: g.path, File: info, Offset: t.off})
	} else {
		t = newTail(tctx, c.log, g.path, g.f, g.id, g.start, fl.opt.Linger, time.Second)
		g.f = nil // the tail closes it
		fl.event(FollowEvent{Op: FollowStarted, Path: g.path, File: info, Offset: g.start})
	}
	defer t.Close()
	t.truncated = func() { fl.msgs <- genMsg{gen: g, kind: msgReleased} }
	g.tail.Store(t)
	defer g.tail.Store(nil)
	if err := u.run(ctx, chunk.NewLive(t, u.pool, fl.opt.Flush)); err != nil {
		return err
	}
	if _, err := fl.ch.Complete(ctx, u.id, u.size, u.hash.Sum(), nil); err != nil {
		return err
	}
	info.Size, info.Digest = u.size, u.hash.Sum().String()
	fl.event(FollowEvent{Op: FollowCompleted, Path: g.path, File: info, Reason: t.why})
	return nil
}

// locate finds the file of a generation an earlier run left open and
// checks that it still holds what was sent: the file itself at its path,
// or renamed beside it (rename rotation), or the copy a copytruncate
// rotation left beside it. It returns a tail continuing after what was
// sent, or nil if no file holds it.
func (fl *follower) locate(ctx context.Context, u *upload, g *generation) (*tail, error) {
	dir, base := filepath.Split(g.path)
	var cands []string
	if st, err := os.Stat(g.path); err == nil && idOf(st) == g.id {
		cands = append(cands, g.path)
	}
	entries, _ := os.ReadDir(dir)
	type copyCand struct {
		path string
		mod  time.Time
	}
	var copies []copyCand
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		st, err := e.Info()
		if p == g.path || err != nil || !st.Mode().IsRegular() {
			continue
		}
		if idOf(st) == g.id {
			cands = append(cands, p) // renamed
		} else if strings.HasPrefix(e.Name(), base) && st.Size() >= g.start {
			copies = append(copies, copyCand{p, st.ModTime()})
		}
	}
	slices.SortFunc(copies, func(a, b copyCand) int { return b.mod.Compare(a.mod) })
	for _, c := range copies[:min(len(copies), 3)] {
		cands = append(cands, c.path)
	}
	for _, p := range cands {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		if err != nil || st.Size() < g.start {
			f.Close()
			continue
		}
		differs, err := u.resume(ctx, io.NewSectionReader(f, g.start, st.Size()-g.start))
		if err != nil {
			f.Close()
			return nil, err
		}
		if differs != "" {
			fl.c.log.Info("a candidate for a generation's file does not hold what was sent", "generation", g.name, "file", p, "why", differs)
			f.Close()
			continue
		}
		id := idOf(st)
		if id != g.id { // a copy: the file at the path is a new generation
			fl.msgs <- genMsg{gen: g, kind: msgReleased}
		}
		return newTail(ctx, fl.c.log, g.path, f, id, g.start+u.size, fl.opt.Linger, time.Second), nil
	}
	return nil, nil
}
