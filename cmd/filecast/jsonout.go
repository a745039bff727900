package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// jsonStream is where a command run with --json says everything: its
// outcomes and events, the log records and, through report, the error it
// ends with, one JSON object per line. Safe for concurrent use: each Write
// is one whole line.
type jsonStream struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *jsonStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// emit writes m, timed, as one line.
func (s *jsonStream) emit(m map[string]any) {
	b, err := json.Marshal(timed(m))
	if err != nil {
		b, _ = json.Marshal(timed(map[string]any{"event": "error", "error": "encode JSON: " + err.Error()}))
	}
	s.Write(append(b, '\n'))
}

// timed sets m's "time" to now (RFC 3339, UTC, in milliseconds), as every
// JSON object the CLI writes has, and returns m.
func timed(m map[string]any) map[string]any {
	if _, ok := m["time"]; !ok {
		m["time"] = time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return m
}

// notices returns a writer that turns each line written to it (a message
// meant for a person) into a {"event":"notice","message":…} object.
func (s *jsonStream) notices() io.Writer { return noticeWriter{s} }

type noticeWriter struct{ s *jsonStream }

func (n noticeWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		n.s.emit(map[string]any{"event": "notice", "message": string(line)})
	}
	return len(p), nil
}

// jsonError is an error that report prints on the command's JSON stream.
type jsonError struct {
	err error
	out *jsonStream
}

func (e jsonError) Error() string { return e.err.Error() }
func (e jsonError) Unwrap() error { return e.err }

// jsonOutput makes cmd, when its --json flag (*on) is set, say everything
// on one stream as JSON lines: stdout, or stderr if onStderr says so
// (recv --stdout, whose stdout carries the files' bytes). The command then
// finds that stream as cmd.OutOrStdout() (or ErrOrStderr()) and in g.json,
// the logger writes JSON records there, and the error it returns, from its
// argument checks too, is reported there as
// {"event":"error","error":…,"exit":N}.
func jsonOutput(cmd *cobra.Command, g *globals, on *bool, onStderr func() bool) {
	setup := func(c *cobra.Command) *jsonStream {
		if g.json == nil {
			if onStderr != nil && onStderr() {
				g.json = &jsonStream{w: c.ErrOrStderr()}
				c.SetErr(g.json)
			} else {
				g.json = &jsonStream{w: c.OutOrStdout()}
				c.SetOut(g.json)
			}
		}
		return g.json
	}
	wrap := func(c *cobra.Command, err error) error {
		if err == nil || !*on {
			return err
		}
		return jsonError{err: err, out: setup(c)}
	}
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error { return wrap(c, args(c, a)) }
	}
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, a []string) error {
		if *on {
			setup(c)
		}
		return wrap(c, run(c, a))
	}
}

// reportJSON prints the error a command run with --json ends with, and
// reports whether it did.
func reportJSON(err error, msg string, code int) bool {
	var je jsonError
	if !errors.As(err, &je) {
		return false
	}
	je.out.emit(map[string]any{"event": "error", "error": msg, "exit": code})
	return true
}
