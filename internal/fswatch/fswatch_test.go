package fswatch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// waitEvent waits for an event naming path, or for a rescan if path is "".
func waitEvent(t *testing.T, w *Watcher, path string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-w.Events:
			if !ok {
				t.Fatal("Events closed")
			}
			if e.Path == path {
				return
			}
		case <-deadline:
			t.Fatalf("no event for %q within 10s", path)
		}
	}
}

func TestNotifiesWritesAndCreates(t *testing.T) {
	dir := t.TempDir()
	w := New(Options{Rescan: time.Hour})
	defer w.Close()
	if w.Polling() {
		t.Skip("no file system notifications on this machine")
	}
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a.log")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, w, p)
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Drain what the creation caused, then expect the append's own event.
	time.Sleep(50 * time.Millisecond)
	for len(w.Events) > 0 {
		<-w.Events
	}
	f.Write([]byte("more"))
	waitEvent(t, w, p)
}

func TestPollingRescans(t *testing.T) {
	var reason error
	w := New(Options{ForcePoll: true, Poll: 10 * time.Millisecond})
	defer w.Close()
	if !w.Polling() || reason != nil {
		t.Fatal("ForcePoll: not polling")
	}
	if err := w.Add(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, w, "")
	if err := w.Add(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Add of a missing directory succeeded")
	}
}

func TestCloseEndsEvents(t *testing.T) {
	w := New(Options{})
	w.Add(t.TempDir())
	w.Close()
	for range w.Events { // must end
	}
	if err := w.Add(t.TempDir()); err == nil {
		t.Error("Add after Close succeeded")
	}
}
