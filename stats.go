package filecast

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Client's counters (Client.Stats): what its
// senders and receivers have done since New, for a metrics exporter or a
// summary. Counts are cumulative; Sending, Receiving and WaitingForBudget
// are gauges (how many now).
type Stats struct {
	// FilesSent counts the files this client's senders completed (Send,
	// SendFile, Watch, and each generation Follow completed); files a
	// batch skipped as sent before are not counted.
	FilesSent int64
	// BytesSent counts the bytes of file data stored in Redis, as they are
	// committed: a live upload counts as it goes, a resumed one only what
	// it added.
	BytesSent int64
	// FilesReceived counts the files this client's receivers handled and
	// acknowledged (Receive); BytesReceived adds up their sizes.
	FilesReceived, BytesReceived int64
	// BytesRead counts the verified bytes this client's readers handed on
	// (to Receive's handlers, or from Open), as they arrive: it grows
	// while a long or live file is still being read, and a file read
	// again (a retry) counts again.
	BytesRead int64
	// Failures counts the files that did not go through, by kind.
	Failures Failures
	// IntegrityErrors counts the readers (one per attempt at a file) that
	// found data failing its check: a chunk's digest or length, the whole
	// file's digest or size, a damaged index (ErrCorrupt).
	IntegrityErrors int64
	// Retries counts the handler attempts beyond each file's first
	// (ReceiveOptions.Retries). Retries after a fault of the receiver's
	// own side are not counted: see Failures.Local.
	Retries int64
	// Sending is the number of files being sent now; Receiving the number
	// being handled now.
	Sending, Receiving int64
	// BudgetWaits counts the times a sender found the channel's budget
	// full and had to wait; BudgetWaited adds up how long the waits that
	// ended took. WaitingForBudget is the number of senders waiting now.
	BudgetWaits      int64
	BudgetWaited     time.Duration
	WaitingForBudget int64
	// RoundTrip is how long Redis took to answer the commands that control
	// transfers (scripts, records, index reads). Not counted: blocking
	// reads, whose time is mostly waiting for data, and chunk values,
	// whose time is mostly moving them.
	RoundTrip Latency
}

// Failures counts the files that did not go through, by kind. A file
// counts once per outcome at this client.
type Failures struct {
	// Corrupt: a file received failed its integrity check (ErrCorrupt),
	// or its record was malformed. The group keeps it as a dead letter.
	Corrupt int64
	// Local: a receiver was blocked by a fault of its own side (ErrLocal:
	// a full disk, a read-only target, a command that cannot start).
	// Counted once per file it blocked on, when the blockage began, and
	// once per ReceiveOptions.FailFast stop.
	Local int64
	// Handler: a handler kept failing on a file past
	// ReceiveOptions.Retries, and the group gave the file up.
	Handler int64
	// Lost: another member of the group took a file over from this one
	// (ErrLost), after this one went silent past the lease.
	Lost int64
	// Aborted: the sender aborted a file being received (ErrAborted).
	Aborted int64
	// Gone: a file's data was no longer in Redis when received (ErrGone).
	Gone int64
	// Send: a send failed (any error but a cancelled context).
	Send int64
}

// Latency is a histogram of durations with fixed buckets.
type Latency struct {
	// Bounds are the buckets' upper bounds, ascending (the same slice in
	// every snapshot: do not modify it).
	Bounds []time.Duration
	// Counts[i] is the number of durations of at most Bounds[i]
	// (cumulative, as Prometheus wants them).
	Counts []uint64
	Count  uint64        // all durations
	Sum    time.Duration // their sum
}

// Stats returns a snapshot of the client's counters. It makes no call to
// Redis and is cheap: a metrics exporter may call it on every scrape. It
// is safe for concurrent use; each field is read atomically, but not all
// at one instant.
func (c *Client) Stats() Stats {
	s := c.stats
	return Stats{
		FilesSent: s.filesSent.Load(), BytesSent: s.bytesSent.Load(),
		FilesReceived: s.filesReceived.Load(), BytesReceived: s.bytesReceived.Load(), BytesRead: s.bytesRead.Load(),
		Failures: Failures{Corrupt: s.corrupt.Load(), Local: s.local.Load(), Handler: s.handler.Load(),
			Lost: s.lost.Load(), Aborted: s.aborted.Load(), Gone: s.gone.Load(), Send: s.sendFailed.Load()},
		IntegrityErrors: s.integrity.Load(), Retries: s.retries.Load(),
		Sending: s.sending.Load(), Receiving: s.receiving.Load(),
		BudgetWaits: s.waits.Load(), BudgetWaited: time.Duration(s.waited.Load()), WaitingForBudget: s.waiting.Load(),
		RoundTrip: s.rtt.snapshot(),
	}
}

// counters are a Client's Stats as they are kept: atomics, each bumped
// with one call where the event happens.
type counters struct {
	filesSent, bytesSent                    atomic.Int64
	filesReceived, bytesReceived, bytesRead atomic.Int64
	corrupt, local, handler, lost, aborted  atomic.Int64
	gone, sendFailed                        atomic.Int64
	integrity, retries                      atomic.Int64
	sending, receiving                      atomic.Int64
	waits, waited, waiting                  atomic.Int64
	rtt                                     latency
}

// inFlight adds one to gauge and returns the call that takes it back.
//
//	defer inFlight(&c.stats.sending)()
func inFlight(gauge *atomic.Int64) func() {
	gauge.Add(1)
	return func() { gauge.Add(-1) }
}

// sent counts the outcome of one Send or SendFile.
func (s *counters) sent(info *FileInfo, err error) {
	switch {
	case err == nil && !info.Skipped:
		s.filesSent.Add(1)
	case err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		s.sendFailed.Add(1)
	}
}

// result counts the outcome of one file at a receiver.
func (s *counters) result(res Result) {
	if res.Attempts > 1 {
		s.retries.Add(int64(res.Attempts - 1))
	}
	switch {
	case res.Lost:
		s.lost.Add(1)
	case res.Err == nil:
		s.filesReceived.Add(1)
		s.bytesReceived.Add(max(res.File.Size, 0))
	case errors.Is(res.Err, ErrCorrupt):
		s.corrupt.Add(1)
	case errors.Is(res.Err, ErrGone):
		s.gone.Add(1)
	case errors.Is(res.Err, ErrAborted):
		s.aborted.Add(1)
	default:
		s.handler.Add(1)
	}
}

// readEnded counts a reader that ended with err (a File's sticky error).
func (s *counters) readEnded(err error) {
	if errors.Is(err, ErrCorrupt) {
		s.integrity.Add(1)
	}
}

// waitBegan counts a sender that found the budget full.
func (s *counters) waitBegan() {
	s.waits.Add(1)
	s.waiting.Add(1)
}

// waitEnded ends a wait for budget that began at since (zero: none did).
func (s *counters) waitEnded(since time.Time) {
	if since.IsZero() {
		return
	}
	s.waiting.Add(-1)
	s.waited.Add(int64(time.Since(since)))
}

// rttBounds are the buckets of Stats.RoundTrip: from a unix socket on the
// same host (~100 µs) to a server struggling (seconds).
var rttBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// latency is a histogram over rttBounds, safe for concurrent use.
type latency struct {
	buckets [len(rttBounds) + 1]atomic.Uint64 // per bucket (not cumulative); the last: above every bound
	sum     atomic.Int64
}

// observe records one duration.
func (l *latency) observe(d time.Duration) {
	i := 0
	for i < len(rttBounds) && d > rttBounds[i] {
		i++
	}
	l.buckets[i].Add(1)
	l.sum.Add(int64(d))
}

func (l *latency) snapshot() Latency {
	out := Latency{Bounds: rttBounds[:], Counts: make([]uint64, len(rttBounds)), Sum: time.Duration(l.sum.Load())}
	for i := range l.buckets {
		out.Count += l.buckets[i].Load()
		if i < len(rttBounds) {
			out.Counts[i] = out.Count
		}
	}
	return out
}
