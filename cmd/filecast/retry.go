package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/filecast/filecast"
)

type retryOptions struct {
	group string
	all   bool
}

func newRetry(g *globals) *cobra.Command {
	o := &retryOptions{}
	cmd := &cobra.Command{
		Use:   "retry CHANNEL --group GROUP (NAME|ID... | --all)",
		Short: "Deliver the files a group gave up on to it again",
		Long: `Deliver again to GROUP the files it gave up on (its handler kept failing,
or the file failed its integrity check) and still keeps: they are kept in
Redis, counted in the budget, for the channel's --keep-failed time (24h
unless set with "filecast send --keep-failed"). "filecast status CHANNEL"
lists them; name them by name or id, or --all. A running member of the
group gets them at once; other groups are not affected.`,
		Example: `  filecast status logs
  filecast retry logs --group audit app.log.2
  filecast retry logs --group audit --all`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) < 1:
				return usagef("retry needs a CHANNEL (see filecast retry --help)")
			case o.group == "":
				return usagef("retry needs --group GROUP: the group to deliver the files to again")
			case o.all == (len(args) > 1):
				return usagef("retry needs the names or ids of the files to deliver again, or --all (not both)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminHint(runRetry(cmd.Context(), g, o, args[0], args[1:], cmd.ErrOrStderr()), args[0])
		},
	}
	cmd.Flags().StringVarP(&o.group, "group", "g", "", "the group to deliver the files to again (required)")
	cmd.Flags().BoolVar(&o.all, "all", false, "every file the group keeps")
	return cmd
}

func runRetry(ctx context.Context, g *globals, o *retryOptions, channel string, wanted []string, w io.Writer) error {
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Status(ctx, channel)
	if err != nil {
		return err
	}
	var kept []filecast.FailedFile
	i := slices.IndexFunc(st.Groups, func(grp filecast.GroupStatus) bool { return grp.Name == o.group })
	if i < 0 {
		return noGroup(st, o.group)
	}
	for _, f := range st.Groups[i].Failed {
		if f.State == "kept" {
			kept = append(kept, f)
		}
	}
	var ids []string
	names := map[string]string{}
	for _, f := range kept {
		names[f.ID] = f.Name
		if o.all || slices.Contains(wanted, f.ID) || slices.Contains(wanted, f.Name) {
			ids = append(ids, f.ID)
		}
	}
	for _, want := range wanted {
		if !slices.ContainsFunc(kept, func(f filecast.FailedFile) bool { return f.ID == want || f.Name == want }) {
			return fmt.Errorf("group %s keeps no failed file %q (see filecast status %s)", o.group, want, channel)
		}
	}
	if len(ids) == 0 {
		fmt.Fprintf(w, "group %s keeps no failed file\n", o.group)
		return nil
	}
	done, err := c.Retry(ctx, channel, o.group, ids...)
	if err != nil {
		return err
	}
	for _, id := range done {
		fmt.Fprintf(w, "delivering %s to group %s again\n", names[id], o.group)
	}
	if len(done) < len(ids) {
		return fmt.Errorf("%d of %d files could not be delivered again: released meanwhile", len(ids)-len(done), len(ids))
	}
	return nil
}

// noGroup is the error for a group st does not have: it says which groups
// there are, and when and why this one was dropped if it was.
func noGroup(st *filecast.ChannelStatus, group string) error {
	err := fmt.Errorf("retry: %w: channel %q has no group %q", filecast.ErrNoGroup, st.Channel, group)
	for _, d := range st.Dropped {
		if d.Name == group {
			err = fmt.Errorf("%w (it was dropped %s ago: %s)", err, ago(d.At), d.Reason)
		}
	}
	var names []string
	for _, g := range st.Groups {
		names = append(names, g.Name)
	}
	if len(names) == 0 {
		return fmt.Errorf("%w; it has no groups", err)
	}
	return fmt.Errorf("%w; its groups are: %s", err, strings.Join(names, ", "))
}
