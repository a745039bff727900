package filecast

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/filecast/filecast/internal/chunk"
)

// FollowOptions configure Follow. The zero value works.
type FollowOptions struct {
	// Name identifies the follower in the channel: a follower started again
	// with the same Name continues exactly where the stored data ends.
	// default: derived from the host name and the paths, so the same
	// command on the same host continues
	Name string
	// FromStart sends the files there are when a follower of this Name
	// first starts from their first byte; by default it sends only what
	// is appended from then on, like tail -F. Files that appear later, and
	// every file after a restart, are always sent from their first byte.
	FromStart bool
	// Flush bounds how long an appended byte waits before it is stored.
	// default: DefaultFlush
	Flush time.Duration
	// Linger is how long a file that was rotated away (renamed, removed, or
	// replaced at its path) is still read for bytes its writer adds late,
	// before its generation is completed. default: 2s
	Linger time.Duration
	// Poll, if positive, makes the follower look for changes at this
	// interval instead of using file system notifications. Without it the
	// follower polls every 250ms only when notifications are unavailable
	// or their limit is reached (FollowPolling says so).
	Poll time.Duration
	// Exclude holds glob patterns (path.Match syntax) of base names not to
	// follow in a directory or glob. Names of rotated copies (app.log.1,
	// app.log.2.gz, app.log-20261206, *.gz, *.old) and dot files are never
	// followed there: they are earlier generations.
	Exclude []string
	// MaxBytes sets the channel's budget, as SendOptions.MaxBytes.
	MaxBytes int64
	// OnWait is told why a generation waits for budget (SendOptions.OnWait).
	OnWait func(Wait)
	// OnEvent, if set, is told what happens to the followed files. It is
	// called from the follower's goroutines, never two calls at once.
	OnEvent func(FollowEvent)
}

// DefaultLinger is the default of FollowOptions.Linger.
const DefaultLinger = 2 * time.Second

// FollowOp says what happened to a followed file.
type FollowOp int

const (
	// FollowStarted: a generation began, for a file that appeared, was
	// rotated in, or was truncated, or (from its end) for a file there was
	// when the follower first started.
	FollowStarted FollowOp = iota
	// FollowResumed: a generation an earlier run left open continues.
	FollowResumed
	// FollowCompleted: a generation ended and was completed: its file was
	// rotated away, truncated, or (Err set) changed or vanished while the
	// follower was down, so it holds what had been sent.
	FollowCompleted
	// FollowWaiting: a path has no file to follow yet (it does not exist,
	// or is not a regular file). Err says which.
	FollowWaiting
	// FollowSkipped: a file cannot be read now (Err); it is tried again.
	FollowSkipped
	// FollowPolling: file system notifications are unavailable (Err says
	// why); the follower polls.
	FollowPolling
)

// FollowEvent is what FollowOptions.OnEvent is told.
type FollowEvent struct {
	Op   FollowOp
	Path string   // the file on disk
	File FileInfo // the generation: Started, Resumed, Completed
	// Offset is where in the file the generation started (Started) or
	// continues (Resumed).
	Offset int64
	// Reason says why a generation was completed: its file was rotated
	// away, or truncated.
	Reason string
	Err    error
}

// Follow sends the files at paths as they grow, like tail -F, until ctx
// ends. A path is a file, a directory (its files, not its
// subdirectories) or a glob of file names in one directory (app/*.log);
// files that appear later are followed too, and a path that does not exist
// yet is waited for.
//
// Every generation of a file is its own upload, named
// NAME-YYYYMMDDTHHMMSS.uuuuuuZ after the file's name and the UTC time the
// generation began (so a directory receiver keeps every generation), and
// receivers get its bytes within Flush of their being appended. A
// generation ends, and is completed, when its file is rotated away (renamed
// or removed: logrotate's create; its path then names a new file, a new
// generation) and its writer has added nothing for Linger, or when the
// file is truncated below what was sent (copytruncate: the rest is read
// from the copy beside it). Follow keeps its state in Redis, not in a local
// file: run again with the same Name after any stop, even SIGKILL, it
// continues every open generation exactly where the stored data ends,
// after checking that the file still holds what was sent, finds a
// generation's file renamed beside it, or completes the generation with
// what was sent when its file vanished or changed while it was down.
//
// On cancel Follow returns ctx.Err() and leaves its open generations to be
// continued. Other errors are those of Send; a path that exists but cannot
// be read when Follow starts is ErrUsage.
func (c *Client) Follow(ctx context.Context, channel string, paths []string, opt FollowOptions) error {
	fl, err := c.newFollower(ctx, channel, paths, opt)
	if err != nil {
		return &Error{Op: "follow", Channel: channel, Err: err}
	}
	err = fl.run(ctx)
	if err != nil && ctx.Err() == nil {
		err = &Error{Op: "follow", Channel: channel, Err: err}
	}
	return err
}

// followSpec is one path given to Follow.
type followSpec struct {
	arg  string // as given
	dir  string // the directory it lives in, watched
	base string // file: its name; glob: the pattern of names
	kind specKind
}

type specKind int

const (
	specFile specKind = iota
	specDir
	specGlob
)

// rotatedName matches the names logrotate and its kin give earlier
// generations: numbered (app.log.1, app.log.2.gz), dated (app.log-20261206),
// compressed or set aside.
var rotatedName = regexp.MustCompile(`\.[0-9]+(\.(gz|zst|xz|bz2|lz4))?$|\.(gz|zst|xz|bz2|lz4|zip|old|bak)$|-[0-9]{8}([0-9]{2,6})?(\.[a-z0-9]+)?$`)

// match returns the name a file at path is followed under, if the spec
// covers it.
func (s followSpec) match(path string, exclude []string) (string, bool) {
	dir, base := filepath.Split(path)
	if filepath.Clean(dir) != s.dir {
		return "", false
	}
	switch s.kind {
	case specFile:
		return base, base == s.base
	case specGlob:
		if ok, _ := filepath.Match(s.base, base); !ok {
			return "", false
		}
	}
	if strings.HasPrefix(base, ".") || rotatedName.MatchString(base) {
		return "", false
	}
	for _, x := range exclude {
		if ok, _ := filepath.Match(x, base); ok {
			return "", false
		}
	}
	return base, true
}

// paths lists the files the spec covers now.
func (s followSpec) paths(exclude []string) []string {
	if s.kind == specFile {
		return []string{filepath.Join(s.dir, s.base)}
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(s.dir, e.Name())
		if _, ok := s.match(p, exclude); ok {
			out = append(out, p)
		}
	}
	return out
}

// parseSpecs checks the paths given to Follow.
func parseSpecs(paths []string) ([]followSpec, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no path to follow", ErrUsage)
	}
	var specs []followSpec
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUsage, p, err)
		}
		dir, base := filepath.Split(abs)
		s := followSpec{arg: p, dir: filepath.Clean(dir), base: base}
		if strings.ContainsAny(filepath.Clean(dir), "*?[") {
			return nil, fmt.Errorf("%w: %s: only the last element of a path to follow may be a pattern", ErrUsage, p)
		}
		if strings.ContainsAny(base, "*?[") {
			if _, err := filepath.Match(base, ""); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrUsage, p, err)
			}
			s.kind = specGlob
		} else if st, err := os.Stat(abs); err == nil && st.IsDir() {
			s.kind, s.dir, s.base = specDir, abs, ""
		}
		// What exists must be readable now; what does not is waited for.
		target := abs
		if s.kind == specGlob {
			target = s.dir
		}
		if f, err := os.Open(target); err == nil {
			f.Close()
		} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("%w: cannot follow %s: %w", ErrUsage, p, errors.Unwrap(err))
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// FollowName returns the default FollowOptions.Name for paths: the same
// paths on the same host give the same name.
func FollowName(paths []string) string {
	host, _ := os.Hostname()
	var b strings.Builder
	b.WriteString(host)
	for _, p := range paths {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		b.WriteString("\x00" + p)
	}
	return "follow-" + chunk.Sum([]byte(b.String())).String()[:16]
}
