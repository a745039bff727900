package filecast_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filecast/filecast"
)

// Transfers lists a file being sent and the same file being received,
// with the bytes each side has moved, while they are in flight, and
// nothing once they are done.
func TestTransfersWhileInFlight(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	if err := c.Join(ctx, "t", "g"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(1, 64<<10)
	halfway := make(chan struct{})
	release := make(chan struct{})
	got := make(chan []byte, 1)
	_, wait := receive(t, c, "t", func(ctx context.Context, f *filecast.File) error {
		head := make([]byte, 32<<10)
		if _, err := io.ReadFull(f, head); err != nil {
			return err
		}
		close(halfway)
		<-release
		rest, err := io.ReadAll(f)
		got <- append(head, rest...)
		return err
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true})

	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, "t", pr, filecast.Meta{Name: "stream"}, filecast.SendOptions{Flush: time.Millisecond})
		sent <- err
	}()
	pw.Write(data[:40<<10])
	<-halfway

	var send, recv *filecast.Transfer
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		send, recv = nil, nil
		for _, tr := range c.Transfers() {
			if tr.Receive {
				recv = &tr
			} else {
				send = &tr
			}
		}
		if send != nil && send.Done == 40<<10 && recv != nil && recv.Done >= 32<<10 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	switch {
	case send == nil || recv == nil:
		t.Fatalf("Transfers() = %+v, want the file being sent and being received", c.Transfers())
	case send.Name != "stream" || send.Channel != "t" || send.ID == "" || send.Size != -1 || send.Done != 40<<10:
		t.Errorf("sending: %+v, want stream on t with an id, size -1 (stdin-like), 40960 bytes done", *send)
	case recv.ID != send.ID || recv.Done < 32<<10 || recv.Done > 40<<10 || recv.Size != -1:
		t.Errorf("receiving: %+v, want id %s, 32768..40960 bytes done, size -1 while uploading", *recv, send.ID)
	}

	pw.Write(data[40<<10:])
	pw.Close()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	close(release)
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("received %d bytes, want the %d sent", len(b), len(data))
	}
	if err := c.SendEOF(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if left := c.Transfers(); len(left) != 0 {
		t.Errorf("after both ended, Transfers() = %+v, want none", left)
	}
}

// A regular file's size is known from the start of its upload, and an
// upload resumed after an interruption counts what the interrupted run had
// stored as Resumed.
func TestTransfersKnowsSizeAndResumed(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "t", "g")
	path := filepath.Join(t.TempDir(), "big")
	data := randomBytes(2, 256<<10)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Interrupt the first upload after some chunks.
	cctx, cancel := context.WithCancel(ctx)
	var seen []filecast.Transfer
	_, err := c.SendFile(cctx, "t", path, "big", filecast.SendOptions{Progress: func(n int64) {
		if n >= 64<<10 {
			seen = c.Transfers()
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("the interrupted upload completed; cannot test a resume")
	}
	if len(seen) != 1 || seen[0].Size != int64(len(data)) || seen[0].Receive || seen[0].Resumed != 0 {
		t.Fatalf("during the first upload, Transfers() = %+v, want one send of %d bytes, nothing resumed", seen, len(data))
	}
	var resumed []filecast.Transfer
	info, err := c.SendFile(ctx, "t", path, "big", filecast.SendOptions{Progress: func(int64) {
		if resumed == nil {
			resumed = c.Transfers()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Resumed {
		t.Fatal("the second upload did not resume the first")
	}
	if len(resumed) != 1 || resumed[0].Resumed < 64<<10 || resumed[0].Done < resumed[0].Resumed {
		t.Fatalf("during the resumed upload, Transfers() = %+v, want Resumed ≥ 65536 and Done ≥ Resumed", resumed)
	}
}

// A regular file still uploading has no Size yet, but its sender expects
// one: the receiver's File and Stat say it as Expected, and the receiving
// transfer counts towards it, so progress can show a percentage.
func TestExpectedSizeWhileUploading(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "t", "g")
	path := filepath.Join(t.TempDir(), "big")
	data := randomBytes(3, 256<<10)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// An interrupted upload leaves the file uploading, to be resumed.
	cctx, cancel := context.WithCancel(ctx)
	if _, err := c.SendFile(cctx, "t", path, "big", filecast.SendOptions{Progress: func(n int64) {
		if n >= 64<<10 {
			cancel()
		}
	}}); err == nil {
		t.Fatal("the interrupted upload completed; cannot test a file still uploading")
	}

	type seen struct {
		file, stat filecast.FileInfo
		transfer   []filecast.Transfer
	}
	got := make(chan seen, 1)
	resume := make(chan struct{})
	_, wait := receive(t, c, "t", func(ctx context.Context, f *filecast.File) error {
		var s seen
		s.file, s.transfer = f.FileInfo, c.Transfers()
		if st, err := c.Stat(ctx, "t", f.ID); err == nil {
			s.stat = *st
		}
		got <- s
		close(resume)
		_, err := io.Copy(io.Discard, f)
		return err
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	var s seen
	select {
	case s = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the uploading file was not handed to the handler")
	}
	<-resume
	if _, err := c.SendFile(ctx, "t", path, "big", filecast.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.SendEOF(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	want := int64(len(data))
	if s.file.Size != -1 || s.file.Expected != want {
		t.Errorf("File: Size %d, Expected %d; want -1 and %d while uploading", s.file.Size, s.file.Expected, want)
	}
	if s.stat.Size != -1 || s.stat.Expected != want {
		t.Errorf("Stat: Size %d, Expected %d; want -1 and %d while uploading", s.stat.Size, s.stat.Expected, want)
	}
	var recv *filecast.Transfer
	for _, tr := range s.transfer {
		if tr.Receive {
			recv = &tr
		}
	}
	if recv == nil || recv.Size != want {
		t.Errorf("Transfers() = %+v, want the receive of %d bytes (the expected size)", s.transfer, want)
	}
}
