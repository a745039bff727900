package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

func newClean(g *globals) *cobra.Command {
	var stale time.Duration
	var drop []string
	cmd := &cobra.Command{
		Use:   "clean CHANNEL [--stale DURATION] [--drop-group GROUP]...",
		Short: "Abort stale uploads and remove dead groups",
		Long: `Abort the uploads of CHANNEL whose sender has been silent for longer than
--stale (receivers reading them get an "upload aborted" error and the data
is released), and remove receiver groups that will never come back, so
that files stop waiting for them. A dropped group's running members stop
with an error.`,
		Example: `  filecast clean logs --stale 10m
  filecast clean logs --drop-group old-host-42`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("clean needs exactly one CHANNEL")
			}
			if stale == 0 && len(drop) == 0 {
				return usagef("clean needs --stale DURATION and/or --drop-group GROUP")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClean(cmd.Context(), g, args[0], stale, drop, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().DurationVar(&stale, "stale", 0, "abort uploads whose sender has been silent this long")
	cmd.Flags().StringArrayVar(&drop, "drop-group", nil, "remove this receiver group (repeatable)")
	return cmd
}

func runClean(ctx context.Context, g *globals, channel string, stale time.Duration, drop []string, w io.Writer) error {
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if stale > 0 {
		aborted, err := c.AbortStale(ctx, channel, stale)
		for _, f := range aborted {
			fmt.Fprintf(w, "aborted stale upload %s (%s)\n", f.Name, f.ID)
		}
		if err != nil {
			return err
		}
	}
	for _, grp := range drop {
		n, err := c.DropGroup(ctx, channel, grp)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "dropped group %s; %d file(s) released\n", grp, n)
	}
	return nil
}
