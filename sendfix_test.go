package filecast_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/filecast/filecast"
)

// A source that is not a regular file or directory is refused before
// anything is sent (a named pipe would block its open); a directory's
// entries that are not regular files are reported, not sent.
func TestSendFilesNotRegular(t *testing.T) {
	c, srv := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "nr", "g"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := c.SendFiles(ctx, "nr", []string{fifo}, filecast.SendFilesOptions{})
	if !errors.Is(err, filecast.ErrUsage) || !strings.HasPrefix(err.Error(), "cannot send "+fifo+": it is a named pipe") {
		t.Errorf("SendFiles(fifo) = %v, want ErrUsage starting with the source", err)
	}
	if n := srv.MustDo(t, "XLEN", "fc:{nr}:files"); n != "0" {
		t.Errorf("the files stream has %s entries: something was sent", n)
	}

	tr := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tr, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tr, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, link := range [][2]string{{"nowhere", "dangling"}, {"sub", "dirlink"}} {
		if err := os.Symlink(link[0], filepath.Join(tr, link[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(tr, "sub", "p"), 0o644); err != nil {
		t.Fatal(err)
	}
	var left []string
	var sent []string
	res, err := c.SendFiles(ctx, "nr", []string{tr}, filecast.SendFilesOptions{
		OnNotRegular: func(d string, entries []string) {
			if d != tr || len(sent) > 0 {
				t.Errorf("OnNotRegular(%s) after %d files sent; want %s, before any", d, len(sent), tr)
			}
			left = append(left, entries...)
		},
		OnFile: func(f filecast.SentFile) { sent = append(sent, f.Name) }})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dangling", "dirlink", "sub/p"}; !slices.Equal(left, want) || res.Files != 1 || !slices.Equal(sent, []string{"a"}) {
		t.Errorf("left out %q and sent %q, want %q left out and a sent", left, sent, want)
	}
}

// The same source twice (the same absolute path, however written) is sent
// once: not skipped as sent by an interrupted run.
func TestSendFilesSameSourceTwice(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "tw", "g"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := c.SendFiles(ctx, "tw", []string{file, filepath.Join(dir, "..", filepath.Base(dir), "data.txt")}, filecast.SendFilesOptions{
		OnSameName: func(s filecast.SameName) { t.Errorf("OnSameName(%+v) for one file given twice", s) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 1 || res.Skipped != 0 {
		t.Errorf("result %+v, want 1 file sent, none skipped", res)
	}
}

// A send that announces nothing (no group joined) does not list the
// channel; Join does, and so does a send that announced a file.
func TestSendListsChannelOnlyOnceSent(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small"), filepath.Join(dir, "big")
	if err := os.WriteFile(small, []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, randomBytes(7, 5*4096), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{small, big} {
		if _, err := c.SendFiles(ctx, "nogroups", []string{src}, filecast.SendFilesOptions{}); !errors.Is(err, filecast.ErrNoGroups) {
			t.Fatalf("SendFiles(%s) = %v, want ErrNoGroups", src, err)
		}
	}
	if err := c.SendEOF(ctx, "nogroups"); !errors.Is(err, filecast.ErrNoGroups) {
		t.Fatalf("SendEOF = %v, want ErrNoGroups", err)
	}
	if err := c.Follow(ctx, "nogroups", []string{small}, filecast.FollowOptions{}); !errors.Is(err, filecast.ErrNoGroups) {
		t.Fatalf("Follow = %v, want ErrNoGroups", err)
	}
	chans, err := c.Channels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(chans, "nogroups") {
		t.Fatalf("Channels = %q: lists a channel nothing was sent to", chans)
	}
	// A file announced lists the channel, small (one script call) or not;
	// the list is emptied behind Join's back to see it.
	if err := c.Join(ctx, "nogroups", "g"); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{small, big} {
		srv.MustDo(t, "SREM", "fc:channels", "nogroups")
		fresh := dial(t, srv.URL(), filecast.Options{ChunkSize: 4096}) // lists each channel once
		if _, err := fresh.SendFiles(ctx, "nogroups", []string{src}, filecast.SendFilesOptions{}); err != nil {
			t.Fatal(err)
		}
		if chans, err := c.Channels(ctx); err != nil || !slices.Contains(chans, "nogroups") {
			t.Errorf("after sending %s, Channels = %q, %v; want the channel listed", src, chans, err)
		}
	}
}

// A budget below one chunk names the option and the chunk size, once.
func TestSendFilesBudgetBelowChunk(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := c.SendFiles(context.Background(), "bb", []string{file}, filecast.SendFilesOptions{SendOptions: filecast.SendOptions{MaxBytes: 1000}})
	want := "SendOptions.MaxBytes 1000: the budget must hold at least one chunk (4096 bytes; see Options.ChunkSize)"
	if !errors.Is(err, filecast.ErrUsage) || err.Error() != want {
		t.Errorf("SendFiles = %v, want ErrUsage %q", err, want)
	}
}
