package store

import (
	"context"
	"time"

	"github.com/redis/rueidis"
)

// timed is a rueidis client that tells observe how long each command took
// to be answered (Config.RoundTrip).
//
// Why a wrapper rather than a periodic PING: every command of the control
// connection goes through its Do or DoMulti (scripts too: Lua.Exec calls
// Do), so wrapping the client is the one place that sees them all, with
// no change at the call sites, and it measures the commands filecast
// really sends under the load they really meet, where a PING of its own
// would measure an idle round trip. Left out on purpose:
//   - blocking commands (XREAD BLOCK, XREADGROUP BLOCK, WAIT): their time
//     is mostly how long there was nothing to read;
//   - the chunk connections (bulk, replica): a chunk's time is mostly
//     moving a megabyte, which says more about bandwidth than about how
//     quickly Redis answers;
//   - commands that failed without a reply (a dropped connection, a
//     cancelled context): no round trip was made.
type timed struct {
	rueidis.Client
	observe func(time.Duration)
}

func (t timed) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if cmd.IsBlock() { // rueidis recycles cmd once sent: ask before
		return t.Client.Do(ctx, cmd)
	}
	start := time.Now()
	r := t.Client.Do(ctx, cmd)
	if r.NonRedisError() == nil {
		t.observe(time.Since(start))
	}
	return r
}

// DoMulti sends the commands as one pipeline: one round trip.
func (t timed) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	for i := range cmds {
		if cmds[i].IsBlock() {
			return t.Client.DoMulti(ctx, cmds...)
		}
	}
	start := time.Now()
	rs := t.Client.DoMulti(ctx, cmds...)
	for _, r := range rs {
		if r.NonRedisError() != nil {
			return rs
		}
	}
	t.observe(time.Since(start))
	return rs
}
