// Command logagg is a filecast receiver that does the log-processing job of
// "Redis in Action" §6.6: it counts the requests of web access logs by day
// and client country while the log files are still being uploaded, and
// adds the counts to the sorted sets daily:country:<YYYY-MM-DD>.
//
//	logagg -redis unix:///tmp/r.sock -channel logs -group fanout-a -member w1 -prefix fanout-a:
//
// Every receiver group gets every file; members of one group share them.
// For each file logagg decompresses it (gzip or zstd, found by its magic
// bytes), reads its lines, takes the client address (first field) and the
// day of the timestamp ([21/Nov/2026:10:00:00 +0000] -> 2026-11-21), looks
// the country up with github.com/phuslu/iploc (unknown: ZZ), counts in
// memory and, once the whole file has arrived and passed its integrity
// check, adds the counts with one atomic script call (see commitScript for
// how a file delivered twice still counts once).
//
// Result keys: <prefix>daily:country:<day>, <prefix>daily:done and
// <prefix>daily:stats. The prefix is empty by default, so one group writes
// exactly the keys of the book. Several groups that receive the same files
// and write to the same server must use different prefixes (the demo uses
// "<group>:"), or every request would be counted once per group.
//
// Other modes:
//
//	logagg -join-only -group g          create group g on the channel and exit
//	logagg -report -prefix a:,b:        print the top countries per day of
//	                                    each prefix, check that they agree,
//	                                    print throughput
//
// With -until-eof (the default) logagg exits 0 once its group has handled
// every file sent before the sender's end-of-batch mark.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/rueidis"

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
		redisURL    = flag.String("redis", defURL, "filecast's redis server (redis://host:port/db or unix:///path.sock; env FILECAST_REDIS)")
		channel     = flag.String("channel", "logs", "channel to receive from")
		group       = flag.String("group", "", "receiver group (required to receive or join)")
		member      = flag.String("member", "", "member name within the group (default: the host name)")
		resultsURL  = flag.String("results-redis", "", "redis server for the results (default: -redis)")
		prefix      = flag.String("prefix", "", "prefix of the result keys; comma-separated list with -report")
		concurrency = flag.Int("concurrency", 1, "files handled at once")
		untilEOF    = flag.Bool("until-eof", true, "exit once the group handled everything before the end-of-batch mark")
		joinOnly    = flag.Bool("join-only", false, "create the group (so it gets every file sent from now on) and exit")
		doReport    = flag.Bool("report", false, "print the results of each -prefix and exit")
		topN        = flag.Int("top", 5, "countries per day in the report")
		expect      = flag.String("expect", "", "with -report: genlogs manifest (.genlogs.json) whose counts the results must match")
		timeout     = flag.Duration("timeout", 0, "give up after this long (0: never)")
		verbose     = flag.Bool("v", false, "log filecast diagnostics")
	)
	flag.Parse()
	if *resultsURL == "" {
		*resultsURL = *redisURL
	}
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
			fmt.Fprintf(os.Stderr, "%s: timed out after %v\n", "logagg", *timeout)
			cancel()
		})
		defer t.Stop()
		defer cancel()
	}
	who := "logagg"
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		return 1
	}

	if *doReport {
		rc, err := dialResults(ctx, *resultsURL)
		if err != nil {
			return fail(err)
		}
		defer rc.Close()
		if err := report(ctx, os.Stdout, rc, strings.Split(*prefix, ","), *topN, *expect); err != nil {
			return fail(err)
		}
		return 0
	}

	if *group == "" {
		return fail(errors.New("-group is required (or -report)"))
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
	if *joinOnly {
		if err := c.Join(ctx, *channel, *group); err != nil {
			return fail(err)
		}
		fmt.Fprintf(os.Stderr, "logagg: group %s joined channel %s\n", *group, *channel)
		return 0
	}

	rc, err := dialResults(ctx, *resultsURL)
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	name := *member
	if name == "" {
		name, _ = os.Hostname()
	}
	who = "logagg " + *group + "/" + name

	w := &worker{channel: *channel, member: name, prefix: *prefix, rc: rc, log: os.Stderr, who: who}
	began := time.Now()
	err = c.Receive(ctx, *channel, w.handle, filecast.ReceiveOptions{
		Group: *group, Member: name, UntilEOF: *untilEOF, Concurrency: *concurrency,
		OnResult: w.result,
	})
	el := time.Since(began)
	fmt.Fprintf(os.Stderr, "%s: done: %d files (%d skipped as already counted), %d lines, %s of logs (%s received) in %.2fs\n",
		who, w.files.Load(), w.skipped.Load(), w.lines.Load(), units.FormatBytes(w.logBytes.Load()),
		units.FormatBytes(w.wireBytes.Load()), el.Seconds())
	if err != nil {
		return fail(err)
	}
	return 0
}

// worker is the Handler of one member: it counts each file and commits
// the counts under prefix.
type worker struct {
	channel, member, prefix string
	rc                      rueidis.Client
	log                     io.Writer
	who                     string // "logagg group/member", for messages

	files, skipped, lines, logBytes, wireBytes atomic.Int64
}

func (w *worker) handle(ctx context.Context, f *filecast.File) error {
	fs, err := count(f)
	if err != nil {
		return err
	}
	fs.token, fs.member = w.channel+"/"+f.ID, w.member
	// Make sure the file is still ours before the results become visible;
	// if another member took it over, that member counts it instead.
	if err := f.Keep(ctx); err != nil {
		return err
	}
	added, err := commit(ctx, w.rc, w.prefix, fs)
	if err != nil {
		return err
	}
	el := fs.end.Sub(fs.start)
	if !added {
		w.skipped.Add(1)
		fmt.Fprintf(w.log, "%s: %s %d lines: already counted (delivered again), skipped\n", w.who, f.Name, fs.counts.lines)
		return nil
	}
	w.files.Add(1)
	w.lines.Add(fs.counts.lines)
	w.logBytes.Add(fs.logBytes)
	w.wireBytes.Add(fs.wireBytes)
	bad := ""
	if fs.counts.bad > 0 {
		bad = fmt.Sprintf(" (%d unparsable)", fs.counts.bad)
	}
	fmt.Fprintf(w.log, "%s: %s %d lines%s, %s (%s sent) in %.2fs, %s\n", w.who, f.Name, fs.counts.lines, bad,
		units.FormatBytes(fs.logBytes), units.FormatBytes(fs.wireBytes), el.Seconds(), units.Rate(fs.logBytes, el))
	return nil
}

func (w *worker) result(r filecast.Result) {
	switch {
	case r.Lost:
		fmt.Fprintf(w.log, "%s: %s: taken over by another member\n", w.who, r.File.Name)
	case r.Err != nil:
		fmt.Fprintf(w.log, "%s: %s: gave up after %d attempt(s): %v\n", w.who, r.File.Name, r.Attempts, r.Err)
	}
}

// count reads a whole file and counts its lines by day and country.
func count(f *filecast.File) (fileStats, error) {
	fs := fileStats{counts: newAgg(), start: time.Now()}
	cr := &countReader{r: f}
	r, done, err := filecast.Decompress(cr)
	if err != nil {
		return fs, err
	}
	defer done()
	lr := &countReader{r: r}
	for line, err := range filecast.Lines(lr) {
		if err != nil {
			return fs, err
		}
		fs.counts.add(line)
	}
	// A compressed stream can end before the file does: read the rest, so
	// the file's size and digest are verified before anything is counted.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fs, err
	}
	fs.logBytes, fs.wireBytes, fs.end = lr.n, cr.n, time.Now()
	return fs, nil
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
