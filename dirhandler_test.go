package filecast_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/filecast/filecast"
)

// tree lists the files below dir, slash-separated, hidden ones too.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// A DirHandler creates its missing directory (and says so), writes each
// file at its name with its mode and modification time, and leaves no
// partial file behind; with Decompress it decodes and drops the suffix,
// unless the name is only the suffix.
func TestDirHandler(t *testing.T) {
	c, _ := newClient(t, filecast.Options{ChunkSize: 4096})
	ctx := context.Background()
	if err := c.Join(ctx, "dh", "g"); err != nil {
		t.Fatal(err)
	}
	plain, nested := randomBytes(61, 10*4096+3), randomBytes(62, 100)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	when := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"plain.bin", plain, 0o640}, {"sub/nested.txt", nested, 0o600}, {"z/log.txt.gz", gz.Bytes(), 0o644}, {"z/.gz", gz.Bytes(), 0o644}} {
		if _, err := c.Send(ctx, "dh", bytes.NewReader(f.data), filecast.Meta{Name: f.name, Mode: f.mode, ModTime: when}, filecast.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SendEOF(ctx, "dh"); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "new", "out")
	var created []string
	d, err := filecast.NewDirHandler(dir, filecast.DirOptions{Member: "m", Decompress: true,
		OnCreate: func(dir string) { created = append(created, dir) }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !slices.Equal(created, []string{dir}) {
		t.Errorf("OnCreate told %q, want [%s]", created, dir)
	}
	if err := c.Receive(ctx, "dh", d.Handle, filecast.ReceiveOptions{Group: "g", Member: "m", UntilEOF: true}); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if got, want := tree(t, dir), []string{"plain.bin", "sub/nested.txt", "z/.gz", "z/log.txt"}; !slices.Equal(got, want) {
		t.Fatalf("the directory holds %q, want %q", got, want)
	}
	for name, want := range map[string][]byte{"plain.bin": plain, "sub/nested.txt": nested, "z/log.txt": plain, "z/.gz": plain} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want %d bytes as sent", name, len(got), err, len(want))
		}
	}
	for name, mode := range map[string]os.FileMode{"plain.bin": 0o640, "sub/nested.txt": 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != mode || !st.ModTime().Equal(when) {
			t.Errorf("%s: mode %v, mtime %v (%v); want %v, %v", name, st.Mode().Perm(), st.ModTime(), err, mode, when)
		}
	}

	// An existing directory is not reported as created.
	created = nil
	d2, err := filecast.NewDirHandler(dir, filecast.DirOptions{OnCreate: func(dir string) { created = append(created, dir) }})
	if err != nil {
		t.Fatal(err)
	}
	d2.Close()
	if created != nil {
		t.Errorf("OnCreate told %q for a directory that was there", created)
	}
}

// A directory that cannot be written to is refused at once.
func TestDirHandlerUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which can write to a read-only directory")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	_, err := filecast.NewDirHandler(dir, filecast.DirOptions{})
	if !errors.Is(err, filecast.ErrUsage) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("NewDirHandler(read-only) = %v, want ErrUsage and a permission error", err)
	}
}

// RemoveLeftovers removes this member's partial files of files that no
// longer await its group, and nothing else: not the partial file of a file
// still to come, not another member's, not a file of the user's.
func TestDirHandlerRemoveLeftovers(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "lo", "g"); err != nil {
		t.Fatal(err)
	}
	pending := mustSend(t, c, "lo", "pending.bin", []byte("still to come"), filecast.SendOptions{})
	dir := t.TempDir()
	gone := filepath.Join(dir, "sub", ".filecast-0123456789abcdef-m.part")
	keep := []string{
		filepath.Join(dir, ".filecast-"+pending.ID+"-m.part"),
		filepath.Join(dir, "sub", ".filecast-0123456789abcdef-other.part"),
		filepath.Join(dir, "sub", "user.txt"),
	}
	for _, p := range append([]string{gone}, keep...) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d, err := filecast.NewDirHandler(dir, filecast.DirOptions{Member: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	removed, err := d.RemoveLeftovers(ctx, c, "lo", "g")
	if err != nil || !slices.Equal(removed, []string{gone}) {
		t.Errorf("RemoveLeftovers = %q, %v; want [%s]", removed, err, gone)
	}
	for _, p := range keep {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}

// A receiver whose group is dropped while it runs returns ErrGroupDropped.
func TestReceiveGroupDropped(t *testing.T) {
	c, _ := newClient(t, filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "gd", "g"); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	_, wait := receive(t, c, "gd", col.handle, filecast.ReceiveOptions{Group: "g"})
	mustSend(t, c, "gd", "first", []byte("1"), filecast.SendOptions{})
	waitUntil(t, "the first file received", func() bool { _, n := col.get("first"); return n == 1 })
	if _, err := c.DropGroup(ctx, "gd", "g"); err != nil {
		t.Fatal(err)
	}
	if err := wait(); !errors.Is(err, filecast.ErrGroupDropped) {
		t.Errorf("Receive after its group was dropped = %v, want ErrGroupDropped", err)
	}
}
