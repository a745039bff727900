package filecast

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/filecast/filecast/internal/wire"
)

// DefaultURL is the Redis server used when Options.URL is empty.
const DefaultURL = "redis://127.0.0.1:6379/0"

// DefaultChunkSize is 1 MiB less 64 bytes: a value of exactly 2^k bytes
// costs Redis a quarter more memory (jemalloc size classes).
const DefaultChunkSize = 1<<20 - 64

// Options configure a Client. The zero value works.
type Options struct {
	// URL of the Redis server: redis://[user:pass@]host:port/db,
	// rediss:// for TLS, or unix:///path/to/redis.sock (valkey:// and
	// valkeys:// alike). A Redis Cluster is found from any node; more seed
	// nodes go in ?addr=host:port&addr=... A primary watched by Sentinel:
	// redis://sentinel:26379?addr=sentinel2:26379&master_set=NAME.
	// default: DefaultURL
	URL string
	// CAFile holds the PEM CA certificates to trust for rediss://, instead
	// of the system's.
	CAFile string
	// CertFile and KeyFile hold a PEM client certificate and its key, for a
	// rediss:// server that requires one (tls-auth-clients yes).
	CertFile, KeyFile string
	// Password, if set, replaces the password in URL (so it need not
	// appear in a URL). filecast never prints or logs it.
	Password string
	// Prefix of every key filecast writes. default: "fc"
	Prefix string
	// ChunkSize is the largest chunk a sender stores. default: DefaultChunkSize
	ChunkSize int
	// ReadAhead is how many chunks a reader fetches ahead of the handler;
	// a reader holds at most ReadAhead+1 chunks in memory. default: 8
	ReadAhead int
	// Lease is how long a work-sharing member may go without renewing its
	// claim on a file before another member takes the file over, and how
	// long a silent sender is considered alive. default: 30s
	Lease time.Duration
	// RetryFor is how long an operation retries a lost connection before it
	// fails. default: 1m
	RetryFor time.Duration
	// AllowEviction lets filecast run on a server whose maxmemory-policy may
	// evict keys (allkeys-*), which can silently lose file data.
	AllowEviction bool
	// Replicas, if above 0, makes every write that commits something wait
	// until that many replicas have it (Redis WAIT): a chunk before it is
	// committed, a committed batch before the next, a completed file before
	// Send returns, an acknowledgement before the file's chunks are
	// deleted. With Replicas set to every replica of a primary, a failover
	// then loses nothing Send reported sent; with fewer, the replica
	// promoted may be one that had not confirmed (docs/OPERATIONS.md). Writes fail with ErrUnavailable when fewer
	// replicas confirm them for RetryFor. default: 0 (replication is
	// asynchronous: a failover may lose the last writes)
	Replicas int
	// ReadReplicas reads chunks from replicas (of a Redis Cluster, or of
	// a primary found by Sentinel) instead of primaries; a chunk a replica
	// does not have yet is read from the primary. Everything else is read
	// from primaries.
	ReadReplicas bool
	// Logger receives diagnostics. default: discard
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.Prefix == "" {
		o.Prefix = "fc"
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ReadAhead == 0 {
		o.ReadAhead = 8
	}
	if o.Lease == 0 {
		o.Lease = 30 * time.Second
	}
	if o.RetryFor == 0 {
		o.RetryFor = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.ChunkSize < 1024 || o.ChunkSize > wire.MaxChunkSize {
		errs = append(errs, fmt.Errorf("Options.ChunkSize %d: must be between 1 KiB and %d MiB", o.ChunkSize, wire.MaxChunkSize>>20))
	}
	if o.ReadAhead < 1 || o.ReadAhead > 256 {
		errs = append(errs, fmt.Errorf("Options.ReadAhead %d: must be between 1 and 256", o.ReadAhead))
	}
	if o.Lease < time.Second {
		errs = append(errs, fmt.Errorf("Options.Lease %v: must be at least 1s", o.Lease))
	}
	if o.RetryFor < 0 {
		errs = append(errs, fmt.Errorf("Options.RetryFor %v: must not be negative", o.RetryFor))
	}
	if o.Replicas < 0 || o.Replicas > 100 {
		errs = append(errs, fmt.Errorf("Options.Replicas %d: must be between 0 and 100", o.Replicas))
	}
	if err := wire.CheckChannel("Options.Prefix", o.Prefix); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return nil
}

// DefaultMaxBytes is the budget of a channel whose sender never set one.
const DefaultMaxBytes = 1 << 30

// SendOptions configure one Send.
type SendOptions struct {
	// MaxBytes sets the channel's budget: the most bytes of file data it
	// may hold in Redis. Senders wait while it is full. 0 keeps the
	// channel's current budget (DefaultMaxBytes if none was ever set).
	MaxBytes int64
	// Flush bounds how long a byte of input that is not a regular file (a
	// pipe, a terminal, a followed log) waits before it is stored: a chunk
	// is cut when full, when the input pauses for Flush/4, and at the latest
	// Flush after its first byte arrived, however steadily input keeps
	// coming. default: DefaultFlush
	Flush time.Duration
	// AbortOnCancel is for input that cannot be read again (a pipe from a
	// program): if ctx is cancelled, Send aborts the upload, so receivers
	// learn at once that it will not complete, instead of leaving it for a
	// later Send of the same bytes to resume.
	AbortOnCancel bool
	// Progress, if set, is called each time chunks are committed, with the
	// bytes of the file committed so far (a resumed upload starts from what
	// was stored before). It runs on the goroutine that commits: one of
	// Send's own, or the caller's for a small file of a batch published in
	// one call; never two calls at once, none after Send returned. It must
	// not block: the next commit waits for it.
	Progress func(committed int64)
	// OnWait, if set, is told why Send waits when the channel's budget has
	// been full for a few seconds, and again every half minute: which
	// groups hold the budget, and whether their members are gone or
	// blocked. On a goroutine of Send's.
	OnWait func(Wait)
	// Batch, if set, makes a run of sends resumable as a whole. Each file a
	// send of the batch completes is recorded under this name in the
	// channel, in the same step that completes it; SendFile then skips a
	// file the batch already sent whose name, size, mode and modification
	// time are unchanged, and returns the earlier FileInfo with Skipped set.
	// Send records its file too but always sends (a stream cannot be
	// compared before it is read). EndBatch forgets the record; a record
	// nobody ends expires BatchTTL after its last file. A file of a batch
	// that fits in one small chunk is published in a single round trip.
	// Batch names follow the rules of channel names.
	Batch string

	// recordTTL replaces BatchTTL (Watch keeps its record longer).
	recordTTL time.Duration
}

// DefaultSettle is the default of WatchOptions.Settle.
const DefaultSettle = time.Second

// DefaultFlush is the default of SendOptions.Flush.
const DefaultFlush = 100 * time.Millisecond

// BatchTTL is how long a batch's record of sent files outlives its last
// file when nobody ends the batch (SendOptions.Batch).
const BatchTTL = 7 * 24 * time.Hour

// ReceiveOptions configure Receive.
type ReceiveOptions struct {
	// Group is the receiver group (required). Every group gets every file
	// published after it joined; members of one group share the files.
	Group string
	// Member names this process within the group. A restarted member with
	// the same name resumes its unfinished files first. default: host name
	Member string
	// Concurrency is how many files are handled at once. Live uploads
	// still in progress (a pipe, a followed log), which may never end, do
	// not count: each is handled as it comes. default: 1
	Concurrency int
	// UntilEOF makes Receive return at the end of one batch: once the
	// group has acknowledged the first end-of-batch mark (Client.SendEOF)
	// that it had not yet acknowledged when Receive started, and with it
	// every file sent before that mark. A receive started after the sender
	// finished thus handles that batch and returns; one started after the
	// group passed the last mark waits for the next one. Files sent after
	// the mark that this member had already begun are left for the next
	// Receive: not acknowledged, and resumed first by a member of the same
	// name.
	UntilEOF bool
	// Retries is how many more times a failing handler is run on a file
	// before the file is recorded as failed and acknowledged; negative
	// means none. default: 2
	Retries int
	// OnResult, if set, is called once per file outcome, from the
	// goroutine that handled the file. It must be safe for concurrent use
	// when Concurrency > 1.
	OnResult func(Result)
	// OnBlocked, if set, is called when handling a file failed on the
	// receiver's own side (ErrLocal): the member keeps the file (neither
	// acknowledged nor given up, its claim renewed), takes no new files
	// and tries it again, 1 s to 30 s apart, until the fault clears. It is
	// called again if the error changes, and with Err nil once the
	// blockage ends: the file went through, failed for another reason, or
	// the receive stopped. From the goroutine handling the file; it must be safe
	// for concurrent use when Concurrency > 1.
	OnBlocked func(Blocked)
	// OnJoined, if set, is called once, when the member has joined the
	// group and holds its name, before it takes its first file; from the
	// goroutine that called Receive.
	OnJoined func(Joined)
	// FailFast makes Receive return an error wrapping ErrLocal at the first
	// fault of the receiver's own side instead of waiting for it to clear.
	// The file is not acknowledged: it is delivered again.
	FailFast bool
}
