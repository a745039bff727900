package filecast_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
)

// liveChunks returns how many chunk values and index entries file id of
// channel holds in Redis.
func liveChunks(t *testing.T, srv *redistest.Server, channel, id string) (values, entries int) {
	t.Helper()
	fk := "fc:{" + channel + "}:f:" + id
	n, _ := strconv.Atoi(srv.MustDo(t, "XLEN", fk+":idx"))
	return len(chunkKeys(srv, channel, id)), n
}

// A stream that never ends must not leave a key and an index entry per
// chunk behind: chunks every group consumed are trimmed as it flows, with
// their index entries, although the budget is nowhere near full.
func TestLiveUploadTrimsAsItFlows(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "l", "g")
	col := newCollector()
	_, wait := receive(t, c, "l", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	var id string
	go func() {
		info, err := c.Send(ctx, "l", pr, filecast.Meta{Name: "app.log"}, filecast.SendOptions{Flush: 2 * time.Millisecond})
		if info != nil {
			id = info.ID
		}
		sent <- err
	}()
	var want bytes.Buffer
	maxValues, maxEntries := 0, 0
	for i := range 400 {
		line := fmt.Sprintf("%04d a line of the log\n", i)
		want.WriteString(line)
		pw.Write([]byte(line))
		time.Sleep(3 * time.Millisecond) // a chunk per line
		if i%20 == 19 {
			ids := liveIDs(t, srv, "l")
			if len(ids) != 1 {
				t.Fatalf("live files %q, want the one upload", ids)
			}
			v, e := liveChunks(t, srv, "l", ids[0])
			maxValues, maxEntries = max(maxValues, v), max(maxEntries, e)
		}
	}
	pw.Close()
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v", err)
	}
	c.SendEOF(ctx, "l")
	if err := wait(); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if got, _ := col.get("app.log"); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("received %d bytes, want %d", len(got), want.Len())
	}
	// 64 kept, plus what arrives in the 100 ms before a report.
	if maxValues > 128 || maxEntries > 128 {
		t.Errorf("up to %d chunk values and %d index entries held for ~400 chunks; want them trimmed as they flow", maxValues, maxEntries)
	}
	if maxValues == 0 {
		t.Error("no chunk was ever seen held: the sampling is broken")
	}
	if left := leftovers(srv, "l"); len(left) != 0 {
		t.Errorf("keys left of %s: %v", id, left)
	}
}

// liveIDs lists the channel's unreleased files.
func liveIDs(t *testing.T, srv *redistest.Server, channel string) []string {
	t.Helper()
	out := srv.MustDo(t, "ZRANGE", "fc:{"+channel+"}:live", "0", "-1")
	if out == "" {
		return nil
	}
	return strings.Fields(out)
}

// trimmedUpload starts a live upload of data[:cut] on channel and waits
// until group g has consumed it and its first chunks were trimmed with
// their index entries. The upload is left open (its input blocks).
func trimmedUpload(t *testing.T, c *filecast.Client, srv *redistest.Server, channel string, data []byte, cut int) (id string, done func() error, rest *io.PipeWriter) {
	t.Helper()
	ctx := context.Background()
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, channel, pr, filecast.Meta{Name: "f"}, filecast.SendOptions{Flush: time.Millisecond})
		sent <- err
	}()
	for i := 0; i < cut; i += 1000 {
		pw.Write(data[i:min(i+1000, cut)])
		time.Sleep(2 * time.Millisecond)
	}
	waitUntil(t, "the live upload's first chunks to be trimmed", func() bool {
		ids := liveIDs(t, srv, channel)
		if len(ids) == 0 {
			return false
		}
		id = ids[0]
		off, _ := srv.Do("HGET", "fc:{"+channel+"}:f:"+id, "off")
		return off != "" && off != "0"
	})
	return id, func() error { return <-sent }, pw
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A partial copy is resumed across a prefix whose index entries were
// trimmed, checked against the prefix digest the record keeps; a copy
// that does not cover that prefix, or differs in it, cannot be.
func TestResumeFromTrimmedPrefix(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "t", "g")
	col := newCollector()
	receive(t, c, "t", col.handle, filecast.ReceiveOptions{Group: "g"})
	data := randomBytes(51, 100*1000+5000)
	id, done, pw := trimmedUpload(t, c, srv, "t", data, 100*1000)
	off, _ := strconv.Atoi(srv.MustDo(t, "HGET", "fc:{t}:f:"+id, "off"))

	for _, tc := range []struct {
		name    string
		partial []byte
		want    int // 0: cannot resume
	}{
		{"the whole prefix", data[:100*1000], 100 * 1000},
		{"a copy short of the trimmed prefix", data[:off-1], 0},
		{"a copy that differs in the trimmed prefix", append(append([]byte{}, data[:10]...), append([]byte("X"), data[11:100*1000]...)...), 0},
	} {
		f, err := c.Open(ctx, "t", id)
		if err != nil {
			t.Fatal(err)
		}
		n, err := f.ResumeFrom(bytes.NewReader(tc.partial))
		if err != nil {
			t.Fatalf("%s: ResumeFrom: %v", tc.name, err)
		}
		if tc.want == 0 && n != 0 || tc.want > 0 && (n < int64(off) || n > int64(tc.want)) {
			t.Errorf("%s: ResumeFrom kept %d bytes; the trimmed prefix is %d, the copy %d", tc.name, n, off, len(tc.partial))
		}
		if n == 0 {
			_, err := io.ReadAll(f)
			if !errors.Is(err, filecast.ErrGone) {
				t.Errorf("%s: reading from the start = %v, want ErrGone (the prefix was trimmed)", tc.name, err)
			}
		}
		f.Close()
	}
	pw.Write(data[100*1000:])
	pw.Close()
	if err := done(); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// A sender resumes a live upload whose first chunks were trimmed: it checks
// the trimmed prefix against its digest and continues, and the group gets
// one intact file.
func TestSenderResumesTrimmedUpload(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "r", "g")
	col := newCollector()
	_, wait := receive(t, c, "r", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	data := randomBytes(52, 100*1000+5000)
	_, done, pw := trimmedUpload(t, c, srv, "r", data, 100*1000)
	pw.CloseWithError(errors.New("the pipe broke"))
	if err := done(); err == nil {
		t.Fatal("Send with a broken input succeeded")
	}
	info, err := c.Send(ctx, "r", bytes.NewReader(data), filecast.Meta{Name: "f"}, filecast.SendOptions{})
	if err != nil || !info.Resumed {
		t.Fatalf("Send again = %+v, %v; want the trimmed upload resumed", info, err)
	}
	c.SendEOF(ctx, "r")
	if err := wait(); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if got, n := col.get("f"); n != 1 || !bytes.Equal(got, data) {
		t.Errorf("group got the file %d times, %d bytes; want once, %d bytes", n, len(got), len(data))
	}
	// A source that differs in the trimmed prefix does not pass its check:
	// the upload is aborted and the file sent anew.
	c.Join(ctx, "r2", "g")
	receive(t, c, "r2", newCollector().handle, filecast.ReceiveOptions{Group: "g"})
	_, done, pw = trimmedUpload(t, c, srv, "r2", data, 100*1000)
	pw.CloseWithError(errors.New("the pipe broke"))
	done()
	other := append([]byte("Y"), data[1:]...)
	info, err = c.Send(ctx, "r2", bytes.NewReader(other), filecast.Meta{Name: "f"}, filecast.SendOptions{})
	if err != nil || info.Resumed {
		t.Fatalf("Send of a changed source = %+v, %v; want a new upload", info, err)
	}
}

// An input that cannot be read again is aborted when its Send is
// cancelled (SendOptions.AbortOnCancel): receivers learn at once.
func TestAbortOnCancel(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	c.Join(context.Background(), "a", "g")
	var results []filecast.Result
	_, wait := receive(t, c, "a", func(ctx context.Context, f *filecast.File) error {
		_, err := io.ReadAll(f)
		return err
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true, OnResult: func(r filecast.Result) { results = append(results, r) }})
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	// Send abandons its read blocked in pr (chunk.NewLive), as a program's
	// would be on stdin; closing the pipe ends it, for the leak check.
	defer pw.Close()
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, "a", pr, filecast.Meta{Name: "stdin"}, filecast.SendOptions{Flush: time.Millisecond, AbortOnCancel: true})
		sent <- err
	}()
	pw.Write([]byte("some lines\n"))
	time.Sleep(100 * time.Millisecond)
	cancel()
	err := <-sent
	if !errors.Is(err, context.Canceled) || !errors.Is(err, filecast.ErrAborted) {
		t.Fatalf("cancelled Send = %v, want context.Canceled and ErrAborted", err)
	}
	if err := c.SendEOF(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("Receive: %v (an aborted upload is not a failure of the receiver)", err)
	}
	if len(results) != 1 || !errors.Is(results[0].Err, filecast.ErrAborted) {
		t.Errorf("receiver results %+v, want the one upload aborted", results)
	}
}

// Live uploads may never end: a member handles them as they come, without
// a slot of its Concurrency, so they cannot starve every other file.
func TestLiveUploadsDoNotHoldSlots(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "n", "g")
	col := newCollector()
	_, wait := receive(t, c, "n", col.handle, filecast.ReceiveOptions{Group: "g", Concurrency: 1, UntilEOF: true})
	var pipes []*io.PipeWriter
	sent := make(chan error, 2)
	for _, name := range []string{"a.log", "b.log"} {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		go func() {
			_, err := c.Send(ctx, "n", pr, filecast.Meta{Name: name}, filecast.SendOptions{Flush: time.Millisecond})
			sent <- err
		}()
		pw.Write([]byte("open and not ending\n"))
	}
	mustSend(t, c, "n", "plain", []byte("a file sent after two live ones"), filecast.SendOptions{})
	waitUntil(t, "the plain file while two live uploads are open", func() bool {
		_, n := col.get("plain")
		return n == 1
	})
	for _, pw := range pipes {
		pw.Close()
	}
	for range pipes {
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	c.SendEOF(ctx, "n")
	if err := wait(); err != nil {
		t.Fatalf("Receive: %v", err)
	}
}
