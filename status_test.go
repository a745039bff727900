package filecast_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
)

// Status and the admin calls refuse a channel never used and a group that
// is not there with errors callers can tell apart, and dropping a group
// that is not there records nothing.
func TestStatusUnknownChannelAndGroup(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	if _, err := c.Status(ctx, "nosuch"); !errors.Is(err, filecast.ErrNoChannel) {
		t.Fatalf("Status of a channel never used: %v, want ErrNoChannel", err)
	}
	if err := c.Join(ctx, "ch", "g"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Status":      func() error { _, err := c.Status(ctx, "nosuch"); return err }(),
		"AbortStale":  func() error { _, err := c.AbortStale(ctx, "nosuch", time.Minute); return err }(),
		"Retry":       func() error { _, err := c.Retry(ctx, "nosuch", "g"); return err }(),
		"DropGroup":   func() error { _, err := c.DropGroup(ctx, "nosuch", "g"); return err }(),
		"Orphans":     func() error { _, err := c.Orphans(ctx, "nosuch", false); return err }(),
		"Abort":       c.Abort(ctx, "nosuch", "0123456789abcdef", ""),
		"ReleaseFail": func() error { _, err := c.ReleaseFailed(ctx, "nosuch", ""); return err }(),
	} {
		if !errors.Is(err, filecast.ErrNoChannel) {
			t.Errorf("%s on a channel never used: %v, want ErrNoChannel", name, err)
		} else if want := `the channels there are: ch`; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q does not name the channels (%q)", name, err, want)
		}
	}
	for name, err := range map[string]error{
		"Retry":       func() error { _, err := c.Retry(ctx, "ch", "nosuch"); return err }(),
		"DropGroup":   func() error { _, err := c.DropGroup(ctx, "ch", "nosuch"); return err }(),
		"ReleaseFail": func() error { _, err := c.ReleaseFailed(ctx, "ch", "nosuch"); return err }(),
	} {
		if !errors.Is(err, filecast.ErrNoGroup) {
			t.Errorf("%s of a group not there: %v, want ErrNoGroup", name, err)
		} else if want := "its groups are: g"; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q does not name the groups (%q)", name, err, want)
		}
	}
	if _, err := c.DropGroup(ctx, "ch", "g"); err != nil {
		t.Fatalf("DropGroup of a group there: %v", err)
	}
	if _, err := c.DropGroup(ctx, "ch", "g"); !errors.Is(err, filecast.ErrNoGroup) || !strings.Contains(err.Error(), "it was dropped") {
		t.Errorf("DropGroup of a group dropped already: %v, want ErrNoGroup saying it was dropped", err)
	}
	st, err := c.Status(ctx, "ch")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Dropped) != 1 || st.Dropped[0].Name != "g" {
		t.Errorf("dropped groups %+v, want only g (nothing recorded for nosuch)", st.Dropped)
	}
}

// A sender that waits for budget is listed by Status with the file's
// expected size, and no longer once it stops waiting; on a Redis Cluster
// too, where the channel list and the channel's keys are in other slots.
func TestStatusWaitingSender(t *testing.T) {
	t.Parallel()
	t.Run("standalone", func(t *testing.T) {
		t.Parallel()
		statusWaitingSender(t, redistest.Start(t, redistest.Config{}).URL())
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		statusWaitingSender(t, redistest.StartCluster(t, redistest.ClusterConfig{Primaries: 3}).URL())
	})
}

func statusWaitingSender(t *testing.T, url string) {
	const chunk = 64 << 10
	c := dial(t, url, filecast.Options{ChunkSize: chunk})
	ctx := context.Background()
	if err := c.Join(ctx, "w", "g"); err != nil { // no member runs: nothing is freed
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "big.bin")
	const size = 40 * chunk
	if err := os.WriteFile(path, randomBytes(5, size), 0o644); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.SendFile(sctx, "w", path, "big.bin", filecast.SendOptions{MaxBytes: 4 * chunk})
		done <- err
	}()
	var st *filecast.ChannelStatus
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		if st, err = c.Status(ctx, "w"); err != nil {
			t.Fatal(err)
		}
		if len(st.Waiting) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no waiting sender listed after 20s: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w := st.Waiting[0]; w.Name != "big.bin" || w.Sender == "" || time.Since(w.Since) < time.Second {
		t.Errorf("waiting sender %+v, want big.bin, with its sender, waiting a second or more", w)
	}
	if len(st.Files) != 1 || st.Files[0].Expected != size || st.Files[0].ChunkSize != chunk {
		t.Fatalf("files %+v, want big.bin expected %d bytes in chunks of %d", st.Files, size, chunk)
	}
	// The first chunk is 64 bytes short of the chunk size (the ramp): 41.
	if n, ok := st.Files[0].TotalChunks(); !ok || n != 41 {
		t.Errorf("TotalChunks = %d, %v; want 41, true", n, ok)
	}
	g := st.Groups[0]
	if g.Unacked != 1 || g.UnackedBytes != size || g.Oldest.IsZero() || !g.Gone || g.Held == 0 {
		t.Errorf("group %+v, want 1 file of %d bytes unacknowledged, gone (no member ever ran), holding the budget", g, size)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("SendFile after cancel: %v", err)
	}
	if st, err := c.Status(ctx, "w"); err != nil || len(st.Waiting) != 0 {
		t.Errorf("after the sender stopped: waiting %+v (%v), want none", st.Waiting, err)
	}
	if _, err := c.Status(ctx, "nosuch"); !errors.Is(err, filecast.ErrNoChannel) || !strings.Contains(err.Error(), "channels there are: w") {
		t.Errorf("Status of a channel never used: %v, want ErrNoChannel naming w", err)
	}
}

// A group runs while one of its members does: a member that stops is
// gone, not its group, in Status and in what a sender waiting for budget
// is told (SendOptions.OnWait); the group is gone once every member is.
// The admin calls are no member's sign of life: they leave when the group
// was last seen as it is.
func TestStatusGroupGoneOnlyWhenEveryMemberIs(t *testing.T) {
	t.Parallel()
	const chunk = 64 << 10
	// A long lease: member a renews it every 20 s, so a group taken for
	// gone when b stops would stay so for the whole test.
	c, _ := newClient(t, filecast.Options{ChunkSize: chunk, Lease: time.Minute})
	ctx := context.Background()
	hold := make(chan struct{})
	holding := func(ctx context.Context, f *filecast.File) error { // keeps the file, unread
		select {
		case <-hold:
		case <-ctx.Done():
		}
		return ctx.Err()
	}
	stopA, waitA := receive(t, c, "gg", holding, filecast.ReceiveOptions{Group: "G", Member: "a"})
	stopB, waitB := receive(t, c, "gg", holding, filecast.ReceiveOptions{Group: "G", Member: "b"})
	group := func() filecast.GroupStatus {
		t.Helper()
		st, err := c.Status(ctx, "gg")
		if err != nil || len(st.Groups) != 1 {
			t.Fatalf("Status: %v, groups %+v; want G", err, st)
		}
		return st.Groups[0]
	}
	waitUntil(t, "members a and b to read", func() bool {
		st, err := c.Status(ctx, "gg")
		return err == nil && len(st.Groups) == 1 && len(st.Groups[0].Members) == 2
	})
	stopB()
	if err := waitB(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("member b: %v", err)
	}
	g := group()
	for _, m := range g.Members {
		if m.Gone != (m.Name == "b") {
			t.Errorf("member %+v: gone %v, want only b gone", m, m.Gone)
		}
	}
	if g.Gone {
		t.Errorf("group %+v is gone while member a runs", g)
	}

	// a keeps a file that fills the budget; the next one waits.
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.bin"), filepath.Join(dir, "second.bin")
	if err := os.WriteFile(first, randomBytes(8, 200_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(second, randomBytes(9, 100_000), 0o644); err != nil {
		t.Fatal(err)
	}
	sopt := filecast.SendOptions{MaxBytes: 4 * chunk}
	if _, err := c.SendFile(ctx, "gg", first, "first.bin", sopt); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	waits := make(chan filecast.Wait, 1)
	sopt.OnWait = func(w filecast.Wait) {
		select {
		case waits <- w:
		default:
		}
		cancel()
	}
	if _, err := c.SendFile(sctx, "gg", second, "second.bin", sopt); !errors.Is(err, context.Canceled) {
		t.Fatalf("SendFile of a file that cannot fit: %v, want it to wait until cancelled", err)
	}
	select {
	case w := <-waits:
		if len(w.Holders) != 1 || w.Holders[0].Group != "G" || w.Holders[0].Gone != 0 {
			t.Errorf("a waiting sender is told %+v, want G holding the budget, not gone (member a runs)", w.Holders)
		}
	default:
		t.Fatal("the waiting sender was told nothing")
	}

	close(hold)
	stopA()
	if err := waitA(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("member a: %v", err)
	}
	g = group()
	if !g.Gone {
		t.Errorf("group %+v is not gone once both members stopped", g)
	}
	if _, err := c.Retry(ctx, "gg", "G"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReleaseFailed(ctx, "gg", "G"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortStale(ctx, "gg", time.Hour); err != nil {
		t.Fatal(err)
	}
	if after := group(); !after.Seen.Equal(g.Seen) || !after.Gone {
		t.Errorf("after Retry, ReleaseFailed and AbortStale the group was last seen %v (gone %v), want %v (gone) as before",
			after.Seen, after.Gone, g.Seen)
	}
}

// TotalChunks counts the chunks a file is cut into, the smaller first
// ones included: those of a complete file, which Status also reports.
func TestStatusTotalChunksCountsTheRamp(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "tc", "g"); err != nil { // keeps the files unreleased
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "three.bin")
	if err := os.WriteFile(path, randomBytes(10, 3_000_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendFile(ctx, "tc", path, "three.bin", filecast.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx, "tc")
	if err != nil || len(st.Files) != 1 {
		t.Fatalf("Status: %v, files %+v; want three.bin", err, st)
	}
	f := st.Files[0]
	if n, ok := f.TotalChunks(); !ok || n != f.Chunks || n != 5 {
		t.Errorf("TotalChunks of a complete file of 3000000 bytes = %d, %v; want the %d chunks it has (5: 64 KiB, 256 KiB, 3 of 1 MiB)", n, ok, f.Chunks)
	}
}
