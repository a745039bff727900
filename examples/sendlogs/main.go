// Command sendlogs sends every file of a directory to a filecast channel,
// then marks the end of the batch, so receivers running until the mark
// (logagg -until-eof) finish:
//
//	sendlogs -redis unix:///tmp/r.sock -channel logs -dir logs -max-bytes 32MiB
//
// -max-bytes sets the channel's budget: the most file data it may hold in
// Redis at once. With a budget smaller than the files, sendlogs waits while
// the budget is full and goes on as the slowest group consumes chunks, so
// the data streams through Redis instead of being stored whole.
//
// Files whose names start with "." (such as genlogs' manifest) are skipped.
// Receiver groups must have joined before (logagg -join-only): a group gets
// only the files sent after it joined, and sending to a channel without
// groups fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/units"
)

func main() { os.Exit(run()) }

func run() int {
	defURL := os.Getenv("FILECAST_REDIS")
	if defURL == "" {
		defURL = filecast.DefaultURL
	}
	var (
		redisURL = flag.String("redis", defURL, "filecast's redis server (redis://host:port/db or unix:///path.sock; env FILECAST_REDIS)")
		channel  = flag.String("channel", "logs", "channel to send to")
		dir      = flag.String("dir", "logs", "directory whose files are sent (not recursively)")
		maxBytes units.Bytes
		eof      = flag.Bool("eof", true, "send an end-of-batch mark after the files")
		timeout  = flag.Duration("timeout", 0, "give up after this long (0: never)")
		verbose  = flag.Bool("v", false, "log filecast diagnostics")
	)
	flag.Var(&maxBytes, "max-bytes", "channel budget: most bytes of file data held in redis at once, e.g. 32MiB (0: keep the channel's)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout > 0 {
		// A timer that cancels, not context.WithTimeout: rueidis runs a
		// blocking command (XREADGROUP BLOCK) whose context has a deadline
		// synchronously and does not see it cancelled before the deadline,
		// so with a deadline filecast could not cut its blocking reads short
		// and every end-of-batch would be noticed up to 2s late.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		t := time.AfterFunc(*timeout, func() {
			fmt.Fprintf(os.Stderr, "%s: timed out after %v\n", "sendlogs", *timeout)
			cancel()
		})
		defer t.Stop()
		defer cancel()
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "sendlogs:", err)
		return 1
	}

	entries, err := os.ReadDir(*dir)
	if err != nil {
		return fail(err)
	}
	var paths []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			paths = append(paths, filepath.Join(*dir, e.Name()))
		}
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		return fail(fmt.Errorf("no files in %s", *dir))
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	c, err := filecast.New(ctx, filecast.Options{URL: *redisURL,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		return fail(err)
	}
	defer c.Close()

	budget := ""
	if maxBytes > 0 {
		budget = " through a budget of " + units.FormatBytes(int64(maxBytes))
	}
	fmt.Fprintf(os.Stderr, "sendlogs: sending %d files to channel %s%s\n", len(paths), *channel, budget)
	began := time.Now()
	var total int64
	for _, p := range paths {
		t0 := time.Now()
		info, err := c.SendFile(ctx, *channel, p, "", filecast.SendOptions{MaxBytes: int64(maxBytes)})
		if err != nil {
			return fail(err)
		}
		el := time.Since(t0)
		total += info.Size
		resumed := ""
		if info.Resumed {
			resumed = " (resumed an interrupted upload)"
		}
		fmt.Fprintf(os.Stderr, "sendlogs: %s %s in %.2fs, %s%s\n", info.Name, units.FormatBytes(info.Size),
			el.Seconds(), units.Rate(info.Size, el), resumed)
	}
	if *eof {
		if err := c.SendEOF(ctx, *channel); err != nil {
			return fail(err)
		}
	}
	el := time.Since(began)
	fmt.Fprintf(os.Stderr, "sendlogs: sent %d files, %s in %.2fs: %s\n", len(paths), units.FormatBytes(total),
		el.Seconds(), units.Rate(total, el))
	return 0
}
