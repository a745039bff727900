package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/rueidis"
)

// The chunks of a protocol 2 file live outside the channel's slot, where
// no script can delete them: scripts journal them in the channel's gc
// stream instead (scripts/lib.lua, journal). Collect deletes what the
// journal lists and finishes its entries, which returns their bytes to the
// budget. Every client collects after a script that may have journaled
// something, and receivers and waiting senders collect now and then, so a
// journal that a crashed client left is finished by the next one.

// journaling holds the scripts that may journal chunks.
var journaling = map[*rueidis.Lua]bool{
	luaAck: true, luaAbort: true, luaCommit: true, luaComplete: true, luaDrop: true,
	luaProgress: true, luaReserve: true, luaResume: true, luaSweep: true,
}

// collectBatch is how many journal entries Collect handles per round, and
// deleteBatch how many UNLINKs it sends at once.
const (
	collectBatch = 64
	deleteBatch  = 512
)

// maxJournalChunks bounds the chunks one journal entry may name, so that a
// damaged entry cannot make a client loop for ever.
const maxJournalChunks = 1 << 28

// Collect deletes the chunk keys the channel's journal lists and finishes
// its entries. It returns the bytes returned to the budget. Entries that
// do not parse are left alone and reported.
func (ch Channel) Collect(ctx context.Context) (int64, error) {
	var freed int64
	start := "-"
	synced := ch.c.replicas == 0
	for {
		var xs []rueidis.XRangeEntry
		err := ch.c.retry(ctx, "read the deletion journal", func(ctx context.Context) (err error) {
			xs, err = ch.c.rc.Do(ctx, ch.b().Xrange().Key(ch.k.GC()).Start(start).End("+").Count(collectBatch).Build()).AsXRange()
			return err
		})
		if err != nil || len(xs) == 0 {
			return freed, err
		}
		if !synced {
			// What journaled the keys must survive a failover before they go.
			if err := ch.c.synced(ctx, ch.c.rc, "wait for replicas", ch.k.Files(), nil); err != nil {
				return freed, err
			}
			synced = true
		}
		var bad []string
		ids := make([]string, 0, len(xs))
		for _, x := range xs {
			if err := ch.deleteJournaled(ctx, x.FieldValues); err != nil {
				if ctx.Err() != nil {
					return freed, ctx.Err()
				}
				bad = append(bad, fmt.Sprintf("%s: %v", x.ID, err))
				continue
			}
			ids = append(ids, x.ID)
		}
		if len(ids) > 0 {
			m, err := ch.lua(ctx, "finish deletions", luaGC, ids...)
			if err != nil {
				return freed, err
			}
			n, _ := m.AsInt64()
			freed += n
		}
		if len(bad) > 0 {
			return freed, fmt.Errorf("deletion journal of %s: entries left alone: %s", ch.name, strings.Join(bad, "; "))
		}
		if len(xs) < collectBatch {
			return freed, nil
		}
		start = "(" + xs[len(xs)-1].ID
	}
}

// deleteJournaled deletes the chunk keys one journal entry names:
// f (file id) and k ('epoch:lo-hi' words).
func (ch Channel) deleteJournaled(ctx context.Context, fv map[string]string) error {
	id := fv["f"]
	if id == "" || strings.ContainsAny(id, " \t\r\n{}") {
		return fmt.Errorf("file id %q", id)
	}
	type span struct{ ep, lo, hi int64 }
	var spans []span
	total := int64(0)
	for w := range strings.FieldsSeq(fv["k"]) {
		ep, rng, ok1 := strings.Cut(w, ":")
		lo, hi, ok2 := strings.Cut(rng, "-")
		e, err1 := strconv.ParseInt(ep, 10, 64)
		a, err2 := strconv.ParseInt(lo, 10, 64)
		b, err3 := strconv.ParseInt(hi, 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil || e < 0 || a < 1 || b < a {
			return fmt.Errorf("chunk range %q", w)
		}
		total += b - a + 1
		if total > maxJournalChunks {
			return fmt.Errorf("more than %d chunks", maxJournalChunks)
		}
		spans = append(spans, span{e, a, b})
	}
	keys := make([]string, 0, deleteBatch)
	cmds := make(rueidis.Commands, 0, deleteBatch)
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := ch.c.retry(ctx, "delete chunks", func(ctx context.Context) error {
			cmds = cmds[:0] // rueidis recycles commands it has sent: build them anew
			for _, k := range keys {
				cmds = append(cmds, ch.c.rc.B().Unlink().Key(k).Build())
			}
			for _, r := range ch.c.rc.DoMulti(ctx, cmds...) {
				if err := r.Error(); err != nil {
					return err
				}
			}
			return nil
		})
		keys = keys[:0]
		return err
	}
	for _, s := range spans {
		for seq := s.lo; seq <= s.hi; seq++ {
			keys = append(keys, ch.k.Chunk2(id, s.ep, seq))
			if len(keys) == deleteBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// Journal returns how many entries the deletion journal holds (for status).
func (ch Channel) Journal(ctx context.Context) (int64, error) {
	var n int64
	err := ch.c.retry(ctx, "read the deletion journal", func(ctx context.Context) (err error) {
		n, err = ch.c.rc.Do(ctx, ch.b().Xlen().Key(ch.k.GC()).Build()).AsInt64()
		return err
	})
	return n, err
}
