#!/usr/bin/env bash
# filecast demo: the log-processing job of "Redis in Action" §6.6.
#
# Web access logs (generated, cached) are sent through a private Redis to
# three receiver groups that count requests by day and country while the
# files are still uploading:
#   fanout-a  one member                  } every group gets every file
#   fanout-b  one member                  }
#   shared    two members, w1 and w2, that share the files between them
# The sender's budget (DEMO_MAX_BYTES, default 32MiB) is smaller than the
# data, so the files stream through Redis. Each group writes its results to
# <group>:daily:country:<day>; the report shows the top countries per day,
# checks that the three groups agree and match the generator's own tally,
# and prints the throughput.
#
# Usage: scripts/demo.sh            (from anywhere; needs go and redis-server)
# Environment:
#   FILECAST_DEMO_CACHE  where the generated logs are kept
#                        (default ~/.cache/filecast-demo)
#   DEMO_DAYS, DEMO_SIZE, DEMO_GZIP, DEMO_SEED   genlogs -days/-size/-gzip/-seed
#   DEMO_MAX_BYTES       the channel budget (default 32MiB)
# The Redis server is private (unix socket in a temp dir, no TCP port) and
# is shut down, and the temp dir removed, when the script exits.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

days=${DEMO_DAYS:-3}
size=${DEMO_SIZE:-96MiB}
gzip_every=${DEMO_GZIP:-3}
seed=${DEMO_SEED:-1}
max_bytes=${DEMO_MAX_BYTES:-32MiB}
cache=${FILECAST_DEMO_CACHE:-${HOME:-/tmp}/.cache/filecast-demo}
channel=logs

say() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }

# --- prerequisites ----------------------------------------------------------
if ! command -v go >/dev/null; then
	echo "demo: the Go toolchain (go 1.26 or later) is needed: https://go.dev/dl/" >&2
	exit 1
fi
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		echo "demo: redis-server is missing; installing it with apt-get" >&2
		apt-get update && apt-get install -y redis-server
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		echo "demo: redis-server is missing; installing it with sudo apt-get" >&2
		sudo apt-get update && sudo apt-get install -y redis-server
	else
		cat >&2 <<-'EOF'
		demo: redis-server (7.0 or later) and redis-cli are needed and not installed.
		  Debian/Ubuntu: sudo apt-get install redis-server
		  Fedora:        sudo dnf install redis
		  macOS:         brew install redis
		The demo starts its own private server; it does not need one running.
		EOF
		exit 1
	fi
fi

# --- private redis ----------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/filecast-demo.XXXXXX")
sock=$tmp/redis.sock
redis_pid=
pids=()
cleanup() {
	local rc=$?
	set +e
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	if [ -n "$redis_pid" ]; then
		redis-cli -s "$sock" shutdown nosave >/dev/null 2>&1 || kill "$redis_pid" 2>/dev/null
		wait "$redis_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting a private redis-server on $sock"
redis-server - >"$tmp/redis.out" 2>&1 <<EOF &
port 0
unixsocket $sock
unixsocketperm 700
dir $tmp
save ""
appendonly no
maxmemory 1gb
maxmemory-policy noeviction
daemonize no
EOF
redis_pid=$!
for _ in $(seq 100); do
	if [ -S "$sock" ] && [ "$(redis-cli -s "$sock" ping 2>/dev/null)" = PONG ]; then
		break
	fi
	if ! kill -0 "$redis_pid" 2>/dev/null; then
		cat "$tmp/redis.out" >&2
		echo "demo: redis-server failed to start" >&2
		exit 1
	fi
	sleep 0.05
done
if [ "$(redis-cli -s "$sock" ping 2>/dev/null)" != PONG ]; then
	cat "$tmp/redis.out" >&2
	echo "demo: redis-server did not answer on $sock" >&2
	exit 1
fi
url="unix://$sock"
echo "redis $(redis-cli -s "$sock" info server | tr -d '\r' | sed -n 's/^redis_version://p') up (pid $redis_pid)"

# --- build --------------------------------------------------------------------
say "building the examples"
bin=$tmp/bin
mkdir -p "$bin"
t0=$(now)
go build -o "$bin/" ./examples/...
if compgen -G "cmd/filecast/*.go" >/dev/null; then
	if go build -o "$bin/" ./cmd/filecast 2>"$tmp/cli-build.log"; then
		echo "built the filecast CLI too ($bin/filecast)"
	else
		echo "note: the filecast CLI does not build yet; the demo does not need it (see below)"
		sed 's/^/  /' "$tmp/cli-build.log" | head -n 5
	fi
fi
awk -v s="$t0" -v e="$(now)" 'BEGIN { printf "built in %.1fs\n", e - s }'

# --- logs -------------------------------------------------------------------
say "access logs in $cache"
"$bin/genlogs" -dir "$cache" -days "$days" -size "$size" -gzip "$gzip_every" -seed "$seed"
data_bytes=0
for f in "$cache"/*; do
	[ -f "$f" ] || continue
	data_bytes=$((data_bytes + $(stat -c %s "$f")))
	printf '  %-28s %10d bytes\n' "$(basename "$f")" "$(stat -c %s "$f")"
done

# --- run --------------------------------------------------------------------
say "joining the receiver groups (they get every file sent from now on)"
groups=(fanout-a fanout-b shared)
for g in "${groups[@]}"; do
	"$bin/logagg" -redis "$url" -channel "$channel" -group "$g" -join-only
done

say "receiving with 4 members in 3 groups while sending with a $max_bytes budget"
start=$(now)
names=()
run_bg() { # name, command...
	local name=$1
	shift
	"$@" &
	pids+=($!)
	names+=("$name")
}
for spec in fanout-a/w1 fanout-b/w1 shared/w1 shared/w2; do
	g=${spec%/*} m=${spec#*/}
	run_bg "logagg $spec" "$bin/logagg" -redis "$url" -channel "$channel" -group "$g" -member "$m" \
		-prefix "$g:" -timeout 60s
done
run_bg sendlogs "$bin/sendlogs" -redis "$url" -channel "$channel" -dir "$cache" -max-bytes "$max_bytes" -timeout 60s

# Wait for all five; if one fails, stop the others at once (a sender
# without receivers, or receivers without a sender, would wait for their
# -timeout).
failed=0
running=${#pids[@]}
finished=()
while :; do
	for i in "${!pids[@]}"; do
		if [ -z "${finished[$i]:-}" ] && ! kill -0 "${pids[$i]}" 2>/dev/null; then
			finished[i]=1
			running=$((running - 1))
			if ! wait "${pids[$i]}"; then
				echo "demo: ${names[$i]} failed" >&2
				failed=1
			fi
		fi
	done
	if [ "$running" = 0 ] || [ "$failed" != 0 ]; then
		break
	fi
	sleep 0.05
done
for i in "${!pids[@]}"; do
	if [ -z "${finished[$i]:-}" ]; then
		kill "${pids[$i]}" 2>/dev/null || true
		wait "${pids[$i]}" 2>/dev/null || true
	fi
done
pids=()
end=$(now)
if [ "$failed" != 0 ]; then
	echo "demo: FAILED; the filecast keys left in redis:" >&2
	redis-cli -s "$sock" --scan --pattern 'fc:*' 2>/dev/null | head -n 20 | sed 's/^/  /' >&2 || true
	exit 1
fi

# --- results ----------------------------------------------------------------
say "results"
"$bin/logagg" -redis "$url" -report -prefix "fanout-a:,fanout-b:,shared:" -expect "$cache/.genlogs.json"

left=$(redis-cli -s "$sock" --scan --pattern "fc:{$channel}:f:*" | wc -l)
peak=$(redis-cli -s "$sock" info memory | tr -d '\r' | sed -n 's/^used_memory_peak_human://p')
echo
awk -v b="$data_bytes" -v s="$start" -v e="$end" -v g=3 -v peak="$peak" -v left="$left" 'BEGIN {
	t = e - s
	printf "total:  %.1f MB of files sent once, delivered to %d groups (%.1f MB read from redis)\n", b / 1e6, g, g * b / 1e6
	printf "wall:   %.2fs from starting the receivers and the sender until all had exited\n", t
	printf "rate:   %.1f MB/s sent, %.1f MB/s delivered\n", b / 1e6 / t, g * b / 1e6 / t
	printf "redis:  peak memory %s; file keys left after the batch: %d\n", peak, left
}'
echo
echo "demo: OK"
