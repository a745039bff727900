package filecast_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
)

// Contract 1: a receiver reads the first byte while the sender is still
// writing. The sender's input blocks after its first bytes until the
// receiver has seen them, so without streaming this test cannot finish.
func TestStreamingFirstByteBeforeUploadEnds(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "s", "g"); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, "s", pr, filecast.Meta{Name: "live.log"}, filecast.SendOptions{Flush: 20 * time.Millisecond})
		sent <- err
	}()
	firstByte := make(chan time.Time, 1)
	var got []byte
	_, wait := receive(t, c, "s", func(ctx context.Context, f *filecast.File) error {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(f, buf); err != nil {
			return err
		}
		firstByte <- time.Now()
		rest, err := io.ReadAll(f)
		got = append(buf, rest...)
		return err
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true})

	start := time.Now()
	pw.Write([]byte("hello"))
	select {
	case at := <-firstByte:
		t.Logf("first bytes at the receiver %v after they were written", at.Sub(start))
	case err := <-sent:
		t.Fatalf("Send returned (%v) before the receiver saw the first bytes", err)
	case <-time.After(10 * time.Second):
		t.Fatal("receiver did not see the first bytes while the upload was open")
	}
	pw.Write([]byte(" world\n"))
	pw.Close()
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := c.SendEOF(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if string(got) != "hello world\n" {
		t.Errorf("got %q, want %q", got, "hello world\n")
	}
}

// Contract 2: members of one group share the files; a member that dies
// mid-file has it redelivered to another member once its lease expires.
func TestWorkSharingRedeliversDeadMembersFile(t *testing.T) {
	c, srv := newClient(t, filecast.Options{Lease: time.Second, ChunkSize: 4096})
	ctx := context.Background()
	if err := c.Join(ctx, "w", "workers"); err != nil {
		t.Fatal(err)
	}
	// Member m1 takes the first file and "dies" inside the handler.
	started := make(chan string, 1)
	cancel1, wait1 := receive(t, c, "w", func(ctx context.Context, f *filecast.File) error {
		started <- f.Name
		<-ctx.Done()
		return ctx.Err()
	}, filecast.ReceiveOptions{Group: "workers", Member: "m1"})
	data := randomBytes(2, 50_000)
	mustSend(t, c, "w", "f0", data, filecast.SendOptions{})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("m1 never got the file")
	}
	cancel1()
	if err := wait1(); !errors.Is(err, context.Canceled) {
		t.Fatalf("m1 Receive = %v, want context.Canceled", err)
	}
	if got := srv.MustDo(t, "XPENDING", "fc:{w}:files", "workers"); got == "" || got[0] != '1' {
		t.Fatalf("after m1 died its file should be pending, XPENDING = %q", got)
	}
	// Member m2 takes the file over after the lease, plus the rest.
	for i := 1; i < 4; i++ {
		mustSend(t, c, "w", "f"+strconv.Itoa(i), data, filecast.SendOptions{})
	}
	if err := c.SendEOF(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	_, wait2 := receive(t, c, "w", col.handle, filecast.ReceiveOptions{Group: "workers", Member: "m2", UntilEOF: true})
	if err := wait2(); err != nil {
		t.Fatalf("m2 Receive: %v", err)
	}
	for i := range 4 {
		name := "f" + strconv.Itoa(i)
		if got, n := col.get(name); n != 1 || !bytes.Equal(got, data) {
			t.Errorf("%s: %d deliveries of %d bytes, want 1 of %d", name, n, len(got), len(data))
		}
	}
	if left := leftovers(srv, "w"); len(left) != 0 {
		t.Errorf("keys left: %v", left)
	}
}

// Contract 2: a member restarted under the same name gets its unfinished
// file first, without waiting for a lease.
func TestRestartedMemberResumesItsFile(t *testing.T) {
	c, _ := newClient(t, filecast.Options{Lease: time.Hour})
	ctx := context.Background()
	c.Join(ctx, "r", "g")
	started := make(chan struct{}, 1)
	cancel1, wait1 := receive(t, c, "r", func(ctx context.Context, f *filecast.File) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, filecast.ReceiveOptions{Group: "g", Member: "m"})
	data := randomBytes(3, 10_000)
	mustSend(t, c, "r", "x", data, filecast.SendOptions{})
	<-started
	cancel1()
	wait1()
	c.SendEOF(ctx, "r")
	col := newCollector()
	_, wait := receive(t, c, "r", col.handle, filecast.ReceiveOptions{Group: "g", Member: "m", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatalf("Receive after restart: %v", err)
	}
	if got, n := col.get("x"); n != 1 || !bytes.Equal(got, data) {
		t.Errorf("after restart: %d deliveries, want 1 identical", n)
	}
}

// Contract 3: a chunk corrupted inside Redis is detected; the file fails
// with ErrCorrupt and no byte of the bad chunk reaches the handler.
func TestCorruptChunkDetected(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "c", "g")
	data := randomBytes(4, 3*4096)
	info := mustSend(t, c, "c", "victim", data, filecast.SendOptions{})
	key := chunkKey(srv, "c", info.ID, 2)
	srv.MustDo(t, "SETRANGE", key, "100", "X")
	c.SendEOF(ctx, "c")
	var delivered bytes.Buffer
	var results []filecast.Result
	_, wait := receive(t, c, "c", func(ctx context.Context, f *filecast.File) error {
		_, err := io.Copy(&delivered, f)
		return err
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true, OnResult: func(r filecast.Result) { results = append(results, r) }})
	err := wait()
	if !errors.Is(err, filecast.ErrCorrupt) {
		t.Fatalf("Receive = %v, want ErrCorrupt", err)
	}
	if len(results) != 1 || !errors.Is(results[0].Err, filecast.ErrCorrupt) {
		t.Fatalf("results = %+v, want one ErrCorrupt", results)
	}
	if !bytes.Equal(delivered.Bytes(), data[:4096]) {
		t.Errorf("handler got %d bytes, want exactly the first good chunk (%d)", delivered.Len(), 4096)
	}
}

// Contract 4: the bytes a channel holds never exceed its budget, and a file
// larger than the budget streams through it to two groups without deadlock.
func TestBudgetHoldsForFileLargerThanBudget(t *testing.T) {
	const chunk = 16 << 10
	const budget = 4 * chunk
	c, srv := newClient(t, filecast.Options{ChunkSize: chunk})
	ctx := context.Background()
	c.Join(ctx, "b", "fast")
	c.Join(ctx, "b", "slow")
	data := randomBytes(5, 40*chunk+123)

	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if v, err := srv.Do("GET", "fc:{b}:bytes"); err == nil {
				n, _ := strconv.ParseInt(v, 10, 64)
				if n > peak.Load() {
					peak.Store(n)
				}
			}
		}
	}()
	fast, slow := newCollector(), newCollector()
	_, waitFast := receive(t, c, "b", fast.handle, filecast.ReceiveOptions{Group: "fast", UntilEOF: true})
	_, waitSlow := receive(t, c, "b", func(ctx context.Context, f *filecast.File) error {
		return slow.read(f.Name, &slowReader{f: f})
	}, filecast.ReceiveOptions{Group: "slow", UntilEOF: true})
	mustSend(t, c, "b", "big", data, filecast.SendOptions{MaxBytes: budget})
	c.SendEOF(ctx, "b")
	for _, w := range []func() error{waitFast, waitSlow} {
		if err := w(); err != nil {
			t.Fatalf("Receive: %v", err)
		}
	}
	close(stop)
	sampler.Wait()
	if got, _ := fast.get("big"); !bytes.Equal(got, data) {
		t.Error("fast group: file differs")
	}
	if got, _ := slow.get("big"); !bytes.Equal(got, data) {
		t.Error("slow group: file differs")
	}
	if p := peak.Load(); p > budget || p == 0 {
		t.Errorf("peak bytes held = %d, want between 1 and the budget %d", p, budget)
	}
	if left := leftovers(srv, "b"); len(left) != 0 {
		t.Errorf("keys left: %v", left)
	}
}

// slowReader reads in small steps with pauses, like a slow consumer.
type slowReader struct{ f *filecast.File }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return s.f.Read(p[:min(len(p), 8<<10)])
}

// Contract 6: a sender whose upload was interrupted continues it when run
// again with the same name; receivers see one file.
func TestSenderResumesInterruptedUpload(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "u", "g")
	data := randomBytes(6, 10*4096+7)
	failing := &failAfter{r: bytes.NewReader(data), n: 5 * 4096}
	if _, err := c.Send(ctx, "u", failing, filecast.Meta{Name: "f"}, filecast.SendOptions{}); err == nil {
		t.Fatal("Send with a failing reader succeeded")
	}
	info, err := c.Send(ctx, "u", bytes.NewReader(data), filecast.Meta{Name: "f"}, filecast.SendOptions{})
	if err != nil {
		t.Fatalf("second Send: %v", err)
	}
	if !info.Resumed {
		t.Error("second Send did not resume the interrupted upload")
	}
	c.SendEOF(ctx, "u")
	col := newCollector()
	var n atomic.Int32
	_, wait := receive(t, c, "u", func(ctx context.Context, f *filecast.File) error {
		n.Add(1)
		return col.handle(ctx, f)
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if got, _ := col.get("f"); n.Load() != 1 || !bytes.Equal(got, data) {
		t.Errorf("receiver saw %d files; content equal: %v", n.Load(), bytes.Equal(got, data))
	}
	if left := leftovers(srv, "u"); len(left) != 0 {
		t.Errorf("keys left: %v", left)
	}
}

// A resumed upload whose source changed is aborted and sent anew.
func TestSenderResumeWithChangedSourceStartsOver(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "u", "g")
	old := randomBytes(7, 10*4096)
	c.Send(ctx, "u", &failAfter{r: bytes.NewReader(old), n: 5 * 4096}, filecast.Meta{Name: "f"}, filecast.SendOptions{})
	changed := randomBytes(8, 10*4096)
	info, err := c.Send(ctx, "u", bytes.NewReader(changed), filecast.Meta{Name: "f"}, filecast.SendOptions{})
	if err != nil {
		t.Fatalf("Send of changed source: %v", err)
	}
	if info.Resumed {
		t.Error("a changed source was resumed")
	}
	c.SendEOF(ctx, "u")
	var results []filecast.Result
	col := newCollector()
	_, wait := receive(t, c, "u", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true,
		OnResult: func(r filecast.Result) { results = append(results, r) }})
	if err := wait(); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if got, _ := col.get("f"); !bytes.Equal(got, changed) {
		t.Error("receiver did not get the new content")
	}
	aborted := 0
	for _, r := range results {
		if errors.Is(r.Err, filecast.ErrAborted) {
			aborted++
		}
	}
	if aborted != 1 {
		t.Errorf("want exactly one aborted old upload in %+v", results)
	}
}

type failAfter struct {
	r io.Reader
	n int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n, err := f.r.Read(p[:min(len(p), f.n)])
	f.n -= n
	return n, err
}

// Contract 7: a server whose eviction policy can drop data is refused.
func TestEvictionPolicyRefused(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{MaxMemory: 64 << 20, Policy: "allkeys-lru"})
	_, err := filecast.New(context.Background(), filecast.Options{URL: srv.URL()})
	if !errors.Is(err, filecast.ErrEviction) {
		t.Fatalf("New on allkeys-lru = %v, want ErrEviction", err)
	}
	c, err := filecast.New(context.Background(), filecast.Options{URL: srv.URL(), AllowEviction: true})
	if err != nil {
		t.Fatalf("New with AllowEviction: %v", err)
	}
	c.Close()
}

// ResumeFrom keeps the verified prefix of a partial copy and continues after it.
func TestResumeFromPartialCopy(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	c.Join(ctx, "p", "g")
	data := randomBytes(9, 5*4096+10)
	info := mustSend(t, c, "p", "f", data, filecast.SendOptions{})
	partial := append(append([]byte{}, data[:2*4096+100]...), "garbage"...)
	f, err := c.Open(ctx, "p", info.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.ResumeFrom(bytes.NewReader(partial))
	if err != nil || n != 2*4096 {
		t.Fatalf("ResumeFrom = %d, %v; want %d", n, err, 2*4096)
	}
	rest, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read rest: %v", err)
	}
	if !bytes.Equal(append(partial[:n:n], rest...), data) {
		t.Error("prefix + rest differs from the file")
	}
}

// Cancelling Receive returns promptly even when its context also has a
// deadline (blocking Redis reads must honour the cancel).
func TestReceiveCancelWithDeadlineIsPrompt(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	errc := make(chan error, 1)
	go func() {
		errc <- c.Receive(ctx, "d", func(context.Context, *filecast.File) error { return nil }, filecast.ReceiveOptions{Group: "g"})
	}()
	time.Sleep(200 * time.Millisecond) // let it block in XREADGROUP
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Receive = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Receive took %v to return after cancel", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive did not return within 10s of cancel")
	}
}

// failingSyncer fails every Sync.
type failingSyncer struct{}

func (failingSyncer) Sync() error { return errors.New("disk on fire") }

// A receiver reports a chunk as consumed only after its sink synced it;
// when the sync fails, reading fails with that error (the report goes out
// from a goroutine of its own), so the file is not acknowledged as done
// and nothing is trimmed on the strength of a write that is not on disk.
func TestFailedSyncFailsTheRead(t *testing.T) {
	const chunk = 4 << 10
	c, srv := newClient(t, filecast.Options{ChunkSize: chunk})
	ctx := context.Background()
	c.Join(ctx, "s", "g")
	data := randomBytes(7, 64*chunk)
	var results []filecast.Result
	var mu sync.Mutex
	_, wait := receive(t, c, "s", func(ctx context.Context, f *filecast.File) error {
		f.SetSyncer(failingSyncer{})
		_, err := io.Copy(io.Discard, f)
		return err
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true, Retries: -1, OnResult: func(r filecast.Result) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}})
	// A budget of 8 chunks: the reader reports every 2 chunks, and the
	// sender needs those reports to go on. Once the only group gave up on
	// the file, the sender stops instead of waiting for budget forever.
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, "s", bytes.NewReader(data), filecast.Meta{Name: "f"}, filecast.SendOptions{MaxBytes: 8 * chunk})
		c.SendEOF(ctx, "s")
		sent <- err
	}()
	if err := <-sent; !errors.Is(err, filecast.ErrGone) || !strings.Contains(err.Error(), "gave up") {
		t.Errorf("Send = %v, want ErrGone saying every group gave up", err)
	}
	if err := wait(); !errors.Is(err, filecast.ErrFailed) {
		t.Fatalf("Receive = %v, want ErrFailed", err)
	}
	if len(results) != 1 || results[0].Err == nil || !strings.Contains(results[0].Err.Error(), "disk on fire") {
		t.Fatalf("results %+v, want one failure naming the sync error", results)
	}
	if left := leftovers(srv, "s"); len(left) != 0 {
		t.Errorf("keys left: %v", left)
	}
}

// A read whose reply is lost (the connection drops after Redis ran it, and
// the client retries) leaves entries pending at the member unseen. The
// member finds them by re-reading its own pending entries within seconds,
// not only once they have idled for a lease (30 s here).
func TestUnseenPendingEntryHandledSoon(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 4096, Lease: 30 * time.Second})
	ctx := context.Background()
	if err := c.Join(ctx, "lostreply", "g"); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	busy := make(chan struct{})
	release := make(chan struct{})
	h := func(ctx context.Context, f *filecast.File) error {
		if f.Name == "w" { // keep the member away from its blocking read
			close(busy)
			<-release
		}
		return col.handle(ctx, f)
	}
	_, wait := receive(t, c, "lostreply", h, filecast.ReceiveOptions{Group: "g", Member: "m0", UntilEOF: true})
	mustSend(t, c, "lostreply", "w", randomBytes(1, 100), filecast.SendOptions{})
	<-busy
	x := randomBytes(2, 5000)
	mustSend(t, c, "lostreply", "x", x, filecast.SendOptions{})
	// The lost reply: x delivered to m0 by a read whose answer it never saw.
	if _, err := srv.Do("XREADGROUP", "GROUP", "g", "m0", "COUNT", "1", "STREAMS", "fc:{lostreply}:files", ">"); err != nil {
		t.Fatal(err)
	}
	mustSend(t, c, "lostreply", "y", randomBytes(3, 5000), filecast.SendOptions{})
	if err := c.SendEOF(ctx, "lostreply"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	close(release)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("the batch ended %v after its mark; an unseen pending entry waited for the lease", el.Round(time.Millisecond))
	}
	if got, _ := col.get("x"); !bytes.Equal(got, x) {
		t.Error("x was not delivered")
	}
}
