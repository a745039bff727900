package filecast_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
)

// Hostile or damaged data in Redis, written behind filecast's back: every
// case is an error that wraps ErrCorrupt and says what is wrong, no byte
// of a damaged chunk is handed on, and end of file is never reported.
func TestHostileRecordsAndIndexes(t *testing.T) {
	const chunk = 4096
	data := randomBytes(41, 3*chunk+100) // chunks 1..4 (the first ramp chunk is larger than 4096)
	for _, tc := range []struct {
		name   string
		tamper func(srv *redistest.Server, f string) // f: "fc:{h}:f:<id>"; c(s, f, n): the key of chunk n
		want   string
	}{
		{"chunk longer than its entry", func(s *redistest.Server, f string) { s.Do("APPEND", c(s, f, 2), "tail") }, "chunk 2"},
		{"chunk cut short", func(s *redistest.Server, f string) { s.Do("SET", c(s, f, 2), "short") }, "chunk 2"},
		{"chunk missing", func(s *redistest.Server, f string) { s.Do("DEL", c(s, f, 3)) }, "chunk 3"},
		{"chunk bytes changed", func(s *redistest.Server, f string) { s.Do("SETRANGE", c(s, f, 1), "7", "?") }, "digest"},
		{"entry length beyond the chunk size", func(s *redistest.Server, f string) {
			s.Do("DEL", f+":idx")
			s.Do("XADD", f+":idx", "0-1", "n", "999999999", "h", strings.Repeat("0", 32))
		}, ""},
		{"entry with a bad digest field", func(s *redistest.Server, f string) {
			s.Do("DEL", f+":idx")
			s.Do("XADD", f+":idx", "0-1", "n", "10", "h", "not-hex")
		}, ""},
		{"index that skips a chunk", func(s *redistest.Server, f string) { s.Do("XDEL", f+":idx", "0-2") }, "jumps"},
		{"entry with the wrong prefix digest", func(s *redistest.Server, f string) {
			setEntryField(s, f, "0-2", "p", strings.Repeat("0", 32))
		}, "end of chunk 2"},
		{"end record with the wrong size", func(s *redistest.Server, f string) {
			replaceEnd(s, f, "eof", "1", "size", "5", "h", strings.Repeat("0", 32))
		}, "end record says 5"},
		{"end record with the wrong digest", func(s *redistest.Server, f string) {
			replaceEnd(s, f, "eof", "1", "size", fmt.Sprint(len(data)), "h", strings.Repeat("0", 32))
		}, "whole-file digest"},
		{"end record missing", func(s *redistest.Server, f string) { replaceEnd(s, f) }, "without an end entry"},
		{"record with a bogus chunk size", func(s *redistest.Server, f string) { s.Do("HSET", f, "chunk", "-3") }, ""},
		{"record with a bogus size", func(s *redistest.Server, f string) { s.Do("HSET", f, "size", "-7") }, ""},
		{"record of an unknown version", func(s *redistest.Server, f string) { s.Do("HSET", f, "v", "9") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := newClient(t, filecast.Options{ChunkSize: chunk})
			ctx := context.Background()
			c.Join(ctx, "h", "g")
			info := mustSend(t, c, "h", "victim", data, filecast.SendOptions{})
			tc.tamper(srv, "fc:{h}:f:"+info.ID)
			f, err := c.Open(ctx, "h", info.ID)
			var got []byte
			if err == nil {
				got, err = io.ReadAll(f)
				f.Close()
			}
			if !errors.Is(err, filecast.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("reading = %v, want ErrCorrupt mentioning %q", err, tc.want)
			}
			if !bytes.HasPrefix(data, got) {
				t.Errorf("%d bytes handed on that are not the file's", len(got))
			}
		})
	}
}

// c returns the key of chunk seq of the file whose record is f, of either
// protocol.
func c(s *redistest.Server, f string, seq int64) string {
	ch, id, _ := strings.Cut(strings.TrimPrefix(f, "fc:{"), "}:f:")
	return chunkKey(s, ch, id, seq)
}

// replaceEnd replaces the end entry of file record f's index with one of
// the given fields, or removes it if there are none. The index is written
// anew: servers differ in whether XSETID may move a stream's last ID back.
func replaceEnd(s *redistest.Server, f string, fields ...string) {
	const rewrite = `
local es = redis.call('XRANGE', KEYS[1], '-', '+')
redis.call('DEL', KEYS[1])
for i = 1, #es - 1 do redis.call('XADD', KEYS[1], es[i][1], unpack(es[i][2])) end
if #ARGV > 0 then redis.call('XADD', KEYS[1], es[#es][1], unpack(ARGV)) end`
	s.Do(append([]string{"EVAL", rewrite, "1", f + ":idx"}, fields...)...)
}

// setEntryField rewrites field of the index entry id of file record f.
// Stream entries cannot be changed in place: the index is written anew.
func setEntryField(s *redistest.Server, f, id, field, value string) {
	const rewrite = `
local es = redis.call('XRANGE', KEYS[1], '-', '+')
redis.call('DEL', KEYS[1])
for _, e in ipairs(es) do
  local fv = e[2]
  if e[1] == ARGV[1] then
    for i = 1, #fv, 2 do if fv[i] == ARGV[2] then fv[i + 1] = ARGV[3] end end
  end
  redis.call('XADD', KEYS[1], e[1], unpack(fv))
end`
	s.Do("EVAL", rewrite, "1", f+":idx", id, field, value)
}
