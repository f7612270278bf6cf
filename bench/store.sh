#!/usr/bin/env bash
# Store throughput: Reserve+Commit pairs per second through redisstore
# against a private redis-server, over 1000 accounts and over one hot
# account, without persistence and with AOF (appendfsync everysec, the
# production setting). Prints one table row per run. In the same runs, on
# the same server: the floor, bench/minpair.lua (the least one request's
# money needs, issue 17) through redis-benchmark, alone and pipelined
# (rows "minpair"), and once more with the AOF on tmpfs (rows
# "aof-tmpfs": AOF's cost to Redis apart from the disk); then the embedded
# store, durable, with 32 callers (rows "bolt").
#
# Usage: bench/store.sh [seconds] [workers]
# Environment:
#   PIN=1        pin redis-server to CPU 0 and the load to CPU 1 (default 1
#                when the box has 2+ CPUs): less noise, but the load
#                generator then has one core (GOMAXPROCS=1).
#   BINS="a b"   storeload binaries to compare side by side (default: one
#                built from this tree); each cell runs them in turn.
#   REPEAT=n     runs per cell and binary (default 1).
#   POOL=n       go-redis PoolSize (default: go-redis's).
#   PIPELINE=1   also run each cell with redisstore's Options.Pipeline
#                (full-duplex autopipelining), labelled "+pipe".
#   NOBATCH=1    also run each cell with every call alone (Options.MaxBatch
#                1, no batching), labelled "+nobatch".
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
WORKERS=${2:-128}
REPEAT=${REPEAT:-1}
POOL=${POOL:-0}
PIPELINE=${PIPELINE:-0}
# Each cell runs redisstore alone and through meter/lease (rows "+lease";
# LEASE=0 leaves them out). With PIN=1, the lease rows run a second time
# with storeload not pinned (rows "+lease/2cpu"): pinned to one core, the
# lease's client work (carving, grouping, go-redis) is what runs out,
# with redis-server's core half idle; unpinned, storeload also takes that
# idle half, and the row shows what one Redis core serves.
modes="plain"
if [ "${LEASE:-1}" = 1 ]; then modes="$modes lease"; fi
if [ "${LEASE:-1}" = 1 ] && [ "${PIN:-}" != 0 ] && [ "$(nproc)" -ge 2 ]; then modes="$modes lease2cpu"; fi
if [ "$PIPELINE" = 1 ]; then modes="$modes pipe"; fi
if [ "${NOBATCH:-0}" = 1 ]; then modes="$modes nobatch"; fi
OUT=bench/out
mkdir -p "$OUT"
if [ -z "${PIN:-}" ]; then PIN=$([ "$(nproc)" -ge 2 ] && echo 1 || echo 0); fi
if [ -z "${BINS:-}" ]; then
	go build -o "$OUT/storeload" ./bench/storeload
	BINS="$OUT/storeload"
fi
srvpin=() loadpin=()
if [ "$PIN" = 1 ]; then
	srvpin=(taskset -c 0) loadpin=(taskset -c 1)
	echo "pinned: redis-server on CPU 0, storeload on CPU 1"
else
	echo "not pinned: redis-server and storeload share all $(nproc) CPUs"
fi

pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; pid=; }
trap cleanup EXIT

# Ports below Linux's ephemeral range (32768-60999), where the clients of
# busy benchmarks would otherwise take the one picked before it is bound.
freeport() {
	local p
	while :; do
		p=$((10000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# start NAME REDIS-ARGS... starts a fresh server in its own directory.
start() {
	local name=$1
	shift
	local dir="$OUT/redis-$name"
	while :; do # again on another port when the server could not bind its own
		PORT=$(freeport)
		rm -rf "$dir" && mkdir -p "$dir"
		"${srvpin[@]}" redis-server --port "$PORT" --bind 127.0.0.1 --save '' --dir "$PWD/$dir" \
			--logfile "$PWD/$dir/redis.log" "$@" &
		pid=$!
		until redis-cli -p "$PORT" ping >/dev/null 2>&1 || ! kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then return; fi
		wait "$pid" 2>/dev/null || true
	done
}

# cpu_s prints the server's CPU seconds so far (user+sys).
cpu_s() {
	redis-cli -p "$PORT" info cpu | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.6f", s}'
}

# floor NAME ACCOUNTS runs minpair.lua through redis-benchmark, 32
# connections, unpipelined then 16 deep, on ACCOUNTS accounts (1: one hot
# account), and prints rows in storeload's columns.
floor() {
	local name=$1 accounts=$2 sha keys p n c0 c1 t0 t1 row
	sha=$(redis-cli -p "$PORT" script load "$(cat bench/minpair.lua)")
	keys=('mp:{a__rand_int__}' 'mp:{a__rand_int__}:h' 'mp:{a__rand_int__}:l')
	if [ "$accounts" = 1 ]; then keys=('mp:{hot}' 'mp:{hot}:h' 'mp:{hot}:l'); fi
	for p in 1 16; do
		n=$((DUR * (p == 1 ? 30000 : 100000)))
		c0=$(cpu_s) t0=$(date +%s.%N)
		row=$("${loadpin[@]}" redis-benchmark -p "$PORT" -c 32 -n "$n" -P "$p" -r 1000 --csv \
			evalsha "$sha" 3 "${keys[@]}" 'r__rand_int__' | tail -1)
		c1=$(cpu_s) t1=$(date +%s.%N)
		awk -F'","' -v l="$name minpair-P$p" -v a="$accounts" -v n="$n" -v c="$c1 - $c0" \
			-v c0="$c0" -v c1="$c1" -v t="$t1 - $t0" -v t0="$t0" -v t1="$t1" '{
			printf "%-24s %8d %7d %9.0f %7.2f %7.2f %11s %9.0f%% %7d %12.1f\n", l, a, 32, $2, $5, $7, "-",
				(c1 - c0) / (t1 - t0) * 100, 0, (c1 - c0) / n * 1e6 }' <<<"$row"
	done
}

"${BINS%% *}" -header
for cfg in "no-aof:--appendonly no" "aof-everysec:--appendonly yes --appendfsync everysec"; do
	name=${cfg%%:*}
	# shellcheck disable=SC2086 # the arguments are meant to split
	start "$name" ${cfg#*:}
	for accounts in 1000 1; do
		for _ in $(seq "$REPEAT"); do
			for bin in $BINS; do
				for mode in $modes; do
					flags=() suffix=
					if [ "$mode" = pipe ]; then flags=(-pipeline) suffix=+pipe; fi
					if [ "$mode" = nobatch ]; then flags=(-batch 1) suffix=+nobatch; fi
					pin=("${loadpin[@]}")
					if [ "$mode" = lease ] || [ "$mode" = lease2cpu ]; then
						help=$("$bin" -h 2>&1 || true)
						if [[ $help != *-lease* ]]; then continue; fi # a build before leases
						flags=(-lease) suffix=+lease
						if [ "$mode" = lease2cpu ]; then pin=() suffix=+lease/2cpu; fi
					fi
					"${pin[@]}" "$bin" -addr "127.0.0.1:$PORT" -accounts "$accounts" -workers "$WORKERS" \
						-pool "$POOL" -duration "${DUR}s" -label "$name $(basename "$bin")$suffix" "${flags[@]}"
				done
			done
		done
		floor "$name" "$accounts"
	done
	cleanup
done
# The floor again with its AOF on tmpfs: what AOF costs Redis's one
# thread, apart from the disk (rows "aof-tmpfs"; the eleventh session found
# the two alike).
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	shm=$(mktemp -d /dev/shm/creditgate-aof.XXXXXX)
	start aof-tmpfs --appendonly yes --appendfsync everysec --dir "$shm"
	for accounts in 1000 1; do floor aof-tmpfs "$accounts"; done
	cleanup
	rm -rf "$shm"
fi
for accounts in 1000 1; do
	"${loadpin[@]}" "${BINS%% *}" -bolt "$OUT/bolt.db" -accounts "$accounts" -workers 32 \
		-duration "${DUR}s" -label "bolt-fsync $(basename "${BINS%% *}")"
done
