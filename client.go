package filecast

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// Client publishes and receives files through one Redis server. It is safe
// for concurrent use; Close it when done.
type Client struct {
	st   *store.Client
	opt  Options
	log  *slog.Logger
	host string
	pid  string

	mu        sync.Mutex
	abandoned map[string]bool        // tokens of this process's calls that returned
	budgets   map[string]budgetCache // channel key base -> its budget, as last read
	listed    map[string]bool        // channels this client added to the channel list

	transfers transfers // files in flight, for Transfers
	stats     *counters // see Stats
}

// register adds ch to the list of channels (for status), once per client.
func (c *Client) register(ctx context.Context, ch store.Channel) error {
	key := ch.Keys().Base()
	c.mu.Lock()
	done := c.listed[key]
	c.mu.Unlock()
	if done {
		return nil
	}
	if err := ch.Register(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	if c.listed == nil {
		c.listed = make(map[string]bool)
	}
	c.listed[key] = true
	c.mu.Unlock()
	return nil
}

// budgetCache is a channel's budget as read at a time. Readers size their
// progress reports from it; it changes rarely, and reading it for every
// file is a round trip that small files notice.
type budgetCache struct {
	max int64
	at  time.Time
}

// budgetFresh is how long a budget read is used.
const budgetFresh = 5 * time.Second

// budget returns the channel's budget (DefaultMaxBytes if never set).
func (c *Client) budget(ctx context.Context, ch store.Channel) (int64, error) {
	key := ch.Keys().Base()
	c.mu.Lock()
	b, ok := c.budgets[key]
	c.mu.Unlock()
	if ok && time.Since(b.at) < budgetFresh {
		return b.max, nil
	}
	_, max, err := ch.Budget(ctx)
	if err != nil {
		return 0, err
	}
	if max == 0 {
		max = DefaultMaxBytes
	}
	c.mu.Lock()
	if c.budgets == nil {
		c.budgets = make(map[string]budgetCache)
	}
	c.budgets[key] = budgetCache{max: max, at: time.Now()}
	c.mu.Unlock()
	return max, nil
}

// New connects to Redis and checks that it is safe to use: a server whose
// maxmemory-policy may evict keys is refused (ErrEviction) unless
// Options.AllowEviction is set. Errors wrap ErrUsage, ErrUnavailable,
// ErrAuth or ErrEviction.
func New(ctx context.Context, opt Options) (*Client, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	log := opt.Logger
	stats := new(counters)
	st, err := store.Dial(ctx, store.Config{URL: opt.URL, RetryFor: opt.RetryFor, RoundTrip: stats.rtt.observe,
		CAFile: opt.CAFile, CertFile: opt.CertFile, KeyFile: opt.KeyFile, Password: opt.Password,
		Replicas: opt.Replicas, ReadReplicas: opt.ReadReplicas,
		OnConnection: func(lost bool, err error, down time.Duration) {
			if lost {
				log.Warn(fmt.Sprintf("lost the connection to %s; retrying for up to %v", store.Redact(opt.URL), opt.RetryFor), "err", err)
			} else {
				log.Warn(fmt.Sprintf("the connection to %s is back after %v", store.Redact(opt.URL), down.Round(time.Millisecond)))
			}
		}})
	if errors.Is(err, store.ErrBadURL) {
		return nil, usage(err) // "invalid redis URL …" says what is invalid
	}
	if errors.Is(err, store.ErrBadConfig) {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if err != nil {
		return nil, err
	}
	if !opt.AllowEviction {
		policy, err := st.EvictionPolicy(ctx)
		if err != nil {
			st.Close()
			return nil, err
		}
		if strings.HasPrefix(policy, "allkeys-") {
			st.Close()
			return nil, fmt.Errorf("%w: %s has maxmemory-policy %s, which can silently drop file data; set it to noeviction (CONFIG SET maxmemory-policy noeviction) or set Options.AllowEviction",
				ErrEviction, st.Addr(), policy)
		}
	}
	return &Client{st: st, opt: opt, log: opt.Logger, host: DefaultMember(),
		pid: strconv.Itoa(os.Getpid()), abandoned: make(map[string]bool), stats: stats}, nil
}

// Close releases the connections. It does not wait for calls in progress;
// cancel their contexts first.
func (c *Client) Close() error {
	c.st.Close()
	return nil
}

// channel validates a channel name and returns its handle.
func (c *Client) channel(name string) (store.Channel, error) {
	if err := wire.CheckChannel("channel", name); err != nil {
		return store.Channel{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return c.st.Channel(c.opt.Prefix, name), nil
}

// CheckChannel returns an error wrapping ErrUsage if name cannot name a
// channel, group, member or batch (what says which, for the message): it
// must be 1 to 200 bytes of UTF-8 without spaces, control characters or
// any of {}:*?[]. Calls that take such names check them themselves; this
// lets a program refuse a name before it does anything else.
func CheckChannel(what, name string) error {
	if err := wire.CheckChannel(what, name); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return nil
}

// CheckName returns an error wrapping ErrUsage if name cannot name a file
// (Meta.Name): it must be a relative, slash-separated path of valid UTF-8
// without "." or ".." components, empty components, backslashes or control
// characters.
func CheckName(name string) error {
	if err := wire.CheckName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return nil
}

// Join makes group a receiver of channel: from now on it gets every file
// sent to the channel, even while none of its members runs. Receive joins
// by itself; Join lets a set-up script create groups before any sender runs.
func (c *Client) Join(ctx context.Context, channel, group string) error {
	_, err := c.JoinGroup(ctx, channel, group)
	return err
}

// JoinGroup is Join that says whether it created the group (Joined.New)
// and, if so, which groups the channel had already (Joined.Others): a new
// group beside them may be a mistyped name. Joined.Member is empty.
func (c *Client) JoinGroup(ctx context.Context, channel, group string) (Joined, error) {
	j := Joined{Channel: channel, Group: group}
	ch, err := c.channel(channel)
	if err != nil {
		return j, err
	}
	if err := wire.CheckChannel("group", group); err != nil {
		return j, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if err := ch.Register(ctx); err != nil {
		return j, err
	}
	j.New, j.Others, err = ch.JoinNew(ctx, group)
	return j, err
}

// SetBudget sets the most bytes of file data channel may hold in Redis.
func (c *Client) SetBudget(ctx context.Context, channel string, maxBytes int64) error {
	ch, err := c.channel(channel)
	if err != nil {
		return err
	}
	if maxBytes < int64(c.opt.ChunkSize) {
		return usage(fmt.Errorf("budget %d bytes: it must hold at least one chunk (%d bytes; see Options.ChunkSize)", maxBytes, c.opt.ChunkSize))
	}
	c.mu.Lock()
	delete(c.budgets, ch.Keys().Base())
	c.mu.Unlock()
	return ch.SetBudget(ctx, maxBytes)
}

// token returns a new identity "host/pid/random" for one sender or member.
func (c *Client) token() string { return c.host + "/" + c.pid + "/" + newID()[:8] }

// abandon records that the call holding token has returned, so a later call
// in this process may take over what it left unfinished.
func (c *Client) abandon(token string) {
	c.mu.Lock()
	c.abandoned[token] = true
	c.mu.Unlock()
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// deadOnThisHost reports whether holder ("host/pid…") names a process on
// this host that no longer exists, so its lease can be taken at once.
func (c *Client) deadOnThisHost(holder string) bool {
	host, rest, ok := strings.Cut(holder, "/")
	if !ok || host != c.host {
		return false
	}
	pidStr, _, _ := strings.Cut(rest, "/")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.abandoned[holder]
	}
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	// A process killed but not yet reaped by its parent is a zombie: dead.
	stat, err := os.ReadFile("/proc/" + pidStr + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndex(string(stat), ") ") // the command name may hold both
	return i >= 0 && strings.HasPrefix(string(stat[i+2:]), "Z")
}

// DefaultMember is the member name a receiver takes when
// ReceiveOptions.Member is empty, and the host part of the name a sender
// leaves on its uploads: the host name, or "localhost" if it has none.
func DefaultMember() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return host
}
