package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/filecast/filecast"
)

// dirSink writes each file under a directory. All access goes through an
// os.Root, so no name and no symlink planted in the directory can make it
// write outside. A file is written to a hidden partial file first and
// renamed to its name only once complete and verified.
type dirSink struct {
	root       *os.Root
	member     string
	decompress bool
}

func newDirSink(dir, member string, decompress bool) (*dirSink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create target directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open target directory: %w", err)
	}
	return &dirSink{root: root, member: strings.NewReplacer("/", "_", "\\", "_").Replace(member), decompress: decompress}, nil
}

func (d *dirSink) Close() error { return d.root.Close() }

// partName is the hidden name a file is written under until it is complete.
// It is per member, so two members sharing a directory never share one.
func (d *dirSink) partName(f *filecast.File) string {
	dir := path.Dir(f.Name)
	base := ".filecast-" + f.ID
	if d.member != "" {
		base += "-" + d.member
	}
	return path.Join(dir, base+".part")
}

func (d *dirSink) handle(ctx context.Context, f *filecast.File) error {
	// Names were checked when the record was read (wire.CheckName): relative,
	// no "..", no control characters. The Root guards against symlinks.
	name := f.Name
	if d.decompress {
		for _, ext := range []string{".gz", ".zst"} {
			// Keep a name that is only the suffix (".gz", "dir/.gz").
			if trimmed, ok := strings.CutSuffix(name, ext); ok && trimmed != "" && !strings.HasSuffix(trimmed, "/") {
				name = trimmed
				break
			}
		}
	}
	if dir := path.Dir(name); dir != "." {
		if err := d.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create directory for %s: %w", name, err)
		}
	}
	part := d.partName(f)
	pf, err := d.root.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open partial file for %s: %w", name, err)
	}
	keep := false
	defer func() {
		pf.Close()
		if !keep {
			d.root.Remove(part)
		}
	}()

	var src io.Reader = f
	if d.decompress {
		// Decoded output cannot be checked against the chunk digests, so
		// a decompressing receiver starts over instead of resuming.
		if err := pf.Truncate(0); err != nil {
			return err
		}
		r, done, err := filecast.Decompress(f)
		if err != nil {
			return err
		}
		defer done()
		src = r
	} else {
		// Keep what an interrupted receiver left and is verified.
		n, err := f.ResumeFrom(pf)
		if err != nil {
			return err
		}
		if err := pf.Truncate(n); err != nil {
			return err
		}
		if _, err := pf.Seek(n, io.SeekStart); err != nil {
			return err
		}
		f.SetSyncer(pf) // chunks are released only once they are on disk
	}
	if _, err := io.Copy(pf, src); err != nil {
		// Keep what was verified for a restart to resume, unless the file
		// itself is bad or gone.
		keep = !errors.Is(err, filecast.ErrCorrupt) && !errors.Is(err, filecast.ErrAborted) &&
			!errors.Is(err, filecast.ErrGone) && !errors.Is(err, filecast.ErrLost)
		return err
	}
	if err := pf.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := pf.Chmod(f.Mode.Perm()); err != nil {
		return fmt.Errorf("set mode of %s: %w", name, err)
	}
	if err := d.root.Chtimes(part, f.ModTime, f.ModTime); err != nil {
		return fmt.Errorf("set mtime of %s: %w", name, err)
	}
	// Make sure we still own the file: a member frozen past its lease must
	// not publish a file another member is delivering.
	if err := f.Keep(ctx); err != nil {
		return err
	}
	if err := d.root.Rename(part, name); err != nil {
		return fmt.Errorf("rename %s into place: %w", name, err)
	}
	keep = true // nothing left to remove
	// The file is acknowledged (and may leave Redis) once this returns: its
	// new name must survive a crash too.
	if err := d.syncDir(path.Dir(name)); err != nil {
		return fmt.Errorf("sync directory of %s: %w", name, err)
	}
	return nil
}

// syncDir flushes a directory of the target, so a rename in it is durable.
func (d *dirSink) syncDir(dir string) error {
	f, err := d.root.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
