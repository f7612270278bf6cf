#!/usr/bin/env bash
# An interleaved A/B of two gateway binaries on one Redis and one upstream:
# each round runs plain and metered on A, metered and plain on B, and
# prints each run's throughput, p50 latency and CPU per request of the
# gateway and of redis-server (user + system, from /proc). Interleaving is
# what makes a few per cent visible on two shared cores, where one run of
# a route varies by up to a third: it ends with the medians of the rounds'
# differences, new against old (each round's pair ran under the same
# drift of the machine's speed).
# Usage: bench/ab.sh OLD_BINARY NEW_BINARY [rounds] [seconds] [p1|p10] [connections]
# OLD_CONFIG and NEW_CONFIG name each gateway's Caddyfile (default
# bench/Caddyfile.bench, whose ports come from the environment): one binary
# against itself with another config (bench/floor.sh: per_call pricing).
# e.g. git worktree add /tmp/old HEAD~1 && (cd /tmp/old && go build -o /tmp/cg-old ./cmd/creditgate)
#      go build -o /tmp/cg-new ./cmd/creditgate && bench/ab.sh /tmp/cg-old /tmp/cg-new 5 4 p1 1
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OLD=$1 NEW=$2 R=${3:-3} DUR=${4:-6} BODY=${5:-p1} CONNS=${6:-32}
OUT=bench/out/ab
mkdir -p $OUT
go run ./bench/mkpdf -pages 1 -o $OUT/p1.pdf
go run ./bench/mkpdf -pages 10 -size 200000 -o $OUT/p10.pdf
go build -o $OUT/upstream ./bench/upstream
o=${PORT_OFFSET:-100}
RP=$((26390 + o)) UP=$((29180 + o))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
redis-server --port $RP --bind 127.0.0.1 --save "" --appendonly no --dir "$PWD/$OUT" --logfile "$PWD/$OUT/redis.log" &
rds=$!
pids+=($rds)
$OUT/upstream -addr 127.0.0.1:$UP &
pids+=($!)
until redis-cli -p $RP ping >/dev/null 2>&1; do sleep 0.1; done
export CREDITGATE_REDIS=redis://127.0.0.1:$RP/0 UPSTREAM_PORT=$UP
# start NAME BINARY ADMIN PLAIN METER: one gateway with bench/Caddyfile.bench
declare -A pid
start() {
	local cfg=OLD_CONFIG
	if [ "$1" = new ]; then cfg=NEW_CONFIG; fi
	ADMIN_PORT=$3 PLAIN_PORT=$4 METER_PORT=$5 "$2" run --config "${!cfg:-bench/Caddyfile.bench}" --adapter caddyfile >"$OUT/$1.log" 2>&1 &
	pids+=($!)
	pid[$1]=$!
	until curl -sf "http://127.0.0.1:$3/config/" >/dev/null; do
		if ! kill -0 "${pid[$1]}" 2>/dev/null; then
			echo "gateway $1 ($2) exited: see $OUT/$1.log" >&2
			exit 1
		fi
		sleep 0.2
	done
}
start old "$OLD" $((22019 + o)) $((28081 + o)) $((28082 + o))
start new "$NEW" $((22020 + o)) $((28083 + o)) $((28084 + o))
curl -sf "http://127.0.0.1:$((22019 + o))/meter/accounts" -d '{"id":"bench","credits":1000000000000}' >/dev/null
KEY=$(curl -sf "http://127.0.0.1:$((22019 + o))/meter/accounts/bench/keys" -d '{"mode":"live"}' | sed -n 's/.*"key": "\([^"]*\)".*/\1/p')
# one PORT KEY PID -> "req/s p50_ms gateway_us redis_us"
one() {
	local g0 r0 g1 r1 res
	g0=$(ticks "$3") r0=$(ticks $rds)
	res=$(BODY=$OUT/$BODY.pdf KEY=$2 wrk -t$((CONNS < 2 ? 1 : 2)) -c"$CONNS" -d"${DUR}s" --latency -s bench/post.lua "http://127.0.0.1:$1/v1/convert")
	g1=$(ticks "$3") r1=$(ticks $rds)
	if grep -q Non-2xx <<<"$res"; then echo "warning: non-2xx responses on port $1" >&2; fi
	awk -v g=$((g1 - g0)) -v r=$((r1 - r0)) -v hz="$(getconf CLK_TCK)" -v p="$(wrk_p50 <<<"$res")" '
		/requests in/ {n = $1} /Requests\/sec/ {rps = $2}
		END {printf "%8.0f %7.3f %8.0f %8.0f\n", rps, p, g / hz / n * 1e6, r / hz / n * 1e6}' <<<"$res"
}
printf '%-10s %8s %7s %8s %8s\n' run "req/s" p50ms gw_us redis_us
# Each round's differences, new against old, for the medians below: on a
# machine whose speed drifts between rounds, a round's pair is measured
# under the same drift.
dq=() dp=() rp=() ao=() an=() dg=() dr=()
for _ in $(seq "$R"); do
	read -r po_q po_p po_g po_r <<<"$(one $((28081 + o)) '' "${pid[old]}")"
	read -r mo_q mo_p mo_g mo_r <<<"$(one $((28082 + o)) "$KEY" "${pid[old]}")"
	read -r mn_q mn_p mn_g mn_r <<<"$(one $((28084 + o)) "$KEY" "${pid[new]}")"
	read -r pn_q pn_p pn_g pn_r <<<"$(one $((28083 + o)) '' "${pid[new]}")"
	for r in "plain-old $po_q $po_p $po_g $po_r" "meter-old $mo_q $mo_p $mo_g $mo_r" "meter-new $mn_q $mn_p $mn_g $mn_r" "plain-new $pn_q $pn_p $pn_g $pn_r"; do
		# shellcheck disable=SC2086 # the row's fields
		printf '%-10s %8s %7s %8s %8s\n' $r
	done
	read -r q p rat a b g r <<<"$(awk -v mo="$mo_q" -v mn="$mn_q" -v po="$po_q" -v pn="$pn_q" -v mop="$mo_p" -v mnp="$mn_p" \
		-v pop="$po_p" -v pnp="$pn_p" -v go="$mo_g" -v gn="$mn_g" -v ro="$mo_r" -v rn="$mn_r" 'BEGIN {
		pl = (po + pn) / 2; pp = (pop + pnp) / 2
		printf "%.3f %.3f %.3f %.3f %.3f %d %d\n", mn / mo, mnp - mop, mn / pl - mo / pl, mop - pp, mnp - pp, gn - go, rn - ro }')"
	dq+=("$q") dp+=("$p") rp+=("$rat") ao+=("$a") an+=("$b") dg+=("$g") dr+=("$r")
done
echo "medians of the $R rounds, new against old:"
echo "  metered req/s new/old $(median "${dq[@]}"), its ratio to plain new-old $(median "${rp[@]}")"
echo "  metered p50 new-old $(median "${dp[@]}") ms; added p50 (metered less plain) old $(median "${ao[@]}"), new $(median "${an[@]}") ms"
echo "  CPU a metered request new-old: gateway $(median "${dg[@]}") us, redis $(median "${dr[@]}") us"
