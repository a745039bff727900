package filecast_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filecast/filecast"
)

// Stats counts a real transfer: files and bytes on both sides, the files
// in flight while they are, and Redis round trips.
func TestStatsCountTransfer(t *testing.T) {
	const chunk = 4096
	sender, srv := newClient(t, filecast.Options{ChunkSize: chunk})
	receiver := dial(t, srv.URL(), filecast.Options{ChunkSize: chunk})
	ctx := context.Background()
	if err := sender.Join(ctx, "st", "g"); err != nil {
		t.Fatal(err)
	}
	big := randomBytes(11, 5*chunk+17)
	small := randomBytes(12, 100)
	var sendingDuring int64
	mustSend(t, sender, "st", "big", big, filecast.SendOptions{Progress: func(int64) { sendingDuring = sender.Stats().Sending }})
	// A file of a batch is published by the small-file path.
	path := filepath.Join(t.TempDir(), "small")
	if err := os.WriteFile(path, small, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.SendFile(ctx, "st", path, "", filecast.SendOptions{Batch: "b"}); err != nil {
		t.Fatal(err)
	}
	// Sent again by the same batch: skipped, not counted.
	if info, err := sender.SendFile(ctx, "st", path, "", filecast.SendOptions{Batch: "b"}); err != nil || !info.Skipped {
		t.Fatalf("SendFile again = %+v, %v; want it skipped", info, err)
	}
	if err := sender.SendEOF(ctx, "st"); err != nil {
		t.Fatal(err)
	}
	if sendingDuring != 1 {
		t.Errorf("Stats().Sending during the send = %d, want 1", sendingDuring)
	}
	s := sender.Stats()
	if s.FilesSent != 2 || s.BytesSent != int64(len(big)+len(small)) || s.Sending != 0 || s.Failures.Send != 0 {
		t.Errorf("sender: FilesSent %d, BytesSent %d, Sending %d, Failures.Send %d; want 2, %d, 0, 0",
			s.FilesSent, s.BytesSent, s.Sending, s.Failures.Send, len(big)+len(small))
	}
	if s.FilesReceived != 0 || s.BytesRead != 0 {
		t.Errorf("sender: FilesReceived %d, BytesRead %d; want 0 (it received nothing)", s.FilesReceived, s.BytesRead)
	}
	checkLatency(t, s.RoundTrip)

	var receivingDuring int64
	_, wait := receive(t, receiver, "st", func(ctx context.Context, f *filecast.File) error {
		receivingDuring = max(receivingDuring, receiver.Stats().Receiving)
		_, err := io.Copy(io.Discard, f)
		return err
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	r := receiver.Stats()
	want := int64(len(big) + len(small))
	if r.FilesReceived != 2 || r.BytesReceived != want || r.BytesRead != want {
		t.Errorf("receiver: FilesReceived %d, BytesReceived %d, BytesRead %d; want 2, %d, %d", r.FilesReceived, r.BytesReceived, r.BytesRead, want, want)
	}
	if receivingDuring != 1 || r.Receiving != 0 {
		t.Errorf("receiver: Receiving %d while handling, %d after; want 1, 0", receivingDuring, r.Receiving)
	}
	if r.Failures != (filecast.Failures{}) || r.IntegrityErrors != 0 || r.Retries != 0 || r.FilesSent != 0 {
		t.Errorf("receiver: %+v; want no failures, integrity errors, retries or files sent", r)
	}
	checkLatency(t, r.RoundTrip)
}

// checkLatency checks that a histogram counted round trips and is
// cumulative.
func checkLatency(t *testing.T, l filecast.Latency) {
	t.Helper()
	if l.Count == 0 || l.Sum <= 0 || len(l.Counts) != len(l.Bounds) || len(l.Bounds) == 0 {
		t.Fatalf("RoundTrip = %+v; want round trips counted", l)
	}
	for i := 1; i < len(l.Counts); i++ {
		if l.Counts[i] < l.Counts[i-1] || l.Bounds[i] <= l.Bounds[i-1] {
			t.Fatalf("RoundTrip = %+v; want ascending bounds and cumulative counts", l)
		}
	}
	if last := l.Counts[len(l.Counts)-1]; last > l.Count {
		t.Fatalf("RoundTrip: %d at most %v, but %d in all", last, l.Bounds[len(l.Bounds)-1], l.Count)
	}
}

// A chunk corrupted in Redis counts as an integrity error and a corrupt
// failure, not as a file received.
func TestStatsCountCorruptChunk(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "c", "g")
	info := mustSend(t, c, "c", "victim", randomBytes(13, 3*4096), filecast.SendOptions{})
	srv.MustDo(t, "SETRANGE", chunkKey(srv, "c", info.ID, 2), "100", "X")
	c.SendEOF(ctx, "c")
	_, wait := receive(t, c, "c", func(ctx context.Context, f *filecast.File) error {
		_, err := io.Copy(io.Discard, f)
		return err
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := wait(); !errors.Is(err, filecast.ErrCorrupt) {
		t.Fatalf("Receive = %v, want ErrCorrupt", err)
	}
	s := c.Stats()
	if s.IntegrityErrors != 1 || s.Failures.Corrupt != 1 || s.FilesReceived != 0 || s.Retries != 0 {
		t.Errorf("IntegrityErrors %d, Failures.Corrupt %d, FilesReceived %d, Retries %d; want 1, 1, 0, 0",
			s.IntegrityErrors, s.Failures.Corrupt, s.FilesReceived, s.Retries)
	}
	if s.BytesRead != 4096 {
		t.Errorf("BytesRead = %d, want the one good chunk (4096)", s.BytesRead)
	}
}

// A handler that keeps failing counts its retries and a handler failure.
func TestStatsCountHandlerFailure(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	c.Join(ctx, "h", "g")
	mustSend(t, c, "h", "bad", []byte("data"), filecast.SendOptions{})
	c.SendEOF(ctx, "h")
	_, wait := receive(t, c, "h", func(ctx context.Context, f *filecast.File) error {
		return fmt.Errorf("cannot handle %s", f.Name)
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true, Retries: 1})
	if err := wait(); !errors.Is(err, filecast.ErrFailed) {
		t.Fatalf("Receive = %v, want ErrFailed", err)
	}
	s := c.Stats()
	if s.Failures.Handler != 1 || s.Retries != 1 || s.FilesReceived != 0 {
		t.Errorf("Failures.Handler %d, Retries %d, FilesReceived %d; want 1, 1, 0", s.Failures.Handler, s.Retries, s.FilesReceived)
	}
}

// A sender that finds the budget full counts a wait while it waits, and
// its length once it ends.
func TestStatsCountBudgetWait(t *testing.T) {
	const chunk = 4096
	c, srv := newClient(t, filecast.Options{ChunkSize: chunk})
	receiver := dial(t, srv.URL(), filecast.Options{ChunkSize: chunk})
	ctx := context.Background()
	c.Join(ctx, "w", "g")
	data := randomBytes(14, 8*chunk)
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, "w", bytes.NewReader(data), filecast.Meta{Name: "f"}, filecast.SendOptions{MaxBytes: 2 * chunk})
		sent <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for c.Stats().WaitingForBudget != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the sender never waited for budget: %+v", c.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	col := newCollector()
	cancel, _ := receive(t, receiver, "w", col.handle, filecast.ReceiveOptions{Group: "g"})
	defer cancel()
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v", err)
	}
	s := c.Stats()
	if s.BudgetWaits < 1 || s.BudgetWaited <= 0 || s.WaitingForBudget != 0 {
		t.Errorf("BudgetWaits %d, BudgetWaited %v, WaitingForBudget %d; want at least 1, more than 0, 0",
			s.BudgetWaits, s.BudgetWaited, s.WaitingForBudget)
	}
}
