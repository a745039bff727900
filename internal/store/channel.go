package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/filecast/filecast/internal/wire"
)

// ErrGone reports a file whose record no longer exists in Redis: it was
// released, or the server lost its data.
var ErrGone = errors.New("file is no longer in redis")

// ErrRolledBack reports that Redis no longer has chunks it had confirmed
// committed: a failover promoted a replica that had not received them.
// The upload can go on from what it has (Resume).
var ErrRolledBack = errors.New("redis lost chunks it had confirmed (a failover to a replica that had not received them?)")

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
func (ch Channel) lua(ctx context.Context, what string, s *script, args ...string) (rueidis.RedisMessage, error) {
	var msg rueidis.RedisMessage
	err := ch.c.retry(ctx, what, func(ctx context.Context) error {
		res := s.Exec(ctx, ch.c.rc, []string{ch.k.Files(), ch.k.Fence()}, append([]string{ch.k.base}, args...))
		var err error
		msg, err = res.ToMessage()
		return err
	})
	if err == nil {
		err = ch.after(ctx, s)
	}
	return msg, err
}

// after follows a script s that succeeded: it waits for replicas
// (Config.Replicas), then finishes, on a cluster, the deletions s may
// have journaled (best effort: what is left is collected later, gc.go).
func (ch Channel) after(ctx context.Context, s *script) error {
	if err := ch.syncAfter(ctx, s); err != nil {
		return err
	}
	if ch.c.spread && journaling[s] {
		// What s journaled is on the replicas already if s was waited for.
		ch.collect(ctx, ch.c.replicas == 0 || syncing[s])
	}
	return nil
}

func (ch Channel) luaString(ctx context.Context, what string, s *script, args ...string) (string, error) {
	m, err := ch.lua(ctx, what, s, args...)
	if err != nil {
		return "", err
	}
	return m.ToString()
}

func (ch Channel) luaSlice(ctx context.Context, what string, s *script, args ...string) ([]string, error) {
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

// Settings are a channel's settings in its hash B cfg; a zero field is
// left as it is.
type Settings struct {
	MaxBytes    int64         // max: the budget
	KeepFailed  time.Duration // keep: how long dead letters are kept (negative: 0, not kept)
	GroupExpiry time.Duration // gexp: drop a group gone this long (negative: off)
}

// Configure sets the channel's settings.
func (ch Channel) Configure(ctx context.Context, s Settings) error {
	var fv []string
	if s.MaxBytes > 0 {
		fv = append(fv, "max", strconv.FormatInt(s.MaxBytes, 10))
	}
	if s.KeepFailed != 0 {
		fv = append(fv, "keep", strconv.FormatInt(max(s.KeepFailed.Milliseconds(), 0), 10))
	}
	if s.GroupExpiry > 0 {
		fv = append(fv, "gexp", strconv.FormatInt(s.GroupExpiry.Milliseconds(), 10))
	}
	return ch.c.retry(ctx, "configure channel", func(ctx context.Context) error {
		if s.GroupExpiry < 0 {
			if err := ch.c.rc.Do(ctx, ch.b().Hdel().Key(ch.k.Config()).Field("gexp").Build()).Error(); err != nil {
				return err
			}
		}
		if len(fv) == 0 {
			return nil
		}
		cmd := ch.b().Hset().Key(ch.k.Config()).FieldValue()
		for i := 0; i < len(fv); i += 2 {
			cmd = cmd.FieldValue(fv[i], fv[i+1])
		}
		return ch.c.rc.Do(ctx, cmd.Build()).Error()
	})
}

// Settings returns the channel's settings as stored (zero where unset).
func (ch Channel) Settings(ctx context.Context) (Settings, error) {
	var s Settings
	err := ch.c.retry(ctx, "read channel settings", func(ctx context.Context) error {
		v, err := ch.c.rc.Do(ctx, ch.b().Hmget().Key(ch.k.Config()).Field("max", "keep", "gexp").Build()).ToArray()
		if err != nil {
			return err
		}
		n := func(i int) int64 { x, _ := v[i].AsInt64(); return x }
		s = Settings{MaxBytes: n(0), KeepFailed: time.Duration(n(1)) * time.Millisecond, GroupExpiry: time.Duration(n(2)) * time.Millisecond}
		return nil
	})
	return s, err
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
	Batch    string   // a mark: forget this batch in the same step
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
	Sent   string // PutSkipped: the batch's record of the earlier send
}

// Begin announces an upload, or returns the unfinished upload of the same
// name to resume.
func (ch Channel) Begin(ctx context.Context, a BeginArgs) (BeginResult, error) {
	take := "0"
	if a.Takeover {
		take = "1"
	}
	args := append([]string{a.ID, a.Name, now(), strconv.FormatInt(a.Stale.Milliseconds(), 10), a.Sender, string(a.Kind), take, a.Batch}, a.Fields...)
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

// PutArgs describe a whole small file to publish in one step (Put).
type PutArgs struct {
	ID, Name   string
	Sender     string
	Value      []byte      // the whole content: at most one chunk
	Digest     wire.Digest // of Value
	DefaultMax int64       // the budget if the channel has none
	Record     *Record     // record it in a batch, if not nil
	SkipSame   bool        // not if the batch sent it unchanged: PutSkipped
	Fields     []string    // record fields, from wire.File.Fields
}

// Put outcome: the file must take the long way (Begin, Reserve, Commit,
// Complete) because an unfinished upload of its name is to be resumed, or
// the budget has no room for it now.
const PutSlow = "slow"

// PutSkipped: the batch had already sent the file unchanged
// (PutArgs.SkipSame); BeginResult.Sent holds its record.
const PutSkipped = "skipped"

// Put publishes a small file, complete, in one script. Its result is like
// Begin's: BeginNew, BeginNoGroups, BeginCollision, or PutSlow.
func (ch Channel) Put(ctx context.Context, a PutArgs) (BeginResult, error) {
	batch, sent, ttl := a.Record.args()
	skip := "0"
	if a.SkipSame {
		skip = "1"
	}
	args := append([]string{a.ID, a.Name, a.Sender, now(), strconv.FormatInt(a.DefaultMax, 10), batch, sent, ttl, skip,
		strconv.Itoa(len(a.Value)), a.Digest.String(), rueidis.BinaryString(a.Value)}, a.Fields...)
	r, err := ch.luaSlice(ctx, "publish small file", luaPut, args...)
	if err != nil {
		return BeginResult{}, err
	}
	res := BeginResult{Status: r[0]}
	switch res.Status {
	case BeginNew:
		res.ID, res.Entry = r[1], r[2]
	case PutSkipped:
		res.Sent = r[1]
	}
	return res, nil
}

// Resumed says where a resumed upload continues.
type Resumed struct {
	Chunks int64 // chunks committed
	Spread bool  // a protocol 2 file
	Epoch  int64 // the upload epoch to write new chunks under (protocol 2)
}

// Resume drops uncommitted reservations of an upload and returns how many
// chunks were committed and, for a protocol 2 file, the new epoch of the
// upload: its chunks from now on are written under it.
func (ch Channel) Resume(ctx context.Context, id string) (Resumed, error) {
	m, err := ch.lua(ctx, "resume upload", luaResume, id)
	if err != nil {
		return Resumed{}, err
	}
	r, err := m.AsIntSlice()
	if err != nil || len(r) != 3 {
		return Resumed{}, fmt.Errorf("resume upload: unexpected reply: %v", err)
	}
	return Resumed{Chunks: r[0], Spread: r[2] == 1, Epoch: r[1]}, nil
}

// ChunkRef names a chunk of an upload for Reserve and Commit.
type ChunkRef struct {
	Seq    int64
	Len    int
	Digest wire.Digest // for Commit
	Prefix wire.Digest // for Commit: of the file up to the end of this chunk
}

// Reserve takes budget for chunks, in order, as many as fit. It returns how
// many of them (a prefix) hold budget now; if fewer than all, the channel
// is full and after is the event to wait for (WaitEvent) before calling
// again with the rest. A chunk is always admitted into an empty channel.
func (ch Channel) Reserve(ctx context.Context, id string, chunks []ChunkRef, defaultMax int64) (granted int, after string, err error) {
	args := make([]string, 0, 3+2*len(chunks))
	args = append(args, id, strconv.FormatInt(defaultMax, 10), now())
	for _, c := range chunks {
		args = append(args, strconv.FormatInt(c.Seq, 10), strconv.Itoa(c.Len))
	}
	m, err := ch.lua(ctx, "reserve budget", luaReserve, args...)
	if err != nil {
		return 0, "", err
	}
	r, err := m.ToArray()
	if err != nil || len(r) != 2 {
		return 0, "", fmt.Errorf("reserve budget: unexpected reply %v: %w", m, err)
	}
	n, err := r[0].AsInt64()
	if err != nil {
		return 0, "", fmt.Errorf("reserve budget: %w", err)
	}
	after, _ = r[1].ToString()
	switch {
	case n < 0 && after == "unwanted":
		return 0, "", fmt.Errorf("reserve budget: every receiver group gave up on the file while it was uploading, so the upload was aborted: %w", ErrGone)
	case n < 0:
		return 0, "", fmt.Errorf("reserve budget: upload is %s: %w", after, ErrGone)
	}
	return int(n), after, nil
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

// Upload names an upload's chunks: its file id, whether the file is of
// protocol 2 (chunks spread over the cluster), and its upload epoch.
type Upload struct {
	ID     string
	Spread bool
	Epoch  int64
}

// PutChunk stores the bytes of chunk seq, on the connection for chunk
// values (pipelined, in the order of the calls).
func (ch Channel) PutChunk(ctx context.Context, u Upload, seq int64, data []byte) error {
	key := ch.k.ChunkKey(u.Spread, u.ID, u.Epoch, seq)
	what := fmt.Sprintf("store chunk %d", seq)
	if ch.c.replicas > 0 {
		return ch.c.synced(ctx, ch.c.bulk, what, key, func() rueidis.Completed {
			return ch.c.bulk.B().Set().Key(key).Value(rueidis.BinaryString(data)).Build()
		})
	}
	return ch.c.retry(ctx, what, func(ctx context.Context) error {
		return ch.c.bulk.Do(ctx, ch.c.bulk.B().Set().Key(key).Value(rueidis.BinaryString(data)).Build()).Error()
	})
}

// Commit publishes stored chunks, which must follow the last committed
// chunk in order, in the file's index. It fails with ErrGone if the upload
// was aborted or released, or resumed by another sender; the chunks are
// then deleted.
func (ch Channel) Commit(ctx context.Context, u Upload, chunks []ChunkRef) error {
	if len(chunks) == 0 {
		return nil
	}
	args := make([]string, 0, 3+4*len(chunks))
	epoch := ""
	if u.Spread {
		epoch = strconv.FormatInt(u.Epoch, 10)
	}
	args = append(args, u.ID, now(), epoch)
	for _, c := range chunks {
		args = append(args, strconv.FormatInt(c.Seq, 10), strconv.Itoa(c.Len), c.Digest.String(), c.Prefix.String())
	}
	first, last := chunks[0].Seq, chunks[len(chunks)-1].Seq
	r, err := ch.luaString(ctx, fmt.Sprintf("commit chunks %d-%d", first, last), luaCommit, args...)
	if err != nil {
		if strings.Contains(err.Error(), "commit of chunk ") {
			return fmt.Errorf("%w: %w", ErrRolledBack, err)
		}
		return err
	}
	switch r {
	case "gone":
		return fmt.Errorf("commit chunks %d-%d: the upload was aborted, or the server lost it (restarted without persistence?): %w", first, last, ErrGone)
	case "stale":
		return fmt.Errorf("commit chunks %d-%d: another sender resumed the upload meanwhile: %w", first, last, ErrGone)
	}
	return nil
}

// Record asks Complete to record the file in a batch's hash of sent files
// (Keys.Batch), which then expires TTL after its last record.
type Record struct {
	Batch string
	Sent  wire.Sent
	TTL   time.Duration
}

// args are the batch, sent and ttl_ms arguments of the scripts that
// record a file (all empty for no record).
func (r *Record) args() (batch, sent, ttl string) {
	if r == nil {
		return "", "", ""
	}
	return r.Batch, r.Sent.String(), strconv.FormatInt(r.TTL.Milliseconds(), 10)
}

// Complete ends an upload with its size and digest, and records it in a
// batch if rec is not nil. released reports that no group needed the file
// any more and it was released at once.
func (ch Channel) Complete(ctx context.Context, id string, size int64, d wire.Digest, rec *Record) (released bool, err error) {
	var r string
	attempts := 0
	batch, sent, ttl := rec.args()
	args := []string{ch.k.base, id, strconv.FormatInt(size, 10), d.String(), now(), batch, sent, ttl}
	err = ch.c.retry(ctx, "complete upload", func(ctx context.Context) error {
		attempts++
		m, err := luaComplete.Exec(ctx, ch.c.rc, []string{ch.k.Files(), ch.k.Fence()}, args).ToString()
		r = m
		return err
	})
	if err != nil {
		return false, err
	}
	if err := ch.after(ctx, luaComplete); err != nil {
		return false, err
	}
	if r == "aborted" {
		return false, fmt.Errorf("complete upload: the upload was aborted meanwhile: %w", ErrGone)
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

// Sent returns batch's record of the file name, and false if it has none
// or the record is malformed (the file is then sent again: a duplicate is
// better than a file lost to a damaged record).
func (ch Channel) Sent(ctx context.Context, batch, name string) (wire.Sent, bool, error) {
	var v string
	err := ch.c.retry(ctx, "read batch record", func(ctx context.Context) (err error) {
		v, err = ch.c.rc.Do(ctx, ch.b().Hget().Key(ch.k.Batch(batch)).Field(name).Build()).ToString()
		if rueidis.IsRedisNil(err) {
			v, err = "", nil
		}
		return err
	})
	if err != nil || v == "" {
		return wire.Sent{}, false, err
	}
	s, err := wire.ParseSent(v)
	return s, err == nil, nil
}

// SentAll returns batch's whole record of sent files: name -> record (as
// stored; parse with wire.ParseSent).
func (ch Channel) SentAll(ctx context.Context, batch string) (map[string]string, error) {
	var m map[string]string
	err := ch.c.retry(ctx, "read batch record", func(ctx context.Context) (err error) {
		m, err = ch.c.rc.Do(ctx, ch.b().Hgetall().Key(ch.k.Batch(batch)).Build()).AsStrMap()
		return err
	})
	return m, err
}

// Forget removes names from batch's record of sent files.
func (ch Channel) Forget(ctx context.Context, batch string, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	return ch.c.retry(ctx, "update batch record", func(ctx context.Context) error {
		return ch.c.rc.Do(ctx, ch.b().Hdel().Key(ch.k.Batch(batch)).Field(names...).Build()).Error()
	})
}

// KeepBatch makes batch's record of sent files expire ttl from now.
func (ch Channel) KeepBatch(ctx context.Context, batch string, ttl time.Duration) error {
	return ch.c.retry(ctx, "keep batch record", func(ctx context.Context) error {
		return ch.c.rc.Do(ctx, ch.b().Pexpire().Key(ch.k.Batch(batch)).Milliseconds(ttl.Milliseconds()).Build()).Error()
	})
}

// ForgetBatch deletes batch's record of sent files.
func (ch Channel) ForgetBatch(ctx context.Context, batch string) error {
	return ch.c.retry(ctx, "forget batch", func(ctx context.Context) error {
		return ch.c.rc.Do(ctx, ch.b().Del().Key(ch.k.Batch(batch)).Build()).Error()
	})
}

// Unfinished returns the names of files whose upload began and has not
// ended (in progress, or interrupted), with their ids.
func (ch Channel) Unfinished(ctx context.Context) (map[string]string, error) {
	var up map[string]string
	err := ch.c.retry(ctx, "list unfinished uploads", func(ctx context.Context) (err error) {
		up, err = ch.c.rc.Do(ctx, ch.b().Hgetall().Key(ch.k.Uploads()).Build()).AsStrMap()
		return err
	})
	return up, err
}

// MarkFollower records that the follower name has run on the channel, and
// returns when it first did and whether that is now. token identifies the
// caller, so a retry after a lost reply still learns it was the first.
func (ch Channel) MarkFollower(ctx context.Context, name, token string) (started time.Time, first bool, err error) {
	mark := token + " " + now()
	err = ch.c.retry(ctx, "mark follower", func(ctx context.Context) error {
		old, err := ch.c.rc.Do(ctx, ch.b().Set().Key(ch.k.Follower(name)).Value(mark).Nx().Get().Build()).ToString()
		switch {
		case rueidis.IsRedisNil(err): // it did not exist: set now
			old, err = mark, nil
		case err != nil:
			return err
		}
		tok, ms, _ := strings.Cut(old, " ")
		n, _ := strconv.ParseInt(ms, 10, 64)
		started, first = time.UnixMilli(n), tok == token
		return nil
	})
	return started, first, err
}

// GroupCount returns how many receiver groups have joined the channel.
func (ch Channel) GroupCount(ctx context.Context) (int64, error) {
	var n int64
	err := ch.c.retry(ctx, "count groups", func(ctx context.Context) (err error) {
		n, err = ch.c.rc.Do(ctx, ch.b().Scard().Key(ch.k.Groups()).Build()).AsInt64()
		return err
	})
	return n, err
}

// Awaits reports whether group is still to get file id: its record exists,
// the group must consume it and has not acknowledged it.
func (ch Channel) Awaits(ctx context.Context, id, group string) (bool, error) {
	var ok bool
	fk := ch.k.File(id)
	err := ch.c.retry(ctx, "check a file awaits the group", func(ctx context.Context) error {
		res := ch.c.rc.DoMulti(ctx, ch.b().Sismember().Key(fk+":need").Member(group).Build(),
			ch.b().Sismember().Key(fk+":acks").Member(group).Build())
		need, err := res[0].AsBool()
		if err != nil {
			return err
		}
		acked, err := res[1].AsBool()
		ok = need && !acked
		return err
	})
	return ok, err
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

// Stored is what remains in Redis of a file's committed chunks: the index
// entries from the lowest one still kept, and the length and digest of
// the prefix before it, whose entries were trimmed.
type Stored struct {
	First   int64       // seq of the first entry kept
	Offset  int64       // bytes before it
	Prefix  wire.Digest // their digest, if Offset > 0
	Entries []wire.Entry
}

// Stored returns the index entries of the file's chunks up to seq to and
// the trimmed prefix before them, consistently: a trim between the two
// reads is noticed and they are read again.
func (ch Channel) Stored(ctx context.Context, id string, to int64, maxLen int) (Stored, error) {
	for {
		es, err := ch.Index(ctx, id, 1, to, maxLen)
		if err != nil {
			return Stored{}, err
		}
		rec, err := ch.File(ctx, id)
		if err != nil {
			return Stored{}, err
		}
		first := rec.Low // where the kept entries must start
		if rec.Offset == 0 {
			first = 1
		}
		if len(es) > 0 && es[0].Seq == first || len(es) == 0 && first > to {
			return Stored{First: first, Offset: rec.Offset, Prefix: rec.Prefix, Entries: es}, nil
		}
		if len(es) > 0 && es[0].Seq < first {
			continue // trimmed meanwhile
		}
		return Stored{}, fmt.Errorf("%w: index of file %s starts at chunk %d, its record says %d", wire.ErrMalformed, id, entrySeq(es), first)
	}
}

func entrySeq(es []wire.Entry) int64 {
	if len(es) == 0 {
		return 0
	}
	return es[0].Seq
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

// ReadChunk reads chunk seq into buf, up to len(buf) bytes, straight from
// the connection: no allocation and no intermediate copy. It returns the
// bytes read and the value's full length, which is larger than len(data)
// only if the value does not fit in buf. A missing chunk is ErrGone.
//
// With Config.ReadReplicas the chunk is read from a replica, and from the
// primary if the replica does not have it yet or what it has fails good
// (a replica far behind may still hold a key's earlier value).
//
// Values are read on a connection of their own, so a large transfer never
// delays the small control commands queued behind it.
func (ch Channel) ReadChunk(ctx context.Context, u Upload, seq int64, buf []byte, good func(data []byte, size int64) bool) (data []byte, size int64, err error) {
	key := ch.k.ChunkKey(u.Spread, u.ID, u.Epoch, seq)
	w := &fill{b: buf[:0:len(buf)]}
	err = ch.c.retry(ctx, fmt.Sprintf("read chunk %d", seq), func(ctx context.Context) error {
		if ch.c.replica != nil {
			if err := ch.readChunk(ctx, ch.c.replica, key, w); err == nil && (good == nil || good(w.b, int64(len(w.b))+w.over)) {
				return nil
			}
		}
		return ch.readChunk(ctx, ch.c.rc, key, w)
	})
	return w.b, int64(len(w.b)) + w.over, err
}

// readChunk reads the value of key into w, straight from the connection.
func (ch Channel) readChunk(ctx context.Context, rc rueidis.Client, key string, w *fill) error {
	w.b, w.over = w.b[:0], 0
	stream := rc.DoStream(ctx, rc.B().Get().Key(key).Build())
	_, err := stream.WriteTo(w)
	if rueidis.IsRedisNil(err) {
		return ErrGone
	}
	if err == nil || !redirected(err) && !lostNode(err) {
		return err
	}
	// DoStream neither follows a slot on the move (a cluster being
	// resharded) nor notices a node gone (a failover): Do does both, and
	// learns where the slot went.
	v, err := rc.Do(ctx, rc.B().Get().Key(key).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return ErrGone
	}
	if err != nil {
		return err
	}
	w.b, w.over = w.b[:0], 0
	w.Write(v)
	return nil
}

// redirected reports whether err is a MOVED or ASK redirection.
func redirected(err error) bool {
	rerr, ok := rueidis.IsRedisErr(err)
	if !ok {
		return false
	}
	_, moved := rerr.IsMoved()
	_, ask := rerr.IsAsk()
	return moved || ask
}

// lostNode reports whether err is a failure to reach a node rather than
// an answer from Redis.
func lostNode(err error) bool {
	_, isRedis := rueidis.IsRedisErr(err)
	return !isRedis && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// fill is an io.Writer and io.ReaderFrom that fills a fixed buffer and
// counts, then drops, whatever does not fit.
type fill struct {
	b    []byte
	over int64
}

func (f *fill) Write(p []byte) (int, error) {
	n := copy(f.b[len(f.b):cap(f.b)], p)
	f.b = f.b[:len(f.b)+n]
	f.over += int64(len(p) - n)
	return len(p), nil
}

// ReadFrom reads straight into the buffer: with a large buffer, bufio.Reader
// hands the read to the socket without copying.
func (f *fill) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for len(f.b) < cap(f.b) {
		n, err := r.Read(f.b[len(f.b):cap(f.b)])
		f.b = f.b[:len(f.b)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	n, err := io.Copy(io.Discard, r)
	f.over += n
	return total + n, err
}

// Progress records that group durably consumed chunks 1..n; under budget
// pressure the script releases chunks every group has consumed. It reports
// whether the channel's budget is full (another chunk would not fit).
func (ch Channel) Progress(ctx context.Context, id, group string, n int64, defaultMax int64) (full bool, err error) {
	m, err := ch.lua(ctx, "record progress", luaProgress, id, group, strconv.FormatInt(n, 10), strconv.FormatInt(defaultMax, 10))
	if err != nil {
		return false, err
	}
	r, err := m.AsIntSlice()
	if err != nil || len(r) != 2 {
		return false, fmt.Errorf("record progress: unexpected reply: %w", err)
	}
	return r[1] == 1, nil
}

// Beat records that the sender of upload id is alive.
func (ch Channel) Beat(ctx context.Context, id string) error {
	_, err := ch.lua(ctx, "heartbeat", luaBeat, id, now())
	return err
}
