package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// Result keys, under the -prefix (empty by default):
//
//	<prefix>daily:country:<YYYY-MM-DD>  sorted set: country -> lines that day
//	<prefix>daily:done                  set of the files already counted
//	<prefix>daily:stats                 hash: files, lines, bytes, timings
const (
	countryKey = "daily:country:"
	doneKey    = "daily:done"
	statsKey   = "daily:stats"
)

// commitScript adds one file's counts unless that file was counted before.
//
// filecast delivers at least once: a member that dies after counting a file
// but before its acknowledgement, or that is frozen past its lease while
// another member takes the file over, hands the same file out again. So the
// file's id is added to the done set in the same atomic step as its counts,
// and a file already in the set is skipped: each file counts exactly once
// per prefix.
//
// KEYS[1] done set, KEYS[2] stats hash, KEYS[3...] one sorted set per day.
// ARGV: file token, member, lines, bad lines, log bytes, wire bytes,
// start ms, end ms; then per day key: n, and n pairs country, count.
var commitScript = rueidis.NewLuaScript(`
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local a = 9
for k = 3, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, n do
    redis.call('ZINCRBY', KEYS[k], ARGV[a + 1], ARGV[a])
    a = a + 2
  end
end
local s, m = KEYS[2], ARGV[2]
redis.call('HINCRBY', s, 'files', 1)
redis.call('HINCRBY', s, 'files:' .. m, 1)
redis.call('HINCRBY', s, 'lines', ARGV[3])
redis.call('HINCRBY', s, 'lines:' .. m, ARGV[3])
redis.call('HINCRBY', s, 'bad_lines', ARGV[4])
redis.call('HINCRBY', s, 'log_bytes', ARGV[5])
redis.call('HINCRBY', s, 'wire_bytes', ARGV[6])
local first = redis.call('HGET', s, 'first_start_ms')
if not first or tonumber(first) > tonumber(ARGV[7]) then
  redis.call('HSET', s, 'first_start_ms', ARGV[7])
end
local last = redis.call('HGET', s, 'last_end_ms')
if not last or tonumber(last) < tonumber(ARGV[8]) then
  redis.call('HSET', s, 'last_end_ms', ARGV[8])
end
return 1
`)

// fileStats is what a member learned from one file.
type fileStats struct {
	token      string // unique per file: channel/id
	member     string
	counts     *agg
	logBytes   int64 // decompressed bytes
	wireBytes  int64 // bytes of the file as sent
	start, end time.Time
}

// commit writes a file's counts in one atomic script call. It reports
// false if the file had been counted before (and nothing was written).
func commit(ctx context.Context, rc rueidis.Client, prefix string, fs fileStats) (bool, error) {
	keys := []string{prefix + doneKey, prefix + statsKey}
	args := []string{fs.token, fs.member,
		strconv.FormatInt(fs.counts.lines, 10), strconv.FormatInt(fs.counts.bad, 10),
		strconv.FormatInt(fs.logBytes, 10), strconv.FormatInt(fs.wireBytes, 10),
		strconv.FormatInt(fs.start.UnixMilli(), 10), strconv.FormatInt(fs.end.UnixMilli(), 10)}
	days := make([]string, 0, len(fs.counts.days))
	for d := range fs.counts.days {
		days = append(days, d)
	}
	sort.Strings(days)
	for _, d := range days {
		keys = append(keys, prefix+countryKey+d)
		m := fs.counts.days[d]
		args = append(args, strconv.Itoa(len(m)))
		for c, n := range m {
			args = append(args, c, strconv.FormatInt(n, 10))
		}
	}
	n, err := commitScript.Exec(ctx, rc, keys, args).AsInt64()
	if err != nil {
		return false, fmt.Errorf("write results: %w", err)
	}
	return n == 1, nil
}

// dialResults connects to the Redis server that holds the results.
func dialResults(ctx context.Context, url string) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("-results-redis: %w", err)
	}
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("connect to results redis: %w", err)
	}
	if err := rc.Do(ctx, rc.B().Ping().Build()).Error(); err != nil {
		rc.Close()
		return nil, fmt.Errorf("connect to results redis: %w", err)
	}
	return rc, nil
}
