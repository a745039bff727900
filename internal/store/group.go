package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Announce is one entry of the files stream as delivered to a group member.
type Announce struct {
	Entry string // stream entry id
	ID    string // file id; empty if the entry was deleted
	// Group is set on an entry that delivers a file again to that group
	// only (Retry); every other group just acknowledges it.
	Group string
}

// Join creates group on the channel (idempotent). The group receives every
// file announced from now on.
func (ch Channel) Join(ctx context.Context, group string) error {
	_, _, err := ch.JoinNew(ctx, group)
	return err
}

// JoinNew is Join that also reports whether this call created the group
// (a retry after a lost reply says so too) and then, sorted, the channel's
// other groups.
func (ch Channel) JoinNew(ctx context.Context, group string) (created bool, others []string, err error) {
	m, err := ch.lua(ctx, "join group", luaJoin, group, now(), callID())
	if err != nil {
		return false, nil, err
	}
	reply, err := m.ToArray()
	if err != nil || len(reply) == 0 {
		return false, nil, fmt.Errorf("join group %s: unexpected reply %v: %w", group, m, err)
	}
	if n, _ := reply[0].AsInt64(); n == 0 {
		return false, nil, nil
	}
	for _, r := range reply[1:] {
		g, err := r.ToString()
		if err != nil {
			return true, nil, fmt.Errorf("join group %s: %w", group, err)
		}
		others = append(others, g)
	}
	slices.Sort(others)
	return true, others, nil
}

// Drop removes group, recording why; files it held back are released. It
// returns how many, or ErrNoGroup if the channel has no such group.
func (ch Channel) Drop(ctx context.Context, group, reason string) (int64, error) {
	m, err := ch.lua(ctx, "drop group", luaDrop, group, now(), reason)
	if err != nil {
		return 0, err
	}
	n, err := m.AsInt64()
	if err == nil && n < 0 {
		return 0, fmt.Errorf("drop group %s: %w", group, ErrNoGroup)
	}
	return n, err
}

// ClaimMember takes the lease on member name for token. If a live process
// holds it, it returns that holder's token and ok=false.
func (ch Channel) ClaimMember(ctx context.Context, group, member, token string, ttl time.Duration, force bool) (holder string, ok bool, err error) {
	f := "0"
	if force {
		f = "1"
	}
	r, err := ch.luaString(ctx, "claim member", luaMember, group, member, token, strconv.FormatInt(ttl.Milliseconds(), 10), f, now())
	if err != nil {
		return "", false, err
	}
	return r, r == "ok", nil
}

// ReleaseMember gives the member lease up, if token still holds it.
func (ch Channel) ReleaseMember(ctx context.Context, group, member, token string) error {
	_, err := ch.luaString(ctx, "release member", luaMember, group, member, token, "0", "release", now())
	return err
}

func announces(xs []rueidis.XRangeEntry) []Announce {
	out := make([]Announce, 0, len(xs))
	for _, x := range xs {
		out = append(out, Announce{Entry: x.ID, ID: x.FieldValues["f"], Group: x.FieldValues["g"]})
	}
	return out
}

// ReadGroup delivers up to count announcements to member. With pending it
// returns the member's own unacknowledged entries (after a restart) and
// does not block; otherwise it returns new entries, blocking up to block.
func (ch Channel) ReadGroup(ctx context.Context, group, member string, count int64, block time.Duration, pending bool) ([]Announce, error) {
	id := ">"
	if pending {
		id = "0"
	}
	var out []Announce
	err := ch.c.retry(ctx, "read files stream", func(ctx context.Context) error {
		cmd := ch.b().Xreadgroup().Group(group, member).Count(count)
		var c rueidis.Completed
		if pending {
			c = cmd.Streams().Key(ch.k.Files()).Id(id).Build()
		} else {
			// UnblockOnCancel: without it rueidis ignores a cancel while
			// the caller's context also has a deadline.
			c = cmd.Block(block.Milliseconds()).Streams().Key(ch.k.Files()).Id(id).Build().UnblockOnCancel()
		}
		res, err := ch.c.rc.Do(ctx, c).AsXRead()
		if rueidis.IsRedisNil(err) {
			out = nil
			return nil
		}
		out = announces(res[ch.k.Files()])
		return err
	})
	return out, err
}

// AutoClaim takes over up to count entries that other members have held
// longer than idle without renewing their lease.
func (ch Channel) AutoClaim(ctx context.Context, group, member string, idle time.Duration, count int64) ([]Announce, error) {
	var out []Announce
	err := ch.c.retry(ctx, "take over idle files", func(ctx context.Context) error {
		arr, err := ch.c.rc.Do(ctx, ch.b().Xautoclaim().Key(ch.k.Files()).Group(group).Consumer(member).
			MinIdleTime(strconv.FormatInt(idle.Milliseconds(), 10)).Start("0-0").Count(count).Build()).ToArray()
		if err != nil {
			return err
		}
		if len(arr) < 2 {
			return nil
		}
		xs, err := arr[1].AsXRange()
		out = announces(xs)
		return err
	})
	return out, err
}

// Ack outcomes.
const (
	AckOK   = "ok"
	AckDup  = "dup"  // already acknowledged
	AckLost = "lost" // another member owns the entry now
)

// Ack modes: what an acknowledgement does with the file for the group.
const (
	AckDone = "done" // handled, or given up with a reason: the group is done with it
	AckDead = "dead" // given up with a reason, kept as a dead letter for the channel's retention
	AckSkip = "skip" // an entry delivering a file again to another group: only acknowledged
)

// Ack acknowledges file id (entry) for group, in mode. With a member it
// only acks if the member still owns the entry. A non-empty reason records
// a failure.
func (ch Channel) Ack(ctx context.Context, id, entry, group, member, reason, mode string) (string, error) {
	return ch.luaString(ctx, "acknowledge file", luaAck, id, entry, group, member, reason, mode, now())
}

// Retry delivers group's dead letters ids (all of them if none) to it
// again, and returns those delivered.
func (ch Channel) Retry(ctx context.Context, group string, ids ...string) ([]string, error) {
	return ch.luaSlice(ctx, "retry failed files", luaRetry, append([]string{group, now()}, ids...)...)
}

// DefaultKeep is how long dead letters are kept when the channel says
// nothing.
const DefaultKeep = 24 * time.Hour

// Sweep gives up the dead letters kept longer than the channel's
// retention, and drops groups gone longer than its group expiry. With a
// group, only its dead letters; with force, all of them. It returns how
// many dead letters were given up and groups dropped.
func (ch Channel) Sweep(ctx context.Context, group string, force bool) (gone, dropped int64, err error) {
	f := "0"
	if force {
		f = "1"
	}
	m, err := ch.lua(ctx, "sweep", luaSweep, now(), strconv.FormatInt(DefaultKeep.Milliseconds(), 10), group, f)
	if err != nil {
		return 0, 0, err
	}
	r, err := m.AsIntSlice()
	if err != nil || len(r) != 2 {
		return 0, 0, fmt.Errorf("sweep: unexpected reply: %w", err)
	}
	return r[0], r[1], nil
}

// Holder is a group holding part of the channel's budget.
type Holder struct {
	Group   string
	Bytes   int64             // of the files it has not acknowledged
	Seen    time.Time         // a member was last seen (or the group joined)
	SeenTTL time.Duration     // that member's lease: gone once Seen is older (0: unknown)
	Blocked map[string]string // blocked members (Keys.Blocked)
}

// Holders says which groups hold the channel's budget, most bytes first.
func (ch Channel) Holders(ctx context.Context) ([]Holder, error) {
	m, err := ch.lua(ctx, "find who holds the budget", luaHolders)
	if err != nil {
		return nil, err
	}
	arr, err := m.ToArray()
	if err != nil {
		return nil, err
	}
	out := make([]Holder, 0, len(arr))
	for _, g := range arr {
		f, err := g.ToArray()
		if err != nil || len(f) != 5 {
			return nil, fmt.Errorf("find who holds the budget: unexpected reply: %w", err)
		}
		h := Holder{}
		h.Group, _ = f[0].ToString()
		h.Bytes, _ = f[1].AsInt64()
		ms, _ := f[2].AsInt64()
		h.Seen = time.UnixMilli(ms)
		ttl, _ := f[3].AsInt64()
		h.SeenTTL = time.Duration(ttl) * time.Millisecond
		h.Blocked, _ = f[4].AsStrMap()
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Holder) int { return cmp.Compare(b.Bytes, a.Bytes) })
	return out, nil
}

// Dropped returns the groups dropped: group -> ms TAB reason.
func (ch Channel) Dropped(ctx context.Context) (map[string]string, error) {
	var m map[string]string
	err := ch.c.retry(ctx, "read dropped groups", func(ctx context.Context) (err error) {
		m, err = ch.c.rc.Do(ctx, ch.b().Hgetall().Key(ch.k.Dropped()).Build()).AsStrMap()
		return err
	})
	return m, err
}

// Renew extends member's lease on entry. It reports false if the entry is
// no longer the member's.
func (ch Channel) Renew(ctx context.Context, group, member, entry string) (bool, error) {
	m, err := ch.lua(ctx, "renew lease", luaRenew, group, member, entry)
	if err != nil {
		return false, err
	}
	n, err := m.AsInt64()
	return n == 1, err
}

// GroupInfo is a group's position in the files stream.
type GroupInfo struct {
	Name          string
	LastDelivered string
	Pending       int64
	Lag           int64 // entries not yet delivered; -1 if unknown
	Mark          string
}

// Groups describes every receiver group of the channel.
func (ch Channel) Groups(ctx context.Context) ([]GroupInfo, error) {
	var out []GroupInfo
	err := ch.c.retry(ctx, "read groups", func(ctx context.Context) error {
		out = out[:0]
		arr, err := ch.c.rc.Do(ctx, ch.b().XinfoGroups().Key(ch.k.Files()).Build()).ToArray()
		if err != nil {
			if rerr, ok := rueidis.IsRedisErr(err); ok && strings.Contains(rerr.Error(), "no such key") {
				return nil
			}
			return err
		}
		for _, g := range arr {
			m, err := g.AsMap()
			if err != nil {
				return err
			}
			gi := GroupInfo{Lag: -1}
			gi.Name = str(m, "name")
			gi.LastDelivered = str(m, "last-delivered-id")
			gi.Pending = num(m, "pending")
			if lag := m["lag"]; !lag.IsNil() {
				gi.Lag = num(m, "lag")
			}
			gi.Mark, _ = ch.c.rc.Do(ctx, ch.b().Hget().Key(ch.k.Group(gi.Name)).Field("mark").Build()).ToString()
			out = append(out, gi)
		}
		return nil
	})
	return out, err
}

// After reports whether the files stream holds an entry after entry.
func (ch Channel) After(ctx context.Context, entry string) (bool, error) {
	var any bool
	err := ch.c.retry(ctx, "look for entries after a mark", func(ctx context.Context) error {
		xs, err := ch.c.rc.Do(ctx, ch.b().Xrange().Key(ch.k.Files()).Start("("+entry).End("+").Count(1).Build()).AsXRange()
		any = len(xs) > 0
		return err
	})
	return any, err
}

// Group returns one group's info; ok is false if it does not exist.
func (ch Channel) Group(ctx context.Context, group string) (GroupInfo, bool, error) {
	gs, err := ch.Groups(ctx)
	for _, g := range gs {
		if g.Name == group {
			return g, true, err
		}
	}
	return GroupInfo{}, false, err
}

// MemberInfo describes one member of a group.
type MemberInfo struct {
	Name    string
	Pending int64
	Idle    time.Duration
}

// Members describes the members of group.
func (ch Channel) Members(ctx context.Context, group string) ([]MemberInfo, error) {
	var out []MemberInfo
	err := ch.c.retry(ctx, "read members", func(ctx context.Context) error {
		out = out[:0]
		arr, err := ch.c.rc.Do(ctx, ch.b().XinfoConsumers().Key(ch.k.Files()).Group(group).Build()).ToArray()
		if err != nil {
			return err
		}
		for _, c := range arr {
			m, err := c.AsMap()
			if err != nil {
				return err
			}
			var mi MemberInfo
			mi.Name = str(m, "name")
			mi.Pending = num(m, "pending")
			mi.Idle = time.Duration(num(m, "idle")) * time.Millisecond
			out = append(out, mi)
		}
		return nil
	})
	return out, err
}

// PendingBefore counts group's unacknowledged entries older than entry.
func (ch Channel) PendingBefore(ctx context.Context, group, entry string) (int64, error) {
	var n int64
	err := ch.c.retry(ctx, "count pending files", func(ctx context.Context) error {
		arr, err := ch.c.rc.Do(ctx, ch.b().Xpending().Key(ch.k.Files()).Group(group).Start("-").End("("+entry).Count(1).Build()).ToArray()
		n = int64(len(arr))
		return err
	})
	return n, err
}

// Subscribe calls fn (on its own goroutine) each time a member of group
// acknowledges a file, with mark set if it was an end-of-batch mark, until
// ctx ends. It returns when ctx ends or the
// subscription fails.
func (ch Channel) Subscribe(ctx context.Context, group string, fn func(mark bool)) error {
	return ch.c.rc.Receive(ctx, ch.b().Subscribe().Channel(ch.k.Group(group)).Build(), func(m rueidis.PubSubMessage) {
		fn(strings.HasSuffix(m.Message, " mark"))
	})
}

// SetBlocked records member of group as blocked, with what and why (see
// Keys.Blocked), or, with an empty value, as no longer blocked.
func (ch Channel) SetBlocked(ctx context.Context, group, member, value string) error {
	return ch.c.retry(ctx, "record blocked member", func(ctx context.Context) error {
		if value == "" {
			return ch.c.rc.Do(ctx, ch.b().Hdel().Key(ch.k.Blocked(group)).Field(member).Build()).Error()
		}
		return ch.c.rc.Do(ctx, ch.b().Hset().Key(ch.k.Blocked(group)).FieldValue().FieldValue(member, value).Build()).Error()
	})
}

// BlockedMembers returns the group's blocked members (see Keys.Blocked).
func (ch Channel) BlockedMembers(ctx context.Context, group string) (map[string]string, error) {
	var m map[string]string
	err := ch.c.retry(ctx, "read blocked members", func(ctx context.Context) (err error) {
		m, err = ch.c.rc.Do(ctx, ch.b().Hgetall().Key(ch.k.Blocked(group)).Build()).AsStrMap()
		return err
	})
	return m, err
}

// Failed lists the files group gave up on: id -> "name\treason".
func (ch Channel) Failed(ctx context.Context, group string) (map[string]string, error) {
	var m map[string]string
	err := ch.c.retry(ctx, "read failed files", func(ctx context.Context) (err error) {
		m, err = ch.c.rc.Do(ctx, ch.b().Hgetall().Key(ch.k.Failed(group)).Build()).AsStrMap()
		return err
	})
	return m, err
}

// Live lists the ids of unreleased files, oldest first.
func (ch Channel) Live(ctx context.Context) ([]string, error) {
	var ids []string
	err := ch.c.retry(ctx, "list files", func(ctx context.Context) (err error) {
		ids, err = ch.c.rc.Do(ctx, ch.b().Zrange().Key(ch.k.Live()).Min("0").Max("-1").Build()).AsStrSlice()
		return err
	})
	return ids, err
}

// Budget returns the bytes held and the budget (0 if never set).
func (ch Channel) Budget(ctx context.Context) (held, max int64, err error) {
	err = ch.c.retry(ctx, "read budget", func(ctx context.Context) error {
		res := ch.c.rc.DoMulti(ctx, ch.b().Get().Key(ch.k.Bytes()).Build(), ch.b().Hget().Key(ch.k.Config()).Field("max").Build())
		var err error
		if held, err = res[0].AsInt64(); err != nil && !rueidis.IsRedisNil(err) {
			return err
		}
		if max, err = res[1].AsInt64(); err != nil && !rueidis.IsRedisNil(err) {
			return err
		}
		return nil
	})
	return held, max, err
}

func str(m map[string]rueidis.RedisMessage, k string) string {
	v := m[k]
	s, _ := v.ToString()
	return s
}

func num(m map[string]rueidis.RedisMessage, k string) int64 {
	v := m[k]
	n, _ := v.AsInt64()
	return n
}

// Waiting lists the groups that must still acknowledge file id.
func (ch Channel) Waiting(ctx context.Context, id string) ([]string, error) {
	var out []string
	fk := ch.k.File(id)
	err := ch.c.retry(ctx, "read waiting groups", func(ctx context.Context) (err error) {
		out, err = ch.c.rc.Do(ctx, ch.b().Sdiff().Key(fk+":need", fk+":acks").Build()).AsStrSlice()
		return err
	})
	return out, err
}

// callID names one call of a script that must tell its own retry (after a
// lost reply) from another call.
func callID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
