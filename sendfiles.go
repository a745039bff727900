package filecast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/filecast/filecast/internal/chunk"
)

// SendFilesOptions configure SendFiles.
type SendFilesOptions struct {
	// SendOptions apply to every file. Batch names the run; default: a
	// name derived from the host name and the sources' absolute paths (and
	// StdinName), so the same command run again on the same host continues
	// it. Where the host name changes on restart (a container), give a
	// stable Batch. AbortOnCancel is set for Stdin alone. MaxBytes, if set,
	// is set once, before the first file.
	SendOptions
	// Stdin is what a source "-" reads: a stream sent once under
	// StdinName (required with it). It cannot be read again, so if ctx is
	// cancelled its upload is aborted (SendOptions.AbortOnCancel) and
	// receivers discard it; a later run sends it anew.
	Stdin     io.Reader
	StdinName string
	// Resend sends again the files an interrupted run of the batch had
	// sent, instead of skipping them: the batch's record is forgotten
	// first (EndBatch).
	Resend bool
	// EOF marks the end of the batch on the channel once every file is
	// sent, in the step that ends the batch (EndBatch with eof), for
	// receivers with ReceiveOptions.UntilEOF.
	EOF bool
	// OnStart, if set, is told how many files the run will send and how
	// many bytes they hold (-1 if Stdin is among them), once every source
	// was checked and before anything is sent, on the goroutine that
	// called SendFiles.
	OnStart func(files int, size int64)
	// OnFile, if set, is called after each file was sent or skipped (an
	// interrupted run of the batch had sent it unchanged), on the goroutine
	// that called SendFiles.
	OnFile func(SentFile)
	// OnSameName, if set, is told of each file sent under the name of
	// another file of the run, before anything is sent: a DirHandler
	// receiver keeps only the last of them. On the goroutine that called
	// SendFiles.
	OnSameName func(SameName)
	// OnNotRegular, if set, is told of the entries below a directory
	// source that are not sent because they are not regular files (named
	// pipes, sockets, devices, dangling symlinks, symlinks to
	// directories), named relative to dir, once per such directory, before
	// anything is sent. On the goroutine that called SendFiles.
	OnNotRegular func(dir string, entries []string)
}

// SentFile is one file SendFiles sent or skipped.
type SentFile struct {
	FileInfo
	Path    string        // where it was read from: a path, or "-" for SendFilesOptions.Stdin
	Elapsed time.Duration // how long sending it took (checking it, if skipped)
}

// Moved returns how many bytes of the file this run sent: none if it was
// skipped, and not those a resumed upload had stored before.
func (f SentFile) Moved() int64 {
	if f.Skipped {
		return 0
	}
	return max(f.Size-f.ResumedBytes, 0)
}

// SameName is a file sent under the name an earlier file of the same run
// is sent under.
type SameName struct {
	Name        string // the name both are sent under
	First, Path string // where the earlier file and this one are read from
}

// BatchResult sums up a SendFiles run.
type BatchResult struct {
	Batch   string // the batch's name (SendOptions.Batch, or the one derived)
	Files   int    // files sent, resumed ones included, skipped ones not
	Resumed int    // files whose interrupted upload was continued
	Skipped int    // files an interrupted run of the batch had sent unchanged
	// Bytes is what this run moved: the files sent, less what their
	// interrupted uploads had stored before.
	Bytes   int64
	Elapsed time.Duration
}

// SendFiles sends the files at sources to channel as one resumable batch
// (SendOptions.Batch): a source is a regular file, sent under its base name;
// a directory, whose regular files (symlinks to files followed) are sent
// under their slash-separated path relative to it, the other entries left
// out (SendFilesOptions.OnNotRegular); or "-", which reads
// SendFilesOptions.Stdin. A source given twice (the same absolute path) is
// sent once. Every source is checked before anything is sent: a missing or
// unreadable source, one that is neither a regular file nor a directory (a
// named pipe, a device), or sources that hold no file at all, fail with
// ErrUsage, the message naming the source.
//
// Files whose upload an earlier run left unfinished are sent first: their
// chunks hold budget that receivers wait on them to free, and the other
// files would wait for that budget, so in any other order the run can
// deadlock. If the batch was interrupted and is run again, files it had
// completed are skipped unless their size, mode or modification time
// changed, and the file it was interrupted in is resumed. Once every file is
// sent the batch is ended (EndBatch), placing an end-of-batch mark with
// SendFilesOptions.EOF: running it again sends every file again.
//
// SendFiles stops at the first error and returns it with the result so
// far: errors of Send, of SendFile, or of EndBatch. On cancel it returns
// ctx.Err() (or, if Stdin was being sent, an error wrapping ErrAborted and
// ctx.Err()), leaving the batch to resume. Callbacks run on the goroutine
// that called SendFiles, SendOptions.Progress and OnWait as Send runs them.
func (c *Client) SendFiles(ctx context.Context, channel string, sources []string, opt SendFilesOptions) (*BatchResult, error) {
	start := time.Now()
	fail := func(err error) error { return &Error{Op: "send files", Channel: channel, Err: err} }
	if _, err := c.channel(channel); err != nil {
		return nil, fail(err)
	}
	sources = uniqueSources(sources)
	if opt.MaxBytes > 0 && opt.MaxBytes < int64(c.opt.ChunkSize) {
		return nil, usage(fmt.Errorf("SendOptions.MaxBytes %d: the budget must hold at least one chunk (%d bytes; see Options.ChunkSize)",
			opt.MaxBytes, c.opt.ChunkSize))
	}
	if opt.Batch == "" {
		opt.Batch = batchName(c.host, sources, opt.StdinName)
	} else if err := CheckChannel("batch", opt.Batch); err != nil {
		return nil, fail(err)
	}
	items, err := expandSources(sources, opt.Stdin != nil, opt.StdinName, opt.OnNotRegular)
	if err != nil {
		return nil, err // it names the source
	}
	if opt.OnStart != nil {
		opt.OnStart(len(items), sizeOfItems(items))
	}
	if opt.MaxBytes > 0 {
		if err := c.SetBudget(ctx, channel, opt.MaxBytes); err != nil {
			return nil, fail(err)
		}
		opt.MaxBytes = 0
	}
	if items, err = c.unfinishedFirst(ctx, channel, items); err != nil {
		return nil, fail(err)
	}
	if opt.OnSameName != nil {
		seen := make(map[string]string, len(items))
		for _, it := range items {
			if first, dup := seen[it.name]; dup {
				opt.OnSameName(SameName{Name: it.name, First: first, Path: it.path})
				continue
			}
			seen[it.name] = it.path
		}
	}
	res := &BatchResult{Batch: opt.Batch}
	if opt.Resend {
		if err := c.EndBatch(ctx, channel, opt.Batch, false); err != nil {
			return res, err
		}
	}
	for _, it := range items {
		began := time.Now()
		var info *FileInfo
		if it.path == "-" {
			stdin := opt.SendOptions
			stdin.AbortOnCancel = true // it cannot be read again
			info, err = c.Send(ctx, channel, opt.Stdin, Meta{Name: it.name}, stdin)
		} else {
			info, err = c.SendFile(ctx, channel, it.path, it.name, opt.SendOptions)
		}
		if err != nil {
			res.Elapsed = time.Since(start)
			return res, err
		}
		sent := SentFile{FileInfo: *info, Path: it.path, Elapsed: time.Since(began)}
		switch {
		case info.Skipped:
			res.Skipped++
		default:
			res.Files++
			res.Bytes += sent.Moved()
			if info.Resumed {
				res.Resumed++
			}
		}
		if opt.OnFile != nil {
			opt.OnFile(sent)
		}
	}
	err = c.EndBatch(ctx, channel, opt.Batch, opt.EOF)
	res.Elapsed = time.Since(start)
	return res, err
}

// sendItem is one file SendFiles sends.
type sendItem struct {
	path, name string
	size       int64 // when the sources were checked; -1 for stdin
}

// uniqueSources returns sources without those that name the same path as
// an earlier one: sent twice in one batch, the second would be found
// already sent.
func uniqueSources(sources []string) []string {
	seen := make(map[string]bool, len(sources))
	out := make([]string, 0, len(sources))
	for _, p := range sources {
		key := p
		if abs, err := filepath.Abs(p); err == nil && p != "-" {
			key = abs // cleaned too
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	return out
}

// expandSources lists the files to send, in order, checking every source.
// notRegular, if set, is told of each directory's entries left out.
func expandSources(sources []string, haveStdin bool, stdinName string, notRegular func(string, []string)) ([]sendItem, error) {
	var items []sendItem
	for _, p := range sources {
		if p == "-" {
			switch {
			case !haveStdin:
				return nil, usage(errors.New(`source "-" reads SendFilesOptions.Stdin, which is nil`))
			case stdinName == "":
				return nil, usage(errors.New(`source "-" needs a name: SendFilesOptions.StdinName`))
			}
			if err := CheckName(stdinName); err != nil {
				return nil, err
			}
			items = append(items, sendItem{path: "-", name: stdinName, size: -1})
			continue
		}
		found, left, err := expand(p)
		if err != nil {
			return nil, err
		}
		if len(left) > 0 && notRegular != nil {
			notRegular(p, left)
		}
		items = append(items, found...)
	}
	if len(items) == 0 {
		return nil, usage(fmt.Errorf("nothing to send: %s %s no regular file", strings.Join(sources, ", "),
			map[bool]string{true: "holds", false: "hold"}[len(sources) == 1]))
	}
	return items, nil
}

// expand lists the regular files at path: the file itself, or every file
// below a directory, named relative to it, with the entries of the
// directory that are not regular files (left).
func expand(path string) (items []sendItem, left []string, err error) {
	cannot := func(p string, err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said already
		}
		return usage(fmt.Errorf("cannot send %s: %w", p, err))
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, cannot(path, err)
	}
	if !st.IsDir() {
		if !st.Mode().IsRegular() { // opening a named pipe would wait for a writer
			return nil, nil, usage(fmt.Errorf("cannot send %s: it is %s, neither a regular file nor a directory (pipe it in as \"-\")",
				path, kindOf(st.Mode())))
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, cannot(path, err)
		}
		f.Close()
		return []sendItem{{path: path, name: filepath.Base(path), size: st.Size()}}, nil, nil
	}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return cannot(p, err)
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		st, err := os.Stat(p) // follows symlinks to files
		if err != nil || !st.Mode().IsRegular() {
			left = append(left, filepath.ToSlash(rel)) // sockets, devices, dangling links: nothing to send
			return nil
		}
		items = append(items, sendItem{path: p, name: filepath.ToSlash(rel), size: st.Size()})
		return nil
	})
	return items, left, err
}

// kindOf names a file type that is not a regular file or a directory.
func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}

// sizeOfItems returns how many bytes items held when they were checked, or -1 if that is not known
// (stdin).
func sizeOfItems(items []sendItem) int64 {
	var n int64
	for _, it := range items {
		if it.size < 0 {
			return -1
		}
		n += it.size
	}
	return n
}

// unfinishedFirst moves the files whose upload was interrupted (a send
// killed before it ended, run again) to the front: their chunks hold
// budget that the rest would otherwise wait for, while receivers wait for
// them, which would deadlock.
func (c *Client) unfinishedFirst(ctx context.Context, channel string, items []sendItem) ([]sendItem, error) {
	if len(items) < 2 {
		return items, nil
	}
	names, err := c.Unfinished(ctx, channel)
	if err != nil || len(names) == 0 {
		return items, err
	}
	first := func(it sendItem) bool { _, found := slices.BinarySearch(names, it.name); return found }
	out := make([]sendItem, 0, len(items))
	for _, it := range items {
		if first(it) {
			out = append(out, it)
		}
	}
	for _, it := range items {
		if !first(it) {
			out = append(out, it)
		}
	}
	return out, nil
}

// batchName names the batch of a SendFiles run: the same sources (and
// stdin name) on the same host name the same batch, so a run interrupted
// and run again skips what it had sent.
func batchName(host string, sources []string, stdinName string) string {
	var b strings.Builder
	b.WriteString(host)
	for _, p := range sources {
		if abs, err := filepath.Abs(p); err == nil && p != "-" {
			p = abs
		}
		b.WriteString("\x00" + p)
	}
	b.WriteString("\x00" + stdinName)
	return "send-" + chunk.Sum([]byte(b.String())).String()
}
