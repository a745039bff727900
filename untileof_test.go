package filecast_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
)

// groupMark is the entry of the last end-of-batch mark group acknowledged.
func groupMark(t *testing.T, srv *redistest.Server, channel, group string) string {
	t.Helper()
	return srv.MustDo(t, "HGET", "fc:{"+channel+"}:g:"+group, "mark")
}

// A receiver started after its group passed the last mark (yesterday's
// batch) waits for the next mark instead of returning at once, and handles
// the files sent before it.
func TestUntilEOFWaitsThroughAnOldMark(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "night", "g"); err != nil {
		t.Fatal(err)
	}
	mustSend(t, c, "night", "yesterday", []byte("old\n"), filecast.SendOptions{})
	if err := c.SendEOF(ctx, "night"); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	_, wait := receive(t, c, "night", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatalf("first Receive: %v", err)
	}

	// Tonight's receiver starts before tonight's sender.
	joined := make(chan filecast.Joined, 1)
	_, wait = receive(t, c, "night", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true,
		OnJoined: func(j filecast.Joined) { joined <- j }})
	select {
	case j := <-joined:
		if j.Channel != "night" || j.Group != "g" || j.Member == "" {
			t.Errorf("OnJoined got %+v", j)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("OnJoined was not called")
	}
	returned := make(chan error, 1)
	go func() { returned <- wait() }()
	select {
	case err := <-returned:
		t.Fatalf("Receive returned (%v) before tonight's batch was sent: it stopped at yesterday's mark", err)
	case <-time.After(time.Second):
	}
	data := randomBytes(7, 50_000)
	mustSend(t, c, "night", "tonight", data, filecast.SendOptions{})
	if err := c.SendEOF(ctx, "night"); err != nil {
		t.Fatal(err)
	}
	if err := <-returned; err != nil {
		t.Fatalf("second Receive: %v", err)
	}
	if got, n := col.get("tonight"); n != 1 || !bytes.Equal(got, data) {
		t.Errorf("tonight: %d deliveries, want 1 identical", n)
	}
	if _, n := col.get("yesterday"); n != 1 {
		t.Errorf("yesterday: %d deliveries, want 1", n)
	}
}

// A receiver started after the sender finished a batch handles it and
// returns; with two batches waiting, it stops at the end of the first and
// the next receive handles the second.
func TestUntilEOFAfterTheSenderFinished(t *testing.T) {
	c, srv := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "late", "g"); err != nil {
		t.Fatal(err)
	}
	a, b := randomBytes(1, 30_000), randomBytes(2, 30_000)
	mustSend(t, c, "late", "a", a, filecast.SendOptions{})
	if err := c.SendEOF(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	mustSend(t, c, "late", "b", b, filecast.SendOptions{})
	if err := c.SendEOF(ctx, "late"); err != nil {
		t.Fatal(err)
	}

	col := newCollector()
	_, wait := receive(t, c, "late", col.handle, filecast.ReceiveOptions{Group: "g", Member: "m", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatalf("first Receive: %v", err)
	}
	if got, n := col.get("a"); n != 1 || !bytes.Equal(got, a) {
		t.Errorf("a: %d deliveries, want 1 identical", n)
	}
	first := groupMark(t, srv, "late", "g")
	if first == "" {
		t.Fatal("the group acknowledged no mark")
	}

	// The second batch is still there for the next run ("b" may have been
	// handled already if it went through before the first batch ended).
	_, wait = receive(t, c, "late", col.handle, filecast.ReceiveOptions{Group: "g", Member: "m", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatalf("second Receive: %v", err)
	}
	if got, n := col.get("b"); n != 1 || !bytes.Equal(got, b) {
		t.Errorf("b: %d deliveries, want 1 identical", n)
	}
	if second := groupMark(t, srv, "late", "g"); second == first {
		t.Errorf("the second Receive acknowledged no mark (still %s): the first had run through both batches", first)
	}
	if left := leftovers(srv, "late"); len(left) != 0 {
		t.Errorf("keys left: %v", left)
	}
}

// When the batch ends while files of the next batch are being handled
// here, those are left unacknowledged for the next receive, not reported
// lost — even while the result of the batch's last file is still being
// reported (a slow OnResult keeps it in flight).
func TestUntilEOFLeavesTheNextBatchUnreported(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "nb", "g"); err != nil {
		t.Fatal(err)
	}
	mustSend(t, c, "nb", "a1", []byte("tonight\n"), filecast.SendOptions{})
	if err := c.SendEOF(ctx, "nb"); err != nil {
		t.Fatal(err)
	}
	mustSend(t, c, "nb", "b1", []byte("tomorrow\n"), filecast.SendOptions{})
	mustSend(t, c, "nb", "b2", []byte("tomorrow\n"), filecast.SendOptions{})

	var mu sync.Mutex
	var results []filecast.Result
	handler := func(ctx context.Context, f *filecast.File) error {
		if strings.HasPrefix(f.Name, "b") {
			<-ctx.Done() // still at work when the batch ends
			return ctx.Err()
		}
		_, err := io.Copy(io.Discard, f)
		return err
	}
	_, wait := receive(t, c, "nb", handler, filecast.ReceiveOptions{Group: "g", UntilEOF: true, Concurrency: 4,
		OnResult: func(r filecast.Result) {
			if r.File.Name == "a1" {
				time.Sleep(300 * time.Millisecond)
			}
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(results) != 1 || results[0].File.Name != "a1" || results[0].Err != nil {
		t.Errorf("results %+v, want only a1, delivered (b1 and b2 left for the next receive)", results)
	}
	st, err := c.Status(ctx, "nb")
	if err != nil {
		t.Fatal(err)
	}
	if g := st.Groups[0]; g.Unacked != 2 {
		t.Errorf("group g has %d files unacknowledged, want b1 and b2", g.Unacked)
	}
}
