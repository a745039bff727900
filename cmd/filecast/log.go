package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// lineHandler is the slog.Handler of the CLI's log for a person: one line
// per record, in the words of the rest of what the CLI says —
//
//	warning: handler failed; retrying (file=data.txt attempt=1 err="…")
//
// the level as a word ("debug", "info", "warning", "error"), then the
// message, then the attributes in parentheses; with stamp, the time of day
// first. Safe for concurrent use when w is: each record is one Write.
type lineHandler struct {
	w     io.Writer
	level slog.Leveler
	stamp bool
	attrs string // preformatted " k=v" of WithAttrs, in order
	group string // the WithGroup prefix, "g." or ""
}

func newLineHandler(w io.Writer, level slog.Leveler, stamp bool) *lineHandler {
	return &lineHandler{w: w, level: level, stamp: stamp}
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if h.stamp && !r.Time.IsZero() {
		b.WriteString(r.Time.Format("15:04:05.000 "))
	}
	b.WriteString(levelWord(r.Level))
	b.WriteString(": ")
	b.WriteString(r.Message)
	attrs := h.attrs
	if r.NumAttrs() > 0 {
		var more strings.Builder
		r.Attrs(func(a slog.Attr) bool {
			appendAttr(&more, h.group, a)
			return true
		})
		attrs += more.String()
	}
	if attrs != "" {
		b.WriteString(" (")
		b.WriteString(attrs[1:]) // without the first space
		b.WriteString(")")
	}
	b.WriteString("\n")
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	for _, a := range as {
		appendAttr(&b, h.group, a)
	}
	h2 := *h
	h2.attrs += b.String()
	return &h2
}

func (h *lineHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group += name + "."
	return &h2
}

// levelWord names a level as the CLI's other lines do ("warning: …").
func levelWord(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= slog.LevelInfo:
		return "info"
	default:
		return "debug"
	}
}

// appendAttr writes " key=value", a group's attributes each with the
// group's name before its key; a value with spaces or quotes is quoted.
func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, prefix, g)
		}
		return
	}
	var v string
	switch a.Value.Kind() {
	case slog.KindTime:
		v = a.Value.Time().Format(time.RFC3339Nano)
	default:
		v = a.Value.String()
	}
	b.WriteString(" ")
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteString("=")
	if needsQuote(v) {
		v = strconv.Quote(v)
	}
	b.WriteString(v)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if unicode.IsSpace(r) || r == '"' || r == '=' || r == '(' || r == ')' || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}

// jsonLogTime gives a JSON log record's time the form of the CLI's other
// JSON objects' (timed): RFC 3339, UTC, in milliseconds.
func jsonLogTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.String(slog.TimeKey, a.Value.Time().UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	return a
}
