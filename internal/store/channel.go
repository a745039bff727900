package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/filecast/filecast/internal/wire"
)

// ErrGone reports a file whose record no longer exists in Redis: it was
// released, or the server lost its data.
var ErrGone = errors.New("file is no longer in redis")

// Channel is a handle on one channel's keys. It is a small value; copy it freely.
type Channel struct {
	c      *Client
	k      Keys
	prefix string
	name   string
}

// Channel returns a handle on channel name under prefix.
func (c *Client) Channel(prefix, name string) Channel {
	return Channel{c: c, k: NewKeys(prefix, name), prefix: prefix, name: name}
}

// Keys returns the channel's key names.
func (ch Channel) Keys() Keys { return ch.k }

func (ch Channel) b() rueidis.Builder { return ch.c.rc.B() }

// lua runs a script on the channel's slot with the key base as ARGV[1].
func (ch Channel) lua(ctx context.Context, what string, s *rueidis.Lua, args ...string) (rueidis.RedisMessage, error) {
	var msg rueidis.RedisMessage
	err := ch.c.retry(ctx, what, func(ctx context.Context) error {
		res := s.Exec(ctx, ch.c.rc, []string{ch.k.Files()}, append([]string{ch.k.base}, args...))
		var err error
		msg, err = res.ToMessage()
		return err
	})
	return msg, err
}

func (ch Channel) luaString(ctx context.Context, what string, s *rueidis.Lua, args ...string) (string, error) {
	m, err := ch.lua(ctx, what, s, args...)
	if err != nil {
		return "", err
	}
	return m.ToString()
}

func (ch Channel) luaSlice(ctx context.Context, what string, s *rueidis.Lua, args ...string) ([]string, error) {
	m, err := ch.lua(ctx, what, s, args...)
	if err != nil {
		return nil, err
	}
	return m.AsStrSlice()
}

func now() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }

// Register adds the channel to the global channel list (for status).
func (ch Channel) Register(ctx context.Context) error {
	return ch.c.retry(ctx, "register channel", func(ctx context.Context) error {
		return ch.c.rc.Do(ctx, ch.b().Sadd().Key(Channels(ch.prefix)).Member(ch.name).Build()).Error()
	})
}

// SetBudget sets the most bytes the channel may hold.
func (ch Channel) SetBudget(ctx context.Context, max int64) error {
	return ch.c.retry(ctx, "set budget", func(ctx context.Context) error {
		return ch.c.rc.Do(ctx, ch.b().Hset().Key(ch.k.Config()).FieldValue().FieldValue("max", strconv.FormatInt(max, 10)).Build()).Error()
	})
}

// BeginArgs describe an upload to announce.
type BeginArgs struct {
	ID       string
	Name     string
	Kind     wire.Kind
	Sender   string
	Stale    time.Duration
	Takeover bool     // resume even if the other sender looks alive
	Fields   []string // record fields, from wire.File.Fields
}

// Begin outcomes.
const (
	BeginNew       = "new"
	BeginResume    = "resume"
	BeginBusy      = "busy"
	BeginNoGroups  = "nogroups"
	BeginCollision = "collision"
)

// BeginResult says what Begin did.
type BeginResult struct {
	Status string // one of the Begin constants
	ID     string // the new or resumable upload
	Entry  string // new: the files-stream entry
	Sender string // busy: who holds the upload
	Age    time.Duration
}

// Begin announces an upload, or returns the unfinished upload of the same
// name to resume.
func (ch Channel) Begin(ctx context.Context, a BeginArgs) (BeginResult, error) {
	take := "0"
	if a.Takeover {
		take = "1"
	}
	args := append([]string{a.ID, a.Name, now(), strconv.FormatInt(a.Stale.Milliseconds(), 10), a.Sender, string(a.Kind), take}, a.Fields...)
	r, err := ch.luaSlice(ctx, "announce file", luaBegin, args...)
	if err != nil {
		return BeginResult{}, err
	}
	res := BeginResult{Status: r[0]}
	switch res.Status {
	case BeginNew:
		res.ID, res.Entry = r[1], r[2]
	case BeginResume:
		res.ID = r[1]
	case BeginBusy:
		res.ID, res.Sender = r[1], r[2]
		ms, _ := strconv.ParseInt(r[3], 10, 64)
		res.Age = time.Duration(ms) * time.Millisecond
	}
	return res, nil
}

// Resume drops uncommitted reservations of an upload and returns how many
// chunks were committed.
func (ch Channel) Resume(ctx context.Context, id string) (int64, error) {
	m, err := ch.lua(ctx, "resume upload", luaResume, id)
	if err != nil {
		return 0, err
	}
	return m.AsInt64()
}

// Reserve takes n bytes of budget for chunk seq. If the channel is full it
// returns ok=false and the event id to wait after (WaitEvent).
func (ch Channel) Reserve(ctx context.Context, id string, seq int64, n int, defaultMax int64) (ok bool, after string, err error) {
	r, err := ch.luaSlice(ctx, "reserve budget", luaReserve, id, strconv.FormatInt(seq, 10), strconv.Itoa(n), strconv.FormatInt(defaultMax, 10), now())
	if err != nil {
		return false, "", err
	}
	switch r[0] {
	case "ok":
		return true, "", nil
	case "wait":
		return false, r[1], nil
	}
	return false, "", fmt.Errorf("reserve budget: upload is %s: %w", r[1], ErrGone)
}

// WaitEvent blocks until an event newer than after is added to the
// channel's event stream, or timeout passes.
func (ch Channel) WaitEvent(ctx context.Context, after string, timeout time.Duration) error {
	return ch.c.retry(ctx, "wait for budget", func(ctx context.Context) error {
		err := ch.c.rc.Do(ctx, ch.b().Xread().Count(1).Block(timeout.Milliseconds()).Streams().Key(ch.k.Events()).Id(after).Build().UnblockOnCancel()).Error()
		if rueidis.IsRedisNil(err) {
			return nil
		}
		return err
	})
}

// PutChunk stores the bytes of chunk seq.
func (ch Channel) PutChunk(ctx context.Context, id string, seq int64, data []byte) error {
	key := ch.k.Chunk(id, seq)
	return ch.c.retry(ctx, fmt.Sprintf("store chunk %d", seq), func(ctx context.Context) error {
		return ch.c.rc.Do(ctx, ch.b().Set().Key(key).Value(rueidis.BinaryString(data)).Build()).Error()
	})
}

// Commit publishes stored chunk seq in the file's index.
func (ch Channel) Commit(ctx context.Context, id string, seq int64, n int, d wire.Digest) error {
	r, err := ch.luaString(ctx, fmt.Sprintf("commit chunk %d", seq), luaCommit, id, strconv.FormatInt(seq, 10), strconv.Itoa(n), d.String(), now())
	if err != nil {
		return err
	}
	if r == "gone" {
		return fmt.Errorf("commit chunk %d: upload was aborted: %w", seq, ErrGone)
	}
	return nil
}

// Complete ends an upload with its size and digest. released reports that
// no group needed it any more and it was released at once.
func (ch Channel) Complete(ctx context.Context, id string, size int64, d wire.Digest) (released bool, err error) {
	var r string
	attempts := 0
	err = ch.c.retry(ctx, "complete upload", func(ctx context.Context) error {
		attempts++
		m, err := luaComplete.Exec(ctx, ch.c.rc, []string{ch.k.Files()},
			[]string{ch.k.base, id, strconv.FormatInt(size, 10), d.String(), now()}).ToString()
		r = m
		return err
	})
	if err != nil {
		return false, err
	}
	if r == "gone" {
		if attempts > 1 {
			// An earlier attempt completed it and every group has since
			// acknowledged and released it; only its reply was lost.
			return true, nil
		}
		return false, fmt.Errorf("complete upload: %w", ErrGone)
	}
	return r == "released", nil
}

// Abort ends an upload that will not complete.
func (ch Channel) Abort(ctx context.Context, id, reason string) error {
	_, err := ch.luaString(ctx, "abort upload", luaAbort, id, reason)
	return err
}

// File reads a file's record.
func (ch Channel) File(ctx context.Context, id string) (*wire.File, error) {
	var h map[string]string
	err := ch.c.retry(ctx, "read file record", func(ctx context.Context) (err error) {
		h, err = ch.c.rc.Do(ctx, ch.b().Hgetall().Key(ch.k.File(id)).Build()).AsStrMap()
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, ErrGone
	}
	return wire.ParseFile(h)
}

// Index returns index entries with seq in [from, to].
func (ch Channel) Index(ctx context.Context, id string, from, to int64, maxLen int) ([]wire.Entry, error) {
	var xs []rueidis.XRangeEntry
	err := ch.c.retry(ctx, "read index", func(ctx context.Context) (err error) {
		xs, err = ch.c.rc.Do(ctx, ch.b().Xrange().Key(ch.k.Index(id)).Start(wire.EntryID(from)).End(wire.EntryID(to)).Build()).AsXRange()
		return err
	})
	if err != nil {
		return nil, err
	}
	return parseEntries(xs, maxLen)
}

func parseEntries(xs []rueidis.XRangeEntry, maxLen int) ([]wire.Entry, error) {
	out := make([]wire.Entry, 0, len(xs))
	for _, x := range xs {
		e, err := wire.ParseEntry(x.ID, x.FieldValues, maxLen)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// FollowIndex returns up to count index entries after seq, blocking up to
// block for the first one. It returns no entries if none arrived.
func (ch Channel) FollowIndex(ctx context.Context, id string, after int64, count int64, block time.Duration, maxLen int) ([]wire.Entry, error) {
	var xs []rueidis.XRangeEntry
	err := ch.c.retry(ctx, "follow index", func(ctx context.Context) error {
		res, err := ch.c.rc.Do(ctx, ch.b().Xread().Count(count).Block(block.Milliseconds()).Streams().Key(ch.k.Index(id)).Id(wire.EntryID(after)).Build().UnblockOnCancel()).AsXRead()
		if rueidis.IsRedisNil(err) {
			xs = nil
			return nil
		}
		xs = res[ch.k.Index(id)]
		return err
	})
	if err != nil {
		return nil, err
	}
	return parseEntries(xs, maxLen)
}

// GetChunk reads the bytes of chunk seq. A missing chunk is ErrGone.
func (ch Channel) GetChunk(ctx context.Context, id string, seq int64) ([]byte, error) {
	var b []byte
	err := ch.c.retry(ctx, fmt.Sprintf("read chunk %d", seq), func(ctx context.Context) (err error) {
		b, err = ch.c.rc.Do(ctx, ch.b().Get().Key(ch.k.Chunk(id, seq)).Build()).AsBytes()
		if rueidis.IsRedisNil(err) {
			return ErrGone
		}
		return err
	})
	return b, err
}

// Progress records that group durably consumed chunks 1..n; under budget
// pressure the script releases chunks every group has consumed.
func (ch Channel) Progress(ctx context.Context, id, group string, n int64, defaultMax int64) error {
	_, err := ch.lua(ctx, "record progress", luaProgress, id, group, strconv.FormatInt(n, 10), strconv.FormatInt(defaultMax, 10))
	return err
}

// Beat records that the sender of upload id is alive.
func (ch Channel) Beat(ctx context.Context, id string) error {
	_, err := ch.lua(ctx, "heartbeat", luaBeat, id, now())
	return err
}
