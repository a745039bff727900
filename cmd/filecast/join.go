package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

type joinOptions struct {
	groups []string
	json   bool
}

func newJoin(g *globals) *cobra.Command {
	o := &joinOptions{}
	cmd := &cobra.Command{
		Use:   "join CHANNEL --group GROUP...",
		Short: "Create receiver groups on a channel before any of their members runs",
		Long: `Create GROUP on CHANNEL without receiving: from now on the group gets every
file sent to the channel, held in Redis until one of its members receives
it. A receiver joins its group itself when it starts; join is for the
order of a script or a deployment — groups set up before the first send,
so that no file is sent before they exist, and a sender never stops at
"no receiver group has joined the channel".

Joining a group that exists changes nothing. Every group holds its files
in the channel's budget until it has them: drop a group no longer wanted
with "filecast clean CHANNEL --drop-group GROUP".`,
		Example: `  # a batch job: the group first, then the send, then (any time later) the receiver
  filecast join datasets --group train
  filecast send datasets ./shards --eof
  filecast recv datasets --group train --dir ./data --until-eof

  # provision the groups of a fleet
  filecast join configs --group web --group db`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) != 1:
				return usagef("join needs exactly one CHANNEL (see filecast join --help)")
			case len(o.groups) == 0:
				return usagef("join needs --group GROUP: the receiver group to create")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJoin(cmd.Context(), g, o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringArrayVarP(&o.groups, "group", "g", nil, "receiver group to create (repeatable)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object per group on stdout")
	return cmd
}

func runJoin(ctx context.Context, g *globals, o *joinOptions, channel string, stdout, stderr io.Writer) error {
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	enc := json.NewEncoder(stdout)
	for _, group := range o.groups {
		j, err := c.JoinGroup(ctx, channel, group)
		if err != nil {
			return err
		}
		if o.json {
			enc.Encode(timed(map[string]any{"event": "joined", "channel": channel, "group": group,
				"new": j.New, "existing_groups": j.Others}))
			continue
		}
		if !j.New {
			fmt.Fprintf(stderr, "group %s is on channel %s already: nothing changed\n", group, channel)
			continue
		}
		msg := fmt.Sprintf("created group %s on channel %s: it gets every file sent from now on", group, channel)
		if len(j.Others) > 0 {
			msg += "; existing groups: " + strings.Join(j.Others, ", ")
		}
		fmt.Fprintln(stderr, msg)
	}
	return nil
}
