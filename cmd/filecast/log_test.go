package main

import (
	"bytes"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// The log for a person reads like the CLI's other lines: a level word, the
// message, the attributes in parentheses; the time only when asked.
func TestLineHandler(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(newLineHandler(&b, slog.LevelInfo, false))
	log.Debug("not shown")
	log.Warn("handler failed; retrying", "file", "data.txt", "attempt", 1, "err", errors.New("command exited with status 1"))
	log.With("channel", "t").WithGroup("redis").Info("connected", "addr", "10.0.0.1:6379", "took", 2*time.Millisecond)
	log.Error("plain")
	want := `warning: handler failed; retrying (file=data.txt attempt=1 err="command exited with status 1")
info: connected (channel=t redis.addr=10.0.0.1:6379 redis.took=2ms)
error: plain
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	slog.New(newLineHandler(&b, slog.LevelWarn, true)).Warn("slow")
	if !regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} warning: slow\n$`).MatchString(b.String()) {
		t.Errorf("with the time: %q, want \"15:04:05.000 warning: slow\\n\"", b.String())
	}
}

// recv's warnings, at the default verbosity, are lines like its others,
// not slog's key=value records.
func TestCLIRecvLogLines(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	recv := c.start("recv", "lg", "--group", "g", "--exec", "cat >/dev/null; exit 1", "--retries", "1", "--until-eof")
	waitJoined(t, c.srv, "lg", "g", recv)
	expectOK(t, c.run("send", "lg", writeTemp(t, "data.txt", "x\n"), "--eof"))
	r := recv.wait()
	if !strings.Contains(r.stderr, "\nwarning: handler failed; retrying (file=data.txt attempt=1 err=") ||
		strings.Contains(r.stderr, "level=") || strings.Contains(r.stderr, "time=") {
		t.Errorf("want the retry warning as \"warning: handler failed; retrying (file=data.txt attempt=1 err=…)\":\n%s", r)
	}
}
