package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/keyslot"
	"github.com/filecast/filecast/internal/redistest"
	"github.com/filecast/filecast/internal/wire"
)

// clusterChannel returns channel "t" on a fresh 3-primary cluster, through
// a client of its own, and the cluster.
func clusterChannel(t *testing.T) (Channel, *redistest.Cluster) {
	t.Helper()
	cl := redistest.StartCluster(t, redistest.ClusterConfig{Primaries: 3})
	c, err := Dial(context.Background(), Config{URL: cl.URL(), RetryFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if !c.Spread() {
		t.Fatal("a client of a cluster does not spread chunks")
	}
	return c.Channel("fc", "t"), cl
}

// uploadSpread stores a protocol 2 file of n chunks and completes it.
func uploadSpread(t *testing.T, ch Channel, id string, n int) Upload {
	t.Helper()
	ctx := context.Background()
	rec := wire.File{Version: wire.Version2, Kind: wire.KindFile, Name: id, ChunkSize: 1024, Sender: "h/1/x"}
	res, err := ch.Begin(ctx, BeginArgs{ID: id, Name: id, Kind: rec.Kind, Sender: rec.Sender, Stale: time.Minute, Fields: rec.Fields()})
	if err != nil || res.Status != BeginNew {
		t.Fatalf("Begin = %+v, %v", res, err)
	}
	u := Upload{ID: id, Spread: true}
	h := chunk.NewHasher()
	var refs []ChunkRef
	for seq := int64(1); seq <= int64(n); seq++ {
		data := []byte(strings.Repeat("x", 100))
		h.Write(data)
		refs = append(refs, ChunkRef{Seq: seq, Len: len(data), Digest: chunk.Sum(data), Prefix: h.Sum()})
		if err := ch.PutChunk(ctx, u, seq, data); err != nil {
			t.Fatal(err)
		}
	}
	if g, _, err := ch.Reserve(ctx, id, refs, 1<<20); g != n || err != nil {
		t.Fatalf("Reserve = %d, %v", g, err)
	}
	if err := ch.Commit(ctx, u, refs); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Complete(ctx, id, int64(100*n), h.Sum(), nil); err != nil {
		t.Fatal(err)
	}
	return u
}

// A client that released a file but was killed before it deleted the
// chunks leaves them journaled; any other client finishes the journal,
// and the budget is exact all along.
func TestJournalLeftByAKilledClientIsFinishedByAnother(t *testing.T) {
	ch, cl := clusterChannel(t)
	srv := cl.Stand()
	ctx := context.Background()
	if err := ch.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	u := uploadSpread(t, ch, "0000000000000001", 30)
	chunks := srv.Keys("fc:{*}:c:t:*")
	if len(chunks) != 30 {
		t.Fatalf("%d chunk keys, want 30", len(chunks))
	}
	// Released the way a client killed right after its script would have:
	// the script ran, the deletions did not.
	entry := deliver(t, srv, u.ID)
	if r, err := luaAck.Exec(ctx, ch.c.rc, []string{ch.k.Files(), ch.k.Fence()}, []string{ch.k.base, u.ID, entry, "g", "", "", "done", "1"}).ToString(); r != "ok" || err != nil {
		t.Fatalf("ack = %q, %v", r, err)
	}
	if got := len(srv.Keys("fc:{*}:c:t:*")); got == 0 {
		t.Fatal("the chunks were deleted without the journal: the test no longer shows a killed client")
	}
	if b := srv.MustDo(t, "GET", "fc:{t}:bytes"); b != "3000" {
		t.Errorf("budget holds %s bytes while the chunks are still stored, want 3000", b)
	}
	if n := srv.MustDo(t, "XLEN", "fc:{t}:gc"); n == "0" {
		t.Fatal("nothing journaled")
	}
	freed, err := ch.Collect(ctx)
	if err != nil || freed != 3000 {
		t.Fatalf("Collect = %d, %v; want 3000 bytes freed", freed, err)
	}
	if left := srv.Keys("fc:{*}:c:t:*"); len(left) != 0 {
		t.Errorf("chunk keys left: %q", left)
	}
	if b := srv.MustDo(t, "GET", "fc:{t}:bytes"); b != "0" {
		t.Errorf("budget holds %s bytes after the journal was finished, want 0", b)
	}
	if n := srv.MustDo(t, "EXISTS", "fc:{t}:gc"); n != "0" {
		t.Error("an empty journal was left behind")
	}
	// Finishing it again changes nothing.
	if freed, err := ch.Collect(ctx); err != nil || freed != 0 {
		t.Errorf("second Collect = %d, %v", freed, err)
	}
}

// A journal entry that does not parse is left alone, and reported; the
// others are finished.
func TestJournalSkipsDamagedEntries(t *testing.T) {
	ch, cl := clusterChannel(t)
	srv := cl.Stand()
	ctx := context.Background()
	srv.MustDo(t, "SET", "fc:{t}:bytes", "100")
	good := ch.k.Chunk2("00000000000000aa", 2, 7)
	srv.MustDo(t, "SET", good, "x")
	srv.MustDo(t, "XADD", "fc:{t}:gc", "*", "f", "bad id", "k", "0:1-1", "b", "50")
	srv.MustDo(t, "XADD", "fc:{t}:gc", "*", "f", "00000000000000aa", "k", "0:9-1", "b", "50")
	srv.MustDo(t, "XADD", "fc:{t}:gc", "*", "f", "00000000000000aa", "k", "2:7-7", "b", "40")
	freed, err := ch.Collect(ctx)
	if freed != 40 || err == nil || !strings.Contains(err.Error(), "left alone") {
		t.Fatalf("Collect = %d, %v; want 40 freed and an error naming what was left alone", freed, err)
	}
	if n := srv.MustDo(t, "EXISTS", good); n != "0" {
		t.Error("the chunk of the good entry was not deleted")
	}
	if n := srv.MustDo(t, "XLEN", "fc:{t}:gc"); n != "2" {
		t.Errorf("journal holds %s entries, want the 2 damaged ones", n)
	}
	if b := srv.MustDo(t, "GET", "fc:{t}:bytes"); b != "60" {
		t.Errorf("budget holds %s, want 60", b)
	}
}

// A resumed upload writes under a new epoch: a late write or commit of the
// sender it took over touches nothing of it, and its old keys go.
func TestResumeMovesASpreadUploadToANewEpoch(t *testing.T) {
	ch, cl := clusterChannel(t)
	srv := cl.Stand()
	ctx := context.Background()
	if err := ch.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	rec := wire.File{Version: wire.Version2, Kind: wire.KindFile, Name: "r", ChunkSize: 1024, Sender: "h/1/x"}
	id := "00000000000000bb"
	if _, err := ch.Begin(ctx, BeginArgs{ID: id, Name: "r", Kind: rec.Kind, Sender: rec.Sender, Stale: time.Minute, Fields: rec.Fields()}); err != nil {
		t.Fatal(err)
	}
	old := Upload{ID: id, Spread: true}
	data := []byte("0123456789")
	h := chunk.NewHasher()
	h.Write(data)
	one := ChunkRef{Seq: 1, Len: 10, Digest: chunk.Sum(data), Prefix: h.Sum()}
	h.Write(data)
	two := ChunkRef{Seq: 2, Len: 10, Digest: chunk.Sum(data), Prefix: h.Sum()}
	ch.Reserve(ctx, id, []ChunkRef{one, two}, 1<<20)
	ch.PutChunk(ctx, old, 1, data)
	ch.PutChunk(ctx, old, 2, data)
	if err := ch.Commit(ctx, old, []ChunkRef{one}); err != nil {
		t.Fatal(err)
	}
	// Another sender takes over: chunk 2 of epoch 0 was stored, never committed.
	r, err := ch.Resume(ctx, id)
	if err != nil || r != (Resumed{Chunks: 1, Spread: true, Epoch: 1}) {
		t.Fatalf("Resume = %+v, %v; want 1 chunk, epoch 1", r, err)
	}
	if n := srv.MustDo(t, "EXISTS", ch.k.Chunk2(id, 0, 2)); n != "0" {
		t.Error("the uncommitted chunk of the old epoch is still stored")
	}
	if b := srv.MustDo(t, "GET", "fc:{t}:bytes"); b != "10" {
		t.Errorf("budget holds %s, want the 10 bytes committed", b)
	}
	// The old sender's late commit is refused, and its chunk deleted.
	ch.PutChunk(ctx, old, 2, data)
	if err := ch.Commit(ctx, old, []ChunkRef{two}); err == nil || !strings.Contains(err.Error(), "resumed") {
		t.Errorf("late commit of the old epoch = %v, want a refusal saying it was resumed", err)
	}
	if n := srv.MustDo(t, "EXISTS", ch.k.Chunk2(id, 0, 2)); n != "0" {
		t.Error("the late chunk of the old epoch is still stored")
	}
	// The new one goes on under epoch 1, and a release finds both epochs.
	cur := Upload{ID: id, Spread: true, Epoch: 1}
	ch.Reserve(ctx, id, []ChunkRef{two}, 1<<20)
	ch.PutChunk(ctx, cur, 2, data)
	if err := ch.Commit(ctx, cur, []ChunkRef{two}); err != nil {
		t.Fatal(err)
	}
	es, err := ch.Index(ctx, id, 1, 2, 1024)
	if err != nil || len(es) != 2 || es[0].Epoch != 0 || es[1].Epoch != 1 {
		t.Fatalf("index = %+v, %v; want chunk 1 of epoch 0 and chunk 2 of epoch 1", es, err)
	}
	if err := ch.Abort(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	if r, err := ch.Ack(ctx, id, deliver(t, srv, id), "g", "", "", AckDone); r != AckOK || err != nil {
		t.Fatalf("Ack = %v, %v", r, err)
	}
	if left := srv.Keys("fc:{*}:c:t:*"); len(left) != 0 {
		t.Errorf("chunk keys left after the release: %q", left)
	}
	if b := srv.MustDo(t, "GET", "fc:{t}:bytes"); b != "0" {
		t.Errorf("budget holds %s after the release, want 0", b)
	}
}

// deliver hands the files-stream entry of file id to group g, as a
// receiver reading it would, and returns the entry.
func deliver(t *testing.T, srv *redistest.Server, id string) string {
	t.Helper()
	srv.MustDo(t, "XREADGROUP", "GROUP", "g", "m", "COUNT", "100", "STREAMS", "fc:{t}:files", ">")
	return srv.MustDo(t, "HGET", "fc:{t}:f:"+id, "entry")
}

// The sweep for orphans finds, on every primary, the chunks nothing would
// delete, and only those.
func TestOrphansFoundOnEveryPrimary(t *testing.T) {
	ch, cl := clusterChannel(t)
	srv := cl.Stand()
	ctx := context.Background()
	if err := ch.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	u := uploadSpread(t, ch, "00000000000000cc", 20)
	var orphans []string
	for seq := int64(1); seq <= 20; seq++ {
		orphans = append(orphans, ch.k.Chunk2("00000000000000dd", 0, seq)) // a released file's
	}
	orphans = append(orphans, ch.k.Chunk2(u.ID, 1, 3)) // an epoch that never began
	for _, k := range orphans {
		srv.MustDo(t, "SET", k, "x")
	}
	found, err := ch.Orphans(ctx, false)
	if err != nil || found != len(orphans) {
		t.Fatalf("Orphans = %d, %v; want %d", found, err, len(orphans))
	}
	if found, err := ch.Orphans(ctx, true); err != nil || found != len(orphans) {
		t.Fatalf("Orphans(remove) = %d, %v", found, err)
	}
	for _, k := range orphans {
		if srv.MustDo(t, "EXISTS", k) != "0" {
			t.Errorf("orphan %s left", k)
		}
	}
	if got := len(srv.Keys("fc:{*}:c:t:00000000000000cc:*")); got != 20 {
		t.Errorf("%d chunks of the live file left, want its 20", got)
	}
	if found, err := ch.Orphans(ctx, false); err != nil || found != 0 {
		t.Errorf("Orphans after removal = %d, %v", found, err)
	}
}

// While the channel's slot migrates, with some of its keys moved, a
// script must not run half: Redis refuses it before it runs (the fence
// key, keys.go) and the client retries until the slot has settled.
func TestScriptsWaitForTheChannelSlotToSettle(t *testing.T) {
	ch, cl := clusterChannel(t)
	ctx := context.Background()
	if err := ch.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	uploadSpread(t, ch, "a", 3)
	slot := keyslot.Slot(ch.k.Files())
	from := cl.Owner(slot)
	to := cl.Primaries()[0]
	if to == from {
		to = cl.Primaries()[1]
	}
	m, err := cl.StartMigration(slot, to)
	if err != nil {
		t.Fatal(err)
	}
	if more, err := m.Step(); err != nil || !more {
		t.Fatalf("moving a first key: %v, %v", more, err)
	}
	digests := func() [2]string {
		a, _ := from.Do("DEBUG", "DIGEST")
		b, _ := to.Do("DEBUG", "DIGEST")
		return [2]string{a, b}
	}
	before := digests()
	err = ch.Join(ctx, "g2")
	if err == nil || !strings.Contains(err.Error(), "TRYAGAIN") {
		t.Fatalf("Join while the slot is half moved = %v, want TRYAGAIN once retries ran out", err)
	}
	if after := digests(); after != before {
		t.Fatal("a script refused while the slot migrated changed the data")
	}
	if err := m.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Join(ctx, "g2"); err != nil {
		t.Fatalf("Join once the slot moved: %v", err)
	}
	gs, err := ch.Groups(ctx)
	if err != nil || len(gs) != 2 {
		t.Fatalf("Groups = %+v, %v; want g and g2", gs, err)
	}
}

// A member blocked reading the files stream while the channel's slot moves
// to another primary (MIGRATE deletes the stream under it: UNBLOCKED)
// follows it and gets the next file.
func TestBlockedReadFollowsTheChannelSlot(t *testing.T) {
	ch, cl := clusterChannel(t)
	ctx := context.Background()
	if err := ch.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		got []Announce
		err error
	}
	read := make(chan result, 1)
	go func() {
		got, err := ch.ReadGroup(ctx, "g", "m", 10, 10*time.Second, false)
		read <- result{got, err}
	}()
	slot := keyslot.Slot(ch.k.Files())
	waitBlocked := time.Now().Add(5 * time.Second)
	for {
		out, _ := cl.Owner(slot).Do("INFO", "clients")
		if strings.Contains(out, "blocked_clients:1") {
			break
		}
		if time.Now().After(waitBlocked) {
			t.Fatalf("the reader did not block: %s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	to := cl.Primaries()[0]
	if to == cl.Owner(slot) {
		to = cl.Primaries()[1]
	}
	if err := cl.MigrateSlot(slot, to, 0); err != nil {
		t.Fatal(err)
	}
	uploadSpread(t, ch, "a", 1)
	r := <-read
	if r.err != nil || len(r.got) != 1 || r.got[0].ID != "a" {
		t.Fatalf("ReadGroup across the move = %+v, %v; want file a", r.got, r.err)
	}
}

// Finishing an entry checks it is the entry whose keys were deleted: once
// the journal is empty its key goes, and a new entry can get an ID an old
// one had (found by make chaos: a client finishing the old entry late
// finished the new one, and its chunks stayed for ever).
func TestJournalEntryIDReusedIsNotFinishedByMistake(t *testing.T) {
	ch, cl := clusterChannel(t)
	srv := cl.Stand()
	ctx := context.Background()
	srv.MustDo(t, "SET", "fc:{t}:bytes", "20")
	// The journal emptied and deleted, then a new entry under the old ID.
	srv.MustDo(t, "XADD", "fc:{t}:gc", "100-0", "f", "x", "k", "0:2-2", "b", "20")
	m, err := ch.lua(ctx, "finish deletions", luaGC, "100-0", "0:1-1")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := m.AsInt64(); n != 0 {
		t.Errorf("finishing the old entry freed %d bytes", n)
	}
	if n := srv.MustDo(t, "XLEN", "fc:{t}:gc"); n != "1" {
		t.Fatal("finishing the old entry finished the new one, whose keys were never deleted")
	}
	if _, err := ch.lua(ctx, "finish deletions", luaGC, "100-0", "0:2-2"); err != nil {
		t.Fatal(err)
	}
	if b := srv.MustDo(t, "GET", "fc:{t}:bytes"); b != "0" {
		t.Errorf("budget holds %s after the entry was finished, want 0", b)
	}
	if n, _ := srv.Do("EXISTS", "fc:{t}:gc"); n != "0" {
		t.Error("an empty journal was left")
	}
}
