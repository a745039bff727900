package filecast

import (
	"fmt"
	"sync/atomic"
	"time"
)

// idleReport is how long a reader that has caught up with the upload waits
// before it reports its progress when the channel's budget had room at the
// last report. With the budget full it reports at once.
const idleReport = 100 * time.Millisecond

// reporter records, in the background, how far a group's reader has
// durably consumed a file, so that chunks every group has consumed can be
// released while the channel is over budget (a file larger than the budget
// streams through it). Reports never hold up the reader: they go out
// from their own goroutine, and a report asked for while one is in flight
// is merged into the next.
//
// A report is due every `every` chunks, and when the reader has caught up
// with the upload (it may be waiting for chunks the full budget holds
// back): at once if the last report found the budget full, after
// idleReport otherwise.
type reporter struct {
	f        *File
	every    int64
	consumed atomic.Int64 // highest chunk handed on in full
	full     atomic.Bool  // the last report found the budget full
	now      chan struct{}
	idle     chan struct{}

	signaled int64 // reader side: consumed at the last "now"
}

func newReporter(f *File, every int64) *reporter {
	return &reporter{f: f, every: every, now: make(chan struct{}, 1), idle: make(chan struct{}, 1)}
}

// consume records, on the reader's goroutine, that chunk seq was handed on.
func (r *reporter) consume(seq int64) {
	if seq <= r.consumed.Load() {
		return
	}
	r.consumed.Store(seq)
	if seq-r.signaled >= r.every {
		r.signaled = seq
		poke(r.now)
	}
}

// caughtUp tells the reporter, on the reader's goroutine, that the reader
// is about to wait for the next chunk.
func (r *reporter) caughtUp() {
	if r.full.Load() {
		r.signaled = r.consumed.Load()
		poke(r.now)
	} else {
		poke(r.idle)
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run reports until the file's context ends or a report fails.
func (r *reporter) run() {
	f := r.f
	var reported int64
	var timer *time.Timer
	var idle <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-r.now:
		case <-r.idle:
			if idle == nil {
				timer = time.NewTimer(idleReport)
				idle = timer.C
			}
			continue
		case <-idle:
			idle = nil
		case <-f.ctx.Done():
			return
		}
		seq := r.consumed.Load()
		if seq <= reported {
			continue
		}
		if f.syncer != nil {
			if err := f.syncer.Sync(); err != nil {
				r.fail(err)
				return
			}
		}
		full, err := f.ch.Progress(f.ctx, f.ID, f.group, seq, DefaultMaxBytes)
		if err != nil {
			r.fail(err)
			return
		}
		r.full.Store(full)
		reported = seq
	}
}

// fail stops the file's reading with err: the reader, perhaps waiting for
// chunks that only this report would have let the sender store, returns it.
func (r *reporter) fail(err error) {
	if r.f.ctx.Err() != nil {
		return // the file was closed
	}
	r.f.cancel(fmt.Errorf("report progress of %s: %w", r.f.Name, err))
}
