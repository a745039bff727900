package filecast_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/filecast/filecast"
)

// SendFiles sends a directory (names relative to it, slash-separated), a
// file and stdin, in order, reports each file and the totals, and ends the
// batch with a mark that ends an UntilEOF receiver.
func TestSendFiles(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	if err := c.Join(ctx, "sf", "g"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	want := map[string][]byte{
		"top.txt":      randomBytes(1, 100),
		"sub/deep.bin": randomBytes(2, 5*4096+7),
		"one.bin":      randomBytes(3, 3000),
		"stdin.log":    randomBytes(4, 9000),
	}
	for _, name := range []string{"top.txt", "sub/deep.bin"} {
		p := filepath.Join(dir, "d", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, want[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	one := filepath.Join(dir, "one.bin")
	if err := os.WriteFile(one, want["one.bin"], 0o600); err != nil {
		t.Fatal(err)
	}
	var sent []string
	res, err := c.SendFiles(ctx, "sf", []string{filepath.Join(dir, "d"), one, "-"}, filecast.SendFilesOptions{
		Stdin: bytes.NewReader(want["stdin.log"]), StdinName: "stdin.log", EOF: true,
		OnFile: func(f filecast.SentFile) {
			sent = append(sent, f.Name)
			if f.Size != int64(len(want[f.Name])) || f.Skipped || f.Resumed || f.Moved() != f.Size {
				t.Errorf("OnFile(%s): size %d, skipped %v, resumed %v, moved %d; want size %d sent whole",
					f.Name, f.Size, f.Skipped, f.Resumed, f.Moved(), len(want[f.Name]))
			}
		}})
	if err != nil {
		t.Fatalf("SendFiles: %v", err)
	}
	if wantOrder := []string{"sub/deep.bin", "top.txt", "one.bin", "stdin.log"}; !slices.Equal(sent, wantOrder) {
		t.Errorf("sent %q, want %q", sent, wantOrder)
	}
	var total int64
	for _, b := range want {
		total += int64(len(b))
	}
	if res.Files != 4 || res.Skipped != 0 || res.Resumed != 0 || res.Bytes != total || !strings.HasPrefix(res.Batch, "send-") {
		t.Errorf("result %+v, want 4 files, %d bytes, a derived batch name", res, total)
	}
	col := newCollector()
	_, wait := receive(t, c, "sf", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatalf("Receive until the batch's mark: %v", err)
	}
	for name, data := range want {
		if got, n := col.get(name); n != 1 || !bytes.Equal(got, data) {
			t.Errorf("%s received %d times, %d bytes; want once, %d bytes", name, n, len(got), len(data))
		}
	}
}

// Every source is checked before anything is sent: a missing path, a
// directory holding nothing, stdin without a reader or a name.
func TestSendFilesRefusesBeforeSending(t *testing.T) {
	c, srv := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "rf", "g"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file, empty := filepath.Join(dir, "f"), filepath.Join(dir, "empty")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(empty, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		sources []string
		opt     filecast.SendFilesOptions
		want    string
	}{
		{"missing", []string{file, filepath.Join(dir, "nope")}, filecast.SendFilesOptions{}, "cannot send " + filepath.Join(dir, "nope") + ": no such file"},
		{"empty directory", []string{empty}, filecast.SendFilesOptions{}, "nothing to send: " + empty + " holds no regular file"},
		{"stdin without reader", []string{file, "-"}, filecast.SendFilesOptions{StdinName: "s"}, "SendFilesOptions.Stdin"},
		{"stdin without name", []string{file, "-"}, filecast.SendFilesOptions{Stdin: strings.NewReader("s")}, "SendFilesOptions.StdinName"},
		{"bad batch", []string{file}, filecast.SendFilesOptions{SendOptions: filecast.SendOptions{Batch: "a:b"}}, "batch name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.SendFiles(ctx, "rf", tc.sources, tc.opt)
			if !errors.Is(err, filecast.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SendFiles = %v, want ErrUsage saying %q", err, tc.want)
			}
			if n := srv.MustDo(t, "XLEN", "fc:{rf}:files"); n != "0" {
				t.Errorf("the files stream has %s entries: something was sent", n)
			}
		})
	}
}

// A run interrupted in a file that fills the budget, run again: the
// interrupted upload goes first (the other files would wait for the budget
// it holds), it is resumed and counts only the bytes this run moved, and
// the file the first run completed is skipped.
func TestSendFilesResumesUnfinishedFirst(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	if err := c.Join(ctx, "rs", "g"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	small, big := randomBytes(5, 1000), randomBytes(6, 64*4096)
	for name, data := range map[string][]byte{"a.small": small, "b.big": big} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// No member reads: b.big fills the 8-chunk budget, then waits.
	cctx, cancel := context.WithCancel(ctx)
	opt := filecast.SendFilesOptions{SendOptions: filecast.SendOptions{MaxBytes: 8 * 4096, Progress: func(n int64) {
		if n >= 4*4096 {
			cancel()
		}
	}}}
	if _, err := c.SendFiles(cctx, "rs", []string{dir}, opt); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted SendFiles = %v, want context.Canceled", err)
	}

	col := newCollector()
	receive(t, c, "rs", col.handle, filecast.ReceiveOptions{Group: "g"})
	var order []filecast.SentFile
	opt = filecast.SendFilesOptions{OnFile: func(f filecast.SentFile) { order = append(order, f) }}
	res, err := c.SendFiles(ctx, "rs", []string{dir}, opt)
	if err != nil {
		t.Fatalf("SendFiles again: %v", err)
	}
	if len(order) != 2 || order[0].Name != "b.big" || !order[0].Resumed || order[1].Name != "a.small" || !order[1].Skipped {
		t.Fatalf("the rerun sent %+v, want b.big resumed, then a.small skipped", order)
	}
	b := order[0]
	if b.ResumedBytes < 4*4096 || b.ResumedBytes >= b.Size || b.Moved() != b.Size-b.ResumedBytes {
		t.Errorf("b.big: ResumedBytes %d, Moved %d of %d; want at least the 4 chunks stored before, and the rest moved",
			b.ResumedBytes, b.Moved(), b.Size)
	}
	if res.Files != 1 || res.Resumed != 1 || res.Skipped != 1 || res.Bytes != b.Moved() {
		t.Errorf("result %+v, want 1 file resumed, 1 skipped, %d bytes moved", res, b.Moved())
	}
	waitUntil(t, "b.big received", func() bool { _, n := col.get("b.big"); return n == 1 })
	if got, _ := col.get("b.big"); !bytes.Equal(got, big) {
		t.Errorf("b.big received %d bytes, differing from the %d sent", len(got), len(big))
	}
}

// Files sent under one name are reported before anything is sent.
func TestSendFilesSameName(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "sn", "g"); err != nil {
		t.Fatal(err)
	}
	d1, d2 := t.TempDir(), t.TempDir()
	for _, d := range []string{d1, d2} {
		if err := os.WriteFile(filepath.Join(d, "x"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var same []filecast.SameName
	sent := 0
	_, err := c.SendFiles(ctx, "sn", []string{d1, d2}, filecast.SendFilesOptions{
		OnSameName: func(s filecast.SameName) {
			if sent > 0 {
				t.Error("OnSameName called after a file was sent")
			}
			same = append(same, s)
		},
		OnFile: func(filecast.SentFile) { sent++ }})
	if err != nil {
		t.Fatal(err)
	}
	want := []filecast.SameName{{Name: "x", First: filepath.Join(d1, "x"), Path: filepath.Join(d2, "x")}}
	if !slices.Equal(same, want) || sent != 2 {
		t.Errorf("OnSameName told %+v and %d files were sent, want %+v and 2", same, sent, want)
	}
}
