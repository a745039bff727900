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
var journaling = map[*script]bool{
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
	return ch.collect(ctx, ch.c.replicas == 0)
}

// collect is Collect; synced says the replicas already have every entry
// the journal could hold (the caller just waited for them), so it need not
// wait again before deleting.
func (ch Channel) collect(ctx context.Context, synced bool) (int64, error) {
	var freed int64
	start := "-"
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
		ids := make([]string, 0, 2*len(xs)) // entry ID, k
		for _, x := range xs {
			if err := ch.deleteJournaled(ctx, x.FieldValues); err != nil {
				if ctx.Err() != nil {
					return freed, ctx.Err()
				}
				bad = append(bad, fmt.Sprintf("%s: %v", x.ID, err))
				continue
			}
			ids = append(ids, x.ID, x.FieldValues["k"])
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

// Orphans finds the protocol 2 chunk keys of the channel that nothing will
// delete: those of a file whose record is gone (a sender killed after a
// late write), of an upload epoch a resume ended, or below the file's
// lowest kept chunk. It looks on every primary (SCAN) and, with remove,
// deletes them. It returns how many it found.
func (ch Channel) Orphans(ctx context.Context, remove bool) (int, error) {
	nodes := map[string]rueidis.Client{"": ch.c.rc}
	if ch.c.rc.Mode() == rueidis.ClientModeCluster {
		n, err := ch.c.nodes(ctx)
		if err != nil {
			return 0, err
		}
		all := ch.c.rc.Nodes()
		nodes = map[string]rueidis.Client{}
		for _, addr := range n.primaries {
			if c, ok := all[addr]; ok {
				nodes[addr] = c
			} else {
				return 0, fmt.Errorf("find orphaned chunks: no connection to primary %s", addr)
			}
		}
	}
	pattern := globEscape(ch.prefix) + ":{*}:c:" + globEscape(ch.name) + ":*"
	found := 0
	for addr, node := range nodes {
		var cursor uint64
		for {
			var entry rueidis.ScanEntry
			err := ch.c.retry(ctx, "find orphaned chunks on "+addr, func(ctx context.Context) (err error) {
				entry, err = node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
				return err
			})
			if err != nil {
				return found, err
			}
			var orphans []string
			for _, k := range entry.Elements {
				if orphan, err := ch.orphan(ctx, k); err != nil {
					return found, err
				} else if orphan {
					orphans = append(orphans, k)
				}
			}
			found += len(orphans)
			if remove && len(orphans) > 0 {
				err := ch.c.retry(ctx, "delete orphaned chunks", func(ctx context.Context) error {
					cmds := make(rueidis.Commands, 0, len(orphans))
					for _, k := range orphans { // each in a slot of its own
						cmds = append(cmds, ch.c.rc.B().Unlink().Key(k).Build())
					}
					for _, r := range ch.c.rc.DoMulti(ctx, cmds...) {
						if err := r.Error(); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return found, err
				}
			}
			if cursor = entry.Cursor; cursor == 0 {
				break
			}
		}
	}
	return found, nil
}

// orphan reports whether chunk key k is one nothing will delete.
func (ch Channel) orphan(ctx context.Context, k string) (bool, error) {
	i := strings.Index(k, "}:c:"+ch.name+":")
	if i < 0 {
		return false, nil
	}
	f := strings.Split(k[i+len("}:c:"+ch.name+":"):], ":")
	if len(f) != 3 {
		return false, nil // not a chunk key of this channel's form
	}
	ep, err1 := strconv.ParseInt(f[1], 10, 64)
	seq, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || k != ch.k.Chunk2(f[0], ep, seq) {
		return false, nil
	}
	var h []rueidis.RedisMessage
	err := ch.c.retry(ctx, "read a file record", func(ctx context.Context) (err error) {
		h, err = ch.c.rc.Do(ctx, ch.b().Hmget().Key(ch.k.File(f[0])).Field("v", "eps", "lo").Build()).ToArray()
		return err
	})
	if err != nil {
		return false, err
	}
	if len(h) != 3 || h[0].IsNil() {
		return true, nil // the file was released
	}
	eps, _ := h[1].ToString()
	lo, _ := h[2].AsInt64()
	want := int64(0)
	for _, w := range strings.Split(eps, ",") {
		st, e, ok := strings.Cut(w, ":")
		s, err1 := strconv.ParseInt(st, 10, 64)
		n, err2 := strconv.ParseInt(e, 10, 64)
		if ok && err1 == nil && err2 == nil && s <= seq {
			want = n
		}
	}
	return ep != want || seq < lo, nil
}

// globEscape escapes the characters SCAN's MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
