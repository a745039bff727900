package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/filecast/filecast"
)

// live is what a follower or watcher runs with: its client, the budget
// asked for, progress (whose Writer is where its messages go) and the
// metrics server.
type live struct {
	c        *filecast.Client
	maxBytes int64
	pv       *progress
	stderr   io.Writer
	close    func()
}

// startLive opens the metrics port (before connecting: a port in use is
// refused before anything is sent), connects, applies the channel
// settings given, and starts showing progress. close undoes it all, the
// metrics server before the client its scrapes read.
func startLive(ctx context.Context, g *globals, o *sendOptions, channel string, stdout, stderr io.Writer) (*live, error) {
	maxBytes, err := parseMaxBytes(g, o.maxBytes)
	if err != nil {
		return nil, err
	}
	if o.batch != "" {
		if err := filecast.CheckChannel("--batch", o.batch); err != nil {
			return nil, usageError{err}
		}
	}
	metrics, err := listenMetrics(g, o.metricsAddr, channel)
	if err != nil {
		return nil, err
	}
	c, err := g.client(ctx)
	if err == nil {
		err = configure(ctx, c, channel, o)
		if err != nil {
			c.Close()
		}
	}
	if err != nil {
		metrics.Close()
		return nil, err
	}
	pv := startProgress(c, o.progress, o.progress.mode(stderr, o.json && isTerminal(stdout)), false, stderr, 0, -1)
	l := &live{c: c, maxBytes: maxBytes, pv: pv, stderr: pv.Writer()}
	g.logs.set(l.stderr)
	metrics.Serve(c)
	l.close = func() {
		pv.Stop()
		g.logs.set(nil)
		metrics.Close()
		c.Close()
	}
	return l, nil
}

// stopped is what an interrupted follower or watcher reports.
func stopped(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return interruptedError{"stopped; run the same command again to " + what}
	}
	return err
}

func runFollow(ctx context.Context, g *globals, o *sendOptions, channel string, paths []string, stdout, stderr io.Writer) error {
	l, err := startLive(ctx, g, o, channel, stdout, stderr)
	if err != nil {
		return err
	}
	defer l.close()
	c, maxBytes, pv, stderr := l.c, l.maxBytes, l.pv, l.stderr
	enc := json.NewEncoder(stdout)
	opt := filecast.FollowOptions{Name: o.batch, FromStart: o.fromStart, Flush: o.flush, Linger: o.linger, Poll: o.poll,
		Exclude: o.exclude, MaxBytes: maxBytes, OnWait: waitReporter(stderr, channel, g.verbose > 0), OnEvent: func(e filecast.FollowEvent) {
			if e.Op == filecast.FollowCompleted {
				pv.done(e.File.Size, e.File.Size)
			}
			if o.json {
				enc.Encode(timed(followJSON(channel, e)))
				return
			}
			printFollow(stderr, e, g.verbose > 0)
		}}
	err = c.Follow(ctx, channel, paths, opt)
	return stopped(ctx, err, "continue every open file where it stopped")
}

// followOps names the FollowOps in --json output.
var followOps = map[filecast.FollowOp]string{
	filecast.FollowStarted: "started", filecast.FollowResumed: "resumed", filecast.FollowCompleted: "completed",
	filecast.FollowWaiting: "waiting", filecast.FollowSkipped: "skipped", filecast.FollowPolling: "polling",
}

func followJSON(channel string, e filecast.FollowEvent) map[string]any {
	m := map[string]any{"event": followOps[e.Op], "channel": channel}
	if e.Path != "" {
		m["path"] = e.Path
	}
	if e.File.ID != "" {
		m["id"], m["name"] = e.File.ID, e.File.Name
	}
	switch e.Op {
	case filecast.FollowStarted, filecast.FollowResumed:
		m["offset"] = e.Offset
	case filecast.FollowCompleted:
		m["size"], m["digest"] = e.File.Size, e.File.Digest
		if e.Reason != "" {
			m["reason"] = e.Reason
		}
	}
	if e.Err != nil {
		m["error"] = e.Err.Error()
	}
	return m
}

func printFollow(w io.Writer, e filecast.FollowEvent, verbose bool) {
	switch e.Op {
	case filecast.FollowStarted:
		from := "its start"
		if e.Offset > 0 {
			from = fmt.Sprintf("byte %d (its end)", e.Offset)
		}
		fmt.Fprintf(w, "following %s as %s from %s\n", e.Path, e.File.Name, from)
	case filecast.FollowResumed:
		fmt.Fprintf(w, "continuing %s from %s at byte %d\n", e.File.Name, e.Path, e.Offset)
	case filecast.FollowCompleted:
		if e.Err != nil {
			fmt.Fprintf(w, "completed %s  %s: %v\n", e.File.Name, human(e.File.Size), e.Err)
			return
		}
		fmt.Fprintf(w, "completed %s  %s (%s)\n", e.File.Name, human(e.File.Size), e.Reason)
	case filecast.FollowSkipped:
		fmt.Fprintf(w, "warning: cannot follow %s now: %v; trying again later\n", e.Path, e.Err)
	case filecast.FollowWaiting:
		if verbose {
			fmt.Fprintf(w, "waiting for %s: %v\n", e.Path, e.Err)
		}
	case filecast.FollowPolling:
		if verbose {
			fmt.Fprintf(w, "file system notifications unavailable (%v); polling for changes\n", e.Err)
		}
	}
}

func runWatch(ctx context.Context, g *globals, o *sendOptions, channel, dir string, stdout, stderr io.Writer) error {
	// A directory that is not there is refused before connecting.
	if st, err := os.Stat(dir); err != nil {
		return usagef("cannot watch %s: %v", dir, errors.Unwrap(err))
	} else if !st.IsDir() {
		return usagef("cannot watch %s: not a directory (--watch takes a directory; --follow follows files)", dir)
	}
	l, err := startLive(ctx, g, o, channel, stdout, stderr)
	if err != nil {
		return err
	}
	defer l.close()
	c, maxBytes, pv, stderr := l.c, l.maxBytes, l.pv, l.stderr
	enc := json.NewEncoder(stdout)
	opt := filecast.WatchOptions{Name: o.batch, Settle: o.settle, Exclude: o.exclude, RemoveSent: o.removeSent, Poll: o.poll,
		MaxBytes: maxBytes, OnWait: waitReporter(stderr, channel, g.verbose > 0), OnEvent: func(e filecast.WatchEvent) {
			if e.Op == filecast.WatchSent {
				pv.done(e.File.Size, e.File.Size)
			}
			if o.json {
				enc.Encode(timed(watchJSON(channel, e)))
				return
			}
			switch e.Op {
			case filecast.WatchSent:
				fmt.Fprintf(stderr, "sent %s  %s\n", e.File.Name, human(e.File.Size))
			case filecast.WatchUnchanged:
				if g.verbose > 0 {
					fmt.Fprintf(stderr, "already sent %s, unchanged\n", e.File.Name)
				}
			case filecast.WatchRemoved:
				if g.verbose > 0 {
					fmt.Fprintf(stderr, "removed %s\n", e.Path)
				}
			case filecast.WatchFailed:
				fmt.Fprintf(stderr, "warning: cannot send %s now: %v; trying again when it changes\n", e.Path, e.Err)
			case filecast.WatchPolling:
				if g.verbose > 0 {
					fmt.Fprintf(stderr, "file system notifications unavailable (%v); polling for changes\n", e.Err)
				}
			}
		}}
	err = c.Watch(ctx, channel, dir, opt)
	return stopped(ctx, err, "send what arrives and what arrived meanwhile")
}

var watchOps = map[filecast.WatchOp]string{
	filecast.WatchSent: "sent", filecast.WatchUnchanged: "unchanged", filecast.WatchRemoved: "removed",
	filecast.WatchFailed: "failed", filecast.WatchPolling: "polling",
}

func watchJSON(channel string, e filecast.WatchEvent) map[string]any {
	m := map[string]any{"event": watchOps[e.Op], "channel": channel}
	if e.Path != "" {
		m["path"] = e.Path
	}
	if e.File.ID != "" {
		m["id"], m["name"], m["size"], m["digest"] = e.File.ID, e.File.Name, e.File.Size, e.File.Digest
	}
	if e.Err != nil {
		m["error"] = e.Err.Error()
	}
	return m
}
