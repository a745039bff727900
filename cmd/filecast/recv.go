package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/filecast/filecast"
)

type recvOptions struct {
	group, member string
	dir, exec     string
	stdout        bool
	untilEOF      bool
	decompress    bool
	concurrency   int
	retries       int
	json          bool
	failFast      bool
	progress      progressFlags
	metricsAddr   string
}

func newRecv(g *globals) *cobra.Command {
	o := &recvOptions{}
	cmd := &cobra.Command{
		Use:   "recv CHANNEL --group GROUP (--dir DIR | --exec CMD | --stdout)",
		Short: "Receive files from a channel as a member of a group",
		Long: `Receive the files of CHANNEL as a member of GROUP, processing each one while
it is still arriving. Every group gets every file sent after it first
joined, even while none of its members runs; the members of one group share
the files, each file going to one member.

A file is acknowledged only after it was handled successfully and all of it
passed its integrity checks; otherwise it is retried, and after --retries
more attempts set aside for the group: kept in Redis for the channel's
--keep-failed time (24h), listed by "filecast status", delivered again by
"filecast retry". A member that is killed gets its unfinished files again
when it restarts with the same --member name; a member silent for longer
than --lease loses them to another member of its group.

A fault of the receiver's own side — no space left, a read-only or
unwritable --dir, an I/O error, an --exec command that cannot be found or
started — is not the file's: the receiver keeps the file (not acknowledged,
not given up), takes no other, says once what is wrong, and tries again
until the fault clears, then resumes where it stopped. "filecast status"
shows the member as blocked. --fail-fast exits with code 5 instead (the
file stays in Redis). A --dir that cannot be written at all is refused at
start (exit 2), and partial files this member left of files no longer in
Redis are removed at start.

Outputs (choose one):
  --dir DIR    write each file under DIR at its name, via a hidden partial
               file that becomes visible (renamed) only once complete and
               verified; mode and mtime restored; file and directory are
               synced to disk before the file is acknowledged. A restarted
               receiver resumes a partial file where it stopped.
  --exec CMD   run CMD with sh -c once per file, the bytes on its stdin as
               they arrive; FILECAST_NAME, FILECAST_SIZE (the size; while
               the file still uploads, the size its sender expects; -1 if
               unknown), FILECAST_ID, FILECAST_CHANNEL and FILECAST_GROUP
               are set. Exit status 0 acknowledges the file. A CMD that is
               one program and its arguments (no ; | & ( ) < >, backquote
               or second line) whose program is not in PATH or not executable
               blocks the receiver, as above; any other failure, exit
               status 127 or 126 of a longer CMD or of the program itself
               too, is the handling's failure: retried, then failed.
  --stdout     write each file's bytes to stdout, one file after another.

On joining, the receiver says which channel, group and member it is and that
it waits for files (with -v, also what Redis it is connected to). Joining a
group that did not exist creates it, and the receiver says so, naming the
channel's existing groups: a mistyped group name would otherwise hold every
file sent from now on in the channel's budget.

--until-eof processes one batch and exits: it ends once the group has
handled the first end-of-batch mark (send --eof) that it had not yet handled
when this receiver started. Started after the sender finished, it handles
that batch and exits; started after the group handled the last mark (say,
before tonight's send), it waits for the next one. Files sent after the mark
that it had already begun are left for the next run (not acknowledged; a
member of the same name resumes them first).

--json makes everything the receiver says one JSON object per line, on
stdout (on stderr with --stdout, whose stdout carries the files' bytes):
an object per file outcome ({"event":"file",…}), events ({"event":"joined"|
"blocked"|"unblocked"|"notice"|"end_of_batch",…}), log records (slog's JSON:
"time","level","msg",…) and, if it fails or is interrupted, a last
{"event":"error","error":…,"exit":N}. Every object has "time" (RFC 3339,
UTC, milliseconds). An --exec command's own stdout then goes to stderr.`,
		Example: `  # keep a directory in sync with what is sent to "configs"
  filecast recv configs --group web-01 --dir /etc/app/incoming

  # two workers share the files of group "ingest", gunzipping on the fly
  filecast recv logs --group ingest --member w1 --decompress --exec 'wc -l'
  filecast recv logs --group ingest --member w2 --decompress --exec 'wc -l'

  # process one batch and exit (0 = all done, 3 = integrity failure)
  filecast recv datasets --group train --dir ./data --until-eof`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("recv needs exactly one CHANNEL (see filecast recv --help)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecv(cmd.Context(), g, o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.group, "group", "g", "", "receiver group to join (required)")
	f.StringVar(&o.member, "member", "", "this member's name within the group (default: host name)")
	f.StringVar(&o.dir, "dir", "", "write files under this directory")
	f.StringVar(&o.exec, "exec", "", "run this shell command once per file, the file on its stdin")
	f.BoolVar(&o.stdout, "stdout", false, "write the files' bytes to stdout")
	f.BoolVar(&o.untilEOF, "until-eof", false, "exit once the group has handled the next end-of-batch mark (send --eof) it had not handled when this receiver started, and every file before it")
	f.BoolVar(&o.decompress, "decompress", false, "decode gzip and zstd content (by its magic bytes); --dir drops a .gz/.zst suffix")
	f.IntVar(&o.concurrency, "concurrency", 1, "files handled at once; raise it for many small files (--dir: each costs a create, two fsyncs and a rename)")
	f.IntVar(&o.retries, "retries", 2, "more attempts on a file whose handling failed before it is recorded as failed")
	f.BoolVar(&o.failFast, "fail-fast", false, "exit with code 5 when the receiver's own side fails (disk full, target unwritable, command missing) instead of waiting for it to clear")
	o.progress.add(f)
	f.BoolVar(&o.json, "json", false, "say everything as JSON, one object per line: file outcomes, events, logs, the final error (on stdout; on stderr with --stdout)")
	addMetricsFlag(cmd, &o.metricsAddr)
	jsonOutput(cmd, g, &o.json, func() bool { return o.stdout })
	return cmd
}

func runRecv(ctx context.Context, g *globals, o *recvOptions, channel string, stdout, stderr io.Writer) error {
	if o.group == "" {
		return usagef("recv needs --group NAME: the receiver group this member belongs to")
	}
	outputs := 0
	for _, set := range []bool{o.dir != "", o.exec != "", o.stdout} {
		if set {
			outputs++
		}
	}
	if outputs != 1 {
		return usagef("recv needs exactly one of --dir DIR, --exec CMD or --stdout")
	}
	if o.concurrency < 1 {
		return usagef("--concurrency must be at least 1")
	}
	if o.progress.every <= 0 {
		return usagef("--progress-interval must be positive")
	}
	if o.retries < 0 {
		return usagef("--retries must not be negative")
	}
	member := cmp.Or(o.member, filecast.DefaultMember())
	if o.progress.plain && o.stdout && o.json {
		return usagef("--progress does not go with --stdout --json: its lines would mix with the JSON on stderr")
	}
	// The commands' stderr goes above the progress bars once they show.
	cmdErr := &redirect{w: stderr}
	// What is said for a person goes to stderr, or as JSON to g.json.
	notices := stderr
	if o.json {
		notices = g.json.notices()
	}
	// The port first: a refusal leaves nothing behind, not even --dir.
	metrics, err := listenMetrics(g, o.metricsAddr, channel)
	if err != nil {
		return err
	}
	defer metrics.Close()
	var s sink
	var dir *dirSink
	switch {
	case o.dir != "":
		d, err := newDirHandler(o.dir, member, o.decompress, notices)
		if err != nil {
			return err
		}
		defer d.Close()
		dir = newDirSink(d, o.dir, o.decompress)
		s = dir
	case o.exec != "":
		cmdOut := stdout
		if o.json {
			cmdOut = stderr // stdout is the JSON stream
		}
		s = &execSink{command: o.exec, channel: channel, group: o.group, decompress: o.decompress, stdout: cmdOut, stderr: cmdErr}
	default:
		s = &stdoutSink{w: stdout, decompress: o.decompress}
		o.concurrency = 1 // one file after another
	}
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	defer metrics.Close() // before the client its scrapes read
	metrics.Serve(c)
	if dir != nil {
		removeLeftovers(ctx, c, dir.DirHandler, channel, o.group, notices)
	}

	// Bars on stderr, unless stderr carries the JSON, or stdout is the same
	// terminal and carries the JSON, the files or a command's output.
	busy := o.stdout && o.json || isTerminal(stdout) && (o.json || o.stdout || o.exec != "")
	pv := startProgress(c, o.progress, o.progress.mode(stderr, busy), true, stderr, 0, -1)
	defer pv.Stop()
	stderr = pv.Writer()
	cmdErr.set(stderr)
	g.logs.set(stderr)
	defer g.logs.set(nil)
	var mu sync.Mutex
	// The files handed to the handler and not yet reported: on an
	// interruption they stay in Redis for the group.
	inProgress := make(map[string]bool)
	handle := func(ctx context.Context, f *filecast.File) error {
		mu.Lock()
		inProgress[f.ID] = true
		mu.Unlock()
		return s.handle(ctx, f)
	}
	onResult := func(r filecast.Result) {
		mu.Lock()
		defer mu.Unlock()
		delete(inProgress, r.File.ID)
		if r.Err == nil {
			pv.done(r.File.Size, r.File.Size-r.File.ResumedBytes)
		}
		var dec decoded
		decodedOK := false
		if dir != nil {
			dec, decodedOK = dir.decodedAs(r.File.ID)
		}
		if o.json {
			m := map[string]any{"event": "file", "channel": channel, "group": o.group, "id": r.File.ID, "name": r.File.Name,
				"size": r.File.Size, "digest": r.File.Digest, "attempts": r.Attempts, "ok": r.Err == nil, "lost": r.Lost,
				"resumed": r.File.Resumed, "resumed_bytes": r.File.ResumedBytes}
			if decodedOK {
				m["decoded_name"], m["decoded_size"] = dec.name, dec.size
			}
			if r.Err != nil {
				m["error"] = r.Err.Error()
			}
			g.json.emit(m)
			return
		}
		if r.File.Name == "" {
			r.File.Name = "file " + r.File.ID
		}
		switch {
		case r.Lost:
			fmt.Fprintf(stderr, "skipped %s: taken over by another member after this one went silent\n", r.File.Name)
		case r.Err != nil:
			fmt.Fprintf(stderr, "FAILED %s after %d attempt(s): %v\n", r.File.Name, r.Attempts, r.Err)
		default:
			fmt.Fprintln(stderr, receivedLine(r.File, dec, decodedOK))
		}
	}
	onBlocked := func(b filecast.Blocked) {
		mu.Lock()
		defer mu.Unlock()
		if b.Err == nil && ctx.Err() != nil {
			return // the receiver stops: the file does not go on
		}
		if o.json {
			m := map[string]any{"event": "unblocked", "channel": channel, "group": o.group, "id": b.File.ID, "name": b.File.Name,
				"since": b.Since}
			if b.Err != nil {
				m["event"], m["error"] = "blocked", b.Err.Error()
			}
			g.json.emit(m)
			return
		}
		if b.Err != nil {
			fmt.Fprintf(stderr, "blocked: %v; waiting — %s stays in redis and no other file is taken meanwhile (--fail-fast exits instead)\n",
				b.Err, b.File.Name)
			return
		}
		fmt.Fprintf(stderr, "unblocked after %v: %s goes on\n", time.Since(b.Since).Round(time.Second), b.File.Name)
	}
	retries := o.retries
	if retries == 0 {
		retries = -1 // the library's "none"; its zero value means the default
	}
	start := time.Now()
	onJoined := func(j filecast.Joined) { sayJoined(ctx, g, c, o, j, stderr) }
	err = c.Receive(ctx, channel, handle, filecast.ReceiveOptions{Group: o.group, Member: o.member,
		Concurrency: o.concurrency, UntilEOF: o.untilEOF, Retries: retries, OnResult: onResult, OnBlocked: onBlocked,
		OnJoined: onJoined, FailFast: o.failFast})
	if err == nil && o.untilEOF {
		took := time.Since(start)
		if o.json {
			g.json.emit(map[string]any{"event": "end_of_batch", "channel": channel, "group": o.group, "seconds": took.Seconds()})
		} else {
			fmt.Fprintf(stderr, "end of batch on %s for group %s after %v\n", channel, o.group, took.Round(time.Millisecond))
		}
	}
	if errors.Is(err, filecast.ErrFailed) {
		return fmt.Errorf("%w (see above, or filecast status %s)", err, channel)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		mu.Lock()
		defer mu.Unlock()
		return recvStopped(len(inProgress), o.group, member)
	}
	return err
}

// recvStopped is how an interrupted receiver ends (exit 130): with nothing to
// resume when it was idle, as most stops find it.
func recvStopped(inProgress int, group, member string) error {
	if inProgress == 0 {
		return interruptedError{"stopped"}
	}
	return interruptedError{fmt.Sprintf("stopped; %d file(s) in progress stay in Redis for group %s: "+
		"run the same command (member %s) to resume them", inProgress, group, member)}
}

// receivedLine says that f was received: "received nums.txt.gz → nums.txt
// 1.8 KiB (3.8 KiB decoded)", "received big.bin  12.0 MiB (resumed: 4.0 MiB
// moved)".
func receivedLine(f filecast.FileInfo, dec decoded, decodedOK bool) string {
	line := "received " + f.Name
	if decodedOK && dec.name != f.Name {
		line += " → " + dec.name
	}
	line += "  " + human(f.Size)
	if decodedOK && (dec.name != f.Name || dec.size != f.Size) {
		line += " (" + human(dec.size) + " decoded)"
	}
	if f.Resumed {
		line += " (resumed: " + human(f.Size-f.ResumedBytes) + " moved)"
	}
	return line
}

// sink is where received files go.
type sink interface {
	handle(ctx context.Context, f *filecast.File) error
}

// stdoutSink writes the files' bytes to w, one after another, or, while
// live uploads (followed logs) arrive side by side, a whole line at a time.
type stdoutSink struct {
	mu         sync.Mutex
	w          io.Writer
	decompress bool
}

func (s *stdoutSink) handle(ctx context.Context, f *filecast.File) error {
	r, done, err := input(f, s.decompress)
	if err != nil {
		return err
	}
	defer done()
	lw := &lineWriter{s: s}
	_, err = io.Copy(lw, r)
	if ferr := lw.flush(); err == nil {
		err = ferr
	}
	return err
}

// lineWriter writes to a stdoutSink in whole lines, so that files arriving
// side by side interleave by line, not mid-line. A line longer than
// maxPending is written in pieces.
type lineWriter struct {
	s       *stdoutSink
	pending []byte
}

const maxPending = 64 << 10

func (lw *lineWriter) Write(p []byte) (int, error) {
	end := bytes.LastIndexByte(p, '\n') + 1
	if end == 0 && len(lw.pending)+len(p) <= maxPending {
		lw.pending = append(lw.pending, p...)
		return len(p), nil
	}
	if end == 0 {
		end = len(p)
	}
	lw.s.mu.Lock()
	_, err := lw.s.w.Write(lw.pending)
	if err == nil {
		_, err = lw.s.w.Write(p[:end])
	}
	lw.s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	lw.pending = append(lw.pending[:0], p[end:]...)
	return len(p), nil
}

func (lw *lineWriter) flush() error {
	if len(lw.pending) == 0 {
		return nil
	}
	lw.s.mu.Lock()
	defer lw.s.mu.Unlock()
	_, err := lw.s.w.Write(lw.pending)
	lw.pending = lw.pending[:0]
	return err
}

// input returns the reader a sink consumes: the file, decoded if asked.
func input(f *filecast.File, decompress bool) (io.Reader, func(), error) {
	if !decompress {
		return f, func() {}, nil
	}
	return filecast.Decompress(f)
}

// sayJoined tells that the receiver joined its group and waits for files,
// and at -v what Redis it is connected to.
func sayJoined(ctx context.Context, g *globals, c *filecast.Client, o *recvOptions, j filecast.Joined, stderr io.Writer) {
	var topo *filecast.Topology
	if g.verbose > 0 {
		if t, err := c.Topology(ctx); err == nil {
			topo = &t
		}
	}
	if o.json {
		m := map[string]any{"event": "joined", "channel": j.Channel, "group": j.Group, "member": j.Member, "until_eof": o.untilEOF,
			"new": j.New}
		if j.New {
			m["existing_groups"] = append([]string{}, j.Others...) // [] rather than null
		}
		if topo != nil {
			m["redis"] = topo
		}
		g.json.emit(m)
		return
	}
	until := ""
	if o.untilEOF {
		until = " up to the next end-of-batch mark"
	}
	if !j.New {
		fmt.Fprintf(stderr, "joined group %s on channel %s as member %s; waiting for files%s\n", j.Group, j.Channel, j.Member, until)
	} else {
		// A new group beside others may be a mistyped name.
		existing := "no other groups"
		if len(j.Others) > 0 {
			existing = "existing groups: " + strings.Join(j.Others, ", ")
		}
		fmt.Fprintf(stderr, "created group %s on channel %s as member %s — it gets the files sent from now on; %s; waiting for files%s\n",
			j.Group, j.Channel, j.Member, existing, until)
	}
	if topo != nil {
		fmt.Fprintf(stderr, "redis: %s\n", topo)
	}
}
