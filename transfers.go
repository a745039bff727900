package filecast

import (
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Transfer is a file in flight at a Client: being sent, or being handled
// by a Receive handler. Client.Transfers lists them, for progress bars.
type Transfer struct {
	Channel string
	ID      string // empty until the upload is announced
	Name    string
	// Receive is false for a file being sent, true for one being received.
	Receive bool
	// Size is the file's size where it is known (a regular file being
	// sent, a complete file being received), else -1.
	Size int64
	// Done counts the bytes moved so far: committed to Redis by a sender,
	// read and verified by a receiver. It includes Resumed.
	Done int64
	// Resumed counts the bytes a previous attempt had moved, which this one
	// did not move again (an interrupted upload or partial copy continued).
	Resumed int64
	Started time.Time
}

// Transfers returns the files in flight at c, oldest first.
func (c *Client) Transfers() []Transfer {
	c.transfers.mu.Lock()
	out := make([]Transfer, 0, len(c.transfers.m))
	for t := range c.transfers.m {
		out = append(out, t.snapshot())
	}
	c.transfers.mu.Unlock()
	slices.SortFunc(out, func(a, b Transfer) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// transfers is the set of files in flight at a Client.
type transfers struct {
	mu sync.Mutex
	m  map[*transfer]struct{}
}

// transfer is one file in flight. Its counters are written by the goroutine
// moving the file and read by Transfers.
type transfer struct {
	set                 *transfers
	channel, name       string
	receive             bool
	started             time.Time
	id                  atomic.Pointer[string]
	size, done, resumed atomic.Int64
}

// start adds a file in flight; end removes it.
func (s *transfers) start(channel, name string, receive bool, size int64) *transfer {
	t := &transfer{set: s, channel: channel, name: name, receive: receive, started: time.Now()}
	t.size.Store(size)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[*transfer]struct{})
	}
	s.m[t] = struct{}{}
	s.mu.Unlock()
	return t
}

func (t *transfer) end() {
	t.set.mu.Lock()
	delete(t.set.m, t)
	t.set.mu.Unlock()
}

func (t *transfer) setID(id string) { t.id.Store(&id) }

// resumedAt records that a previous attempt had moved n bytes.
func (t *transfer) resumedAt(n int64) {
	t.resumed.Store(n)
	t.done.Store(n)
}

func (t *transfer) snapshot() Transfer {
	s := Transfer{Channel: t.channel, Name: t.name, Receive: t.receive, Size: t.size.Load(),
		Done: t.done.Load(), Resumed: t.resumed.Load(), Started: t.started}
	if id := t.id.Load(); id != nil {
		s.ID = *id
	}
	return s
}

// progress returns a SendOptions.Progress that records the bytes committed
// and calls next, if set.
func (t *transfer) progress(next func(int64)) func(int64) {
	return func(committed int64) {
		t.done.Store(committed)
		if next != nil {
			next(committed)
		}
	}
}

// sizeOf is the size of a regular file being sent, as it begins, else -1.
func sizeOf(st fs.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}
