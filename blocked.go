package filecast

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/filecast/filecast/internal/store"
)

// Blocked says that a member stopped taking files because handling one
// failed on its own side (ReceiveOptions.OnBlocked).
type Blocked struct {
	File  FileInfo
	Err   error     // why; nil once the file went through
	Since time.Time // when the member was blocked
}

// isLocal reports whether a handler's error is a fault of the receiver's
// own side, which waiting can clear, rather than of the file.
func isLocal(err error) bool {
	return errors.Is(err, ErrLocal) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EIO)
}

// sameFault reports whether two local faults are the same one told
// differently (the room left changes as the disk fills): the same errno,
// or else the same words.
func sameFault(a, b error) bool {
	var ea, eb syscall.Errno
	if errors.As(a, &ea) && errors.As(b, &eb) {
		return ea == eb
	}
	return a.Error() == b.Error()
}

// Local fault retries: the first after blockedFirst, then twice as long
// each time, up to blockedMax.
const (
	blockedFirst = time.Second
	blockedMax   = 30 * time.Second
)

// blockage is one file this member is blocked on.
type blockage struct {
	Blocked
	wait time.Duration // before the next try
}

// block records that handling a's file failed on the receiver's own side
// (b is nil the first time), tells OnBlocked and status, and waits before
// the next try. It returns false if fctx ended meanwhile.
func (r *receiver) block(fctx context.Context, a store.Announce, info FileInfo, err error, b **blockage) bool {
	if *b == nil {
		r.c.stats.local.Add(1)
		r.mu.Lock()
		r.blockedN++
		r.mu.Unlock()
		*b = &blockage{Blocked: Blocked{File: info, Err: err, Since: time.Now()}, wait: blockedFirst}
		r.tellBlocked(a, **b)
	} else if !sameFault((*b).Err, err) {
		(*b).Err = err
		r.tellBlocked(a, **b)
	}
	select {
	case <-time.After((*b).wait):
	case <-fctx.Done():
		return false
	}
	(*b).wait = min(2*(*b).wait, blockedMax)
	return true
}

// unblock ends a blockage: the file went through, failed otherwise, or the
// member stops.
func (r *receiver) unblock(a store.Announce, b **blockage) {
	if *b == nil {
		return
	}
	r.mu.Lock()
	r.blockedN--
	if r.blockedN == 0 {
		close(r.unblocked)
		r.unblocked = make(chan struct{})
	}
	r.mu.Unlock()
	(*b).Err = nil
	r.tellBlocked(a, **b)
	*b = nil
}

// tellBlocked reports a blockage (or its end) to OnBlocked and, for
// status, in Redis.
func (r *receiver) tellBlocked(a store.Announce, b blockage) {
	if r.opt.OnBlocked != nil {
		r.opt.OnBlocked(b.Blocked)
	}
	// Best effort, on a context of its own: the member may be stopping.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if b.Err == nil {
		r.ch.SetBlocked(ctx, r.opt.Group, r.opt.Member, "")
		return
	}
	r.ch.SetBlocked(ctx, r.opt.Group, r.opt.Member,
		strconv.FormatInt(b.Since.UnixMilli(), 10)+"\t"+b.File.ID+"\t"+b.File.Name+"\t"+b.Err.Error())
}

// waitUnblocked waits while this member is blocked on a file: it takes no
// new files meanwhile.
func (r *receiver) waitUnblocked(ctx context.Context) error {
	for {
		r.mu.Lock()
		n, ch := r.blockedN, r.unblocked
		r.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// failFast is the error Receive stops with at a local fault
// (ReceiveOptions.FailFast).
func (r *receiver) failFast(info FileInfo, err error) error {
	r.c.stats.local.Add(1)
	if errors.Is(err, ErrLocal) {
		return &Error{Op: "receive", Channel: info.Channel, Name: info.Name, ID: info.ID, Err: err}
	}
	return &Error{Op: "receive", Channel: info.Channel, Name: info.Name, ID: info.ID, Err: fmt.Errorf("%w: %w", ErrLocal, err)}
}
