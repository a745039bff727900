package store

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Exists reports whether the channel was ever used: it is in the channel
// list (Channels), or it has groups, a files stream or settings.
func (ch Channel) Exists(ctx context.Context) (bool, error) {
	var ok bool
	err := ch.c.retry(ctx, "look for the channel", func(ctx context.Context) error {
		res := ch.c.rc.DoMulti(ctx,
			ch.b().Exists().Key(ch.k.Groups(), ch.k.Files(), ch.k.Config()).Build(),
			ch.b().Sismember().Key(Channels(ch.prefix)).Member(ch.name).Build())
		n, err := res[0].AsInt64()
		if err != nil {
			return err
		}
		listed, lerr := res[1].AsBool()
		ok = n > 0 || (lerr == nil && listed)
		return nil
	})
	return ok, err
}

// HasGroup reports whether group is one of the channel's receiver groups.
func (ch Channel) HasGroup(ctx context.Context, group string) (bool, error) {
	var ok bool
	err := ch.c.retry(ctx, "look for the group", func(ctx context.Context) (err error) {
		ok, err = ch.c.rc.Do(ctx, ch.b().Sismember().Key(ch.k.Groups()).Member(group).Build()).AsBool()
		return err
	})
	return ok, err
}

// Leases reports which of group's members hold their lease (Keys.Member)
// now: a member whose lease lapsed is gone (killed, or stopped).
func (ch Channel) Leases(ctx context.Context, group string, members []string) (map[string]bool, error) {
	out := make(map[string]bool, len(members))
	if len(members) == 0 {
		return out, nil
	}
	err := ch.c.retry(ctx, "read member leases", func(ctx context.Context) error {
		cmds := make(rueidis.Commands, len(members))
		for i, m := range members {
			cmds[i] = ch.b().Exists().Key(ch.k.Member(group, m)).Build()
		}
		for i, res := range ch.c.rc.DoMulti(ctx, cmds...) {
			n, err := res.AsInt64()
			if err != nil {
				return err
			}
			out[members[i]] = n > 0
		}
		return nil
	})
	return out, err
}

// Waiter is a sender waiting for room in the channel's budget (Keys.Waiting).
type Waiter struct {
	ID     string    // the file it sends
	Name   string    // its name
	Sender string    // host and pid
	Since  time.Time // when it began to wait
	Seen   time.Time // when it last said it still waits
	TTL    time.Duration
}

func (w Waiter) value() string {
	return strings.Join([]string{strconv.FormatInt(w.Since.UnixMilli(), 10), strconv.FormatInt(w.Seen.UnixMilli(), 10),
		strconv.FormatInt(w.TTL.Milliseconds(), 10), w.Name, w.Sender}, "\t")
}

// parseWaiter parses a record of the Waiting hash; fields after the fifth,
// which a later version may add, are ignored.
func parseWaiter(id, v string) (Waiter, bool) {
	f := strings.Split(v, "\t")
	if len(f) < 5 {
		return Waiter{}, false
	}
	since, err1 := strconv.ParseInt(f[0], 10, 64)
	seen, err2 := strconv.ParseInt(f[1], 10, 64)
	ttl, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Waiter{}, false
	}
	return Waiter{ID: id, Since: time.UnixMilli(since), Seen: time.UnixMilli(seen), TTL: time.Duration(ttl) * time.Millisecond,
		Name: f[3], Sender: f[4]}, true
}

// SetWaiting records that a sender waits for budget, or refreshes the
// record; it counts for w.TTL after w.Seen, and the key lives as long, so
// a sender killed while it waits leaves nothing for long.
func (ch Channel) SetWaiting(ctx context.Context, w Waiter) error {
	return ch.c.retry(ctx, "record a sender waiting for budget", func(ctx context.Context) error {
		for _, res := range ch.c.rc.DoMulti(ctx,
			ch.b().Hset().Key(ch.k.Waiting()).FieldValue().FieldValue(w.ID, w.value()).Build(),
			ch.b().Pexpire().Key(ch.k.Waiting()).Milliseconds(w.TTL.Milliseconds()).Build()) {
			if err := res.Error(); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClearWaiting removes the record SetWaiting made for file id.
func (ch Channel) ClearWaiting(ctx context.Context, id string) error {
	return ch.c.retry(ctx, "clear a sender's wait for budget", func(ctx context.Context) error {
		return ch.c.rc.Do(ctx, ch.b().Hdel().Key(ch.k.Waiting()).Field(id).Build()).Error()
	})
}

// Waiters returns the senders waiting for budget, skipping records their
// sender stopped refreshing (it died, or its wait ended unrecorded).
func (ch Channel) Waiters(ctx context.Context) ([]Waiter, error) {
	var m map[string]string
	err := ch.c.retry(ctx, "read senders waiting for budget", func(ctx context.Context) (err error) {
		m, err = ch.c.rc.Do(ctx, ch.b().Hgetall().Key(ch.k.Waiting()).Build()).AsStrMap()
		return err
	})
	var out []Waiter
	for id, v := range m {
		if w, ok := parseWaiter(id, v); ok && time.Since(w.Seen) <= w.TTL {
			out = append(out, w)
		}
	}
	return out, err
}
