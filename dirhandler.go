package filecast

import (
	"cmp"
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

	"github.com/filecast/filecast/internal/units"
)

// DirOptions configure a DirHandler.
type DirOptions struct {
	// Member is the name of the receiving member (ReceiveOptions.Member):
	// partial files are named per member, so members sharing a directory
	// never share one, and a restarted member finds its own.
	// default: the host name, as Receive names a member
	Member string
	// Decompress decodes gzip and zstd content (by its magic bytes) and
	// drops a .gz or .zst suffix from the name. Decoded output cannot be
	// checked against the chunk digests, so an interrupted file starts over
	// instead of resuming.
	Decompress bool
	// OnCreate, if set, is told that the directory did not exist and was
	// created, from NewDirHandler.
	OnCreate func(dir string)
}

// DirHandler writes each file it handles under a directory, durably and
// resumably. All access goes through an os.Root, so no name and no symlink
// planted in the directory can make it write outside. A file is written to
// a hidden partial file first (".filecast-ID-MEMBER.part" beside where the
// file goes), synced, given its mode and modification time, and renamed to
// its name only once complete and verified and still this member's
// (File.Keep); then the directory is synced, so the name survives a crash
// before the file is acknowledged. Chunks are released from Redis only once
// they are on disk (File.SetSyncer). A restarted receiver resumes a partial
// file after its longest verified prefix (File.ResumeFrom).
//
// A failure of the directory itself (no space, read-only, permission
// denied, an I/O error) wraps ErrLocal: Receive keeps the file and waits
// for the fault to clear, and the partial file is kept for the next try to
// resume. Otherwise the partial file of a file that failed is removed, so
// nothing is left behind.
//
// Handle is safe for concurrent use. Close the DirHandler when Receive has
// returned.
type DirHandler struct {
	dir        string
	root       *os.Root
	member     string
	decompress bool
}

// NewDirHandler opens dir, creating it if it is missing (DirOptions.OnCreate
// is told), and refuses at once a directory it cannot write to, with an
// error wrapping ErrUsage.
func NewDirHandler(dir string, opt DirOptions) (*DirHandler, error) {
	fail := func(what string, err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said already
		}
		return usage(fmt.Errorf("cannot %s the target directory %s: %w", what, dir, err))
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fail("create", err)
		}
		if opt.OnCreate != nil {
			opt.OnCreate(dir)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fail("open", err)
	}
	// Can it be written to at all? Better refused now than every file later.
	removeDeadProbes(root)
	probe := probePrefix + strconv.Itoa(os.Getpid())
	f, err := root.OpenFile(probe, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		root.Close()
		return nil, fail("write to", err)
	}
	f.Close()
	root.Remove(probe)
	member := cmp.Or(opt.Member, DefaultMember())
	return &DirHandler{dir: dir, root: root, member: strings.NewReplacer("/", "_", "\\", "_").Replace(member),
		decompress: opt.Decompress}, nil
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

// Close releases the directory.
func (d *DirHandler) Close() error { return d.root.Close() }

// partPrefix starts the hidden name of every partial file.
const partPrefix = ".filecast-"

// partName is the hidden name a file is written under until it is complete.
// It is per member, so two members sharing a directory never share one.
func (d *DirHandler) partName(f *File) string {
	return path.Join(path.Dir(f.Name), partPrefix+f.ID+"-"+d.member+".part")
}

// local marks an error of the target directory that waiting can clear (no
// space, read-only, permission denied, an I/O error) as the receiver's own
// fault (ErrLocal), in words that say what is wrong where, and how much
// room is missing when it is room: "no space left on device under /srv/in
// (3.0 MiB free, 12.0 MiB more needed) writing big.bin". Other errors (a
// symlink planted in the way) fail the file as they are.
func (d *DirHandler) local(what string, f *File, written int64, err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch errno {
	case syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES, syscall.EPERM, syscall.EIO:
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
	room := ""
	var st syscall.Statfs_t
	if (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) && syscall.Statfs(d.dir, &st) == nil {
		room = fmt.Sprintf(" (%s free", units.FormatBytes(int64(st.Bavail)*int64(st.Bsize)))
		if f.Size >= 0 {
			room += fmt.Sprintf(", %s more needed", units.FormatBytes(max(f.Size-written, 0)))
		}
		room += ")"
	}
	return &localError{msg: fmt.Sprintf("%s under %s%s %s", errno.Error(), d.dir, room, what), err: err}
}

// localError is a fault of the receiver's own side, in its own words.
type localError struct {
	msg string
	err error
}

func (e *localError) Error() string   { return e.msg }
func (e *localError) Unwrap() []error { return []error{ErrLocal, e.err} }

// Handle writes f under the directory; it is a Handler.
func (d *DirHandler) Handle(ctx context.Context, f *File) (err error) {
	// Names were checked when the record was read (CheckName): relative,
	// no "..", no control characters. The Root guards against symlinks.
	name := d.Target(f.Name)
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
		r, done, err := Decompress(f)
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

// Target returns the name under the directory that Handle writes a file
// sent as name to: name, or with DirOptions.Decompress name without a .gz
// or .zst suffix.
func (d *DirHandler) Target(name string) string {
	if d.decompress {
		for _, ext := range []string{".gz", ".zst"} {
			// Keep a name that is only the suffix (".gz", "dir/.gz").
			if trimmed, ok := strings.CutSuffix(name, ext); ok && trimmed != "" && !strings.HasSuffix(trimmed, "/") {
				return trimmed
			}
		}
	}
	return name
}

// resumable reports whether a file that failed with err will be tried
// again where it stopped: when the receiver stops (cancelled, or Redis
// unreachable), or waits for a fault of its own side to clear.
func resumable(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, ErrLost) || errors.Is(context.Cause(ctx), ErrLost) {
		return false // another member has it
	}
	return ctx.Err() != nil || errors.Is(err, ErrLocal) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrAuth)
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
func (d *DirHandler) syncDir(dir string) error {
	f, err := d.root.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// RemoveLeftovers removes this member's partial files of files that no
// longer await group on channel (released, given up, or the group dropped
// while the member was not running; Client.Awaits), and touches nothing
// else. It returns the paths it removed. Call it before Receive: a partial
// file of a file that still awaits the group is left for Receive to resume.
// A file whose state cannot be read is kept; the error returned is then
// the first such one.
func (d *DirHandler) RemoveLeftovers(ctx context.Context, c *Client, channel, group string) ([]string, error) {
	suffix := "-" + d.member + ".part"
	var removed []string
	var first error
	err := filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		base := e.Name()
		if !strings.HasPrefix(base, partPrefix) || !strings.HasSuffix(base, suffix) || !e.Type().IsRegular() {
			return nil
		}
		id := strings.TrimSuffix(strings.TrimPrefix(base, partPrefix), suffix)
		if id == "" || strings.ContainsAny(id, "-.") {
			return nil
		}
		awaits, err := c.Awaits(ctx, channel, group, id)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if first == nil {
				first = err
			}
			return nil
		}
		if awaits {
			return nil
		}
		rel, _ := filepath.Rel(d.dir, p)
		if err := d.root.Remove(filepath.ToSlash(rel)); err == nil {
			removed = append(removed, p)
		}
		return nil
	})
	if ctx.Err() != nil {
		return removed, ctx.Err()
	}
	if err == nil {
		err = first
	}
	if err != nil {
		return removed, &Error{Op: "remove leftovers", Channel: channel, Err: err}
	}
	return removed, nil
}
