package filecast

import (
	"context"
	"fmt"
	"time"

	"github.com/filecast/filecast/internal/wire"
)

// Handler processes one file. It is called on its own goroutine, up to
// ReceiveOptions.Concurrency at once. Returning nil acknowledges the file
// for the group (after Receive has read and verified any bytes the
// handler left unread); returning an error has it retried, from its first
// byte, up to ReceiveOptions.Retries more times. If ctx is cancelled the
// file is not acknowledged and will be delivered again.
type Handler func(ctx context.Context, f *File) error

// Result is the outcome of one file at one member.
type Result struct {
	File     FileInfo
	Err      error // nil: handled and acknowledged
	Attempts int
	// Lost reports that the member's claim expired and another member took
	// the file over; this member neither acknowledged nor delivered it.
	Lost bool
}

// Joined describes a member that joined its group (ReceiveOptions.OnJoined).
type Joined struct {
	Channel, Group, Member string
	// New: this Receive created the group (no member had joined it
	// before, or it had been dropped); it gets the files sent from now on.
	New bool
	// Others are, when New, the channel's other groups, sorted: a new
	// group beside them may be a mistyped name.
	Others []string
}

// Receive joins group to channel and hands every file the group gets to h
// while the file is still arriving. Members of one group (Receive calls
// with the same Group, in any process) share the files; each file is
// acknowledged once h succeeded (at-least-once). A member that restarts
// with the same Member name resumes its unfinished files first; files of a
// member that stops renewing its lease are taken over by another after
// Options.Lease.
//
// Receive runs until ctx ends (returning ctx.Err()), or with UntilEOF until
// the group has handled everything before the first end-of-batch mark it
// had not passed when Receive started: then it returns nil, or an error wrapping ErrCorrupt if any file this member
// handled failed its integrity check, or ErrFailed if any was given up. It
// returns early on errors that affect every file: ErrUnavailable, ErrAuth,
// ErrBusy (the member name is in use), or ErrGroupDropped (the group was
// dropped while it received).
func (c *Client) Receive(ctx context.Context, channel string, h Handler, opt ReceiveOptions) error {
	ch, err := c.channel(channel)
	if err != nil {
		return err
	}
	if err := wire.CheckChannel("group", opt.Group); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if opt.Member == "" {
		opt.Member = c.host
	}
	if err := wire.CheckChannel("member", opt.Member); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if opt.Concurrency == 0 {
		opt.Concurrency = 1
	}
	if opt.Concurrency < 1 {
		return fmt.Errorf("%w: Concurrency must be at least 1", ErrUsage)
	}
	switch {
	case opt.Retries == 0:
		opt.Retries = 2
	case opt.Retries < 0:
		opt.Retries = 0
	}
	if err := ch.Register(ctx); err != nil {
		return err
	}
	created, others, err := ch.JoinNew(ctx, opt.Group)
	if err != nil {
		return err
	}
	r := &receiver{c: c, ch: ch, h: h, opt: opt, token: c.token(), inflight: make(map[string]bool), handled: make(map[string]bool),
		bell: make(chan struct{}), markBell: make(chan struct{}), unblocked: make(chan struct{})}
	if opt.UntilEOF {
		// The batch to finish ends at the first mark after this one.
		gi, _, err := ch.Group(ctx, opt.Group)
		if err != nil {
			return err
		}
		r.since = gi.Mark
	}
	if err := r.claimMember(ctx, false); err != nil {
		return err
	}
	defer func() {
		c.abandon(r.token)
		bg := context.WithoutCancel(ctx)
		ch.ReleaseMember(bg, opt.Group, opt.Member, r.token)
		if c.st.Spread() {
			// Deletions a killed client left journaled (a cluster's).
			cctx, cancel := context.WithTimeout(bg, 5*time.Second)
			ch.Collect(cctx)
			cancel()
		}
	}()
	if opt.OnJoined != nil {
		opt.OnJoined(Joined{Channel: channel, Group: opt.Group, Member: opt.Member, New: created, Others: others})
	}
	return r.run(ctx)
}
