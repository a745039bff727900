// Package fswatch tells when something may have changed in a set of
// directories: from the operating system's notifications (fsnotify), or by
// polling when notifications are unavailable or their limit is reached.
//
// Its events are hints, not a record: an event names a path that may have
// been created, written, renamed or removed, and the caller looks at the
// file system to learn what happened. Events may be merged or, when the
// kernel's queue overflows, replaced by a rescan (an event with no path),
// so a caller that rescans on those never misses a change. It knows
// nothing of Redis or of what the caller sends.
package fswatch

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Event names a path that may have changed. Path is empty for a rescan:
// anything in any watched directory may have changed (a poll tick, an
// overflow of the notification queue).
type Event struct {
	Path string
}

// Options configure a Watcher.
type Options struct {
	// Poll is how often a Watcher that polls rescans. default: 250ms
	Poll time.Duration
	// ForcePoll makes the Watcher poll from the start, as it does when
	// notifications are unavailable.
	ForcePoll bool
	// Rescan is how often a Watcher that gets notifications sends a rescan
	// anyway, for changes notifications miss (some network file systems).
	// default: 2s
	Rescan time.Duration
	// OnPoll, if set, is called once, with the reason, when the Watcher
	// falls back to polling.
	OnPoll func(reason error)
}

// Watcher watches directories. Its methods are safe for concurrent use.
type Watcher struct {
	// Events delivers the events. It is closed by Close.
	Events <-chan Event

	opt    Options
	events chan Event
	done   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	fs      *fsnotify.Watcher // nil while polling
	dirs    map[string]bool
	polling bool
	closed  bool
}

// New returns a Watcher that watches nothing yet.
func New(opt Options) *Watcher {
	if opt.Poll <= 0 {
		opt.Poll = 250 * time.Millisecond
	}
	if opt.Rescan <= 0 {
		opt.Rescan = 2 * time.Second
	}
	events := make(chan Event, 256)
	w := &Watcher{Events: events, opt: opt, events: events, done: make(chan struct{}), dirs: make(map[string]bool)}
	if opt.ForcePoll {
		w.polling = true
	} else if fw, err := fsnotify.NewWatcher(); err != nil {
		w.fallBack(err) // too many inotify instances, or none on this system
	} else {
		w.fs = fw
		w.wg.Add(1)
		go w.notify(fw)
	}
	w.wg.Add(1)
	go w.tick()
	return w
}

// Polling reports whether the Watcher polls instead of getting
// notifications.
func (w *Watcher) Polling() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.polling
}

// Add watches directory dir (not its subdirectories). A directory whose
// watch the system refuses for lack of room (the inotify watch limit) is
// polled, and so is every other from then on. Other errors, such as a
// directory that does not exist, are returned.
func (w *Watcher) Add(dir string) error {
	dir = filepath.Clean(dir)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return os.ErrClosed
	}
	if w.dirs[dir] {
		return nil
	}
	if w.fs != nil {
		err := w.fs.Add(dir)
		switch {
		case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EMFILE):
			w.stopNotifyLocked(err)
		case err != nil:
			return err
		}
	} else if _, err := os.Stat(dir); err != nil {
		return err
	}
	w.dirs[dir] = true
	return nil
}

// Remove stops watching dir.
func (w *Watcher) Remove(dir string) {
	dir = filepath.Clean(dir)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.dirs[dir] {
		return
	}
	delete(w.dirs, dir)
	if w.fs != nil {
		w.fs.Remove(dir) // fails if the directory was removed: the watch is gone anyway
	}
}

// Close stops the Watcher and waits for its goroutines; Events is closed.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	fw := w.fs
	w.fs = nil
	w.mu.Unlock()
	close(w.done)
	if fw != nil {
		fw.Close()
	}
	w.wg.Wait()
	close(w.events)
	return nil
}

// fallBack switches to polling, saying why once.
func (w *Watcher) fallBack(reason error) {
	w.polling = true
	if w.opt.OnPoll != nil {
		w.opt.OnPoll(reason)
	}
}

// stopNotifyLocked gives notifications up for polling; w.mu is held.
func (w *Watcher) stopNotifyLocked(reason error) {
	fw := w.fs
	w.fs = nil
	w.fallBack(reason)
	go fw.Close() // its goroutine sends under no lock of ours; do not wait here
}

// send delivers e, or a rescan in its place when the consumer is behind.
func (w *Watcher) send(e Event) {
	select {
	case w.events <- e:
		return
	default:
	}
	select { // full: a rescan covers this event and whatever is queued
	case w.events <- Event{}:
	case <-w.done:
	}
}

func (w *Watcher) notify(fw *fsnotify.Watcher) {
	defer w.wg.Done()
	for {
		select {
		case e, ok := <-fw.Events:
			if !ok {
				return
			}
			w.send(Event{Path: e.Name})
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.send(Event{}) // events were lost: look at everything
			}
		case <-w.done:
			return
		}
	}
}

// tick sends a rescan every Poll while polling, and every Rescan otherwise.
func (w *Watcher) tick() {
	defer w.wg.Done()
	t := time.NewTicker(w.opt.Poll)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-t.C:
		case <-w.done:
			return
		}
		if w.Polling() || time.Since(last) >= w.opt.Rescan {
			last = time.Now()
			w.send(Event{})
		}
	}
}
