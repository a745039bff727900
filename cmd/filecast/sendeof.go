package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// runEOF marks the end of a batch on channel ("send CHANNEL --eof" with no
// PATH): a batch sent by several runs, which "recv --until-eof" receivers
// wait for. With --batch it also forgets that batch's record, like the end
// of a send run.
func runEOF(ctx context.Context, g *globals, o *sendOptions, channel string, stderr io.Writer) error {
	if o.name != "" || o.resend {
		return usagef("--name and --resend go with a PATH to send; --eof alone only marks the end of a batch")
	}
	if _, err := parseMaxBytes(g, o.maxBytes); err != nil {
		return err
	}
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := configure(ctx, c, channel, o); err != nil {
		return err
	}
	if o.batch != "" {
		err = c.EndBatch(ctx, channel, o.batch, true)
	} else {
		err = c.SendEOF(ctx, channel)
	}
	if err != nil {
		return err
	}
	if !o.json {
		fmt.Fprintf(stderr, "marked end of batch on %s\n", channel)
	}
	return nil
}

// notRegularLine is the warning for the entries of a directory that are not
// sent: "skipped 2 entries of DIR that are not regular files: fifo, link".
func notRegularLine(dir string, entries []string) string {
	const most = 10
	list := strings.Join(entries[:min(len(entries), most)], ", ")
	if len(entries) > most {
		list += fmt.Sprintf(" and %d more", len(entries)-most)
	}
	return fmt.Sprintf("warning: skipped %d %s of %s that %s not regular %s: %s", len(entries),
		plural(len(entries), "entry", "entries"), dir, plural(len(entries), "is", "are"), plural(len(entries), "file", "files"), list)
}

// took formats how long something took: to the millisecond, or to the
// microsecond under one (412µs rather than 0s).
func took(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
