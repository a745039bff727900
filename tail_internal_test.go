package filecast

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A file followed from its start that a copytruncate rotation empties
// before the follower's first read: its lines are in the copy, and the
// follower must read them there, not go on with the new lines as if the
// old ones had never been.
func TestTailNoticesACopytruncateBeforeItsFirstRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	old := []byte(strings.Repeat("an old line\n", 100))
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, _, err := identify(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tl := newTail(ctx, slog.New(slog.DiscardHandler), path, f, id, 0, time.Second, 10*time.Millisecond)
	var copied fileID
	tl.truncated = func(c fileID) { copied = c }

	// copytruncate: copy, truncate, and the writer goes on.
	if err := os.WriteFile(path+".1", old, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("a new line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(tl)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Fatalf("the tail read %q, want the %d bytes the copy holds", got, len(old))
	}
	if !tl.cut || copied == (fileID{}) {
		t.Errorf("the tail did not end as truncated with the copy (cut %v, copy %v)", tl.cut, copied)
	}
}
