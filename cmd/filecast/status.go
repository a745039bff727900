package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/filecast/filecast"
)

func newStatus(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [CHANNEL]",
		Short: "Show files in flight, budget, groups, members and stale uploads",
		Long: `Show the state of CHANNEL, or of every channel: files not yet released
(state, size, chunks stored, which groups still have to acknowledge them),
bytes held in Redis against the budget, each group's lag (files not yet
delivered) and pending files, each member's idle time, files a group gave
up on, and stale uploads (uploading, sender silent longer than --lease).`,
		Example: `  filecast status
  filecast status logs --json | jq '.[0].groups'`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), g, args, asJSON, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of channel objects")
	return cmd
}

func runStatus(ctx context.Context, g *globals, args []string, asJSON bool, w io.Writer) error {
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	channels := args
	if len(channels) == 0 {
		if channels, err = c.Channels(ctx); err != nil {
			return err
		}
	}
	all := []*filecast.ChannelStatus{}
	for _, ch := range channels {
		s, err := c.Status(ctx, ch)
		if err != nil {
			return err
		}
		all = append(all, s)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	if t, err := c.Topology(ctx); err == nil {
		fmt.Fprintf(w, "redis: %s\n\n", t)
	}
	if len(all) == 0 {
		fmt.Fprintln(w, "no channels yet")
	}
	for i, s := range all {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printStatus(w, s)
	}
	return nil
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
			name, size, state := f.Name, human(f.Size), f.State
			if f.Kind == "mark" {
				name, size = "(end of batch)", "-"
			}
			if f.Size < 0 {
				size = "-"
			}
			if f.Stale {
				state = "STALE (sender silent " + time.Since(f.Heartbeat).Round(time.Second).String() + ")"
			}
			if f.Err != "" {
				name, state = f.ID, "unreadable: "+f.Err
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", name, state, size, f.Chunks, f.Stored,
				time.Since(f.Created).Round(time.Second), strings.Join(f.Waiting, ","))
		}
	}
	if len(s.Groups) > 0 {
		fmt.Fprintln(tw, "\nGROUP\tLAG\tPENDING\tHOLDS\tLAST SEEN\tMEMBERS (pending, idle)\tFAILED")
		for _, g := range s.Groups {
			var ms []string
			for _, m := range g.Members {
				blocked := ""
				if m.Blocked != nil {
					blocked = " BLOCKED"
				}
				ms = append(ms, fmt.Sprintf("%s (%d, %s)%s", m.Name, m.Pending, m.Idle.Round(time.Second), blocked))
			}
			lag := fmt.Sprint(g.Lag)
			if g.Lag < 0 {
				lag = "?"
			}
			seen := "-"
			if !g.Seen.IsZero() {
				seen = time.Since(g.Seen).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\n", g.Name, lag, g.Pending, human(g.Held), seen, strings.Join(ms, " "), len(g.Failed))
		}
	}
	tw.Flush()
	for _, g := range s.Groups {
		for _, m := range g.Members {
			if b := m.Blocked; b != nil {
				fmt.Fprintf(w, "member %s of group %s is blocked on %s for %s: %s\n", m.Name, g.Name, b.Name,
					time.Since(b.Since).Round(time.Second), b.Reason)
			}
		}
		for _, f := range g.Failed {
			state := ""
			switch f.State {
			case "kept":
				left := s.KeepFailed - time.Since(f.At)
				state = fmt.Sprintf(" (kept for filecast retry %s --group %s; released in %v)", s.Channel, g.Name, max(left, 0).Round(time.Second))
			case "dropped":
				state = fmt.Sprintf(" (dropped %v ago)", time.Since(f.DroppedAt).Round(time.Second))
			}
			fmt.Fprintf(w, "group %s gave up on %s: %s%s\n", g.Name, f.Name, f.Reason, state)
		}
	}
	for _, d := range s.Dropped {
		fmt.Fprintf(w, "group %s was dropped %v ago: %s\n", d.Name, time.Since(d.At).Round(time.Second), d.Reason)
	}
}
