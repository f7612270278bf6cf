#!/usr/bin/env bash
# How far the metered request is from its floors, by interleaved A/B runs
# (bench/ab.sh) of this tree's gateway against two variants of it:
#   floor:    a build whose lease settle does bench/minpair.lua's work per
#             request (bench/floor_settle.lua), none of the money rules:
#             what the settle script's cost is of the metered request's
#             latency (one connection) and CPU (32);
#   per_call: the same binary with per_call pricing instead of per_page:
#             the body is streamed, not spooled and counted: what the
#             page count costs.
# Usage: bench/floor.sh [rounds] [seconds]; each comparison at 1 and at 32
# connections, 1-page bodies; each ends with the medians of its rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-5} DUR=${2:-4}
OUT=bench/out/floor
rm -rf "$OUT"
mkdir -p "$OUT"
go build -o "$OUT/creditgate" ./cmd/creditgate
# The floor build: a copy of this tree (committed or not), outside it (no
# second module under this one for go and the linters to find), with the
# block on top of lease_settle.lua's body (a function of the library: see
# scripts.go).
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git ls-files -z --cached --others --exclude-standard | grep -zv '^bench/out/' | xargs -0 cp --parents -t "$src"
f=$src/meter/redisstore/lease_settle.lua
cat bench/floor_settle.lua "$f" >"$f.new" && mv "$f.new" "$f"
(cd "$src" && go build -o "$OLDPWD/$OUT/creditgate-floor" ./cmd/creditgate)
sed 's/^\t\tper_page 1$/\t\tper_call 1/' bench/Caddyfile.bench >"$OUT/Caddyfile.per_call"
grep -q 'per_call 1' "$OUT/Caddyfile.per_call"
for conns in 1 32; do
	echo "== floor settle script (new) against this tree (old), $conns connection(s)"
	bench/ab.sh "$OUT/creditgate" "$OUT/creditgate-floor" "$R" "$DUR" p1 "$conns"
	echo "== per_call pricing (new) against per_page (old), $conns connection(s)"
	NEW_CONFIG=$OUT/Caddyfile.per_call bench/ab.sh "$OUT/creditgate" "$OUT/creditgate" "$R" "$DUR" p1 "$conns"
done
