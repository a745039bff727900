package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/filecast/filecast"
)

type cleanOptions struct {
	stale   time.Duration
	drop    []string
	failed  bool
	group   string
	orphans bool
}

func newClean(g *globals) *cobra.Command {
	o := &cleanOptions{}
	cmd := &cobra.Command{
		Use:   "clean CHANNEL [--stale DURATION] [--drop-group GROUP]... [--failed [--group GROUP]] [--orphans]",
		Short: "Abort stale uploads, remove dead groups, release failed files",
		Long: `Abort the uploads of CHANNEL whose sender has been silent for longer than
--stale (receivers reading them get an "upload aborted" error and the data
is released), and remove receiver groups that will never come back, so
that files stop waiting for them. A dropped group's running members stop
with an error.

--failed releases the files the groups (or --group) gave up on and keep
for "filecast retry" (see "filecast status"): they are dropped for good,
and their data leaves Redis once no other group needs it.

--orphans looks on every primary of a Redis Cluster for chunks nothing will
delete (a sender that stored a chunk after its file was released, then died
before deleting it) and deletes them. Files in use are safe.`,
		Example: `  filecast clean logs --stale 10m
  filecast clean logs --drop-group old-host-42
  filecast clean logs --failed --group audit
  filecast clean logs --orphans`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("clean needs exactly one CHANNEL")
			}
			if o.stale == 0 && len(o.drop) == 0 && !o.failed && !o.orphans {
				return usagef("clean needs --stale DURATION, --drop-group GROUP, --failed or --orphans")
			}
			if o.group != "" && !o.failed {
				return usagef("--group goes with --failed")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminHint(runClean(cmd.Context(), g, args[0], o, cmd.ErrOrStderr()), args[0])
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.stale, "stale", 0, "abort uploads whose sender has been silent this long")
	f.StringArrayVar(&o.drop, "drop-group", nil, "remove this receiver group (repeatable)")
	f.BoolVar(&o.failed, "failed", false, "release the files the groups gave up on and keep for a retry")
	f.StringVar(&o.group, "group", "", "--failed: only this group's")
	f.BoolVar(&o.orphans, "orphans", false, "delete chunks nothing will delete (left by senders killed at the wrong moment)")
	return cmd
}

func runClean(ctx context.Context, g *globals, channel string, o *cleanOptions, w io.Writer) error {
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if o.stale > 0 {
		aborted, err := c.AbortStale(ctx, channel, o.stale)
		for _, f := range aborted {
			fmt.Fprintf(w, "aborted stale upload %s (%s)\n", f.Name, f.ID)
		}
		if err != nil {
			return err
		}
		if len(aborted) == 0 {
			if err := noneStale(ctx, c, channel, o.stale, w); err != nil {
				return err
			}
		}
	}
	for _, grp := range o.drop {
		n, err := c.DropGroup(ctx, channel, grp)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "dropped group %s; %d file(s) released\n", grp, n)
	}
	if o.failed {
		n, err := c.ReleaseFailed(ctx, channel, o.group)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "released %d failed %s\n", n, plural(n, "file", "files"))
	}
	if o.orphans {
		n, err := c.Orphans(ctx, channel, true)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "deleted %d orphaned %s\n", n, plural(n, "chunk", "chunks"))
	}
	return nil
}

// noneStale says that no upload of channel has been silent for stale, and
// how long the most silent of those in progress has been.
func noneStale(ctx context.Context, c *filecast.Client, channel string, stale time.Duration, w io.Writer) error {
	st, err := c.Status(ctx, channel)
	if err != nil {
		return err
	}
	var quiet *filecast.FileStatus
	n := 0
	for i, f := range st.Files {
		if f.State != "uploading" {
			continue
		}
		n++
		if quiet == nil || f.Heartbeat.Before(quiet.Heartbeat) {
			quiet = &st.Files[i]
		}
	}
	if quiet == nil {
		fmt.Fprintf(w, "no upload has been silent for %v; none is in progress\n", stale)
		return nil
	}
	which := "the one in progress"
	if n > 1 {
		which = fmt.Sprintf("of the %d in progress, the most silent", n)
	}
	fmt.Fprintf(w, "no upload has been silent for %v; %s (%s, sender %s) has been silent for %s\n",
		stale, which, quiet.Name, quiet.Sender, ago(quiet.Heartbeat))
	return nil
}
