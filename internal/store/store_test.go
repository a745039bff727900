package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/redistest"
	"github.com/filecast/filecast/internal/wire"
)

func setup(t *testing.T) (Channel, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t, redistest.Config{})
	c, err := Dial(context.Background(), Config{URL: srv.URL(), RetryFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.Channel("fc", "t"), srv
}

// setupGroup is setup with group "g" joined.
func setupGroup(t *testing.T) (Channel, *redistest.Server) {
	t.Helper()
	ch, srv := setup(t)
	if err := ch.Join(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	return ch, srv
}

// upload stores a one-chunk file and returns its id and entry.
func upload(t *testing.T, ch Channel, name string) (string, string) {
	t.Helper()
	ctx := context.Background()
	rec := wire.File{Kind: wire.KindFile, Name: name, ChunkSize: 1024, Sender: "h/1/x"}
	res, err := ch.Begin(ctx, BeginArgs{ID: "00000000000000" + name, Name: name, Kind: rec.Kind, Sender: rec.Sender, Stale: time.Minute, Fields: rec.Fields()})
	if err != nil || res.Status != BeginNew {
		t.Fatalf("Begin = %+v, %v", res, err)
	}
	data := []byte("payload")
	ref := ChunkRef{Seq: 1, Len: len(data), Digest: chunk.Sum(data)}
	if n, _, err := ch.Reserve(ctx, res.ID, []ChunkRef{ref}, 1<<20); n != 1 || err != nil {
		t.Fatalf("Reserve = %v, %v", n, err)
	}
	if err := ch.PutChunk(ctx, Upload{ID: res.ID}, 1, data); err != nil {
		t.Fatal(err)
	}
	if err := ch.Commit(ctx, Upload{ID: res.ID}, []ChunkRef{ref}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Complete(ctx, res.ID, int64(len(data)), chunk.Sum(data), nil); err != nil {
		t.Fatal(err)
	}
	return res.ID, res.Entry
}

func TestAckIsIdempotentAndReleasesOnLastGroup(t *testing.T) {
	ch, srv := setup(t)
	ctx := context.Background()
	for _, g := range []string{"a", "b"} {
		if err := ch.Join(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	id, entry := upload(t, ch, "f1")
	for _, g := range []string{"a", "b"} {
		if got, err := ch.ReadGroup(ctx, g, "m", 10, 0, false); err != nil || len(got) != 1 {
			t.Fatalf("group %s read %v, %v", g, got, err)
		}
	}
	for i, want := range []string{AckOK, AckDup, AckDup} {
		if got, err := ch.Ack(ctx, id, entry, "a", "m", "", AckDone); err != nil || got != want {
			t.Fatalf("ack %d by group a = %q, %v; want %q", i, got, err, want)
		}
	}
	if n := len(srv.Keys("fc:{t}:f:*")); n == 0 {
		t.Fatal("file released although group b has not acknowledged it")
	}
	if got, _ := ch.Ack(ctx, id, entry, "b", "m", "", AckDone); got != AckOK {
		t.Fatalf("ack by b = %q", got)
	}
	if keys := srv.Keys("fc:{t}:f:*"); len(keys) != 0 {
		t.Errorf("keys left after both groups acked: %v", keys)
	}
	if got := srv.MustDo(t, "GET", "fc:{t}:bytes"); got != "0" {
		t.Errorf("bytes = %q, want 0", got)
	}
	if got := srv.MustDo(t, "XLEN", "fc:{t}:files"); got != "0" {
		t.Errorf("files stream still has %s entries", got)
	}
}

func TestAckByMemberThatLostTheFileIsRefused(t *testing.T) {
	ch, _ := setupGroup(t)
	ctx := context.Background()
	id, entry := upload(t, ch, "f1")
	if got, _ := ch.ReadGroup(ctx, "g", "frozen", 10, 0, false); len(got) != 1 {
		t.Fatal("frozen member did not get the file")
	}
	time.Sleep(20 * time.Millisecond) // let the entry go idle
	if got, err := ch.AutoClaim(ctx, "g", "other", 10*time.Millisecond, 10); err != nil || len(got) != 1 {
		t.Fatalf("AutoClaim = %v, %v", got, err)
	}
	if ok, _ := ch.Renew(ctx, "g", "frozen", entry); ok {
		t.Error("Renew by the member that lost the file succeeded")
	}
	if got, _ := ch.Ack(ctx, id, entry, "g", "frozen", "", AckDone); got != AckLost {
		t.Errorf("Ack by the member that lost the file = %q, want %q", got, AckLost)
	}
	if got, _ := ch.Ack(ctx, id, entry, "g", "other", "", AckDone); got != AckOK {
		t.Errorf("Ack by the new owner = %q, want ok", got)
	}
}

func TestBeginRefusesWithoutGroupsAndDetectsBusyUpload(t *testing.T) {
	ch, _ := setup(t)
	ctx := context.Background()
	rec := wire.File{Kind: wire.KindFile, Name: "x", ChunkSize: 1024, Sender: "h/1/a"}
	args := BeginArgs{ID: "0000000000000001", Name: "x", Kind: rec.Kind, Sender: rec.Sender, Stale: time.Minute, Fields: rec.Fields()}
	if res, _ := ch.Begin(ctx, args); res.Status != BeginNoGroups {
		t.Fatalf("Begin without groups = %+v", res)
	}
	ch.Join(ctx, "g")
	if res, _ := ch.Begin(ctx, args); res.Status != BeginNew {
		t.Fatalf("Begin = %+v", res)
	}
	other := args
	other.ID, other.Sender = "0000000000000002", "h/2/b"
	if res, _ := ch.Begin(ctx, other); res.Status != BeginBusy || res.Sender != "h/1/a" {
		t.Fatalf("Begin by a second live sender = %+v, want busy", res)
	}
	other.Takeover = true
	if res, _ := ch.Begin(ctx, other); res.Status != BeginResume || res.ID != "0000000000000001" {
		t.Fatalf("Begin with takeover = %+v, want resume of the first upload", res)
	}
}

// begin announces an upload with chunk size 1024 and returns its id.
func begin(t *testing.T, ch Channel, name string) string {
	t.Helper()
	rec := wire.File{Kind: wire.KindFile, Name: name, ChunkSize: 1024, Sender: "h/1/x"}
	res, err := ch.Begin(context.Background(), BeginArgs{ID: "00000000000000" + name, Name: name, Kind: rec.Kind, Sender: rec.Sender, Stale: time.Minute, Fields: rec.Fields()})
	if err != nil || res.Status != BeginNew {
		t.Fatalf("Begin = %+v, %v", res, err)
	}
	return res.ID
}

func refs(lens ...int) []ChunkRef {
	out := make([]ChunkRef, len(lens))
	for i, n := range lens {
		out[i] = ChunkRef{Seq: int64(i + 1), Len: n}
	}
	return out
}

func TestReserveGrantsThePrefixThatFitsAndIsIdempotent(t *testing.T) {
	ch, srv := setupGroup(t)
	ctx := context.Background()
	if err := ch.SetBudget(ctx, 2500); err != nil {
		t.Fatal(err)
	}
	id := begin(t, ch, "f1")
	chunks := refs(1000, 1000, 1000, 10)
	n, after, err := ch.Reserve(ctx, id, chunks, 1<<30)
	if err != nil || n != 2 || after == "" {
		t.Fatalf("Reserve(4 chunks into 2500 bytes) = %d, %q, %v; want 2 granted and an event to wait for", n, after, err)
	}
	if got := srv.MustDo(t, "GET", "fc:{t}:bytes"); got != "2000" {
		t.Errorf("bytes = %s, want 2000", got)
	}
	// A retry of the same call (its reply lost) counts nothing twice.
	if n, _, _ := ch.Reserve(ctx, id, chunks, 1<<30); n != 2 {
		t.Errorf("retried Reserve granted %d, want 2", n)
	}
	if got := srv.MustDo(t, "GET", "fc:{t}:bytes"); got != "2000" {
		t.Errorf("bytes after retry = %s, want 2000", got)
	}
	if got := srv.MustDo(t, "HGET", "fc:{t}:f:"+id, "held"); got != "2000" {
		t.Errorf("held = %s, want 2000", got)
	}
}

func TestReserveAdmitsOneChunkIntoAnEmptyChannel(t *testing.T) {
	ch, _ := setupGroup(t)
	ctx := context.Background()
	ch.SetBudget(ctx, 100)
	id := begin(t, ch, "f1")
	if n, _, err := ch.Reserve(ctx, id, refs(1000, 1000), 1<<30); err != nil || n != 1 {
		t.Fatalf("Reserve into an empty channel with a small budget = %d, %v; want 1", n, err)
	}
}

func TestReserveOnAbortedUploadIsGone(t *testing.T) {
	ch, _ := setupGroup(t)
	ctx := context.Background()
	id := begin(t, ch, "f1")
	if err := ch.Abort(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ch.Reserve(ctx, id, refs(10), 1<<30); !errors.Is(err, ErrGone) {
		t.Fatalf("Reserve after abort = %v, want ErrGone", err)
	}
}

func TestCommitBatchesInOrderRepeatsAndRefusesGaps(t *testing.T) {
	ch, srv := setupGroup(t)
	ctx := context.Background()
	id := begin(t, ch, "f1")
	chunks := refs(10, 20, 30, 40)
	for i := range chunks {
		chunks[i].Digest = chunk.Sum([]byte{byte(i)})
	}
	if err := ch.Commit(ctx, Upload{ID: id}, chunks[:3]); err != nil {
		t.Fatal(err)
	}
	// A repeated call whose reply was lost, overlapping the next chunk.
	if err := ch.Commit(ctx, Upload{ID: id}, chunks[1:]); err != nil {
		t.Fatalf("overlapping repeat: %v", err)
	}
	got, err := ch.Index(ctx, id, 1, 10, 1024)
	if err != nil || len(got) != 4 {
		t.Fatalf("Index = %v, %v; want 4 entries", got, err)
	}
	for i, e := range got {
		if e.Seq != chunks[i].Seq || e.Len != chunks[i].Len || e.Digest != chunks[i].Digest {
			t.Errorf("entry %d = %+v, want %+v", i, e, chunks[i])
		}
	}
	if n := srv.MustDo(t, "HGET", "fc:{t}:f:"+id, "n"); n != "4" {
		t.Errorf("n = %s, want 4", n)
	}
	gap := []ChunkRef{{Seq: 6, Len: 1, Digest: chunks[0].Digest}}
	if err := ch.Commit(ctx, Upload{ID: id}, gap); err == nil || errors.Is(err, ErrGone) {
		t.Errorf("Commit with a gap = %v, want an error", err)
	}
}

func TestCommitAfterAbortDeletesTheChunks(t *testing.T) {
	ch, srv := setupGroup(t)
	ctx := context.Background()
	id := begin(t, ch, "f1")
	for seq := int64(1); seq <= 2; seq++ {
		if err := ch.PutChunk(ctx, Upload{ID: id}, seq, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	ch.Abort(ctx, id, "test")
	if err := ch.Commit(ctx, Upload{ID: id}, refs(1, 1)); !errors.Is(err, ErrGone) {
		t.Fatalf("Commit after abort = %v, want ErrGone", err)
	}
	if keys := srv.Keys("fc:{t}:f:" + id + ":c:*"); len(keys) != 0 {
		t.Errorf("chunk keys left: %v", keys)
	}
}

func TestReadChunkIntoBuffer(t *testing.T) {
	ch, srv := setup(t)
	ctx := context.Background()
	srv.MustDo(t, "SET", "fc:{t}:f:x:c:1", "hello world")
	buf := make([]byte, 64)
	got, size, err := ch.ReadChunk(ctx, Upload{ID: "x"}, 1, buf, nil)
	if err != nil || string(got) != "hello world" || size != 11 || &got[0] != &buf[0] {
		t.Fatalf("ReadChunk = %q, %d, %v; want the value read into buf", got, size, err)
	}
	// A value longer than the buffer is cut, and its full size reported.
	got, size, err = ch.ReadChunk(ctx, Upload{ID: "x"}, 1, buf[:5], nil)
	if err != nil || string(got) != "hello" || size != 11 {
		t.Fatalf("ReadChunk into 5 bytes = %q, %d, %v; want %q, 11", got, size, err, "hello")
	}
	// The connection is still usable after a cut value.
	if got, _, err = ch.ReadChunk(ctx, Upload{ID: "x"}, 1, buf, nil); err != nil || string(got) != "hello world" {
		t.Fatalf("ReadChunk after a cut value = %q, %v", got, err)
	}
	if _, _, err := ch.ReadChunk(ctx, Upload{ID: "x"}, 2, buf, nil); !errors.Is(err, ErrGone) {
		t.Fatalf("ReadChunk of a missing chunk = %v, want ErrGone", err)
	}
}

func TestReserveAbortsAnUploadEveryGroupGaveUpOn(t *testing.T) {
	ch, srv := setupGroup(t)
	ctx := context.Background()
	id := begin(t, ch, "f1")
	if n, _, err := ch.Reserve(ctx, id, refs(10), 1<<30); err != nil || n != 1 {
		t.Fatalf("Reserve = %d, %v", n, err)
	}
	got, err := ch.ReadGroup(ctx, "g", "m", 10, 0, false)
	if err != nil || len(got) != 1 {
		t.Fatalf("ReadGroup = %v, %v", got, err)
	}
	if out, err := ch.Ack(ctx, id, got[0].Entry, "g", "m", "handler failed", AckDead); err != nil || out != AckOK {
		t.Fatalf("Ack = %q, %v", out, err)
	}
	_, _, err = ch.Reserve(ctx, id, []ChunkRef{{Seq: 2, Len: 10}}, 1<<30)
	if !errors.Is(err, ErrGone) || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("Reserve after the only group gave up = %v, want ErrGone saying so", err)
	}
	if keys := srv.Keys("fc:{t}:f:*"); len(keys) != 0 {
		t.Errorf("the aborted file was not released: %v", keys)
	}
	if got := srv.MustDo(t, "GET", "fc:{t}:bytes"); got != "0" {
		t.Errorf("bytes = %s, want 0", got)
	}
}

// A mark begun twice with the same id and sender (a retry after a lost
// reply) is placed once, and forgets its batch.
func TestMarkRetryPlacedOnce(t *testing.T) {
	ch, srv := setupGroup(t)
	ctx := context.Background()
	srv.MustDo(t, "HSET", "fc:{t}:batch:b", "f", "x")
	rec := wire.File{Kind: wire.KindMark, Sender: "h/1/m"}
	args := BeginArgs{ID: "00000000000000mk", Kind: rec.Kind, Sender: rec.Sender, Stale: time.Minute, Batch: "b", Fields: rec.Fields()}
	first, err := ch.Begin(ctx, args)
	if err != nil || first.Status != BeginNew {
		t.Fatalf("Begin = %+v, %v", first, err)
	}
	again, err := ch.Begin(ctx, args)
	if err != nil || again != first {
		t.Errorf("retried Begin = %+v, %v; want %+v", again, err, first)
	}
	if n := srv.MustDo(t, "XLEN", "fc:{t}:files"); n != "1" {
		t.Errorf("files stream holds %s entries, want the one mark", n)
	}
	if srv.MustDo(t, "EXISTS", "fc:{t}:batch:b") != "0" {
		t.Error("the mark did not forget its batch")
	}
	args.Sender = "h/2/other"
	if other, _ := ch.Begin(ctx, args); other.Status != BeginCollision {
		t.Errorf("another sender's Begin with a taken id = %+v, want a collision", other)
	}
}

// complete.lua records a file in its batch only once the file is
// complete, and refuses a bad TTL before writing anything.
func TestCompleteRecordsInBatch(t *testing.T) {
	ch, srv := setupGroup(t)
	ctx := context.Background()
	rec := wire.File{Kind: wire.KindFile, Name: "f", ChunkSize: 1024, Sender: "h/1/x"}
	res, err := ch.Begin(ctx, BeginArgs{ID: "00000000000000ff", Name: "f", Kind: rec.Kind, Sender: rec.Sender, Stale: time.Minute, Batch: "b", Fields: rec.Fields()})
	if err != nil || res.Status != BeginNew {
		t.Fatalf("Begin = %+v, %v", res, err)
	}
	sent := wire.Sent{Size: 0, ModTime: time.Unix(0, 5), Mode: 0o644, ID: res.ID, Source: "/src/f"}
	if _, err := ch.Complete(ctx, res.ID, 0, chunk.Sum(nil), &Record{Batch: "b", Sent: sent, TTL: 0}); err == nil {
		t.Error("Complete with a TTL of 0 succeeded")
	}
	if st := srv.MustDo(t, "HGET", "fc:{t}:f:"+res.ID, "state"); st != "uploading" || srv.MustDo(t, "EXISTS", "fc:{t}:batch:b") != "0" {
		t.Fatalf("a refused Complete changed state to %q or recorded the file", st)
	}
	if _, err := ch.Complete(ctx, res.ID, 0, chunk.Sum(nil), &Record{Batch: "b", Sent: sent, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ch.Sent(ctx, "b", "f")
	if err != nil || !ok || got.Source != "/src/f" || got.ID != res.ID {
		t.Errorf("Sent = %+v, %v, %v", got, ok, err)
	}
	if ttl := srv.MustDo(t, "PTTL", "fc:{t}:batch:b"); ttl == "-1" || strings.HasPrefix(ttl, "-") {
		t.Errorf("batch record PTTL = %s, want an expiry", ttl)
	}
}

// Acks are published on the group's channel; the ack of an end-of-batch
// mark says so, since only that can end an UntilEOF receive.
func TestAckEventsTellMarks(t *testing.T) {
	ch, _ := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ch.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	events := make(chan bool, 64)
	subscribed := make(chan error, 1)
	go func() { subscribed <- ch.Subscribe(ctx, "g", func(mark bool) { events <- mark }) }()
	id, _ := upload(t, ch, "f1")
	rec := wire.File{Kind: wire.KindMark, Sender: "h/1/m"}
	mark, err := ch.Begin(ctx, BeginArgs{ID: "00000000000000mk", Kind: rec.Kind, Sender: rec.Sender, Stale: time.Minute, Fields: rec.Fields()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ch.ReadGroup(ctx, "g", "m", 10, 0, false)
	if err != nil || len(got) != 2 {
		t.Fatalf("ReadGroup = %v, %v", got, err)
	}
	// The subscription may start after the first ack; ack until it hears.
	deadline := time.Now().Add(10 * time.Second)
	var first bool
	for heard := false; !heard; {
		if time.Now().After(deadline) {
			t.Fatal("no ack event within 10 s")
		}
		ch.c.rc.Do(ctx, ch.b().Publish().Channel(ch.k.Group("g")).Message("0-0").Build())
		select {
		case first = <-events:
			heard = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	if first {
		t.Error("a plain event was taken for a mark's ack")
	}
	// Late probe events must not be taken for those of the acks below.
	time.Sleep(300 * time.Millisecond)
	for len(events) > 0 {
		<-events
	}
	for _, a := range []struct {
		id, entry string
		mark      bool
	}{{id, got[0].Entry, false}, {mark.ID, mark.Entry, true}} {
		if out, err := ch.Ack(ctx, a.id, a.entry, "g", "m", "", AckDone); err != nil || out != AckOK {
			t.Fatalf("Ack = %q, %v", out, err)
		}
		select {
		case m := <-events:
			if m != a.mark {
				t.Errorf("ack of %s: event says mark=%v, want %v", a.id, m, a.mark)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event for the ack of %s", a.id)
		}
	}
}

// Put publishes a small file, complete, in the shape the long way leaves:
// one chunk, its index and end entries, its bytes in the budget. A retry of
// the same call finds it; an unfinished upload of the name or a full budget
// sends the caller the long way.
func TestPutSmallFile(t *testing.T) {
	ch, srv := setupGroup(t)
	ctx := context.Background()
	put := func(id, name, sender string, data []byte) BeginResult {
		t.Helper()
		rec := wire.File{Kind: wire.KindFile, Name: name, ChunkSize: 1024, Sender: sender}
		sent := wire.Sent{Size: int64(len(data)), ModTime: time.Unix(0, 1), Mode: 0o644, Digest: chunk.Sum(data), ID: id, Source: "/src/" + name}
		res, err := ch.Put(ctx, PutArgs{ID: id, Name: name, Sender: sender, Value: data, Digest: chunk.Sum(data),
			DefaultMax: 1 << 20, Record: &Record{Batch: "b", Sent: sent, TTL: time.Hour}, Fields: rec.Fields()})
		if err != nil {
			t.Fatalf("Put(%s): %v", name, err)
		}
		return res
	}
	data := []byte("small payload")
	res := put("00000000000000p1", "p1", "h/1/a", data)
	if res.Status != BeginNew {
		t.Fatalf("Put = %+v", res)
	}
	f, err := ch.File(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if f.State != wire.Complete || f.Size != int64(len(data)) || f.Chunks != 1 || f.Digest != chunk.Sum(data) || f.Entry != res.Entry {
		t.Errorf("record %+v", f)
	}
	for field, want := range map[string]string{"r": "1", "lo": "1", "held": "13"} {
		if got := srv.MustDo(t, "HGET", "fc:{t}:f:"+res.ID, field); got != want {
			t.Errorf("%s = %s, want %s", field, got, want)
		}
	}
	if got := srv.MustDo(t, "GET", "fc:{t}:bytes"); got != "13" {
		t.Errorf("bytes = %s, want 13", got)
	}
	es, err := ch.Index(ctx, res.ID, 1, 10, 1024)
	if err != nil || len(es) != 2 || es[0].Kind != wire.ChunkEntry || es[0].Len != len(data) || es[1].Kind != wire.EOFEntry {
		t.Errorf("index = %+v, %v", es, err)
	}
	if again := put("00000000000000p1", "p1", "h/1/a", data); again != res {
		t.Errorf("retried Put = %+v, want %+v", again, res)
	}
	if other := put("00000000000000p1", "p1", "h/2/b", data); other.Status != BeginCollision {
		t.Errorf("another sender's Put with a taken id = %+v", other)
	}
	if n := srv.MustDo(t, "XLEN", "fc:{t}:files"); n != "1" {
		t.Errorf("files stream holds %s entries, want 1", n)
	}
	// A retry whose first call's file was consumed and released before the
	// reply could arrive: the batch record says it was published.
	got, err := ch.ReadGroup(ctx, "g", "m", 10, 0, false)
	if err != nil || len(got) != 1 {
		t.Fatalf("ReadGroup = %v, %v", got, err)
	}
	if out, err := ch.Ack(ctx, res.ID, got[0].Entry, "g", "m", "", AckDone); err != nil || out != AckOK {
		t.Fatalf("Ack = %q, %v", out, err)
	}
	if srv.MustDo(t, "EXISTS", "fc:{t}:f:"+res.ID) != "0" {
		t.Fatal("the acknowledged file was not released")
	}
	if again := put("00000000000000p1", "p1", "h/1/a", data); again.Status != BeginNew || again.ID != res.ID {
		t.Errorf("Put retried after its file was released = %+v, want new", again)
	}
	if n := srv.MustDo(t, "XLEN", "fc:{t}:files"); n != "0" {
		t.Errorf("a retried Put published the file again: %s entries", n)
	}
	if got := srv.MustDo(t, "GET", "fc:{t}:bytes"); got != "0" {
		t.Errorf("bytes = %s after the release, want 0", got)
	}

	// An empty file: no chunk, no budget.
	empty := put("00000000000000p2", "p2", "h/1/a", nil)
	if es, err := ch.Index(ctx, empty.ID, 1, 10, 1024); err != nil || len(es) != 1 || es[0].Kind != wire.EOFEntry {
		t.Errorf("empty file's index = %+v, %v", es, err)
	}
	if got := srv.MustDo(t, "GET", "fc:{t}:bytes"); got != "0" {
		t.Errorf("bytes = %s after an empty file, want 0", got)
	}

	// The long way: an unfinished upload of the name, or no room.
	rec := wire.File{Kind: wire.KindFile, Name: "p3", ChunkSize: 1024, Sender: "h/1/a"}
	if r, err := ch.Begin(ctx, BeginArgs{ID: "00000000000000u3", Name: "p3", Kind: rec.Kind, Sender: rec.Sender, Stale: time.Minute, Fields: rec.Fields()}); err != nil || r.Status != BeginNew {
		t.Fatalf("Begin = %+v, %v", r, err)
	}
	if r := put("00000000000000p3", "p3", "h/1/a", data); r.Status != PutSlow {
		t.Errorf("Put over an unfinished upload = %+v, want slow", r)
	}
	if err := ch.SetBudget(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if r := put("00000000000000p4", "p4", "h/1/a", data); r.Status != BeginNew {
		t.Fatalf("Put into an empty channel = %+v", r)
	}
	if r := put("00000000000000p5", "p5", "h/1/a", data); r.Status != PutSlow {
		t.Errorf("Put into a full budget = %+v, want slow", r)
	}
	if srv.MustDo(t, "EXISTS", "fc:{t}:f:00000000000000p5") != "0" || srv.MustDo(t, "GET", "fc:{t}:bytes") != "13" {
		t.Error("a Put sent the long way changed something")
	}
}

// Every script checks all its input before its first write: driven with bad
// input, each fails with an error naming what is wrong and leaves the
// database exactly as it was (DEBUG DIGEST). Redis does not undo the writes
// a script made before it failed, so a check after a write would leave a
// half-done change behind (a commit that appended some chunks but not n).
func TestScriptsRejectBadInputAndChangeNothing(t *testing.T) {
	ch, srv := setupGroup(t)
	ctx := context.Background()
	// A file in progress with one chunk committed, and a member.
	rec := wire.File{Kind: wire.KindFile, Name: "f", ChunkSize: 1024, Sender: "h/1/x"}
	res, err := ch.Begin(ctx, BeginArgs{ID: "00000000000000ff", Name: "f", Kind: rec.Kind, Sender: rec.Sender, Stale: time.Minute, Fields: rec.Fields()})
	if err != nil {
		t.Fatal(err)
	}
	id := res.ID
	refs := []ChunkRef{{Seq: 1, Len: 3, Digest: chunk.Sum([]byte("abc")), Prefix: chunk.Sum([]byte("abc"))}}
	if _, _, err := ch.Reserve(ctx, id, refs, 1<<20); err != nil {
		t.Fatal(err)
	}
	ch.PutChunk(ctx, Upload{ID: id}, 1, []byte("abc"))
	if err := ch.Commit(ctx, Upload{ID: id}, refs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ch.ClaimMember(ctx, "g", "m", "h/1/y", time.Minute, false); err != nil {
		t.Fatal(err)
	}
	d := strings.Repeat("a", 32)
	base := ch.k.Base()
	for _, tc := range []struct {
		script string
		args   []string // after the key base
		want   string
	}{
		{"begin", []string{"id1", "x", "soon", "1000", "s/1/t", "file", "0", ""}, "now_ms"},
		{"begin", []string{"id1", "x", "1", "1000", "s/1/t", "dir", "0", ""}, "kind"},
		{"begin", []string{"id1", "", "1", "1000", "s/1/t", "file", "0", ""}, "name"},
		{"begin", []string{"id1", "x", "1", "1000", "s/1/t", "mark", "0", ""}, "name"},
		{"begin", []string{"id1", "x", "1", "1000", "s/1/t", "file", "maybe", ""}, "takeover"},
		{"begin", []string{"id1", "x", "1", "1000", "s/1/t", "file", "0", "", "v"}, "fields"},
		{"begin", []string{"id 1", "x", "1", "1000", "s/1/t", "file", "0", ""}, "id"},
		{"begin", []string{"id1", "x", "1", "1000", "s/1/t", "file", "0", "", "state", "complete"}, "kept by the scripts"},
		{"put", []string{"id2", "p", "s/1/t", "1", "1048576", "b", "sent", "1000", "0", "4", d, "abc"}, "size"},
		{"put", []string{"id2", "p", "s/1/t", "1", "1048576", "b", "sent", "1000", "0", "3", "xyz", "abc"}, "digest"},
		{"put", []string{"id2", "p", "s/1/t", "1", "1048576", "b", "sent", "0", "0", "3", d, "abc"}, "ttl_ms"},
		{"put", []string{"id2", "p", "s/1/t", "1", "1048576", "", "sent", "1000", "0", "3", d, "abc"}, "batch"},
		{"resume", []string{"bad id"}, "id"},
		{"reserve", []string{id, "1048576", "1", "3", "10", "2", "10"}, "seq"},
		{"reserve", []string{id, "1048576", "1", "2"}, "chunks"},
		{"reserve", []string{id, "1048576", "1", "2", "0"}, "len"},
		{"commit", []string{id, "1", "", "2", "3", d, d, "4", "3", d, d}, "seq"},
		{"commit", []string{id, "1", "", "3", "3", d, d, "4", "3", d, d}, "commit of chunk 3 after chunk 1"},
		{"commit", []string{id, "1", "", "2", "3", "nothex", d}, "digest"},
		{"commit", []string{id, "1", "", "2", "5000", d, d}, "chunk size"},
		{"commit", []string{id, "1", "", "2", "3", d}, "chunks"},
		{"commit", []string{id, "1", "x", "2", "3", d, d}, "epoch"},
		{"commit", []string{id, "1", "0", "2", "3", d, d}, "epoch"}, // a protocol 1 file has none
		{"complete", []string{id, "-1", d, "1", "", "", ""}, "size"},
		{"complete", []string{id, "3", "short", "1", "", "", ""}, "digest"},
		{"complete", []string{id, "3", d, "1", "b", "sent", "0"}, "ttl_ms"},
		{"abort", []string{id, ""}, "reason"},
		{"beat", []string{id, "later"}, "now_ms"},
		{"progress", []string{id, "g", "-1", "1048576"}, "n"},
		{"progress", []string{id, "", "1", "1048576"}, "group"},
		{"ack", []string{id, "not-an-entry", "g", "m", ""}, "entry"},
		{"renew", []string{"g", "m", "x"}, "entry"},
		{"join", []string{"", "1"}, "group"},
		{"join", []string{"g2", "x"}, "now_ms"},
		{"drop", []string{""}, "group"},
		{"member", []string{"g", "m2", "h/1/z", "1000", "always"}, "force"},
		{"member", []string{"g", "m2", "h/1/z", "0", "0"}, "ttl_ms"},
	} {
		before, err := srv.Do("DEBUG", "DIGEST")
		if err != nil {
			t.Fatal(err)
		}
		err = evalScript(ctx, ch, tc.script, base, tc.args)
		after, _ := srv.Do("DEBUG", "DIGEST")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q = %v, want an error about %s", tc.script, tc.args, err, tc.want)
		}
		if after != before {
			t.Errorf("%s %q failed but changed the database", tc.script, tc.args)
		}
	}
	// A key base that is not the one of the key routed to is refused too.
	if err := evalScript(ctx, ch, "join", "fc:{other}:", []string{"g3", "1"}); err == nil || !strings.Contains(err.Error(), "key base") {
		t.Errorf("a script with another channel's key base = %v, want refused", err)
	}
}

// evalScript runs a script as the client does, with raw arguments.
func evalScript(ctx context.Context, ch Channel, name, base string, args []string) error {
	lib, _ := scriptFS.ReadFile("scripts/lib.lua")
	body, _ := scriptFS.ReadFile("scripts/" + name + ".lua")
	cmd := ch.b().Eval().Script(string(lib)+"\n"+string(body)).Numkeys(2).Key(ch.k.Files(), ch.k.Fence()).Arg(append([]string{base}, args...)...).Build()
	return ch.c.rc.Do(ctx, cmd).Error()
}
