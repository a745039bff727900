package filecast_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast"
)

// logWriter appends numbered lines to a log file the way an application
// does, and rotates it the ways logrotate does, between two lines.
type logWriter struct {
	t    *testing.T
	path string
	f    *os.File
	next int // number of the next line
}

func newLogWriter(t *testing.T, path string) *logWriter {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := &logWriter{t: t, path: path, f: f}
	t.Cleanup(func() { w.f.Close() })
	return w
}

func (w *logWriter) line() {
	if _, err := fmt.Fprintf(w.f, "%06d some text of the log line\n", w.next); err != nil {
		w.t.Errorf("write line %d: %v", w.next, err)
	}
	w.next++
}

// renameRotate is logrotate's create: the file is renamed, a new one takes
// its place, and the application writes one more line to the old one
// before it reopens (as it would until its HUP arrives).
func (w *logWriter) renameRotate(to string) {
	if err := os.Rename(w.path, to); err != nil {
		w.t.Fatal(err)
	}
	w.line() // late, into the renamed file
	w.reopen()
}

// copyTruncate is logrotate's copytruncate: the file is copied beside
// itself and truncated in place; the application keeps its descriptor.
// A burst of lines just before makes it likely that the follower has not
// read them all: they are only in the copy then.
func (w *logWriter) copyTruncate(to string) {
	for range 20 {
		w.line()
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Truncate(w.path, 0); err != nil {
		w.t.Fatal(err)
	}
}

// recreate removes the file and writes to a new one of the same name.
func (w *logWriter) recreate() {
	w.f.Close()
	if err := os.Remove(w.path); err != nil {
		w.t.Fatal(err)
	}
	w.reopen()
}

func (w *logWriter) reopen() {
	w.f.Close()
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f = f
}

// lineCollector receives every file of a group line by line, as it
// arrives, keeping each file's lines under its name.
type lineCollector struct {
	mu    sync.Mutex
	lines map[string][]string
	total int
}

func (lc *lineCollector) handle(ctx context.Context, f *filecast.File) error {
	for line, err := range f.Lines() {
		if err != nil {
			return err
		}
		lc.mu.Lock()
		if lc.lines == nil {
			lc.lines = map[string][]string{}
		}
		lc.lines[f.Name] = append(lc.lines[f.Name], string(line))
		lc.total++
		lc.mu.Unlock()
	}
	return nil
}

func (lc *lineCollector) count() int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.total
}

// check verifies that the generations, in the order of their names, hold
// lines 0..n-1 exactly once and in order, and returns how many there were.
func (lc *lineCollector) check(t *testing.T, prefix string, n int) int {
	t.Helper()
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var names []string
	for name := range lc.lines {
		if !strings.HasPrefix(name, prefix) {
			t.Errorf("a file named %q, want generations named %s<stamp>", name, prefix)
		}
		names = append(names, name)
	}
	slices.Sort(names) // the stamps sort in time order
	next := 0
	for _, name := range names {
		for _, l := range lc.lines[name] {
			num, err := strconv.Atoi(strings.Fields(l)[0])
			if err != nil || num != next {
				t.Fatalf("generation %s: line %q where line %d was due (generations %q)", name, l, next, names)
			}
			next++
		}
	}
	if next != n {
		t.Fatalf("received lines 0..%d, want 0..%d", next-1, n-1)
	}
	return len(names)
}

// A log followed through three rename rotations, a copytruncate and a
// delete-and-recreate, while lines keep coming: every line arrives
// exactly once, in order, each generation is its own file, and the
// rotated-away generations are completed.
func TestFollowThroughRotations(t *testing.T) {
	t.Run("notified", func(t *testing.T) { followThroughRotations(t, 0) })
	t.Run("polling", func(t *testing.T) { followThroughRotations(t, 100*time.Millisecond) })
}

func followThroughRotations(t *testing.T, poll time.Duration) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "f", "g")
	lc := &lineCollector{}
	var results []filecast.Result
	var rmu sync.Mutex
	receive(t, c, "f", lc.handle, filecast.ReceiveOptions{Group: "g", Concurrency: 4, OnResult: func(r filecast.Result) {
		rmu.Lock()
		results = append(results, r)
		rmu.Unlock()
	}})
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := newLogWriter(t, path)
	w.f.WriteString("written before the follower started\n") // not sent: it starts at the end

	fctx, stop := context.WithCancel(ctx)
	started := make(chan struct{}, 16)
	followed := make(chan error, 1)
	go func() {
		followed <- c.Follow(fctx, "f", []string{path}, filecast.FollowOptions{Linger: 300 * time.Millisecond,
			Flush: 20 * time.Millisecond, Poll: poll, OnEvent: func(e filecast.FollowEvent) {
				if e.Op == filecast.FollowStarted {
					started <- struct{}{}
				}
			}})
	}()
	<-started
	steps := []func(){
		func() { w.renameRotate(path + ".1") },
		func() { w.copyTruncate(path + ".2") },
		func() { w.renameRotate(path + ".3") },
		func() { w.recreate() },
		func() { w.renameRotate(path + ".4") },
	}
	for _, rotate := range steps {
		for range 60 {
			w.line()
			time.Sleep(3 * time.Millisecond)
		}
		rotate()
	}
	for range 60 {
		w.line()
		time.Sleep(3 * time.Millisecond)
	}
	waitUntil(t, "every line to arrive", func() bool { return lc.count() >= w.next })
	time.Sleep(200 * time.Millisecond) // any line more would be a duplicate
	if gens := lc.check(t, "app.log-", w.next); gens != len(steps)+1 {
		t.Errorf("%d generations, want %d (one per rotation, and the open one)", gens, len(steps)+1)
	}
	// Every generation but the open one is complete and verified.
	waitUntil(t, "the rotated generations to be completed", func() bool {
		rmu.Lock()
		defer rmu.Unlock()
		return len(results) >= len(steps)
	})
	for _, r := range results {
		if r.Err != nil {
			t.Errorf("generation %s: %v", r.File.Name, r.Err)
		}
	}
	stop()
	if err := <-followed; err != context.Canceled {
		t.Errorf("Follow after cancel = %v, want context.Canceled", err)
	}
	// The open generation stays resumable; nothing else is left.
	if ids := liveIDs(t, srv, "f"); len(ids) != 1 {
		t.Errorf("files left in redis: %q, want only the open generation", ids)
	}
}

// A follower stopped and started again with the same name continues the
// open generation where the stored data ends: the lines written while it
// was stopped arrive, none twice, in the same file.
func TestFollowContinuesAfterRestart(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "r", "g")
	lc := &lineCollector{}
	receive(t, c, "r", lc.handle, filecast.ReceiveOptions{Group: "g"})
	path := filepath.Join(t.TempDir(), "app.log")
	w := newLogWriter(t, path)
	opt := filecast.FollowOptions{Name: "svc", Flush: 10 * time.Millisecond}
	run := func() (stop func() error) {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Follow(fctx, "r", []string{path}, opt) }()
		return func() error { cancel(); return <-done }
	}
	stop := run()
	time.Sleep(200 * time.Millisecond)
	for range 50 {
		w.line()
	}
	waitUntil(t, "the first lines", func() bool { return lc.count() == 50 })
	if err := stop(); err != context.Canceled {
		t.Fatalf("Follow = %v", err)
	}
	for range 50 { // while no follower runs
		w.line()
	}
	stop = run()
	defer stop()
	for range 50 {
		w.line()
	}
	waitUntil(t, "every line", func() bool { return lc.count() >= 150 })
	time.Sleep(200 * time.Millisecond)
	if gens := lc.check(t, "app.log-", 150); gens != 1 {
		t.Errorf("%d generations, want the one", gens)
	}
}

// A follower stopped while it still reads a file that was removed
// finishes that file first: no later run could read what is left of it.
// A file that is still there is left open for the next run.
func TestFollowStopFinishesRemovedFile(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "d", "g")
	lc := &lineCollector{}
	receive(t, c, "d", lc.handle, filecast.ReceiveOptions{Group: "g"})
	path := filepath.Join(t.TempDir(), "app.log")
	w := newLogWriter(t, path)
	fctx, stop := context.WithCancel(ctx)
	started := make(chan struct{}, 4)
	followed := make(chan error, 1)
	go func() {
		followed <- c.Follow(fctx, "d", []string{path}, filecast.FollowOptions{Linger: time.Hour, Flush: 10 * time.Millisecond,
			OnEvent: func(e filecast.FollowEvent) {
				if e.Op == filecast.FollowStarted {
					started <- struct{}{}
				}
			}})
	}()
	<-started
	for range 20 {
		w.line()
	}
	waitUntil(t, "the first lines", func() bool { return lc.count() == 20 })
	// The file is removed; its writer still adds lines through its open
	// descriptor, which only the follower's descriptor can read now.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		w.line()
	}
	time.Sleep(20 * time.Millisecond) // less than the follower's next look
	stop()
	if err := <-followed; err != context.Canceled {
		t.Fatalf("Follow = %v", err)
	}
	// The removed file's generation was read to its end and completed.
	waitUntil(t, "every line", func() bool { return lc.count() >= 30 })
	lc.check(t, "app.log-", 30)
	waitUntil(t, "the removed file's generation to be released", func() bool { return len(liveIDs(t, srv, "d")) == 0 })
}
