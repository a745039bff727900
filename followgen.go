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
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// generation is one upload of a followed file: its bytes from a start
// offset until it is rotated away or truncated.
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
// needs to find its file again. The path is last: it may hold spaces.
func (g *generation) origin(follower string) string {
	return fmt.Sprintf("follow %s %s %d %s", follower, g.id, g.start, g.path)
}

// String formats a fileID as "dev:ino:born".
func (id fileID) String() string { return fmt.Sprintf("%d:%d:%d", id.dev, id.ino, id.born) }

func parseFileID(s string) (fileID, bool) {
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return fileID{}, false
	}
	dev, err1 := strconv.ParseUint(f[0], 10, 64)
	ino, err2 := strconv.ParseUint(f[1], 10, 64)
	born, err3 := strconv.ParseInt(f[2], 10, 64)
	return fileID{dev, ino, born}, err1 == nil && err2 == nil && err3 == nil
}

// parseOrigin reads an origin written by origin, for follower.
func parseOrigin(s, follower string) (*generation, bool) {
	f := strings.SplitN(s, " ", 5)
	if len(f) != 5 || f[0] != "follow" || f[1] != follower {
		return nil, false
	}
	id, ok := parseFileID(f[2])
	start, err := strconv.ParseInt(f[3], 10, 64)
	if !ok || err != nil || start < 0 || !filepath.IsAbs(f[4]) {
		return nil, false
	}
	return &generation{id: id, start: start, path: f[4], resume: true}, true
}

// doneSource is the source a completed generation is recorded with in the
// follower's batch record: its origin with, before the path, the copy it
// was finished from ("dev:ino", or "-") and whether it read its file to
// the end ("whole": rotated away) or the file went on after it
// ("truncated": what comes after is another generation's).
func (g *generation) doneSource(follower string, copy fileID, whole bool) string {
	cp, end := "-", "truncated"
	if copy != (fileID{}) {
		cp = copy.String()
	}
	if whole {
		end = "whole"
	}
	return fmt.Sprintf("follow %s %s %d %s %s %s", follower, g.id, g.start, cp, end, g.path)
}

// parseDone reads a source written by doneSource.
func parseDone(s, follower string) (g *generation, copy fileID, whole, ok bool) {
	f := strings.SplitN(s, " ", 7)
	if len(f) != 7 {
		return nil, fileID{}, false, false
	}
	if g, ok = parseOrigin(strings.Join(append(f[:4:4], f[6]), " "), follower); !ok {
		return nil, fileID{}, false, false
	}
	if f[4] != "-" {
		if copy, ok = parseFileID(f[4]); !ok {
			return nil, fileID{}, false, false
		}
	}
	return g, copy, f[5] == "whole", true
}

// read is a file a generation read: to its end (whole), or up to a
// truncation.
type read struct {
	id    fileID
	whole bool
}

// send uploads one generation: it begins (or, for one an earlier run left
// open, resumes) its upload, streams what is appended to its file, and
// completes it when the file is rotated away or truncated, recording it
// in the follower's batch in the same step. It returns the files it
// read, once completed.
func (fl *follower) send(g *generation) ([]read, error) {
	c, ctx := fl.c, fl.gen
	located := !g.resume // tell the run loop, whatever happens, that it has looked
	defer func() {
		if !located {
			fl.msgs <- genMsg{gen: g, kind: msgLocated}
		}
	}()
	token := c.token()
	defer c.abandon(token)
	var st fs.FileInfo
	if g.f != nil {
		defer g.f.Close()
		var err error
		if st, err = g.f.Stat(); err != nil {
			return nil, err
		}
	}
	rec := wire.File{Kind: wire.KindFile, Name: g.name, Mode: 0o644, ModTime: time.Now(), ChunkSize: c.opt.ChunkSize,
		Sender: token, Live: true, Origin: g.origin(fl.opt.Name)}
	if st != nil {
		rec.Mode, rec.ModTime = st.Mode().Perm(), st.ModTime()
	}
	res, err := c.begin(ctx, fl.ch, &rec, fl.opt.Name)
	if err != nil {
		return nil, err
	}
	u := &upload{c: c, ch: fl.ch, name: g.name, pool: chunk.NewPool(c.opt.ChunkSize, c.opt.ReadAhead+2), hash: chunk.NewHasher(),
		opt: SendOptions{Flush: fl.opt.Flush, OnWait: fl.opt.OnWait}}
	u.started(res.ID, &rec)
	tr := c.transfers.start(fl.ch.Keys().Channel(), g.name, false, -1)
	tr.setID(res.ID)
	defer tr.end()
	u.opt.Progress = tr.progress(nil)
	defer inFlight(&c.stats.sending)()
	info := FileInfo{Channel: fl.ch.Keys().Channel(), ID: res.ID, Name: g.name, Mode: rec.Mode, ModTime: rec.ModTime, Size: -1, Entry: res.Entry}
	record := func(size int64, digest wire.Digest, copy fileID, whole bool) *store.Record {
		return &store.Record{Batch: fl.opt.Name, TTL: FollowTTL, Sent: wire.Sent{Size: size, ModTime: rec.ModTime, Mode: rec.Mode,
			Digest: digest, ID: u.id, Source: g.doneSource(fl.opt.Name, copy, whole)}}
	}
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	var t *tail
	if res.Status == store.BeginResume {
		info.Resumed = true
		var copy fileID
		t, copy, err = fl.locate(tctx, u, g)
		if err != nil {
			return nil, err
		}
		if copy != (fileID{}) || t == nil { // a file at its path is a new generation
			fl.msgs <- genMsg{gen: g, kind: msgReleased, copy: copy}
		}
		fl.msgs <- genMsg{gen: g, kind: msgLocated}
		located = true
		if t == nil { // its file changed or vanished while the follower was down
			size, digest, err := u.completeAsSent(ctx, func(size int64, d wire.Digest) *store.Record { return record(size, d, fileID{}, false) })
			if err != nil {
				return nil, err
			}
			info.Size, info.Digest = size, digest.String()
			fl.event(FollowEvent{Op: FollowCompleted, Path: g.path, File: info,
				Err: errors.New("its file changed or vanished while the follower was down; completed with what had been sent")})
			return []read{{g.id, false}}, nil
		}
		tr.resumedAt(u.committed)
		fl.event(FollowEvent{Op: FollowResumed, Path: g.path, File: info, Offset: t.off})
	} else {
		t = newTail(tctx, c.log, g.path, g.f, g.id, g.start, fl.opt.Linger, time.Second)
		g.f = nil // the tail closes it
		fl.event(FollowEvent{Op: FollowStarted, Path: g.path, File: info, Offset: g.start})
	}
	defer t.Close()
	t.truncated = func(copy fileID) { fl.msgs <- genMsg{gen: g, kind: msgReleased, copy: copy} }
	t.stop = fl.stopping
	g.tail.Store(t)
	defer g.tail.Store(nil)
	if err := u.run(ctx, chunk.NewLive(t, u.pool, fl.opt.Flush)); err != nil {
		return nil, err
	}
	copy, whole := t.copyID(), !t.cut
	if _, err := fl.ch.Complete(ctx, u.id, u.size, u.hash.Sum(), record(u.size, u.hash.Sum(), copy, whole)); err != nil {
		return nil, err
	}
	c.stats.filesSent.Add(1)
	info.Size, info.Digest = u.size, u.hash.Sum().String()
	fl.event(FollowEvent{Op: FollowCompleted, Path: g.path, File: info, Reason: t.why})
	reads := []read{{g.id, whole}}
	if copy != (fileID{}) {
		reads = append(reads, read{copy, true})
	}
	return reads, nil
}

// locate finds the file of a generation an earlier run left open and
// checks that it still holds what was sent: the file itself at its path,
// or renamed beside it (rename rotation), or a copy a copytruncate
// rotation left beside it (then copy is that copy). It returns a tail
// continuing after what was sent, or nil if no file holds it.
func (fl *follower) locate(ctx context.Context, u *upload, g *generation) (t *tail, copy fileID, err error) {
	sent, last, err := u.committedTail(ctx)
	if err != nil {
		return nil, fileID{}, err
	}
	dir, base := filepath.Split(g.path)
	type cand struct {
		path string
		mod  time.Time
	}
	var self, copies []cand
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		id, st, err := identify(p)
		switch {
		case err != nil || !st.Mode().IsRegular():
		case id == g.id: // at its path, or renamed beside it
			self = append(self, cand{p, st.ModTime()})
		case strings.HasPrefix(e.Name(), base) && !compressed.MatchString(e.Name()) && st.Size() >= g.start+sent:
			copies = append(copies, cand{p, st.ModTime()})
		}
	}
	slices.SortFunc(copies, func(a, b cand) int { return b.mod.Compare(a.mod) }) // newest first
	for _, c := range append(self, copies...) {
		f, err := os.Open(c.path)
		if err != nil {
			continue
		}
		id, st, err := identifyOpen(f)
		if err != nil || st.Size() < g.start+sent || !holdsChunk(f, g.start+sent, last) {
			f.Close()
			continue
		}
		differs, err := u.resume(ctx, io.NewSectionReader(f, g.start, st.Size()-g.start))
		if err != nil {
			f.Close()
			return nil, fileID{}, err
		}
		if differs != "" {
			fl.c.log.Info("a candidate for a generation's file does not hold what was sent", "generation", g.name, "file", c.path, "why", differs)
			f.Close()
			continue
		}
		t := newTail(ctx, fl.c.log, g.path, f, id, g.start+u.size, fl.opt.Linger, time.Second)
		if id != g.id {
			t.copying, t.cut, copy = true, true, id
			t.why = "its file was truncated while the follower was down; the rest came from the copy " + filepath.Base(c.path)
		}
		return t, copy, nil
	}
	return nil, fileID{}, nil
}

// holdsChunk reports, cheaply, whether f may hold the chunk last ending at
// offset end: its bytes there have its digest. With no chunk entry kept
// (all were trimmed) it cannot tell and says yes.
func holdsChunk(f *os.File, end int64, last wire.Entry) bool {
	if last.Len == 0 {
		return true
	}
	b := make([]byte, last.Len)
	n, _ := f.ReadAt(b, end-int64(last.Len))
	return n == last.Len && chunk.Sum(b) == last.Digest
}
