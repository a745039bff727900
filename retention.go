package filecast

import (
	"context"
	"time"
)

// Wait says why a sender waits for room in the channel's budget
// (SendOptions.OnWait).
type Wait struct {
	File    string        // the file waiting
	For     time.Duration // how long it has waited
	Holders []Holder      // the groups holding the budget, most bytes first
}

// Holder is a group holding part of a channel's budget: the bytes of the
// files it has not acknowledged.
type Holder struct {
	Group string
	Bytes int64
	// Gone is how long the group has had no member running: every
	// member's lease has expired (GroupStatus.Gone); 0 while one runs.
	Gone time.Duration
	// Blocked holds the members blocked by a fault of their own side
	// (ReceiveOptions.OnBlocked), with why.
	Blocked map[string]string
}

// How often a sender that waits for budget says why (SendOptions.OnWait),
// and gives up expired dead letters and groups (Settings).
const (
	waitFirstSaid = 3 * time.Second
	waitSaidEvery = 30 * time.Second
	sweepEvery    = 10 * time.Second
)

// budgetWait is what a sender waiting for budget has done about it.
type budgetWait struct {
	since, said, swept time.Time
	recorded           time.Time // for status (recordWait); zero: not recorded
}

// waiting is called each time a sender finds the budget full: now and then
// it gives up what expired (the receivers of a dead group never will) and
// says who holds the budget.
func (u *upload) waiting(ctx context.Context, w *budgetWait) {
	now := time.Now()
	if w.since.IsZero() {
		w.since, w.swept = now, now
		u.c.stats.waitBegan()
	}
	if now.Sub(w.swept) >= sweepEvery {
		w.swept = now
		// Best effort: a user who may not expire anything waits as before.
		if _, _, err := u.ch.Sweep(ctx, "", false); err != nil {
			u.c.log.Debug("sweep while waiting for budget", "err", err)
		}
	}
	u.recordWait(ctx, w, now)
	if u.opt.OnWait == nil || now.Sub(w.since) < waitFirstSaid || now.Sub(w.said) < waitSaidEvery {
		return
	}
	w.said = now
	holders, err := u.c.holders(ctx, u.ch)
	if err != nil {
		u.c.log.Debug("find who holds the budget", "err", err)
	}
	u.opt.OnWait(Wait{File: u.name, For: now.Sub(w.since), Holders: holders})
}

// sweepEveryMax bounds how long a receiver goes between sweeps (and so
// how long a change of the settings takes to count).
const sweepEveryMax = 10 * time.Second

// sweeper gives up, now and then, the dead letters kept past the channel's
// retention and the groups gone past its expiry (Settings): receivers do,
// so that it happens while nobody waits for budget too. It runs until ctx
// ends; failures (a user who may not) are only logged.
func (r *receiver) sweeper(ctx context.Context) {
	if r.c.st.Spread() {
		r.ch.Collect(ctx) // deletions a killed client left journaled (a cluster's)
	}
	for {
		every := sweepEveryMax
		if s, err := r.ch.Settings(ctx); err == nil {
			for _, d := range []time.Duration{s.KeepFailed, s.GroupExpiry} {
				if d > 0 {
					every = min(every, max(d/2, time.Second))
				}
			}
		}
		select {
		case <-time.After(every):
		case <-ctx.Done():
			return
		}
		if _, _, err := r.ch.Sweep(ctx, "", false); err != nil && ctx.Err() == nil {
			r.c.log.Debug("sweep", "err", err)
		}
	}
}
