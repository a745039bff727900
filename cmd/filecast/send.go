package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/units"
)

type sendOptions struct {
	name     string
	flush    time.Duration
	eof      bool
	maxBytes string
	json     bool
	resend   bool
	batch    string

	// --follow and --watch
	follow, watch bool
	fromStart     bool
	linger        time.Duration
	poll          time.Duration
	exclude       []string
	settle        time.Duration
	removeSent    bool

	progress    progressFlags
	metricsAddr string

	// channel settings, applied when given
	keepFailed, groupExpiry time.Duration
	settings                filecast.Settings
}

func newSend(g *globals) *cobra.Command {
	o := &sendOptions{}
	cmd := &cobra.Command{
		Use:   "send CHANNEL (PATH... | --eof | --follow PATH... | --watch DIR)",
		Short: "Publish files, directories, stdin, growing logs or a drop folder to a channel",
		Long: `Publish files to CHANNEL. Each file is announced before its first chunk is
stored, so receivers start processing it while it is still uploading.

A directory is sent recursively; each file's name is its slash-separated
path relative to that directory. "-" reads stdin (name it with --name):
every byte of it is stored within --flush (100ms) of its arrival, however
steadily it keeps coming, so receivers see it within a fraction of a
second. Stdin cannot be read again: an interrupted send of it is aborted
(receivers discard it); to ship a growing log so that a restart continues
it, use --follow. Mode and modification time are kept.

--follow PATH... follows files as they grow, like tail -F, until stopped.
A PATH is a file, a directory (its files) or a quoted glob ('/var/log/*.log');
files that appear later are followed too, and a file that does not exist
yet is waited for. It starts at the end of the files there are (--from-start
sends what they hold), and every appended byte reaches Redis within --flush.
Each generation of a file is sent as its own file named NAME-STAMP, the UTC
time it began (app.log-20261206T204533.123456Z), so "recv --dir" keeps every
generation; it is completed when the file is rotated away (renamed or
removed: logrotate's create; its writer gets --linger to add late bytes) or
truncated (copytruncate: the rest is read from the copy beside it). In a
directory or glob, rotated copies (app.log.1, *.gz, app.log-20261206) and
dot files are not followed. The follower keeps its position in Redis: run
again with the same paths (or --batch NAME) after any stop, even a kill, it
continues every open generation exactly where the stored data ends.

--watch DIR sends every regular file that appears in DIR or below it, is
renamed into it, or changes, once it is complete: unchanged for --settle
(1s). Each version of a file is sent once, named by its path relative to
DIR. Dot files, *.tmp, *.part and --exclude patterns are ignored, so a
writer that writes under a temporary name and renames the file when done
is never sent half a file. A watcher restarted sends what arrived while it
was down and nothing it had sent. --remove-sent deletes each file once its
upload is complete.

--eof with no PATH only marks the end of a batch: after several send runs
(on one machine or many) that together make one batch, it lets
"recv --until-eof" receivers return once they have handled all of it.

The channel holds at most --max-bytes of file data in Redis; the sender
waits while it is full, and a file larger than the budget streams through
it.

If a send is interrupted (killed, or failed), run it again with the same
paths on the same machine: it continues the unfinished upload instead of
starting a second copy, and skips the files the interrupted run had
completed unless their size, mode or modification time changed since
(stdin is always sent again; --resend sends everything again). The record
of an interrupted run is kept in Redis for 7 days. Once a send has
finished, running it again sends every file again. A run is known by the
host name and the paths; where the host name changes on restart (a
container), give the run a stable name with --batch.

At least one receiver group must have joined the channel: groups get only
files sent after they joined.`,
		Example: `  # send a file and a directory to channel "logs"
  filecast send logs /var/log/app.log /var/log/nginx

  # stream a command's output; receivers see it as it is produced
  journalctl -f -o json | filecast send logs - --name journal.jsonl

  # send a batch and mark its end for "recv --until-eof"
  filecast send --eof --max-bytes 256MiB datasets ./shards

  # a batch sent by several runs: mark its end once they are done
  filecast send datasets ./part1 && filecast send datasets ./part2
  filecast send datasets --eof

  # follow logs through rotation; receivers keep every generation
  filecast send logs --follow /var/log/app.log '/var/log/nginx/*.log'

  # a drop folder: whatever lands in /srv/outbox is sent, then removed
  filecast send inbox --watch /srv/outbox --remove-sent`,
		Args: minArgs(1, "a CHANNEL and at least one PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && (!o.eof || o.follow || o.watch) {
				return usagef("send needs a CHANNEL and at least one PATH, or --eof alone to mark the end of a batch (see %s --help)", cmd.CommandPath())
			}
			if err := checkSendModes(cmd, o, args[1:]); err != nil {
				return err
			}
			o.settings = filecast.Settings{}
			if cmd.Flags().Changed("keep-failed") {
				o.settings.KeepFailed = o.keepFailed
				if o.keepFailed == 0 {
					o.settings.KeepFailed = -1 // release at once
				}
			}
			if cmd.Flags().Changed("group-expiry") {
				o.settings.GroupExpiry = o.groupExpiry
				if o.groupExpiry == 0 {
					o.settings.GroupExpiry = -1 // off
				}
			}
			switch {
			case o.follow:
				return runFollow(cmd.Context(), g, o, args[0], args[1:], cmd.OutOrStdout(), cmd.ErrOrStderr())
			case o.watch:
				return runWatch(cmd.Context(), g, o, args[0], args[1], cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			if len(args) == 1 {
				return runEOF(cmd.Context(), g, o, args[0], cmd.ErrOrStderr())
			}
			return runSend(cmd.Context(), g, o, args[0], args[1:], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "name of the file read from stdin (\"-\")")
	f.DurationVar(&o.flush, "flush", filecast.DefaultFlush, "longest a byte of stdin waits before it is stored")
	f.BoolVar(&o.eof, "eof", false, "mark the end of a batch after these files, or alone (no PATH) to end one sent by earlier runs (see recv --until-eof)")
	f.StringVar(&o.maxBytes, "max-bytes", "", "budget: most file data the channel may hold in Redis (default: keep the channel's, else 1GiB)")
	f.DurationVar(&o.keepFailed, "keep-failed", 0, "channel setting: how long the files a group gave up on are kept for \"filecast retry\" (default 24h; 0: not kept)")
	f.DurationVar(&o.groupExpiry, "group-expiry", 0, "channel setting: drop a group whose members have all been gone this long (0: never, the default)")
	o.progress.add(f)
	f.BoolVar(&o.json, "json", false, "print one JSON object per file on stdout (skipped ones too); log records and the final error are JSON objects there too")
	f.BoolVar(&o.resend, "resend", false, "send again the files an interrupted run of this command had sent")
	f.StringVar(&o.batch, "batch", "", "name this run, follower or watcher, so a rerun with the same name continues it (default: from the host name and the paths)")
	f.BoolVar(&o.follow, "follow", false, "follow the PATHs (files, directories, globs) as they grow, through rotation, until stopped")
	f.BoolVar(&o.fromStart, "from-start", false, "--follow: send what the files hold when first followed, not only what is appended")
	f.DurationVar(&o.linger, "linger", filecast.DefaultLinger, "--follow: how long a rotated-away file is still read for late writes")
	f.DurationVar(&o.poll, "poll", 0, "--follow, --watch: look for changes at this interval instead of using file system notifications")
	f.StringArrayVar(&o.exclude, "exclude", nil, "--follow, --watch: do not send files whose name matches this glob (repeatable)")
	f.BoolVar(&o.watch, "watch", false, "send every file that appears in or changes below the directory DIR, once complete")
	f.DurationVar(&o.settle, "settle", filecast.DefaultSettle, "--watch: how long a file must stay unchanged to count as complete")
	f.BoolVar(&o.removeSent, "remove-sent", false, "--watch: delete each file once its upload is complete")
	addMetricsFlag(cmd, &o.metricsAddr)
	jsonOutput(cmd, g, &o.json, nil)
	return cmd
}

// checkSendModes refuses flags that do not go together.
func checkSendModes(cmd *cobra.Command, o *sendOptions, paths []string) error {
	changed := func(names ...string) string {
		for _, n := range names {
			if cmd.Flags().Changed(n) {
				return "--" + n
			}
		}
		return ""
	}
	switch {
	case o.follow && o.watch:
		return usagef("--follow and --watch do not go together: run one filecast for each")
	case (o.follow || o.watch) && slices.Contains(paths, "-"):
		return usagef("stdin (\"-\") cannot be followed or watched: pipe it with \"send CHANNEL - --name NAME\"")
	case o.watch && len(paths) != 1:
		return usagef("--watch takes exactly one DIR, got %d paths", len(paths))
	}
	if o.follow || o.watch {
		if f := changed("name", "eof", "resend"); f != "" {
			return usagef("%s does not go with --follow or --watch, which never end", f)
		}
	}
	if f := changed("from-start", "linger"); f != "" && !o.follow {
		return usagef("%s goes with --follow", f)
	}
	if f := changed("settle", "remove-sent"); f != "" && !o.watch {
		return usagef("%s goes with --watch", f)
	}
	if f := changed("poll", "exclude"); f != "" && !o.follow && !o.watch {
		return usagef("%s goes with --follow or --watch", f)
	}
	if o.progress.every <= 0 {
		return usagef("--progress-interval must be positive")
	}
	if o.flush <= 0 || o.linger < 0 || o.poll < 0 || o.settle <= 0 || o.keepFailed < 0 || o.groupExpiry < 0 {
		return usagef("--flush and --settle must be positive; --linger, --poll, --keep-failed and --group-expiry not negative")
	}
	return nil
}

// runSend sends the PATHs as one resumable batch (filecast.Client.SendFiles)
// and says what it sent.
func runSend(ctx context.Context, g *globals, o *sendOptions, channel string, paths []string, stdout, stderr io.Writer) error {
	opt := filecast.SendFilesOptions{SendOptions: filecast.SendOptions{Flush: o.flush, Batch: o.batch},
		Resend: o.resend, EOF: o.eof}
	var err error
	if opt.MaxBytes, err = parseMaxBytes(g, o.maxBytes); err != nil {
		return err
	}
	if o.batch != "" {
		if err := filecast.CheckChannel("--batch", o.batch); err != nil {
			return usageError{err}
		}
	}
	if slices.Contains(paths, "-") {
		if o.name == "" {
			return usagef("stdin (\"-\") needs a name: add --name NAME")
		}
		growPipe(os.Stdin)
		opt.Stdin, opt.StdinName = os.Stdin, o.name
	} else if o.name != "" {
		return usagef("--name applies only to stdin (\"-\")")
	}
	metrics, err := listenMetrics(g, o.metricsAddr, channel)
	if err != nil {
		return err
	}
	defer metrics.Close()
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	defer metrics.Close() // before the client its scrapes read
	metrics.Serve(c)
	if err := configure(ctx, c, channel, o); err != nil {
		return err
	}
	// Messages go above the progress bars once they are shown.
	out := &redirect{w: stderr}
	opt.OnWait = waitReporter(out, channel, g.verbose > 0)
	opt.OnSameName = func(s filecast.SameName) {
		fmt.Fprintf(stderr, "warning: %s and %s are both sent as %s; a --dir receiver keeps only the last\n", s.First, s.Path, s.Name)
	}
	opt.OnNotRegular = func(dir string, entries []string) {
		fmt.Fprintln(stderr, notRegularLine(dir, entries))
	}
	var pv *progress
	defer func() {
		if pv != nil {
			pv.Stop()
			g.logs.set(nil)
		}
	}()
	opt.OnStart = func(files int, size int64) {
		pv = startProgress(c, o.progress, o.progress.mode(stderr, o.json && isTerminal(stdout)), false, stderr, files, size)
		stderr = pv.Writer()
		out.set(stderr)
		g.logs.set(stderr)
	}
	var stdinSent atomic.Int64 // what the file being sent committed, for an aborted stdin
	opt.Progress = func(n int64) { stdinSent.Store(n) }
	enc := json.NewEncoder(stdout)
	opt.OnFile = func(f filecast.SentFile) {
		stdinSent.Store(0)
		pv.done(f.Size, f.Moved())
		switch {
		case o.json:
			enc.Encode(timed(map[string]any{"channel": channel, "id": f.ID, "name": f.Name, "size": f.Size,
				"digest": f.Digest, "resumed": f.Resumed, "resumed_bytes": f.ResumedBytes, "skipped": f.Skipped,
				"seconds": f.Elapsed.Seconds()}))
		case f.Skipped:
		case f.Resumed: // the rate counts what this run moved
			fmt.Fprintf(stderr, "sent %s  %s (resumed): %s moved in %v, %s/s\n", f.Name, human(f.Size), human(f.Moved()),
				took(f.Elapsed), human(rate(f.Moved(), f.Elapsed)))
		default:
			fmt.Fprintf(stderr, "sent %s  %s in %v, %s/s\n", f.Name, human(f.Size), took(f.Elapsed),
				human(rate(f.Size, f.Elapsed)))
		}
	}
	res, err := c.SendFiles(ctx, channel, paths, opt)
	if ctx.Err() != nil && errors.Is(err, filecast.ErrAborted) {
		return interruptedError{fmt.Sprintf("interrupted: the upload of %s from stdin was aborted after %s, since stdin cannot be read again; "+
			"receivers discard it (to ship a growing file so that a restart continues it, use --follow)", o.name, human(stdinSent.Load()))}
	}
	if err != nil {
		return err
	}
	if o.json {
		return nil
	}
	if res.Skipped > 0 {
		fmt.Fprintf(stderr, "skipped %d unchanged %s an interrupted run of this command had sent (--resend sends %s again)\n",
			res.Skipped, plural(res.Skipped, "file", "files"), plural(res.Skipped, "it", "them"))
	}
	if res.Files+res.Skipped > 1 {
		fmt.Fprintln(stderr, totalLine(res))
	}
	if o.eof {
		fmt.Fprintf(stderr, "marked end of batch on %s\n", channel)
	}
	return nil
}

// totalLine sums up a send of several files: "sent 12 files, 1.2 GiB in
// 3.4s, 350.0 MiB/s; 2 skipped". The size and rate count what this run
// moved, not what resumed uploads had stored before.
func totalLine(res *filecast.BatchResult) string {
	line := fmt.Sprintf("sent %d %s, %s in %v, %s/s", res.Files, plural(res.Files, "file", "files"), human(res.Bytes),
		took(res.Elapsed), human(rate(res.Bytes, res.Elapsed)))
	if res.Skipped > 0 {
		line += fmt.Sprintf("; %d skipped", res.Skipped)
	}
	return line
}

// rate is n bytes over d, per second.
func rate(n int64, d time.Duration) int64 {
	return int64(float64(n) / max(d.Seconds(), 1e-6))
}

// parseMaxBytes parses --max-bytes: empty keeps the channel's budget; a
// budget must hold at least one chunk (--chunk-size).
func parseMaxBytes(g *globals, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := units.ParseBytes(s)
	if err != nil {
		return 0, usagef("--max-bytes: %v", err)
	}
	if n <= 0 {
		return 0, usagef("--max-bytes %s: a channel's budget must be positive (leave --max-bytes out to keep the channel's, else 1GiB)", s)
	}
	chunk := int64(filecast.DefaultChunkSize)
	if c, err := units.ParseBytes(g.chunkSize); err == nil && g.chunkSize != "" {
		chunk = c // a bad --chunk-size is reported when connecting
	}
	if n < chunk {
		return 0, usagef("--max-bytes %s: the budget must hold at least one chunk (%d bytes; see --chunk-size)", s, chunk)
	}
	return n, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// waitSaidEvery is how often a sender says, at the default verbosity, that
// it still waits for budget.
const waitSaidEvery = time.Minute

// configure applies the channel settings given on the command line.
func configure(ctx context.Context, c *filecast.Client, channel string, o *sendOptions) error {
	if o.settings == (filecast.Settings{}) {
		return nil
	}
	return c.Configure(ctx, channel, o.settings)
}

// waitReporter says why a sender waits for budget and what would free it:
// once it has waited a few seconds (filecast.SendOptions.OnWait), then at
// most once a minute, or at -v each time the library tells (every half
// minute).
func waitReporter(w io.Writer, channel string, verbose bool) func(filecast.Wait) {
	var mu sync.Mutex
	var said time.Time
	return func(wt filecast.Wait) {
		mu.Lock()
		defer mu.Unlock()
		if !verbose && !said.IsZero() && time.Since(said) < waitSaidEvery {
			return
		}
		said = time.Now()
		msg := fmt.Sprintf("%s waits for budget (for %v)", wt.File, wt.For.Round(time.Second))
		if len(wt.Holders) > 0 && wt.Holders[0].Bytes > 0 {
			h := wt.Holders[0]
			msg += fmt.Sprintf(": %s held for group %s", human(h.Bytes), h.Group)
			switch {
			case h.Gone > 0:
				msg += fmt.Sprintf(", whose members have been gone %v — filecast clean %s --drop-group %s, or set --group-expiry",
					h.Gone.Round(time.Second), channel, h.Group)
			case len(h.Blocked) > 0:
				for m, why := range h.Blocked {
					msg += fmt.Sprintf(", whose member %s is blocked: %s", m, why)
					break
				}
			default:
				msg += ", which is still reading it"
			}
		}
		fmt.Fprintln(w, msg)
	}
}
