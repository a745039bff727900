package filecast

import (
	"context"
	"time"

	"github.com/filecast/filecast/internal/store"
)

// What a sender records for status to show (docs/PROTOCOL.md): the size it
// expects a regular file to have (wire.File.Expect, from sizeOf), and,
// while it waits for budget, that it waits.

// A sender that has waited for budget waitRecordAfter records so in Redis
// (store.Keys.Waiting) and refreshes the record every waitRecordEvery; the
// record lapses waitRecordTTL after the last refresh (a sender killed
// while it waits). Shorter waits, which a sender streaming a file larger
// than the budget makes for nearly every chunk, leave no record and cost
// no round trip.
const (
	waitRecordAfter = time.Second
	waitRecordEvery = 5 * time.Second
	waitRecordTTL   = 3 * waitRecordEvery
)

// recordWait records, or refreshes, that u waits for budget since w.since.
// Best effort: a sender that may not write the record waits all the same.
func (u *upload) recordWait(ctx context.Context, w *budgetWait, now time.Time) {
	if now.Sub(w.since) < waitRecordAfter || now.Sub(w.recorded) < waitRecordEvery {
		return
	}
	w.recorded = now
	err := u.ch.SetWaiting(ctx, store.Waiter{ID: u.id, Name: u.name, Sender: u.c.host + "/" + u.c.pid,
		Since: w.since, Seen: now, TTL: waitRecordTTL})
	if err != nil && ctx.Err() == nil {
		u.c.log.Debug("record waiting for budget", "err", err)
	}
}

// waited ends a wait for budget: the room was granted, or the upload
// stops. It removes the record recordWait made, if any.
func (u *upload) waited(ctx context.Context, w *budgetWait) {
	if !w.recorded.IsZero() {
		// Also when ctx ended (the upload stops): briefly, since the record
		// lapses by itself anyway.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := u.ch.ClearWaiting(cctx, u.id); err != nil {
			u.c.log.Debug("clear the record of waiting for budget", "err", err)
		}
		cancel()
	}
	*w = budgetWait{}
}
