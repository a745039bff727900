package filecast

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// Settings are a channel's settings. A zero field leaves the setting as
// it is.
type Settings struct {
	// MaxBytes is the channel's budget (SendOptions.MaxBytes).
	MaxBytes int64
	// KeepFailed is how long a file a group gave up on is kept in Redis for
	// the group (a dead letter, counted in the budget), to be delivered
	// again with Retry; then it is released and status records that it was
	// dropped. Negative: files given up on are released at once.
	// default: 24h
	KeepFailed time.Duration
	// GroupExpiry drops a group whose members have all been gone this long,
	// releasing what only it held; status records it. Negative: off again.
	// default: off
	GroupExpiry time.Duration
}

// Configure sets channel's settings.
func (c *Client) Configure(ctx context.Context, channel string, s Settings) error {
	ch, err := c.channel(channel)
	if err != nil {
		return err
	}
	if s.MaxBytes > 0 && s.MaxBytes < int64(c.opt.ChunkSize) {
		return fmt.Errorf("%w: budget %d bytes is smaller than one chunk (%d bytes)", ErrUsage, s.MaxBytes, c.opt.ChunkSize)
	}
	if s.GroupExpiry > 0 && s.GroupExpiry < c.opt.Lease {
		return fmt.Errorf("%w: GroupExpiry %v: must be longer than the lease (%v), or live groups would be dropped", ErrUsage, s.GroupExpiry, c.opt.Lease)
	}
	c.mu.Lock()
	delete(c.budgets, ch.Keys().Base())
	c.mu.Unlock()
	return ch.Configure(ctx, store.Settings{MaxBytes: s.MaxBytes, KeepFailed: s.KeepFailed, GroupExpiry: s.GroupExpiry})
}

// holders says which groups hold channel's budget, most bytes first.
func (c *Client) holders(ctx context.Context, ch store.Channel) ([]Holder, error) {
	hs, err := ch.Holders(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Holder, 0, len(hs))
	for _, h := range hs {
		// Best effort: a user who may not read the members (a sender's
		// ACL) goes by when the last of them was seen alone.
		live, err := leaseHeld(ctx, ch, h.Group)
		if err != nil {
			c.log.Debug("read the leases of the members of a group holding the budget", "group", h.Group, "err", err)
		}
		x := Holder{Group: h.Group, Bytes: h.Bytes, Gone: goneFor(h, live), Blocked: map[string]string{}}
		for m, v := range h.Blocked {
			if b := parseBlocked(v); b != nil {
				x.Blocked[m] = b.Reason
			}
		}
		out = append(out, x)
	}
	// Most bytes first; among equals, the groups that would not free them
	// (gone, then blocked) first.
	slices.SortStableFunc(out, func(a, b Holder) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(b.Gone, a.Gone), cmp.Compare(len(b.Blocked), len(a.Blocked)))
	})
	return out, nil
}

// Retry delivers again to group the files it gave up on and still keeps
// (ids; every one if none), and returns the ids delivered. A file whose
// retention ended, or that was released, cannot be.
//
// A channel never used is an error wrapping ErrNoChannel, a group that is
// not one of the channel's an error wrapping ErrNoGroup.
func (c *Client) Retry(ctx context.Context, channel, group string, ids ...string) ([]string, error) {
	ch, err := c.existing(ctx, "retry", channel)
	if err != nil {
		return nil, err
	}
	if err := c.knownGroup(ctx, ch, "retry", group); err != nil {
		return nil, err
	}
	return ch.Retry(ctx, group, ids...)
}

// knownGroup checks that group is one of ch's groups.
func (c *Client) knownGroup(ctx context.Context, ch store.Channel, op, group string) error {
	if err := wire.CheckChannel("group", group); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	ok, err := ch.HasGroup(ctx, group)
	if err != nil || ok {
		return err
	}
	return c.noGroup(ctx, ch, op, group)
}

// ReleaseFailed gives up for good the files group (every group, if empty)
// gave up on and still keeps, releasing those no other group needs, and
// returns how many it gave up. Errors are as Retry's.
func (c *Client) ReleaseFailed(ctx context.Context, channel, group string) (int, error) {
	ch, err := c.existing(ctx, "release failed files", channel)
	if err != nil {
		return 0, err
	}
	if group != "" {
		if err := c.knownGroup(ctx, ch, "release failed files", group); err != nil {
			return 0, err
		}
	}
	n, _, err := ch.Sweep(ctx, group, true)
	return int(n), err
}

// DropGroup removes group from channel: it stops holding back files, and
// files only it was waiting for are released. It returns how many were.
// Members of the group still running fail with a "group no longer exists"
// error. Errors are as Retry's: dropping a group that is not there (a
// typo, or dropped already) records nothing.
func (c *Client) DropGroup(ctx context.Context, channel, group string) (int, error) {
	ch, err := c.existing(ctx, "drop group", channel)
	if err != nil {
		return 0, err
	}
	if err := wire.CheckChannel("group", group); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	n, err := ch.Drop(ctx, group, "dropped by an operator")
	if errors.Is(err, ErrNoGroup) {
		return 0, c.noGroup(ctx, ch, "drop group", group)
	}
	return int(n), err
}

// Abort gives up upload id: receivers reading it get ErrAborted, and its
// data is released once every group has seen the abort. A channel never
// used is an error wrapping ErrNoChannel.
func (c *Client) Abort(ctx context.Context, channel, id, reason string) error {
	ch, err := c.existing(ctx, "abort", channel)
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "aborted"
	}
	return ch.Abort(ctx, id, reason)
}

// AbortStale aborts every upload of channel whose sender has been silent
// for longer than olderThan, and returns them. A channel never used is an
// error wrapping ErrNoChannel.
func (c *Client) AbortStale(ctx context.Context, channel string, olderThan time.Duration) ([]FileStatus, error) {
	ch, err := c.existing(ctx, "abort stale uploads", channel)
	if err != nil {
		return nil, err
	}
	s, err := c.status(ctx, ch)
	if err != nil {
		return nil, err
	}
	var out []FileStatus
	for _, f := range s.Files {
		if f.State == string(wire.Uploading) && time.Since(f.Heartbeat) > olderThan {
			reason := fmt.Sprintf("sender %s silent for %v; aborted by an operator", f.Sender, time.Since(f.Heartbeat).Round(time.Second))
			if err := c.Abort(ctx, channel, f.ID, reason); err != nil {
				return out, err
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// Orphans finds the chunks of channel that nothing will delete (on a Redis
// Cluster: chunks a sender stored after its file was released, then died
// before it could delete them), looking on every primary, and with remove
// deletes them. It returns how many it found. Files in use are safe. A
// channel never used is an error wrapping ErrNoChannel.
func (c *Client) Orphans(ctx context.Context, channel string, remove bool) (int, error) {
	ch, err := c.existing(ctx, "look for orphaned chunks", channel)
	if err != nil {
		return 0, err
	}
	return ch.Orphans(ctx, remove)
}
