package filecast

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// ChannelStatus is a snapshot of one channel.
type ChannelStatus struct {
	Channel  string        `json:"channel"`
	Bytes    int64         `json:"bytes"`     // file data held in Redis
	MaxBytes int64         `json:"max_bytes"` // the budget
	Files    []FileStatus  `json:"files"`     // unreleased files, oldest first
	Groups   []GroupStatus `json:"groups"`
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

// Topology describes what a client is connected to.
type Topology struct {
	// Mode is "standalone", "cluster" (a Redis Cluster: a file's chunks
	// spread over every primary) or "sentinel" (a primary found by Sentinel).
	Mode      string `json:"mode"`
	Primaries int    `json:"primaries"` // primaries serving data (1 unless a cluster)
	Replicas  int    `json:"replicas"`  // their replicas, in all
	Server    string `json:"server"`    // server name and version
}

func (t Topology) String() string {
	return store.Topology{Mode: t.Mode, Primaries: t.Primaries, Replicas: t.Replicas, Server: t.Server}.String()
}

// Topology returns what the client is connected to.
func (c *Client) Topology(ctx context.Context) (Topology, error) {
	t, err := c.st.Topology(ctx)
	return Topology{Mode: t.Mode, Primaries: t.Primaries, Replicas: t.Replicas, Server: t.Server}, err
}

// DroppedGroup is a group that was dropped.
type DroppedGroup struct {
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// FileStatus describes one unreleased file (or end-of-batch mark).
type FileStatus struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"` // "file" or "mark"
	Name      string    `json:"name,omitempty"`
	State     string    `json:"state"` // uploading, complete, aborted
	Size      int64     `json:"size"`  // -1 while uploading
	Chunks    int64     `json:"chunks"`
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

// GroupStatus describes one receiver group.
type GroupStatus struct {
	Name    string         `json:"name"`
	Lag     int64          `json:"lag"`     // files not yet delivered to any member; -1 unknown
	Pending int64          `json:"pending"` // files delivered, not yet acknowledged
	Members []MemberStatus `json:"members"`
	Failed  []FailedFile   `json:"failed"`
	// Held is the bytes of the files it has not acknowledged: what it holds
	// of the budget (a file several groups still need counts for each).
	Held int64 `json:"held"`
	// Seen is when a member of the group was last seen alive (or when it
	// joined, if no member ever ran).
	Seen time.Time `json:"seen"`
}

// MemberStatus describes one member of a group.
type MemberStatus struct {
	Name    string        `json:"name"`
	Pending int64         `json:"pending"`
	Idle    time.Duration `json:"idle_ns"`
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

// Channels lists the channels in use under the client's prefix.
func (c *Client) Channels(ctx context.Context) ([]string, error) {
	chs, err := c.st.Channels(ctx, c.opt.Prefix)
	slices.Sort(chs)
	return chs, err
}

// Status returns a snapshot of channel. It only reads.
func (c *Client) Status(ctx context.Context, channel string) (*ChannelStatus, error) {
	ch, err := c.channel(channel)
	if err != nil {
		return nil, err
	}
	s := &ChannelStatus{Channel: channel, Files: []FileStatus{}, Groups: []GroupStatus{}}
	if s.Bytes, s.MaxBytes, err = ch.Budget(ctx); err != nil {
		return nil, err
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = DefaultMaxBytes
	}
	ids, err := ch.Live(ctx)
	if err != nil {
		return nil, err
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
		fs.Kind, fs.Name, fs.State, fs.Size = string(rec.Kind), rec.Name, string(rec.State), rec.Size
		fs.Chunks, fs.Stored = rec.Chunks, max(rec.Chunks-rec.Low+1, 0)
		fs.Created, fs.Heartbeat, fs.Sender, fs.Reason = rec.Created, rec.Heartbeat, rec.Sender, rec.Reason
		fs.Stale = rec.State == wire.Uploading && time.Since(rec.Heartbeat) > c.opt.Lease
		if fs.Waiting, err = ch.Waiting(ctx, id); err != nil {
			return nil, err
		}
		slices.Sort(fs.Waiting)
		s.Files = append(s.Files, fs)
	}
	groups, err := ch.Groups(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		gs := GroupStatus{Name: g.Name, Lag: g.Lag, Pending: g.Pending, Members: []MemberStatus{}, Failed: []FailedFile{}}
		ms, err := ch.Members(ctx, g.Name)
		if err != nil {
			return nil, err
		}
		blocked, err := ch.BlockedMembers(ctx, g.Name)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			gs.Members = append(gs.Members, MemberStatus{Name: m.Name, Pending: m.Pending, Idle: m.Idle, Blocked: parseBlocked(blocked[m.Name])})
		}
		failed, err := ch.Failed(ctx, g.Name)
		if err != nil {
			return nil, err
		}
		for id, v := range failed {
			gs.Failed = append(gs.Failed, parseFailed(id, v))
		}
		slices.SortFunc(gs.Failed, func(a, b FailedFile) int { return strings.Compare(a.ID, b.ID) })
		s.Groups = append(s.Groups, gs)
	}
	holders, err := ch.Holders(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range holders {
		for i := range s.Groups {
			if s.Groups[i].Name == h.Group {
				s.Groups[i].Held, s.Groups[i].Seen = h.Bytes, h.Seen
			}
		}
	}
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
