package filecast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// receiver is one running Receive: its member's claim on its name, the
// files it is handling, and the bells that wake its loop when the group
// moves on.
type receiver struct {
	c     *Client
	ch    store.Channel
	h     Handler
	opt   ReceiveOptions
	token string
	// since is, with UntilEOF, the group's last acknowledged end-of-batch
	// mark when the receive started ("" if none): it ends at the next one.
	since string

	mu       sync.Mutex
	inflight map[string]bool // entries being handled here
	// handled holds the entries handled here since the last read of the
	// files stream began: a batch read while one was still pending must not
	// hand it out again once it is done.
	handled map[string]bool
	bell    chan struct{} // closed and replaced when a group member acks
	// markBell is closed and replaced when a group member acks an
	// end-of-batch mark: only that can end an UntilEOF receive.
	markBell chan struct{}
	corrupt  int
	failed   int
	// blockedN counts the files handled here that failed on the receiver's
	// own side and wait for the fault to clear; unblocked is closed and
	// replaced when it drops to 0.
	blockedN  int
	unblocked chan struct{}
}

func (r *receiver) claimMember(ctx context.Context, renew bool) error {
	holder, ok, err := r.ch.ClaimMember(ctx, r.opt.Group, r.opt.Member, r.token, r.c.opt.Lease, false)
	if err != nil || ok {
		return err
	}
	if !renew && r.c.deadOnThisHost(holder) {
		_, _, err = r.ch.ClaimMember(ctx, r.opt.Group, r.opt.Member, r.token, r.c.opt.Lease, true)
		return err
	}
	return fmt.Errorf("%w: member %q of group %q is already receiving (%s); give each member its own name (ReceiveOptions.Member)",
		ErrBusy, r.opt.Member, r.opt.Group, holder)
}

// ring wakes everyone waiting for a group event; mark says the event may
// be the ack of an end-of-batch mark.
func (r *receiver) ring(mark bool) {
	r.mu.Lock()
	close(r.bell)
	r.bell = make(chan struct{})
	if mark {
		close(r.markBell)
		r.markBell = make(chan struct{})
	}
	r.mu.Unlock()
}

func (r *receiver) waitBell() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bell
}

func (r *receiver) waitMarkBell() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.markBell
}

func rang(bell <-chan struct{}) bool {
	select {
	case <-bell:
		return true
	default:
		return false
	}
}

func (r *receiver) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { // keep the member name ours
		t := time.NewTicker(r.c.opt.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := r.claimMember(gctx, true); err != nil {
					return err
				}
			case <-gctx.Done():
				return nil
			}
		}
	})
	g.Go(func() error { r.sweeper(gctx); return nil })
	g.Go(func() error { // hear other members' acks (end-of-batch waits)
		for gctx.Err() == nil {
			err := r.ch.Subscribe(gctx, r.opt.Group, r.ring)
			if gctx.Err() == nil {
				r.c.log.Debug("group subscription ended; resubscribing", "err", err)
				r.ring(true) // we may have missed an event
				select {
				case <-time.After(time.Second):
				case <-gctx.Done():
				}
			}
		}
		return nil
	})
	var done error
	g.Go(func() error {
		err := r.loop(gctx)
		if errors.Is(err, errFinished) {
			done = errFinished
			return errFinished // stops the helpers above
		}
		return err
	})
	err := g.Wait()
	if done == nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, store.ErrNoGroup) {
			return fmt.Errorf("%w: group %q of channel %q was dropped, or the server lost its data (restarted without persistence?); "+
				"a new Receive joins it anew and gets the files sent from then on (%w)",
				ErrGroupDropped, r.opt.Group, r.ch.Keys().Channel(), err)
		}
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.corrupt > 0:
		return fmt.Errorf("%w: %d file(s) received by this member failed verification", ErrCorrupt, r.corrupt)
	case r.failed > 0:
		return fmt.Errorf("%w: %d file(s) could not be handled", ErrFailed, r.failed)
	}
	return nil
}

var errFinished = errors.New("batch finished")

// readGrace is how long after its block a read of new entries waits for
// the server's reply before it is made again.
const readGrace = 5 * time.Second

// maxEventGap bounds how long a member waiting for an end-of-batch relies
// on group events alone (pub/sub may miss one around a reconnect).
const maxEventGap = 2 * time.Second

// loop reads the group's files stream and hands entries to workers.
func (r *receiver) loop(ctx context.Context) error {
	slots := make(chan struct{}, r.opt.Concurrency)
	var workers sync.WaitGroup
	defer workers.Wait()
	wctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	pending := true // first hand out our own unacknowledged entries
	lastClaim := time.Now()
	// Only the ack of an end-of-batch mark can finish an UntilEOF receive:
	// the group is checked at the start, after each such ack, and at least
	// every maxEventGap in case pub/sub missed one.
	var checked <-chan struct{} // the mark bell at the last check
	var lastCheck time.Time
	// Entries a read delivered whose reply was lost (the read is retried
	// after a dropped connection) sit in our pending list unseen: re-read
	// it every maxEventGap rather than wait a lease for XAUTOCLAIM.
	lastOwn := time.Now()
	for {
		if err := context.Cause(wctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		bell := r.waitMarkBell() // before the check, so no event slips between
		if r.opt.UntilEOF && (checked == nil || rang(checked) || time.Since(lastCheck) >= maxEventGap) {
			checked, lastCheck = bell, time.Now()
			if mark, err := r.finished(ctx); err != nil {
				return err
			} else if mark != "" {
				stop(batchEnded{mark})
				return errFinished
			}
		}
		// A member blocked on a file (a full disk...) takes no new ones.
		if err := r.waitUnblocked(wctx); err != nil {
			continue
		}
		// Take a free slot (waiting if all are busy), then any others free.
		select {
		case slots <- struct{}{}:
		case <-wctx.Done():
			continue
		}
		free := 1
		for free < r.opt.Concurrency {
			select {
			case slots <- struct{}{}:
				free++
				continue
			default:
			}
			break
		}
		if time.Since(lastOwn) >= maxEventGap {
			pending, lastOwn = true, time.Now()
		}
		batch, err := r.next(ctx, free, &pending, &lastClaim, bell)
		if err != nil {
			for range free {
				<-slots
			}
			return err
		}
		for _, a := range batch {
			r.mu.Lock()
			busy := r.inflight[a.Entry] || r.handled[a.Entry] || free == 0
			if !busy {
				r.inflight[a.Entry] = true
			}
			r.mu.Unlock()
			if busy {
				continue
			}
			free--
			workers.Add(1)
			go func() {
				defer workers.Done()
				var once sync.Once
				release := func() { once.Do(func() { <-slots }) }
				defer release()
				if err := r.work(wctx, a, release); err != nil {
					stop(err)
				}
				r.mu.Lock()
				delete(r.inflight, a.Entry)
				r.handled[a.Entry] = true
				r.mu.Unlock()
			}()
		}
		for range free {
			<-slots
		}
	}
}

// next returns up to n entries to handle: our own pending ones first, then
// ones taken over from silent members, then new ones (blocking).
func (r *receiver) next(ctx context.Context, n int, pending *bool, lastClaim *time.Time, bell <-chan struct{}) ([]store.Announce, error) {
	group, member := r.opt.Group, r.opt.Member
	// Entries finished before this read cannot be in what it returns.
	r.mu.Lock()
	clear(r.handled)
	r.mu.Unlock()
	if *pending {
		r.mu.Lock()
		busy := len(r.inflight)
		r.mu.Unlock()
		batch, err := r.ch.ReadGroup(ctx, group, member, int64(n+busy), 0, true)
		if err != nil {
			return nil, err
		}
		batch = r.notInFlight(batch)
		if len(batch) > 0 {
			return batch, nil
		}
		*pending = false
	}
	if time.Since(*lastClaim) >= r.c.opt.Lease/2 {
		*lastClaim = time.Now()
		batch, err := r.ch.AutoClaim(ctx, group, member, r.c.opt.Lease, int64(n))
		if err != nil {
			return nil, err
		}
		if batch = r.notInFlight(batch); len(batch) > 0 {
			return batch, nil
		}
	}
	// Block for new entries; the ack of an end-of-batch mark by a group
	// member interrupts the wait, as it may have finished the batch.
	// The block ends at the next lease check, and in UntilEOF mode after at
	// most maxEventGap, in case a group event came before our subscription.
	block := r.c.opt.Lease / 2
	if r.opt.UntilEOF {
		block = min(block, maxEventGap)
	}
	// A reply that never comes (a connection to a primary that a failover
	// left behind) must not hold the member: the read gives up readGrace
	// after its block ends, and is made again.
	rctx, cancel := context.WithTimeout(ctx, block+readGrace)
	defer cancel()
	if r.opt.UntilEOF {
		go func() {
			select {
			case <-bell:
				cancel()
			case <-rctx.Done():
			}
		}()
	}
	batch, err := r.ch.ReadGroup(rctx, group, member, int64(n), block, false)
	if rctx.Err() != nil && ctx.Err() == nil {
		// Interrupted: entries may have been delivered to us unseen.
		*pending = true
		return nil, nil
	}
	return batch, err
}

func (r *receiver) notInFlight(batch []store.Announce) []store.Announce {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := batch[:0]
	for _, a := range batch {
		if !r.inflight[a.Entry] && !r.handled[a.Entry] {
			out = append(out, a)
		}
	}
	return out
}

// finished returns the end-of-batch mark that ends this receive once the
// group has acknowledged it: the first after r.since. Its ack means every
// entry before it was acknowledged too.
func (r *receiver) finished(ctx context.Context) (mark string, err error) {
	gi, ok, err := r.ch.Group(ctx, r.opt.Group)
	if err != nil || !ok || !entryAfter(gi.Mark, r.since) {
		return "", err
	}
	return gi.Mark, nil
}

// batchEnded stops the files still being handled here when an UntilEOF
// receive ends at mark. Each decides for itself what that means for it
// (lostTo): one sent after the mark belongs to the next batch and is left
// unacknowledged for the next receive; one sent before it was taken over
// and acknowledged by another member (this one was frozen), so it is lost
// to this one.
type batchEnded struct{ mark string }

func (e batchEnded) Error() string {
	return "the batch ended; files of the next batch are left for the next receive"
}

// lostTo reports whether the end of the batch at cause means entry was
// handled by another member.
func lostTo(cause error, entry string) bool {
	var ended batchEnded
	return errors.As(cause, &ended) && entry != ended.mark && !entryAfter(entry, ended.mark)
}

// entryAfter reports whether the files-stream entry ID a comes after b;
// "" comes before every entry.
func entryAfter(a, b string) bool {
	if a == "" {
		return false
	}
	if b == "" {
		return true
	}
	ams, aseq := splitEntry(a)
	bms, bseq := splitEntry(b)
	return ams > bms || ams == bms && aseq > bseq
}

// splitEntry parses a stream entry ID, "<ms>-<seq>".
func splitEntry(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}

// work handles one entry. It returns an error only for failures that
// should stop the whole receiver.
func (r *receiver) work(ctx context.Context, a store.Announce, release func()) error {
	group, member := r.opt.Group, r.opt.Member
	if a.Group != "" && a.Group != group {
		// A file delivered again to another group (Retry): not ours.
		_, err := r.ch.Ack(ctx, a.ID, a.Entry, group, member, "", store.AckSkip)
		return err
	}
	var rec *wire.File
	var err error
	if a.ID != "" {
		rec, err = r.ch.File(ctx, a.ID)
	}
	if a.ID == "" || errors.Is(err, store.ErrGone) {
		// Released already (its other groups are done and ours was dropped
		// and rejoined, or the data was lost): nothing to deliver.
		_, err := r.ch.Ack(ctx, a.ID, a.Entry, group, member, "", store.AckDone)
		return err
	}
	if err != nil {
		if errors.Is(err, wire.ErrMalformed) {
			r.report(Result{File: FileInfo{Channel: r.ch.Keys().Channel(), ID: a.ID}, Err: corrupt(err), Attempts: 1})
			r.count(corrupt(err))
			_, err := r.ch.Ack(ctx, a.ID, a.Entry, group, member, "malformed record: "+err.Error(), store.AckDone)
			return err
		}
		return err
	}

	// Hold the lease while we work: renew it, and stop if it is lost.
	// fctx ends with ctx, with a cause of its own: when an UntilEOF receive
	// ends at a mark this file came before, another member delivered it,
	// and the handler must see ErrLost (a --dir handler then drops its
	// partial copy instead of keeping it to resume).
	fctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	defer context.AfterFunc(ctx, func() {
		cause := context.Cause(ctx)
		if lostTo(cause, a.Entry) {
			cause = ErrLost
		}
		cancel(cause)
	})()
	var renewer sync.WaitGroup
	defer renewer.Wait()
	renewer.Add(1)
	go func() {
		defer renewer.Done()
		t := time.NewTicker(r.c.opt.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				ok, err := r.ch.Renew(fctx, group, member, a.Entry)
				if err == nil && !ok {
					cancel(ErrLost)
					return
				}
			case <-fctx.Done():
				return
			}
		}
	}()
	defer cancel(nil) // stop the renewer before waiting for it

	if rec.Kind == wire.KindMark {
		release() // a mark waits without holding a slot
		return r.mark(fctx, a)
	}
	if rec.Live && rec.State == wire.Uploading {
		// A live upload (a pipe, a followed log) may never end: it must not
		// keep the member from every other file.
		release()
	}
	return r.file(ctx, fctx, a, rec)
}

// file runs the handler on a file, retrying, and acknowledges it. rec is
// its record as just read, for the first attempt.
func (r *receiver) file(ctx, fctx context.Context, a store.Announce, rec *wire.File) error {
	group, member := r.opt.Group, r.opt.Member
	res := Result{File: FileInfo{Channel: r.ch.Keys().Channel(), ID: a.ID, Entry: a.Entry}}
	var err error
	var blocked *blockage
	defer r.unblock(a, &blocked)
	defer inFlight(&r.c.stats.receiving)()
	for res.Attempts = 1; ; res.Attempts++ {
		err = r.attempt(fctx, a, rec, &res.File)
		rec = nil // a retry reads it again
		if err != nil && isLocal(err) && fctx.Err() == nil {
			// The receiver's own side failed: keep the file and wait for the
			// fault to clear; it does not use up a retry.
			if r.opt.FailFast {
				return r.failFast(res.File, err)
			}
			if !r.block(fctx, a, res.File, err, &blocked) {
				break
			}
			res.Attempts--
			continue
		}
		r.unblock(a, &blocked)
		if err == nil || ctx.Err() != nil || errors.Is(context.Cause(fctx), ErrLost) || errors.Is(err, ErrLost) ||
			errors.Is(err, ErrCorrupt) || errors.Is(err, ErrGone) || errors.Is(err, ErrAborted) ||
			errors.Is(err, ErrUnavailable) || errors.Is(err, ErrAuth) || res.Attempts > r.opt.Retries {
			break
		}
		r.c.log.Warn("handler failed; retrying", "file", res.File.Name, "attempt", res.Attempts, "err", err)
		select {
		case <-time.After(time.Duration(res.Attempts) * 500 * time.Millisecond):
		case <-fctx.Done():
		}
	}
	switch {
	case errors.Is(context.Cause(fctx), ErrLost) || errors.Is(err, ErrLost):
		res.Lost, res.Err = true, ErrLost
		r.report(res)
		return nil
	case ctx.Err() != nil:
		return nil // not acknowledged: delivered again on restart
	case errors.Is(err, ErrUnavailable) || errors.Is(err, ErrAuth):
		return err
	}
	reason, mode := "", store.AckDone
	if err != nil {
		res.Err = &Error{Op: "receive", Channel: res.File.Channel, Name: res.File.Name, ID: a.ID, Err: err}
		reason = err.Error()
		// A file the handler kept failing on, or that failed its check, is
		// kept for the group (a dead letter) to be retried; one that is gone
		// or was aborted has nothing left to keep.
		if !errors.Is(err, ErrGone) && !errors.Is(err, ErrAborted) {
			mode = store.AckDead
		}
	}
	out, aerr := r.ch.Ack(ctx, a.ID, a.Entry, group, member, reason, mode)
	if aerr != nil {
		return aerr
	}
	if out == store.AckLost {
		res.Lost, res.Err = true, ErrLost
	} else if err != nil && !errors.Is(err, ErrAborted) {
		r.count(err)
	}
	r.report(res)
	return nil
}

// attempt opens the file (from rec, if not nil) and runs the handler once.
func (r *receiver) attempt(ctx context.Context, a store.Announce, rec *wire.File, info *FileInfo) error {
	f, err := r.c.open(ctx, r.ch, a.ID, r.opt.Group, rec)
	if err != nil {
		return err
	}
	defer f.Close()
	f.member, f.entry = r.opt.Member, a.Entry
	size := f.Size
	if size < 0 && f.Expected > 0 {
		size = f.Expected // until the end record says
	}
	f.t = r.c.transfers.start(f.Channel, f.Name, true, size)
	f.t.setID(a.ID)
	defer f.t.end()
	*info = f.FileInfo
	if err := r.h(ctx, f); err != nil {
		return err
	}
	// Verify whatever the handler left unread: the file is acknowledged
	// only if all of it arrived intact.
	if _, err := io.Copy(io.Discard, f); err != nil {
		return err
	}
	*info = f.FileInfo
	return nil
}

// mark completes an end-of-batch mark once every earlier file of the group
// has been acknowledged.
func (r *receiver) mark(ctx context.Context, a store.Announce) error {
	for {
		bell := r.waitBell()
		n, err := r.ch.PendingBefore(ctx, r.opt.Group, a.Entry)
		if err != nil {
			return ignoreCancel(ctx, err)
		}
		if n == 0 {
			_, err := r.ch.Ack(ctx, a.ID, a.Entry, r.opt.Group, r.opt.Member, "", store.AckDone)
			r.ring(true) // our own loop may not hear the group event yet
			return ignoreCancel(ctx, err)
		}
		select {
		case <-bell:
		case <-time.After(maxEventGap): // in case an event was missed
		case <-ctx.Done():
			return nil
		}
	}
}

func ignoreCancel(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (r *receiver) count(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if errors.Is(err, ErrCorrupt) {
		r.corrupt++
	} else {
		r.failed++
	}
}

func (r *receiver) report(res Result) {
	r.c.stats.result(res)
	if r.opt.OnResult != nil {
		r.opt.OnResult(res)
	}
}
