package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/units"
	"github.com/filecast/filecast/internal/wire"
)

type sendOptions struct {
	name     string
	flush    time.Duration
	eof      bool
	maxBytes string
	json     bool
	resend   bool
	batch    string
}

func newSend(g *globals) *cobra.Command {
	o := &sendOptions{}
	cmd := &cobra.Command{
		Use:   "send CHANNEL PATH...",
		Short: "Publish files, directories or stdin to a channel",
		Long: `Publish files to CHANNEL. Each file is announced before its first chunk is
stored, so receivers start processing it while it is still uploading.

A directory is sent recursively; each file's name is its slash-separated
path relative to that directory. "-" reads stdin (name it with --name):
every byte of it is stored within --flush (100ms) of its arrival, however
steadily it keeps coming, so receivers see it within a fraction of a
second. Stdin cannot be read again: an interrupted send of it is aborted
(receivers discard it); to ship a growing log so that a restart continues
it, use --follow. Mode and modification time are kept.

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
  tail -F /var/log/app.log | filecast send logs - --name app.live.log

  # send a batch and mark its end for "recv --until-eof"
  filecast send --eof --max-bytes 256MiB datasets ./shards`,
		Args: minArgs(2, "a CHANNEL and at least one PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSend(cmd.Context(), g, o, args[0], args[1:], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "name of the file read from stdin (\"-\")")
	f.DurationVar(&o.flush, "flush", filecast.DefaultFlush, "longest a byte of stdin waits before it is stored")
	f.BoolVar(&o.eof, "eof", false, "mark the end of a batch after these files (see recv --until-eof)")
	f.StringVar(&o.maxBytes, "max-bytes", "", "budget: most file data the channel may hold in Redis (default: keep the channel's, else 1GiB)")
	f.BoolVar(&o.json, "json", false, "print one JSON object per file on stdout (skipped ones too)")
	f.BoolVar(&o.resend, "resend", false, "send again the files an interrupted run of this command had sent")
	f.StringVar(&o.batch, "batch", "", "name this run, so a rerun with the same name skips what it sent (default: from the host name and the paths)")
	return cmd
}

// unfinishedFirst moves the files whose upload was interrupted (a send
// killed before it ended, run again) to the front: their chunks hold
// budget that the rest would otherwise wait for, while receivers wait for
// them, which would deadlock.
func unfinishedFirst(ctx context.Context, c *filecast.Client, channel string, items []sendItem) ([]sendItem, error) {
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

// sendItem is one file to send.
type sendItem struct {
	path, name string
}

func runSend(ctx context.Context, g *globals, o *sendOptions, channel string, paths []string, stdout, stderr io.Writer) error {
	if o.flush <= 0 {
		return usagef("--flush must be positive, e.g. 100ms")
	}
	opt := filecast.SendOptions{Flush: o.flush}
	if o.maxBytes != "" {
		n, err := units.ParseBytes(o.maxBytes)
		if err != nil {
			return usagef("--max-bytes: %v", err)
		}
		opt.MaxBytes = n
	}
	if o.batch != "" {
		if err := wire.CheckChannel("--batch", o.batch); err != nil {
			return usagef("%v", err)
		}
	}
	// Check every path before sending anything.
	var items []sendItem
	for _, p := range paths {
		if p == "-" {
			if o.name == "" {
				return usagef("stdin (\"-\") needs a name: add --name NAME")
			}
			items = append(items, sendItem{path: "-", name: o.name})
			continue
		}
		found, err := expand(p)
		if err != nil {
			return err
		}
		items = append(items, found...)
	}
	if o.name != "" && !slices.Contains(paths, "-") {
		return usagef("--name applies only to stdin (\"-\")")
	}
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if items, err = unfinishedFirst(ctx, c, channel, items); err != nil {
		return err
	}
	warnSameName(items, stderr)
	opt.Batch = o.batch
	if opt.Batch == "" {
		opt.Batch = batchOf(paths, o.name)
	}
	if o.resend {
		if err := c.EndBatch(ctx, channel, opt.Batch, false); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(stdout)
	skipped := 0
	for _, it := range items {
		start := time.Now()
		var info *filecast.FileInfo
		if it.path == "-" {
			growPipe(os.Stdin)
			var sent int64
			stdin := opt
			stdin.AbortOnCancel = true // it cannot be read again
			stdin.Progress = func(n int64) { sent = n }
			info, err = c.Send(ctx, channel, os.Stdin, filecast.Meta{Name: it.name}, stdin)
			if ctx.Err() != nil && errors.Is(err, filecast.ErrAborted) {
				return interruptedError{fmt.Sprintf("interrupted: the upload of %s from stdin was aborted after %s, since stdin cannot be read again; "+
					"receivers discard it (to ship a growing file so that a restart continues it, use --follow)", it.name, human(sent))}
			}
		} else {
			info, err = c.SendFile(ctx, channel, it.path, it.name, opt)
		}
		if err != nil {
			return err
		}
		elapsed := time.Since(start)
		switch {
		case o.json:
			enc.Encode(map[string]any{"channel": channel, "id": info.ID, "name": info.Name, "size": info.Size,
				"digest": info.Digest, "resumed": info.Resumed, "skipped": info.Skipped, "seconds": elapsed.Seconds()})
		case info.Skipped:
			skipped++
		default:
			resumed := ""
			if info.Resumed {
				resumed = " (resumed)"
			}
			fmt.Fprintf(stderr, "sent %s  %s in %v, %s/s%s\n", info.Name, human(info.Size), elapsed.Round(time.Millisecond),
				human(int64(float64(info.Size)/max(elapsed.Seconds(), 1e-6))), resumed)
		}
	}
	if skipped > 0 {
		fmt.Fprintf(stderr, "skipped %d unchanged %s an interrupted run of this command had sent (--resend sends %s again)\n",
			skipped, plural(skipped, "file", "files"), plural(skipped, "it", "them"))
	}
	if err := c.EndBatch(ctx, channel, opt.Batch, o.eof); err != nil {
		return err
	}
	if o.eof && !o.json {
		fmt.Fprintf(stderr, "marked end of batch on %s\n", channel)
	}
	return nil
}

// batchOf names the batch of a send command: the same paths (and stdin
// name) on the same host name the same batch, so a run interrupted and run
// again skips what it had sent (filecast.SendOptions.Batch).
func batchOf(paths []string, stdinName string) string {
	host, _ := os.Hostname()
	var b strings.Builder
	b.WriteString(host)
	for _, p := range paths {
		if abs, err := filepath.Abs(p); err == nil && p != "-" {
			p = abs
		}
		b.WriteString("\x00" + p)
	}
	b.WriteString("\x00" + stdinName)
	return "send-" + chunk.Sum([]byte(b.String())).String()
}

// warnSameName warns about files sent under a name another file of the
// same run has: a --dir receiver keeps only the last of them.
func warnSameName(items []sendItem, stderr io.Writer) {
	seen := make(map[string]string, len(items))
	for _, it := range items {
		if first, dup := seen[it.name]; dup {
			fmt.Fprintf(stderr, "warning: %s and %s are both sent as %s; a --dir receiver keeps only the last\n",
				first, it.path, it.name)
			continue
		}
		seen[it.name] = it.path
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// expand lists the regular files at path: the file itself, or every file
// below a directory, named relative to it.
func expand(path string) ([]sendItem, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("cannot send %s: %w", path, errors.Unwrap(err))}
	}
	if !st.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError{fmt.Errorf("cannot send %s: %w", path, errors.Unwrap(err))}
		}
		f.Close()
		return []sendItem{{path: path, name: filepath.Base(path)}}, nil
	}
	var items []sendItem
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return usageError{fmt.Errorf("cannot send %s: %w", p, errors.Unwrap(err))}
		}
		if d.IsDir() {
			return nil
		}
		st, err := os.Stat(p) // follows symlinks to files
		if err != nil || !st.Mode().IsRegular() {
			return nil // sockets, devices, dangling links: nothing to send
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		items = append(items, sendItem{path: p, name: filepath.ToSlash(rel)})
		return nil
	})
	return items, err
}
