package filecast_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast"
)

// watchRun runs Watch in the background; stop cancels it and returns its error.
func watchRun(t *testing.T, c *filecast.Client, channel, dir string, opt filecast.WatchOptions) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx, channel, dir, opt) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A drop folder: files that appear (written slowly, renamed in, in
// subdirectories) are each sent once, complete; temporary and excluded
// names are not; a file that changes is sent again as a new version.
func TestWatchDropFolder(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "w", "g")
	col := newCollector()
	receive(t, c, "w", col.handle, filecast.ReceiveOptions{Group: "g", Concurrency: 4})
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pre.txt"), []byte("there before the watcher"))
	watchRun(t, c, "w", dir, filecast.WatchOptions{Settle: 300 * time.Millisecond, Exclude: []string{"*.skip"}})

	// A writer that writes slowly, with pauses shorter than the settle time.
	slow := randomBytes(61, 50000)
	f, err := os.Create(filepath.Join(dir, "slow.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(slow); i += 10000 {
		f.Write(slow[i : i+10000])
		time.Sleep(100 * time.Millisecond)
	}
	f.Close()
	// Written under a temporary name, then renamed in.
	write(t, filepath.Join(dir, "x.tmp"), []byte("renamed in"))
	if err := os.Rename(filepath.Join(dir, "x.tmp"), filepath.Join(dir, "x.dat")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "sub", "deep.txt"), []byte("below"))
	write(t, filepath.Join(dir, ".hidden"), []byte("dot file"))
	write(t, filepath.Join(dir, "busy.part"), []byte("partial"))
	write(t, filepath.Join(dir, "a.skip"), []byte("excluded"))
	want := map[string][]byte{"pre.txt": []byte("there before the watcher"), "slow.bin": slow, "x.dat": []byte("renamed in"),
		"sub/deep.txt": []byte("below")}
	waitUntil(t, "every file to arrive", func() bool {
		for name := range want {
			if _, n := col.get(name); n == 0 {
				return false
			}
		}
		return true
	})
	// A new version of a sent file.
	write(t, filepath.Join(dir, "pre.txt"), []byte("changed"))
	want["pre.txt"] = []byte("changed")
	waitUntil(t, "the new version", func() bool { _, n := col.get("pre.txt"); return n == 2 })
	time.Sleep(time.Second) // anything sent twice, or sent that must not be, would arrive now
	for name, data := range want {
		got, n := col.get(name)
		wantN := 1
		if name == "pre.txt" {
			wantN = 2
		}
		if n != wantN || !bytes.Equal(got, data) {
			t.Errorf("%s: received %d times, equal %v; want %d times", name, n, bytes.Equal(got, data), wantN)
		}
	}
	for _, name := range []string{".hidden", "busy.part", "a.skip", "x.tmp"} {
		if _, n := col.get(name); n != 0 {
			t.Errorf("%s was sent; temporary, hidden and excluded names must not be", name)
		}
	}
}

// A watcher started again with the same name sends what arrived while it
// was down, and a new version of what changed, but nothing it had sent.
func TestWatchRestartSendsOnlyWhatIsNew(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	c.Join(ctx, "r", "g")
	col := newCollector()
	receive(t, c, "r", col.handle, filecast.ReceiveOptions{Group: "g"})
	dir := t.TempDir()
	opt := filecast.WatchOptions{Name: "drop", Settle: 100 * time.Millisecond}
	write(t, filepath.Join(dir, "a"), []byte("a"))
	write(t, filepath.Join(dir, "b"), []byte("b"))
	stop := watchRun(t, c, "r", dir, opt)
	waitUntil(t, "a and b", func() bool { _, na := col.get("a"); _, nb := col.get("b"); return na == 1 && nb == 1 })
	if err := stop(); err != context.Canceled {
		t.Fatalf("Watch after cancel = %v, want context.Canceled", err)
	}
	write(t, filepath.Join(dir, "c"), []byte("c"))
	time.Sleep(10 * time.Millisecond) // a new mtime
	write(t, filepath.Join(dir, "b"), []byte("b, second version"))
	var mu sync.Mutex
	unchanged := map[string]bool{}
	opt.OnEvent = func(e filecast.WatchEvent) {
		if e.Op == filecast.WatchUnchanged {
			mu.Lock()
			unchanged[e.File.Name] = true
			mu.Unlock()
		}
	}
	watchRun(t, c, "r", dir, opt)
	waitUntil(t, "c and the new b", func() bool { _, nc := col.get("c"); _, nb := col.get("b"); return nc == 1 && nb == 2 })
	time.Sleep(500 * time.Millisecond)
	if _, n := col.get("a"); n != 1 {
		t.Errorf("a received %d times, want once: the restarted watcher sent it again", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !unchanged["a"] {
		t.Errorf("the restarted watcher did not report a as sent already (events %v)", unchanged)
	}
}
