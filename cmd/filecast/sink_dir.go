package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/filecast/filecast"
)

// dirSink writes each file under a directory. All access goes through an
// os.Root, so no name and no symlink planted in the directory can make it
// write outside. A file is written to a hidden partial file first and
// renamed to its name only once complete and verified.
//
// A failure of the directory itself (no space, read-only, permission
// denied, an I/O error) is filecast.ErrLocal: the receiver keeps the file
// and waits for the fault to clear, and the partial file is kept for the
// next try to resume. Otherwise the partial file of a file that failed is
// removed, so nothing is left behind.
type dirSink struct {
	dir        string
	root       *os.Root
	member     string
	decompress bool
}

// newDirSink opens dir, creating it if it is missing (it says so), and
// refuses at once a directory it cannot write to (a usage error).
func newDirSink(dir, member string, decompress bool, stderr io.Writer) (*dirSink, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, usagef("cannot create the target directory %s: %v", dir, errors.Unwrap(err))
		}
		fmt.Fprintf(stderr, "created the target directory %s\n", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, usagef("cannot open the target directory %s: %v", dir, errors.Unwrap(err))
	}
	// Can it be written to at all? Better refused now than every file later.
	removeDeadProbes(root)
	probe := fmt.Sprintf("%s%d", probePrefix, os.Getpid())
	if f, err := root.OpenFile(probe, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err != nil {
		root.Close()
		return nil, usagef("cannot write to the target directory %s: %v", dir, errors.Unwrap(err))
	} else {
		f.Close()
		root.Remove(probe)
	}
	return &dirSink{dir: dir, root: root, member: strings.NewReplacer("/", "_", "\\", "_").Replace(member), decompress: decompress}, nil
}

// probePrefix names the empty file a starting receiver writes, and removes,
// to see that it can write to the target directory; the process ID follows.
const probePrefix = ".filecast-probe-"

// removeDeadProbes removes the probes of receivers that were killed between
// writing and removing theirs (their process is gone).
func removeDeadProbes(root *os.Root) {
	names, _ := fs.Glob(root.FS(), probePrefix+"*")
	for _, name := range names {
		pid, err := strconv.Atoi(strings.TrimPrefix(name, probePrefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.Signal(0)) == nil {
			continue // alive: its own probe, about to go
		}
		root.Remove(name)
	}
}

func (d *dirSink) Close() error { return d.root.Close() }

// partPrefix starts the hidden name of every partial file.
const partPrefix = ".filecast-"

// partName is the hidden name a file is written under until it is complete.
// It is per member, so two members sharing a directory never share one.
func (d *dirSink) partName(f *filecast.File) string {
	return path.Join(path.Dir(f.Name), partPrefix+f.ID+"-"+d.member+".part")
}

// local marks an error of the target directory that waiting can clear (no
// space, read-only, permission denied, an I/O error) as the receiver's own
// fault (filecast.ErrLocal), in words that say what is wrong where, and
// how much room is missing when it is room: "no space left on device under
// /srv/in (3.0 MiB free, 12.0 MiB more needed) writing big.bin". Other
// errors (a symlink planted in the way) fail the file as they are.
func (d *dirSink) local(what string, f *filecast.File, written int64, err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch errno {
	case syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES, syscall.EPERM, syscall.EIO:
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
	cause := errno.Error()
	room := ""
	var st syscall.Statfs_t
	if (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) && syscall.Statfs(d.dir, &st) == nil {
		room = fmt.Sprintf(" (%s free", human(int64(st.Bavail)*int64(st.Bsize)))
		if f.Size >= 0 {
			room += fmt.Sprintf(", %s more needed", human(max(f.Size-written, 0)))
		}
		room += ")"
	}
	return &localError{msg: fmt.Sprintf("%s under %s%s %s", cause, d.dir, room, what), err: err}
}

// localError is a fault of the receiver's own side, in its own words.
type localError struct {
	msg string
	err error
}

func (e *localError) Error() string   { return e.msg }
func (e *localError) Unwrap() []error { return []error{filecast.ErrLocal, e.err} }

func (d *dirSink) handle(ctx context.Context, f *filecast.File) (err error) {
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
			return d.local("creating the directory of "+name, f, 0, err)
		}
	}
	part := d.partName(f)
	pf, err := d.root.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return d.local("opening the partial file of "+name, f, 0, err)
	}
	keep := false
	defer func() {
		pf.Close()
		// Keep a partial file for the next try to resume: when the receiver
		// stops, or waits for a fault of its own to clear.
		if !keep && !resumable(ctx, err) {
			d.root.Remove(part)
		}
	}()

	var src io.Reader = f
	var written int64
	if d.decompress {
		// Decoded output cannot be checked against the chunk digests, so
		// a decompressing receiver starts over instead of resuming.
		if err := pf.Truncate(0); err != nil {
			return d.local("truncating the partial file of "+name, f, 0, err)
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
			return d.local("truncating the partial file of "+name, f, n, err)
		}
		if _, err := pf.Seek(n, io.SeekStart); err != nil {
			return d.local("seeking in the partial file of "+name, f, n, err)
		}
		written = n
		f.SetSyncer(pf) // chunks are released only once they are on disk
	}
	w := &countingWriter{w: pf, n: written}
	if _, err := io.Copy(w, src); err != nil {
		if w.err != nil { // the disk's fault, not the file's
			return d.local("writing "+name, f, w.n, w.err)
		}
		return err
	}
	if err := pf.Sync(); err != nil {
		return d.local("writing "+name, f, w.n, err)
	}
	if err := pf.Chmod(f.Mode.Perm()); err != nil {
		return d.local("setting the mode of "+name, f, w.n, err)
	}
	if err := d.root.Chtimes(part, f.ModTime, f.ModTime); err != nil {
		return d.local("setting the mtime of "+name, f, w.n, err)
	}
	// Make sure we still own the file: a member frozen past its lease must
	// not publish a file another member is delivering.
	if err := f.Keep(ctx); err != nil {
		return err
	}
	if err := d.root.Rename(part, name); err != nil {
		return d.local("renaming "+name+" into place", f, w.n, err)
	}
	keep = true // nothing left to remove
	// The file is acknowledged (and may leave Redis) once this returns: its
	// new name must survive a crash too.
	if err := d.syncDir(path.Dir(name)); err != nil {
		return d.local("syncing the directory of "+name, f, w.n, err)
	}
	return nil
}

// resumable reports whether a file that failed with err will be tried
// again where it stopped: when the receiver stops (cancelled, or Redis
// unreachable), or waits for a fault of its own side to clear.
func resumable(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, filecast.ErrLost) || errors.Is(context.Cause(ctx), filecast.ErrLost) {
		return false // another member has it
	}
	return ctx.Err() != nil || errors.Is(err, filecast.ErrLocal) || errors.Is(err, filecast.ErrUnavailable) || errors.Is(err, filecast.ErrAuth)
}

// countingWriter counts what reaches w and keeps w's error apart from the
// reader's, so that a full disk is told from a bad file.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
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

// removeLeftovers removes this member's partial files of files that no
// longer await its group (released, given up, or its group dropped while
// it was not running), saying so, and touches nothing else. gone reports
// whether file id no longer awaits the group.
func (d *dirSink) removeLeftovers(gone func(id string) bool, stderr io.Writer) error {
	suffix := "-" + d.member + ".part"
	return filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		base := e.Name()
		if !strings.HasPrefix(base, partPrefix) || !strings.HasSuffix(base, suffix) || !e.Type().IsRegular() {
			return nil
		}
		id := strings.TrimSuffix(strings.TrimPrefix(base, partPrefix), suffix)
		if id == "" || strings.ContainsAny(id, "-.") || !gone(id) {
			return nil
		}
		rel, _ := filepath.Rel(d.dir, p)
		if err := d.root.Remove(filepath.ToSlash(rel)); err == nil {
			fmt.Fprintf(stderr, "removed %s, the partial file of a file this group no longer awaits\n", p)
		}
		return nil
	})
}
