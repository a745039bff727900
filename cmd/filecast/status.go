package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/filecast/filecast"
)

type statusOptions struct {
	json     bool
	watch    bool
	interval time.Duration
}

func newStatus(g *globals) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [CHANNEL] [--watch [--interval 2s]] [--json]",
		Short: "Show files in flight, budget, groups, members and stale uploads",
		Long: `Show the state of CHANNEL, or of every channel: files not yet released
(state, size, chunks committed and still stored, with a percentage where
the size is known, which groups still have to acknowledge them), bytes held
in Redis against the budget, each group's lag (files and bytes it has not
acknowledged, and the age of the oldest), what it holds of the budget, its
members (pending files and idle time; blocked members and why; members
gone, for how long), files a group gave up on, senders waiting for budget
and which groups hold it, and stale uploads (uploading, sender silent
longer than --lease).

--watch shows it again every --interval: in place on a terminal (cut to
its height, saying how many lines were cut), else as a new snapshot each
time after a blank line; Ctrl-C (or SIGTERM) ends it
with exit code 0. --json prints one JSON object (docs/STATUS.md describes
every field); with --watch, one object per line each interval. A status
that fails with --json ends with {"event":"error","error":…,"exit":N} on
stdout, like send and recv.

A CHANNEL that was never used is an error (exit 1) naming those there are.`,
		Example: `  filecast status
  filecast status logs --watch
  filecast status logs --json | jq '.channels[0].groups'
  filecast status logs --watch --json --interval 10s >> status.jsonl`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.interval <= 0 {
				return usagef("--interval %v: must be positive", o.interval)
			}
			if cmd.Flags().Changed("interval") && !o.watch {
				return usagef("--interval goes with --watch")
			}
			return runStatus(cmd.Context(), g, o, args, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print a JSON object (docs/STATUS.md); with --watch, one per line")
	f.BoolVarP(&o.watch, "watch", "w", false, "show it again every --interval until interrupted")
	f.DurationVar(&o.interval, "interval", 2*time.Second, "--watch: how often")
	jsonOutput(cmd, g, &o.json, nil)
	return cmd
}

// statusReport is the JSON form of status: one per run, or per interval
// with --watch (docs/STATUS.md).
type statusReport struct {
	Schema   int                       `json:"schema"`
	Time     time.Time                 `json:"time"`
	Redis    *filecast.Topology        `json:"redis,omitempty"`
	Channels []*filecast.ChannelStatus `json:"channels"`
	Error    string                    `json:"error,omitempty"` // --watch: this snapshot failed
}

func runStatus(ctx context.Context, g *globals, o *statusOptions, args []string, w io.Writer) error {
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if !o.watch {
		r, err := snapshot(ctx, c, args)
		if err != nil {
			return adminHint(err, "")
		}
		return writeStatus(w, r, o.json, false)
	}
	return adminHint(watchStatus(ctx, c, o, args, w), "")
}

// snapshot reads the status of the channels named (of every one if none).
func snapshot(ctx context.Context, c *filecast.Client, channels []string) (*statusReport, error) {
	r := &statusReport{Schema: filecast.StatusSchema, Time: time.Now(), Channels: []*filecast.ChannelStatus{}}
	if t, err := c.Topology(ctx); err == nil {
		r.Redis = &t
	}
	if len(channels) == 0 {
		var err error
		if channels, err = c.Channels(ctx); err != nil {
			return nil, err
		}
	}
	for _, ch := range channels {
		s, err := c.Status(ctx, ch)
		if err != nil {
			return nil, err
		}
		r.Channels = append(r.Channels, s)
	}
	return r, nil
}

// writeStatus writes r as JSON (compact, one line, with --watch) or text.
func writeStatus(w io.Writer, r *statusReport, asJSON, watch bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		if !watch {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(r)
	}
	if r.Redis != nil {
		fmt.Fprintf(w, "redis: %s\n\n", r.Redis)
	}
	if len(r.Channels) == 0 {
		fmt.Fprintln(w, "no channels yet")
	}
	for i, s := range r.Channels {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printStatus(w, s)
	}
	return nil
}

// watchStatus shows the status every o.interval until ctx ends (then it
// returns nil: an interrupted watch is a normal end). A snapshot that
// fails after the first is shown as such and tried again.
func watchStatus(ctx context.Context, c *filecast.Client, o *statusOptions, args []string, w io.Writer) error {
	f, isFile := w.(*os.File)
	tty := isFile && !o.json && term.IsTerminal(int(f.Fd()))
	if tty {
		fmt.Fprint(w, "\x1b[H\x1b[2J") // clear the screen once
		defer fmt.Fprintln(w)
	}
	var buf bytes.Buffer
	for n := 0; ; n++ {
		r, err := snapshot(ctx, c, args)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && n == 0 {
			return err
		}
		buf.Reset()
		if err != nil {
			r = &statusReport{Schema: filecast.StatusSchema, Time: time.Now(), Channels: []*filecast.ChannelStatus{}, Error: err.Error()}
		}
		if !o.json {
			fmt.Fprintf(&buf, "filecast status, %s (every %v; Ctrl-C to stop)\n", r.Time.Format(time.DateTime), o.interval)
			if r.Error != "" {
				fmt.Fprintf(&buf, "status failed: %s; trying again\n", r.Error)
			}
		}
		if err := writeStatus(&buf, r, o.json, true); err != nil {
			return err
		}
		switch {
		case tty: // redraw in place: home, each line cleared to its end, the rest of the screen cleared
			frame := strings.TrimSuffix(buf.String(), "\n")
			if cols, rows, err := term.GetSize(int(f.Fd())); err == nil {
				frame = fitFrame(frame, cols, rows)
			}
			out := strings.ReplaceAll(frame, "\n", "\x1b[K\n")
			_, err = fmt.Fprint(w, "\x1b[H"+out+"\x1b[K\x1b[J")
		case o.json:
			_, err = w.Write(buf.Bytes())
		default:
			if n > 0 {
				fmt.Fprintln(w)
			}
			_, err = w.Write(buf.Bytes())
		}
		if err != nil {
			return err
		}
		select {
		case <-time.After(o.interval):
		case <-ctx.Done():
			return nil
		}
	}
}

// fitFrame cuts frame (lines without a final newline) to the rows of a
// terminal cols wide, a line wider than that taking the rows it wraps
// onto; then the last row says how many lines were cut and how to see
// them. A frame taller than the terminal would scroll its top off and
// leave partial frames in the scrollback.
func fitFrame(frame string, cols, rows int) string {
	lines := strings.Split(frame, "\n")
	height := func(l string) int {
		if cols <= 0 {
			return 1
		}
		return max(1, (utf8.RuneCountInString(l)+cols-1)/cols)
	}
	used := 0
	for _, l := range lines {
		used += height(l)
	}
	if rows <= 0 || used <= rows {
		return frame
	}
	keep, used := 0, 0
	for keep < len(lines) && used+height(lines[keep]) <= rows-1 {
		used += height(lines[keep])
		keep++
	}
	note := fmt.Sprintf("... %d more lines: make the window taller, or run status without --watch", len(lines)-keep)
	if cols > 0 && utf8.RuneCountInString(note) > cols {
		note = string([]rune(note)[:cols])
	}
	return strings.Join(append(lines[:keep:keep], note), "\n")
}

func printStatus(w io.Writer, s *filecast.ChannelStatus) {
	fmt.Fprintf(w, "channel %s: %s held of %s budget (%.0f%%)\n", s.Channel, human(s.Bytes), human(s.MaxBytes),
		100*float64(s.Bytes)/float64(max(s.MaxBytes, 1)))
	if s.Deleting > 0 {
		fmt.Fprintf(w, "%d deletions of chunks journaled, not yet done (receivers finish them; counted in the budget until then)\n", s.Deleting)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if len(s.Files) > 0 {
		fmt.Fprintln(tw, "\nFILE\tSTATE\tSIZE\tCHUNKS\tSTORED\tAGE\tWAITING FOR")
		for _, f := range s.Files {
			fmt.Fprintln(tw, fileRow(f))
		}
	}
	if len(s.Groups) > 0 {
		fmt.Fprintln(tw, "\nGROUP\tLAG\tOLDEST\tPENDING\tHOLDS\tLAST SEEN\tMEMBERS\tFAILED")
		for _, g := range s.Groups {
			var ms []string
			for _, m := range g.Members {
				ms = append(ms, memberCell(m))
			}
			lag, oldest := "0", "-"
			if g.Unacked > 0 {
				lag = fmt.Sprintf("%d (%s)", g.Unacked, human(g.UnackedBytes))
				oldest = ago(g.Oldest)
			}
			seen := "-"
			if !g.Seen.IsZero() {
				seen = ago(g.Seen) + " ago"
				if g.Gone {
					seen += " (gone)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", g.Name, lag, oldest, g.Pending, human(g.Held), seen,
				strings.Join(ms, " "), failedCell(g.Failed))
		}
	}
	tw.Flush()
	for _, g := range s.Groups {
		for _, m := range g.Members {
			if b := m.Blocked; b != nil {
				fmt.Fprintf(w, "member %s of group %s is blocked on %s for %s: %s\n", m.Name, g.Name, b.Name, ago(b.Since), b.Reason)
			}
		}
		for _, f := range g.Failed {
			state := ""
			switch f.State {
			case "kept":
				left := s.KeepFailed - time.Since(f.At)
				state = fmt.Sprintf(" (kept for filecast retry %s --group %s; released in %v)", s.Channel, g.Name, max(left, 0).Round(time.Second))
			case "dropped":
				state = fmt.Sprintf(" (dropped %v ago)", ago(f.DroppedAt))
			}
			fmt.Fprintf(w, "group %s gave up on %s: %s%s\n", g.Name, f.Name, f.Reason, state)
		}
	}
	for _, d := range s.Dropped {
		fmt.Fprintf(w, "group %s was dropped %v ago: %s\n", d.Name, ago(d.At), d.Reason)
	}
	if len(s.Waiting) > 0 {
		holders := holdersLine(s)
		for _, sw := range s.Waiting {
			fmt.Fprintf(w, "%s (sender %s) has waited %s for room in the budget%s\n", sw.Name, sw.Sender, ago(sw.Since), holders)
		}
	}
}

// fileRow is the row of f in the files table.
func fileRow(f filecast.FileStatus) string {
	name, state := f.Name, f.State
	if f.Err != "" {
		return fmt.Sprintf("%s\tunreadable: %s\t\t\t\t\t", f.ID, f.Err)
	}
	size, chunks, stored := "-", fmt.Sprint(f.Chunks), fmt.Sprint(f.Stored)
	if total, ok := f.Total(); ok {
		size = human(total)
	}
	if n, ok := f.TotalChunks(); ok && n > 0 {
		chunks = fmt.Sprintf("%d/%d (%s)", f.Chunks, n, percent(f.Chunks, n))
		stored = fmt.Sprintf("%d (%s)", f.Stored, percent(f.Stored, n))
	}
	if f.Kind == "mark" {
		name, size, chunks, stored = "(end of batch)", "-", "-", "-"
	}
	if f.Stale {
		state = "STALE (sender silent " + ago(f.Heartbeat) + ")"
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", name, state, size, chunks, stored, ago(f.Created), strings.Join(f.Waiting, ","))
}

// failedCell is the FAILED column: the files the group gave up on and
// keeps for a retry, then how many it no longer keeps (dropped, or never
// kept), which the lines below the table list too.
func failedCell(failed []filecast.FailedFile) string {
	kept := 0
	for _, f := range failed {
		if f.State == "kept" {
			kept++
		}
	}
	if n := len(failed) - kept; n > 0 {
		return fmt.Sprintf("%d (+%d dropped)", kept, n)
	}
	return fmt.Sprint(kept)
}

// memberCell describes m in the groups table: pending files and idle time
// while it runs, how long it has been blocked, or how long it has been gone.
func memberCell(m filecast.MemberStatus) string {
	switch {
	case m.Gone:
		return fmt.Sprintf("%s (gone %s)", m.Name, m.Idle.Round(time.Second))
	case m.Blocked != nil:
		return fmt.Sprintf("%s (%d, BLOCKED %s)", m.Name, m.Pending, ago(m.Blocked.Since))
	}
	return fmt.Sprintf("%s (%d, idle %s)", m.Name, m.Pending, m.Idle.Round(time.Second))
}

// holdersLine says which groups hold s's budget, most first, for the line
// of a waiting sender.
func holdersLine(s *filecast.ChannelStatus) string {
	var hs []string
	for _, g := range s.Groups {
		if g.Held == 0 {
			continue
		}
		h := fmt.Sprintf("%s %s", g.Name, human(g.Held))
		switch {
		case g.Gone:
			h += fmt.Sprintf(" (no member seen for %s)", ago(g.Seen))
		case blockedCount(g) > 0:
			h += fmt.Sprintf(" (%d blocked)", blockedCount(g))
		}
		hs = append(hs, h)
	}
	if len(hs) == 0 {
		return ""
	}
	return "; held by " + strings.Join(hs, ", ")
}

func blockedCount(g filecast.GroupStatus) int {
	n := 0
	for _, m := range g.Members {
		if m.Blocked != nil && !m.Gone {
			n++
		}
	}
	return n
}

// ago is how long ago t was, to the second.
func ago(t time.Time) string { return time.Since(t).Round(time.Second).String() }

// percent is n of total as a whole percentage.
func percent(n, total int64) string {
	return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(max(total, 1)))
}

// adminHint adds to a status, clean or retry error what to do, in the
// CLI's words: a channel or group that is not there is a typo, or the
// wrong --prefix.
func adminHint(err error, channel string) error {
	switch {
	case errors.Is(err, filecast.ErrNoChannel):
		return fmt.Errorf("%w (check the name; \"filecast status\" lists the channels, --prefix selects other ones)", err)
	case errors.Is(err, filecast.ErrNoGroup):
		return fmt.Errorf("%w (check the name; \"filecast status %s\" lists the groups)", err, channel)
	}
	return err
}
