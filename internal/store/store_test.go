package store

import (
	"context"
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
	if ok, _, err := ch.Reserve(ctx, res.ID, 1, len(data), 1<<20); !ok || err != nil {
		t.Fatalf("Reserve = %v, %v", ok, err)
	}
	if err := ch.PutChunk(ctx, res.ID, 1, data); err != nil {
		t.Fatal(err)
	}
	if err := ch.Commit(ctx, res.ID, 1, len(data), chunk.Sum(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Complete(ctx, res.ID, int64(len(data)), chunk.Sum(data)); err != nil {
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
		if got, err := ch.Ack(ctx, id, entry, "a", "m", ""); err != nil || got != want {
			t.Fatalf("ack %d by group a = %q, %v; want %q", i, got, err, want)
		}
	}
	if n := len(srv.Keys("fc:{t}:f:*")); n == 0 {
		t.Fatal("file released although group b has not acknowledged it")
	}
	if got, _ := ch.Ack(ctx, id, entry, "b", "m", ""); got != AckOK {
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
	ch, _ := setup(t)
	ctx := context.Background()
	ch.Join(ctx, "g")
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
	if got, _ := ch.Ack(ctx, id, entry, "g", "frozen", ""); got != AckLost {
		t.Errorf("Ack by the member that lost the file = %q, want %q", got, AckLost)
	}
	if got, _ := ch.Ack(ctx, id, entry, "g", "other", ""); got != AckOK {
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
