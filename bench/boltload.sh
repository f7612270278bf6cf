#!/usr/bin/env bash
# The embedded store's durable throughput: Reserve+Commit pairs per second
# through boltstore (fsync on, as in production) with 32 callers, over 1000
# accounts and one hot account, each without and with 5 credit grants on
# the account. Prints storeload's row per run, then its commits/s line.
#
# Usage: bench/boltload.sh [seconds] [workers]
# Environment:
#   BINS="a b"   storeload binaries to compare (default: one built from
#                this tree); each cell runs them in turn, interleaved.
#   REPEAT=n     rounds (default 1).
#   GRANTS="0 5" the grant counts to run.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
WORKERS=${2:-32}
REPEAT=${REPEAT:-1}
OUT=bench/out
mkdir -p "$OUT"
if [ -z "${BINS:-}" ]; then
	go build -o "$OUT/storeload" ./bench/storeload
	BINS="$OUT/storeload"
fi
"${BINS%% *}" -header
for _ in $(seq "$REPEAT"); do
	for accounts in 1000 1; do
		for grants in ${GRANTS:-0 5}; do
			for bin in $BINS; do
				"$bin" -bolt "$OUT/bolt-$$.db" -accounts "$accounts" -workers "$WORKERS" -grants "$grants" \
					-duration "${DUR}s" -label "$(basename "$bin") g$grants"
			done
		done
	done
done
