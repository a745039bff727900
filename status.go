package filecast

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
}

// MemberStatus describes one member of a group.
type MemberStatus struct {
	Name    string        `json:"name"`
	Pending int64         `json:"pending"`
	Idle    time.Duration `json:"idle_ns"`
}

// FailedFile is a file a group gave up on.
type FailedFile struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
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
		for _, m := range ms {
			gs.Members = append(gs.Members, MemberStatus{Name: m.Name, Pending: m.Pending, Idle: m.Idle})
		}
		failed, err := ch.Failed(ctx, g.Name)
		if err != nil {
			return nil, err
		}
		for id, v := range failed {
			name, reason, _ := strings.Cut(v, "\t")
			gs.Failed = append(gs.Failed, FailedFile{ID: id, Name: name, Reason: reason})
		}
		slices.SortFunc(gs.Failed, func(a, b FailedFile) int { return strings.Compare(a.ID, b.ID) })
		s.Groups = append(s.Groups, gs)
	}
	return s, nil
}

// DropGroup removes group from channel: it stops holding back files, and
// files only it was waiting for are released. It returns how many were.
// Members of the group still running fail with a "group no longer exists" error.
func (c *Client) DropGroup(ctx context.Context, channel, group string) (int, error) {
	ch, err := c.channel(channel)
	if err != nil {
		return 0, err
	}
	n, err := ch.Drop(ctx, group)
	return int(n), err
}

// Abort gives up upload id: receivers reading it get ErrAborted, and its
// data is released once every group has seen the abort.
func (c *Client) Abort(ctx context.Context, channel, id, reason string) error {
	ch, err := c.channel(channel)
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "aborted"
	}
	return ch.Abort(ctx, id, reason)
}

// AbortStale aborts every upload of channel whose sender has been silent
// for longer than olderThan, and returns them.
func (c *Client) AbortStale(ctx context.Context, channel string, olderThan time.Duration) ([]FileStatus, error) {
	s, err := c.Status(ctx, channel)
	if err != nil {
		return nil, err
	}
	var out []FileStatus
	for _, f := range s.Files {
		if f.State == string(wire.Uploading) && time.Since(f.Heartbeat) > olderThan {
			reason := fmt.Sprintf("sender %s silent for %v; aborted by filecast clean", f.Sender, time.Since(f.Heartbeat).Round(time.Second))
			if err := c.Abort(ctx, channel, f.ID, reason); err != nil {
				return out, err
			}
			out = append(out, f)
		}
	}
	return out, nil
}
