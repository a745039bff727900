package filecast_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/filecast/filecast"
)

// A batch sent again skips the files it already sent unchanged, sends the
// changed ones, and forgets itself when ended.
func TestBatchSkipsWhatItSent(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	if err := c.Join(ctx, "b", "g"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths := map[string]string{}
	for i, name := range []string{"a", "b", "c"} {
		paths[name] = filepath.Join(dir, name)
		if err := os.WriteFile(paths[name], randomBytes(uint64(i), 3*4096+i), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	opt := filecast.SendOptions{Batch: "nightly"}
	send := func(name string) *filecast.FileInfo {
		t.Helper()
		info, err := c.SendFile(ctx, "b", paths[name], name, opt)
		if err != nil {
			t.Fatalf("SendFile(%s): %v", name, err)
		}
		return info
	}
	first := map[string]*filecast.FileInfo{}
	for _, name := range []string{"a", "b", "c"} {
		first[name] = send(name)
		if first[name].Skipped {
			t.Fatalf("%s skipped on its first send", name)
		}
	}
	ttl, err := strconv.Atoi(srv.MustDo(t, "PTTL", "fc:{b}:batch:nightly"))
	if err != nil || ttl <= 0 || time.Duration(ttl)*time.Millisecond > filecast.BatchTTL {
		t.Errorf("batch record expires in %d ms (%v), want within BatchTTL", ttl, err)
	}

	// The batch runs again: a is unchanged, b was touched, c was chmodded.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(paths["b"], later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(paths["c"], 0o600); err != nil {
		t.Fatal(err)
	}
	announced := srv.MustDo(t, "XLEN", "fc:{b}:files")
	again := send("a")
	if !again.Skipped || again.ID != first["a"].ID || again.Digest != first["a"].Digest || again.Size != first["a"].Size {
		t.Errorf("unchanged a: got %+v, want the first send %+v skipped", again, first["a"])
	}
	if n := srv.MustDo(t, "XLEN", "fc:{b}:files"); n != announced {
		t.Errorf("skipping a announced a file: %s entries, were %s", n, announced)
	}
	for _, name := range []string{"b", "c"} {
		if info := send(name); info.Skipped || info.ID == first[name].ID {
			t.Errorf("changed %s was not sent again: %+v", name, info)
		}
	}

	// Ended with a mark: the record is gone in the same step, and every file
	// is sent again.
	if err := c.EndBatch(ctx, "b", "nightly", true); err != nil {
		t.Fatal(err)
	}
	if keys := srv.Keys("fc:{b}:batch:*"); len(keys) != 0 {
		t.Errorf("EndBatch left %q", keys)
	}
	if n := srv.MustDo(t, "XLEN", "fc:{b}:files"); n != strconv.Itoa(mustAtoi(t, announced)+3) {
		t.Errorf("files stream has %s entries, want the 2 files sent again and the mark after %s", n, announced)
	}
	if info := send("a"); info.Skipped {
		t.Error("a was skipped after its batch ended")
	}
	if err := c.EndBatch(ctx, "b", "nightly", false); err != nil {
		t.Fatal(err)
	}
	if keys := srv.Keys("fc:{b}:batch:*"); len(keys) != 0 {
		t.Errorf("EndBatch without a mark left %q", keys)
	}
}

// A damaged batch record never makes a file look sent: it is sent again.
func TestBatchDamagedRecordSendsAgain(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "b", "g")
	// 3000 bytes go out in one call, which asks the batch itself; 5000
	// bytes take the long way, which asks first.
	for _, size := range []int{3000, 5000} {
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, randomBytes(9, size), 0o644); err != nil {
			t.Fatal(err)
		}
		opt := filecast.SendOptions{Batch: "x"}
		if _, err := c.SendFile(ctx, "b", path, "f", opt); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// Right size, time, mode and source, but no digest to report.
		sameButBad := fmt.Sprintf("%d %d 644 nothex id %s", size, st.ModTime().UnixNano(), path)
		for _, bad := range []string{"", "garbage", "5000 1 644 nothex id", "-1 0 644 00000000000000000000000000000000 id", sameButBad} {
			srv.MustDo(t, "HSET", "fc:{b}:batch:x", "f", bad)
			info, err := c.SendFile(ctx, "b", path, "f", opt)
			if err != nil || info.Skipped {
				t.Errorf("%d bytes, record %q: SendFile = %+v, %v; want the file sent again", size, bad, info, err)
			}
		}
	}
}

func TestBatchNameChecked(t *testing.T) {
	c, srv := newClient(t, filecast.Options{})
	ctx := context.Background()
	c.Join(ctx, "b", "g")
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("x"), 0o644)
	for _, bad := range []string{"a b", "a{b}", "a:b", "*"} {
		if _, err := c.SendFile(ctx, "b", path, "f", filecast.SendOptions{Batch: bad}); !errors.Is(err, filecast.ErrUsage) {
			t.Errorf("SendFile with batch %q: %v, want ErrUsage", bad, err)
		}
		if err := c.EndBatch(ctx, "b", bad, true); !errors.Is(err, filecast.ErrUsage) {
			t.Errorf("EndBatch(%q): %v, want ErrUsage", bad, err)
		}
	}
	if n := srv.MustDo(t, "XLEN", "fc:{b}:files"); n != "0" {
		t.Errorf("refused calls announced %s entries", n)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Two sources sent under one name in a batch are two files: the second is
// not mistaken for the first, even with the same size, time and mode.
func TestBatchSameNameOtherSource(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "b", "g")
	mtime := time.Unix(1700000000, 0)
	var paths []string
	for _, content := range []string{"AAAA", "BBBB"} {
		p := filepath.Join(t.TempDir(), "x")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	opt := filecast.SendOptions{Batch: "twins"}
	first, err := c.SendFile(ctx, "b", paths[0], "x", opt)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.SendFile(ctx, "b", paths[1], "x", opt)
	if err != nil {
		t.Fatal(err)
	}
	if second.Skipped || second.Digest == first.Digest {
		t.Errorf("the second source was taken for the first: %+v", second)
	}
	// Run again: the record now holds the second source.
	if again, err := c.SendFile(ctx, "b", paths[1], "x", opt); err != nil || !again.Skipped {
		t.Errorf("unchanged second source: %+v, %v; want it skipped", again, err)
	}
}

// A file without permission bits is recorded as sent with the default
// mode, and compared the same way when sent again.
func TestBatchModeZero(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	c.Join(ctx, "b", "g")
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(p); err != nil {
		t.Skip("cannot read a file with mode 0 as this user (not root)")
	}
	opt := filecast.SendOptions{Batch: "m0"}
	if _, err := c.SendFile(ctx, "b", p, "f", opt); err != nil {
		t.Fatal(err)
	}
	if again, err := c.SendFile(ctx, "b", p, "f", opt); err != nil || !again.Skipped {
		t.Errorf("unchanged mode-0 file: %+v, %v; want it skipped", again, err)
	}
}
