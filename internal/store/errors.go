package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/rueidis"
)

// Errors callers act on. Each is wrapped with the failing operation.
var (
	ErrUnavailable = errors.New("redis unavailable")
	ErrAuth        = errors.New("redis refused the credentials")
	ErrFull        = errors.New("redis is out of memory")
	ErrNoGroup     = errors.New("group does not exist")
	ErrBadURL      = errors.New("invalid redis URL")
	ErrBadConfig   = errors.New("invalid connection settings")
)

// classify maps a client error to a sentinel and says whether retrying the
// same idempotent operation may succeed.
func classify(err error) (error, bool) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err, false
	}
	if errors.Is(err, errTooFewReplicas) {
		return err, true
	}
	if rerr, ok := rueidis.IsRedisErr(err); ok {
		msg := rerr.Error()
		switch {
		case rerr.IsNil():
			return err, false
		case strings.HasPrefix(msg, "OOM"):
			return wrap(ErrFull, err), false
		case strings.HasPrefix(msg, "NOAUTH"), strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOPERM"),
			// An ACL refusal inside a script (Redis 7.0 words it so).
			strings.Contains(msg, "can't run this command"), strings.Contains(msg, "no permissions to access"),
			// ... and Valkey 8 so.
			strings.Contains(msg, "ACL failure in script"):
			return wrap(ErrAuth, err), false
		case strings.HasPrefix(msg, "NOGROUP"):
			return wrap(ErrNoGroup, err), false
		case rerr.IsLoading(), rerr.IsTryAgain(), rerr.IsClusterDown(),
			strings.HasPrefix(msg, "BUSY"), strings.HasPrefix(msg, "MASTERDOWN"),
			// A failover in progress: a write reached a primary just demoted.
			strings.HasPrefix(msg, "READONLY"), strings.HasPrefix(msg, "NOREPLICAS"),
			// A WAIT sent (after a write that was redirected) to a node
			// that became a replica: the next try finds the primary.
			strings.Contains(msg, "WAIT cannot be used with replica"),
			// A blocked XREADGROUP whose stream moved to another cluster
			// node (MIGRATE deletes it here): the next try follows it. A
			// stream really gone answers NOGROUP then.
			strings.HasPrefix(msg, "UNBLOCKED"):
			return err, true
		case strings.HasPrefix(msg, "MOVED"), strings.HasPrefix(msg, "ASK"), strings.HasPrefix(msg, "CROSSSLOT"):
			return wrap(ErrBadConfig, fmt.Errorf("%w: the server is a Redis Cluster node, but filecast was not connected as a cluster client: "+
				"if the URL's user has an ACL, allow it CLUSTER SLOTS and CLUSTER SHARDS (+cluster|slots +cluster|shards, docs/OPERATIONS.md)", err)), false
		}
		return err, false
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOENT) || errors.Is(err, rueidis.ErrClosing) ||
		errors.Is(err, rueidis.ErrDoCacheAborted) ||
		// A cluster client between topologies (a failover): it looks again.
		errors.Is(err, rueidis.ErrNoSlot) {
		return wrap(ErrUnavailable, err), true
	}
	return err, false
}

// slotMoving reports whether err says a cluster slot is moving between
// nodes: a script refused while the channel's slot is half moved
// (TRYAGAIN), or a blocked read whose stream moved away (UNBLOCKED).
func slotMoving(err error) bool {
	rerr, ok := rueidis.IsRedisErr(err)
	return ok && (rerr.IsTryAgain() || strings.HasPrefix(rerr.Error(), "UNBLOCKED"))
}

type wrapped struct{ kind, err error }

func wrap(kind, err error) error   { return &wrapped{kind, err} }
func (w *wrapped) Error() string   { return w.kind.Error() + ": " + w.err.Error() }
func (w *wrapped) Unwrap() []error { return []error{w.kind, w.err} }
