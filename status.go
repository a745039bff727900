package filecast

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// StatusSchema is the version of the JSON form of ChannelStatus (its
// field names and their meaning, docs/STATUS.md). Fields may be added
// within a version; one that is removed, renamed or changes meaning
// moves it on.
const StatusSchema = 1

// ChannelStatus is a snapshot of one channel.
type ChannelStatus struct {
	Channel  string        `json:"channel"`
	Bytes    int64         `json:"bytes"`     // file data held in Redis
	MaxBytes int64         `json:"max_bytes"` // the budget
	Files    []FileStatus  `json:"files"`     // unreleased files, oldest first
	Groups   []GroupStatus `json:"groups"`
	// Waiting are the senders that have waited for room in the budget for
	// a second or more, longest first; GroupStatus.Held says who holds it.
	Waiting []SenderWait `json:"waiting_senders"`
	// KeepFailed and GroupExpiry are the channel's settings (Settings);
	// GroupExpiry is 0 when off.
	KeepFailed  time.Duration  `json:"keep_failed_ns"`
	GroupExpiry time.Duration  `json:"group_expiry_ns"`
	Dropped     []DroppedGroup `json:"dropped_groups"` // groups dropped, and why
	// Deleting is how many deletions of chunks were journaled and not yet
	// done (on a Redis Cluster; docs/PROTOCOL.md §6.14): a lasting number
	// means no client has collected them (receivers do, every few seconds).
	Deleting int64 `json:"deleting"`
	// Redis says what the client is connected to.
	Redis Topology `json:"redis"`
}

// DroppedGroup is a group that was dropped.
type DroppedGroup struct {
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// FileStatus describes one unreleased file (or end-of-batch mark).
type FileStatus struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"` // "file" or "mark"
	Name  string `json:"name,omitempty"`
	State string `json:"state"` // uploading, complete, aborted
	Size  int64  `json:"size"`  // -1 while uploading
	// Expected is the size the sender expected when the upload began (a
	// regular file's size); 0 when unknown (a pipe, or an older sender).
	Expected  int64     `json:"expected_size"`
	ChunkSize int       `json:"chunk_size"`
	Chunks    int64     `json:"chunks"`        // chunks committed
	Stored    int64     `json:"chunks_stored"` // chunks still in Redis
	Created   time.Time `json:"created"`
	Heartbeat time.Time `json:"heartbeat"`
	Sender    string    `json:"sender,omitempty"`
	// Stale: uploading, but the sender has been silent longer than the lease.
	Stale   bool     `json:"stale"`
	Waiting []string `json:"waiting_for"` // groups that have not acknowledged it
	Reason  string   `json:"reason,omitempty"`
	Err     string   `json:"error,omitempty"` // the record could not be read
}

// Total returns the size the file has or is expected to have, and whether
// that is known: its size once complete, else the size its sender
// expected.
func (f FileStatus) Total() (int64, bool) {
	switch {
	case f.Size >= 0 && f.State == string(wire.Complete):
		return f.Size, true
	case f.Expected > 0:
		return f.Expected, true
	}
	return 0, false
}

// TotalChunks returns how many chunks the file has or is expected to
// have, when its size is known (Total): its first chunks are smaller than
// ChunkSize (the ramp, docs/PROTOCOL.md §6.1).
func (f FileStatus) TotalChunks() (int64, bool) {
	n, ok := f.Total()
	if !ok || f.ChunkSize <= 0 {
		return 0, false
	}
	return chunk.Count(n, f.ChunkSize), true
}

// GroupStatus describes one receiver group.
type GroupStatus struct {
	Name    string         `json:"name"`
	Lag     int64          `json:"lag"`     // files not yet delivered to any member; -1 unknown
	Pending int64          `json:"pending"` // files delivered, not yet acknowledged
	Members []MemberStatus `json:"members"`
	Failed  []FailedFile   `json:"failed"`
	// Unacked is how many files (end-of-batch marks aside) the group has
	// not acknowledged, delivered or not; UnackedBytes their size (the
	// expected size of those still uploading, 0 where unknown); Oldest
	// when the oldest of them was announced (zero if none).
	Unacked      int64     `json:"unacked_files"`
	UnackedBytes int64     `json:"unacked_bytes"`
	Oldest       time.Time `json:"oldest_unacked,omitzero"`
	// Held is the bytes of the files it has not acknowledged: what it holds
	// of the budget (a file several groups still need counts for each).
	Held int64 `json:"held"`
	// Seen is when a member of the group was last seen alive (or when it
	// joined, if no member ever ran); Gone is set when no member runs:
	// every member is gone (MemberStatus.Gone) and Seen is longer ago than
	// the last one's lease.
	Seen time.Time `json:"seen"`
	Gone bool      `json:"gone"`
}

// MemberStatus describes one member of a group.
type MemberStatus struct {
	Name    string `json:"name"`
	Pending int64  `json:"pending"`
	// Idle is how long ago the member last read from the channel.
	Idle time.Duration `json:"idle_ns"`
	// Gone is set when the member holds no lease: it stopped, or was
	// killed and its lease expired. It then went silent about Idle ago.
	Gone bool `json:"gone"`
	// Blocked is set while the member waits for a fault of its own side
	// to clear (ReceiveOptions.OnBlocked).
	Blocked *MemberBlocked `json:"blocked,omitempty"`
}

// MemberBlocked says what a blocked member waits on.
type MemberBlocked struct {
	Since  time.Time `json:"since"`
	ID     string    `json:"id"`   // the file it keeps
	Name   string    `json:"name"` // its name
	Reason string    `json:"reason"`
}

// FailedFile is a file a group gave up on.
type FailedFile struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"` // when it was given up (zero if not recorded)
	// State is "kept" while the group keeps it (a dead letter: Retry
	// delivers it again), "dropped" once its retention ended or it was
	// released, and "" if it was not kept (the file was gone or aborted).
	State     string    `json:"state"`
	DroppedAt time.Time `json:"dropped_at,omitzero"`
}

// SenderWait is a sender waiting for room in the channel's budget.
type SenderWait struct {
	ID     string    `json:"id"`     // the file it sends
	Name   string    `json:"name"`   // its name
	Sender string    `json:"sender"` // host/pid
	Since  time.Time `json:"since"`  // when it began to wait
}

// Channels lists the channels in use under the client's prefix.
func (c *Client) Channels(ctx context.Context) ([]string, error) {
	chs, err := c.st.Channels(ctx, c.opt.Prefix)
	slices.Sort(chs)
	return chs, err
}

// Status returns a snapshot of channel. It only reads. A channel that
// was never used is an error wrapping ErrNoChannel that names the
// channels there are.
func (c *Client) Status(ctx context.Context, channel string) (*ChannelStatus, error) {
	ch, err := c.existing(ctx, "status", channel)
	if err != nil {
		return nil, err
	}
	return c.status(ctx, ch)
}

// status is Status of a channel known to exist.
func (c *Client) status(ctx context.Context, ch store.Channel) (*ChannelStatus, error) {
	channel := ch.Keys().Channel()
	var err error
	s := &ChannelStatus{Channel: channel, Files: []FileStatus{}, Groups: []GroupStatus{}, Waiting: []SenderWait{}}
	if s.Bytes, s.MaxBytes, err = ch.Budget(ctx); err != nil {
		return nil, err
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = DefaultMaxBytes
	}
	if err := c.files(ctx, ch, s); err != nil {
		return nil, err
	}
	if err := c.groups(ctx, ch, s); err != nil {
		return nil, err
	}
	waiters, err := ch.Waiters(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range waiters {
		s.Waiting = append(s.Waiting, SenderWait{ID: w.ID, Name: w.Name, Sender: w.Sender, Since: w.Since})
	}
	slices.SortFunc(s.Waiting, func(a, b SenderWait) int { return a.Since.Compare(b.Since) })
	set, err := ch.Settings(ctx)
	if err != nil {
		return nil, err
	}
	s.KeepFailed, s.GroupExpiry = set.KeepFailed, set.GroupExpiry
	if s.KeepFailed == 0 {
		s.KeepFailed = store.DefaultKeep
	}
	dropped, err := ch.Dropped(ctx)
	if err != nil {
		return nil, err
	}
	s.Dropped = []DroppedGroup{}
	for name, v := range dropped {
		ms, reason, _ := strings.Cut(v, "\t")
		at, _ := strconv.ParseInt(ms, 10, 64)
		s.Dropped = append(s.Dropped, DroppedGroup{Name: name, At: time.UnixMilli(at), Reason: reason})
	}
	slices.SortFunc(s.Dropped, func(a, b DroppedGroup) int { return a.At.Compare(b.At) })
	// Informative only: a user whose ACL refuses them still gets the rest.
	s.Deleting, _ = ch.Journal(ctx)
	s.Redis, _ = c.Topology(ctx)
	return s, nil
}

// files fills s.Files.
func (c *Client) files(ctx context.Context, ch store.Channel, s *ChannelStatus) error {
	ids, err := ch.Live(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		fs := FileStatus{ID: id}
		rec, err := ch.File(ctx, id)
		if errors.Is(err, store.ErrGone) {
			continue // released meanwhile
		}
		if err != nil {
			fs.Err = err.Error()
			s.Files = append(s.Files, fs)
			continue
		}
		fs.Kind, fs.Name, fs.State, fs.Size, fs.Expected = string(rec.Kind), rec.Name, string(rec.State), rec.Size, rec.Expect
		fs.ChunkSize, fs.Chunks, fs.Stored = rec.ChunkSize, rec.Chunks, max(rec.Chunks-rec.Low+1, 0)
		fs.Created, fs.Heartbeat, fs.Sender, fs.Reason = rec.Created, rec.Heartbeat, rec.Sender, rec.Reason
		fs.Stale = rec.State == wire.Uploading && time.Since(rec.Heartbeat) > c.opt.Lease
		if fs.Waiting, err = ch.Waiting(ctx, id); err != nil {
			return err
		}
		slices.Sort(fs.Waiting)
		s.Files = append(s.Files, fs)
	}
	return nil
}

// groups fills s.Groups, after files.
func (c *Client) groups(ctx context.Context, ch store.Channel, s *ChannelStatus) error {
	groups, err := ch.Groups(ctx)
	if err != nil {
		return err
	}
	live := map[string]bool{} // groups with a member holding its lease
	for _, g := range groups {
		gs := GroupStatus{Name: g.Name, Lag: g.Lag, Pending: g.Pending, Members: []MemberStatus{}, Failed: []FailedFile{}}
		ms, err := ch.Members(ctx, g.Name)
		if err != nil {
			return err
		}
		blocked, err := ch.BlockedMembers(ctx, g.Name)
		if err != nil {
			return err
		}
		names := make([]string, len(ms))
		for i, m := range ms {
			names[i] = m.Name
		}
		leased, err := ch.Leases(ctx, g.Name, names)
		if err != nil {
			return err
		}
		for _, m := range ms {
			gs.Members = append(gs.Members, MemberStatus{Name: m.Name, Pending: m.Pending, Idle: m.Idle,
				Gone: !leased[m.Name], Blocked: parseBlocked(blocked[m.Name])})
			if leased[m.Name] {
				live[g.Name] = true
			}
		}
		failed, err := ch.Failed(ctx, g.Name)
		if err != nil {
			return err
		}
		for id, v := range failed {
			gs.Failed = append(gs.Failed, parseFailed(id, v))
		}
		slices.SortFunc(gs.Failed, func(a, b FailedFile) int { return strings.Compare(a.ID, b.ID) })
		for _, f := range s.Files { // oldest first
			if f.Kind != string(wire.KindFile) || !slices.Contains(f.Waiting, g.Name) {
				continue
			}
			if gs.Unacked == 0 {
				gs.Oldest = f.Created
			}
			gs.Unacked++
			n, _ := f.Total()
			gs.UnackedBytes += n
		}
		s.Groups = append(s.Groups, gs)
	}
	holders, err := ch.Holders(ctx)
	if err != nil {
		return err
	}
	for _, h := range holders {
		for i := range s.Groups {
			if s.Groups[i].Name == h.Group {
				s.Groups[i].Held, s.Groups[i].Seen = h.Bytes, h.Seen
				s.Groups[i].Gone = goneFor(h, live[h.Group]) > 0
			}
		}
	}
	return nil
}

// goneFor returns how long no member of group h has run, or 0 while one
// does. A group is gone only when every member is: while one holds its
// lease the group runs, whatever the others did; with none holding it,
// once its last member's lease ran out (h.Seen + h.SeenTTL; a member that
// stopped gave its lease up at once). live says whether a member holds
// its lease now.
func goneFor(h store.Holder, live bool) time.Duration {
	if d := time.Since(h.Seen); !live && d > h.SeenTTL {
		return d
	}
	return 0
}

// leaseHeld reports whether a member of group holds its lease now.
func leaseHeld(ctx context.Context, ch store.Channel, group string) (bool, error) {
	ms, err := ch.Members(ctx, group)
	if err != nil {
		return false, err
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	leased, err := ch.Leases(ctx, group, names)
	for _, ok := range leased {
		if ok {
			return true, err
		}
	}
	return false, err
}

// existing returns the handle on channel for op, or an error wrapping
// ErrNoChannel if it was never used.
func (c *Client) existing(ctx context.Context, op, channel string) (store.Channel, error) {
	ch, err := c.channel(channel)
	if err != nil {
		return ch, err
	}
	ok, err := ch.Exists(ctx)
	if err != nil || ok {
		return ch, err
	}
	chs, err := c.Channels(ctx)
	if err != nil || slices.Contains(chs, channel) {
		return ch, err // listed: a client registers it before it creates anything in it
	}
	if len(chs) == 0 {
		return ch, fmt.Errorf("%s: %w %q: no channel has been used under prefix %q yet", op, ErrNoChannel, channel, c.opt.Prefix)
	}
	return ch, fmt.Errorf("%s: %w %q under prefix %q; the channels there are: %s", op, ErrNoChannel, channel, c.opt.Prefix, joinNames(chs, 20))
}

// noGroup returns the error for op naming group, which is not one of
// ch's groups: it says which are, and if group was dropped, when and why.
func (c *Client) noGroup(ctx context.Context, ch store.Channel, op, group string) error {
	var names []string
	if gs, err := ch.Groups(ctx); err == nil {
		for _, g := range gs {
			names = append(names, g.Name)
		}
	}
	slices.Sort(names)
	err := fmt.Errorf("%s: %w: channel %q has no group %q", op, ErrNoGroup, ch.Keys().Channel(), group)
	if d, _ := ch.Dropped(ctx); d[group] != "" {
		ms, reason, _ := strings.Cut(d[group], "\t")
		at, _ := strconv.ParseInt(ms, 10, 64)
		err = fmt.Errorf("%w (it was dropped %v ago: %s)", err, time.Since(time.UnixMilli(at)).Round(time.Second), reason)
	}
	if len(names) == 0 {
		return fmt.Errorf("%w; it has no groups", err)
	}
	return fmt.Errorf("%w; its groups are: %s", err, joinNames(names, 20))
}

// joinNames joins names, at most n of them.
func joinNames(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}

// parseFailed reads a group's record of a file it gave up on
// (store.Keys.Failed): name TAB reason [TAB ms TAB state].
func parseFailed(id, v string) FailedFile {
	f := strings.SplitN(v, "\t", 4)
	ff := FailedFile{ID: id, Name: f[0]}
	if len(f) > 1 {
		ff.Reason = f[1]
	}
	if len(f) > 2 {
		if ms, err := strconv.ParseInt(f[2], 10, 64); err == nil {
			ff.At = time.UnixMilli(ms)
		}
	}
	if len(f) > 3 {
		state, at, _ := strings.Cut(f[3], " ")
		ff.State = state
		if ms, err := strconv.ParseInt(at, 10, 64); err == nil {
			ff.DroppedAt = time.UnixMilli(ms)
		}
	}
	return ff
}

// parseBlocked reads a blocked member's record (store.Keys.Blocked).
func parseBlocked(v string) *MemberBlocked {
	f := strings.SplitN(v, "\t", 4)
	if len(f) != 4 {
		return nil
	}
	ms, _ := strconv.ParseInt(f[0], 10, 64)
	return &MemberBlocked{Since: time.UnixMilli(ms), ID: f[1], Name: f[2], Reason: f[3]}
}
