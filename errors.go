package filecast

import (
	"errors"
	"fmt"

	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// Errors callers act on. Every error a Client returns wraps at most one of
// them (found with errors.Is), except context errors, returned unchanged.
var (
	// ErrCorrupt: data read from Redis failed its digest or length check,
	// or a record was malformed. The file is never presented as complete.
	ErrCorrupt = errors.New("integrity check failed")
	// ErrGone: the file's data is no longer in Redis (released, or the
	// server lost its data).
	ErrGone = store.ErrGone
	// ErrAborted: the upload was given up (Client.Abort, or its
	// source changed before it could resume).
	ErrAborted = errors.New("upload aborted")
	// ErrLost: a work-sharing member's claim on a file expired and another
	// member took the file over; this member must not deliver it.
	ErrLost = errors.New("file taken over by another member")
	// ErrBusy: another live process holds the same upload or member name.
	ErrBusy = errors.New("in use by another process")
	// ErrNoGroups: no receiver group has joined the channel, so a file sent
	// now would reach nobody.
	ErrNoGroups = errors.New("no receiver group has joined the channel")
	// ErrNoChannel: the channel named was never used (no file sent, no
	// group joined, no setting made): a typo, or the wrong Options.Prefix.
	ErrNoChannel = errors.New("no such channel")
	// ErrNoGroup: the group named is not one of the channel's receiver
	// groups: it never joined, or it was dropped (DropGroup,
	// Settings.GroupExpiry).
	ErrNoGroup = store.ErrNoGroup
	// ErrEviction: the server may evict keys (maxmemory-policy allkeys-*).
	ErrEviction = errors.New("redis may evict data")
	// ErrUnavailable: Redis could not be reached, or stopped answering for
	// longer than Options.RetryFor.
	ErrUnavailable = store.ErrUnavailable
	// ErrAuth: Redis refused the credentials or the ACL user lacks a permission.
	ErrAuth = store.ErrAuth
	// ErrFull: Redis is at maxmemory with noeviction and refused a write.
	ErrFull = store.ErrFull
	// ErrUsage: an argument or option is invalid.
	ErrUsage = errors.New("invalid usage")
	// ErrGroupDropped: the receiver group no longer exists on the channel:
	// it was dropped (Client.DropGroup, Settings.GroupExpiry) or the server
	// lost its data. Receiving again joins the group anew; files sent
	// before that are not delivered to it.
	ErrGroupDropped = errors.New("the receiver group no longer exists")
	// ErrFailed: a handler kept failing on a file and it was given up.
	ErrFailed = errors.New("file failed")
	// ErrLocal: a handler failed on the receiver's own side, not because of
	// the file: a full disk, a read-only or unwritable target, an I/O
	// error, a command that cannot start. A handler wraps it (errors that
	// wrap ENOSPC, EDQUOT, EROFS or EIO count as it too); Receive then
	// keeps the file, takes no new ones and tries again until the fault
	// clears (ReceiveOptions.OnBlocked), or returns it
	// (ReceiveOptions.FailFast).
	ErrLocal = errors.New("the receiver cannot handle files")
)

// Error describes a failure on one file.
type Error struct {
	Op      string // what was being done: "send", "receive", "read chunk 7", …
	Channel string
	Name    string // the file's name, if known
	ID      string // the file's id, if known
	Err     error
}

func (e *Error) Error() string {
	s := e.Op
	if e.Name != "" {
		s += " " + e.Name
	} else if e.ID != "" {
		s += " file " + e.ID
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// usage marks err as ErrUsage without repeating "invalid usage" in its
// text: for messages that already say what is invalid.
func usage(err error) error { return &usageError{err} }

type usageError struct{ err error }

func (e *usageError) Error() string   { return e.err.Error() }
func (e *usageError) Unwrap() []error { return []error{ErrUsage, e.err} }

// corrupt wraps a wire decoding error as ErrCorrupt.
func corrupt(err error) error {
	if errors.Is(err, wire.ErrMalformed) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}
