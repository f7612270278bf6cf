#!/usr/bin/env bash
# Gateway overhead: throughput and latency of a metered route against a
# plain reverse_proxy route to the same upstream, same load generator, same
# run. Prints a table of ratios. Usage: [PORT_OFFSET=n] bench/gateway.sh [seconds] [connections]
# ALT is a global meter option the second gateway adds to the first's
# config (the rows labelled with it, and the "alt" CPU columns): by
# default redis_pipeline (off in the first, as in the meter app's
# defaults); ALT="redis_batch 1" sends every call alone; make bench runs
# it with ALT="redis_lease off" (leases are on by default since the
# seventh session: the first gateway has them).
# REPEAT=n runs every measurement n times, the routes in turn within a
# round, and prints the medians (default 1): on two shared cores one run
# of a route varies by up to a third.
# QUOTA=<credits> gives the bench account that monthly quota (the
# common paying account of the seeds' plans), spent before its balance.
# SPLIT=1 pins redis-server to the last CPU and everything else (wrk, the
# upstream, the gateways) to the others, as when Redis has its own machine:
# the metered route then pays for its Redis calls in latency, not in CPU
# taken from the gateway.
# CMDSTATS=dir writes Redis's INFO commandstats of each CPU run, with its
# request count, to dir/<body>-<plain|meter|alt>.txt: which calls a
# metered request makes and what each costs the server.
# PROFILE=dir also records a CPU profile of the gateway during each CPU run
# (dir/<body>-<plain|meter|alt>.pprof, from Caddy's admin endpoint; read
# with `go tool pprof bench/out/creditgate <file>`), for where the
# metered request's extra CPU goes.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DUR=${1:-10}
CONNS=${2:-32}
REPEAT=${REPEAT:-1}
OUT=bench/out
mkdir -p "$OUT"
# PORT_OFFSET moves every port, for two runs on one machine.
o=${PORT_OFFSET:-0}
export ADMIN_PORT=$((22019 + o)) PLAIN_PORT=$((28081 + o)) METER_PORT=$((28082 + o)) UPSTREAM_PORT=$((29180 + o)) REDIS_PORT=$((26390 + o))
# A second gateway, idle while the first is measured, with $ALT.
ALT=${ALT:-redis_pipeline}
PIPE_ADMIN_PORT=$((22020 + o)) PIPE_PLAIN_PORT=$((28083 + o)) PIPE_METER_PORT=$((28084 + o))
export CREDITGATE_REDIS=redis://127.0.0.1:$REDIS_PORT/0

go build -o "$OUT/creditgate" ./cmd/creditgate
go build -o "$OUT/upstream" ./bench/upstream
go run ./bench/mkpdf -pages 1 -o "$OUT/p1.pdf"
go run ./bench/mkpdf -pages 10 -size 200000 -o "$OUT/p10.pdf"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

pin_redis=() pin_rest=()
if [ "${SPLIT:-0}" = 1 ]; then
	last=$(($(nproc) - 1))
	pin_redis=(taskset -c "$last") pin_rest=(taskset -c "0-$((last - 1))")
	echo "split: redis-server on CPU $last, the rest on CPUs 0-$((last - 1))"
fi
"${pin_redis[@]}" redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$PWD/$OUT" --logfile "$PWD/$OUT/redis.log" &
rds=$!
pids+=($rds)
"${pin_rest[@]}" "$OUT/upstream" -addr 127.0.0.1:$UPSTREAM_PORT &
pids+=($!)
until redis-cli -p $REDIS_PORT ping >/dev/null 2>&1; do sleep 0.1; done
"${pin_rest[@]}" "$OUT/creditgate" run --config bench/Caddyfile.bench >"$OUT/gateway.log" 2>&1 &
gw=$!
pids+=($gw)
until curl -sf "http://127.0.0.1:$ADMIN_PORT/config/" >/dev/null; do sleep 0.2; done
sed "s/^\t\tredis {\$CREDITGATE_REDIS}\$/&\n\t\t$ALT/" bench/Caddyfile.bench >"$OUT/Caddyfile.pipeline"
grep -q "$ALT" "$OUT/Caddyfile.pipeline"
ADMIN_PORT=$PIPE_ADMIN_PORT PLAIN_PORT=$PIPE_PLAIN_PORT METER_PORT=$PIPE_METER_PORT \
	"${pin_rest[@]}" "$OUT/creditgate" run --config "$OUT/Caddyfile.pipeline" --adapter caddyfile >"$OUT/gateway-pipeline.log" 2>&1 &
alt=$!
pids+=($alt)
until curl -sf "http://127.0.0.1:$PIPE_ADMIN_PORT/config/" >/dev/null; do sleep 0.2; done

curl -sf "http://127.0.0.1:$ADMIN_PORT/meter/accounts" -d '{"id":"bench","credits":1000000000000}' >/dev/null || true
if [ -n "${QUOTA:-}" ]; then
	curl -sf -X PATCH "http://127.0.0.1:$ADMIN_PORT/meter/accounts/bench" -d "{\"monthly_quota\": $QUOTA}" >/dev/null
fi
KEY=$(curl -sf "http://127.0.0.1:$ADMIN_PORT/meter/accounts/bench/keys" -d '{"mode":"live"}' | sed -n 's/.*"key": "\([^"]*\)".*/\1/p')

# run PORT BODY KEY -> "req/s p50_ms"
run() {
	local res
	res=$(BODY=$2 KEY=$3 "${pin_rest[@]}" wrk -t"$(( CONNS < 2 ? 1 : 2 ))" -c"$CONNS" -d"${DUR}s" --latency -s bench/post.lua "http://127.0.0.1:$1/v1/convert")
	echo "$res" >>"$OUT/wrk.log"
	local rps p50 non2xx
	rps=$(echo "$res" | awk '/Requests\/sec/ {print $2}')
	p50=$(wrk_p50 <<<"$res")
	non2xx=$(echo "$res" | awk '/Non-2xx/ {print $5}')
	if [ -n "$non2xx" ]; then echo "warning: $non2xx non-2xx responses on port $1" >&2; fi
	echo "$rps $p50"
}

# cpu_per_req PORT BODY KEY PID ADMIN_PORT NAME -> "gateway_us redis_us
# idle_pct measure_us settle_us fcall_us requests_per_fcall": CPU time (user
# + system) per request of the gateway process and of redis-server, over a
# run of DUR seconds: what each request costs, whatever else shares the
# cores; the machine's idle share; and the means of the metered request's
# stages (see stages in bench/lib.sh; 0 for plain).
cpu_per_req() {
	local g0 r0 g1 r1 i0 t0 i1 t1 res n s0 s1 prof=
	if [ -n "${PROFILE:-}" ]; then
		mkdir -p "$PROFILE"
		curl -s -o "$PROFILE/$(basename "$2" .pdf)-$6.pprof" "http://127.0.0.1:$5/debug/pprof/profile?seconds=$DUR" &
		prof=$!
	fi
	if [ -n "${CMDSTATS:-}" ]; then redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null; fi
	s0=$(stages "$5" "$REDIS_PORT")
	g0=$(ticks "$4") r0=$(ticks "$rds")
	read -r i0 t0 <<<"$(idle)"
	res=$(BODY=$2 KEY=$3 "${pin_rest[@]}" wrk -t"$(( CONNS < 2 ? 1 : 2 ))" -c"$CONNS" -d"${DUR}s" -s bench/post.lua "http://127.0.0.1:$1/v1/convert")
	g1=$(ticks "$4") r1=$(ticks "$rds")
	read -r i1 t1 <<<"$(idle)"
	s1=$(stages "$5" "$REDIS_PORT")
	if [ -n "${CMDSTATS:-}" ]; then
		mkdir -p "$CMDSTATS"
		{ echo "$res" | awk '/requests in/ {print "requests " $1}'; redis-cli -p "$REDIS_PORT" INFO commandstats; } \
			>"$CMDSTATS/$(basename "$2" .pdf)-$6.txt"
	fi
	if [ -n "$prof" ]; then wait "$prof"; fi
	n=$(echo "$res" | awk '/requests in/ {print $1}')
	awk -v g=$((g1 - g0)) -v r=$((r1 - r0)) -v n="$n" -v hz="$(getconf CLK_TCK)" -v i=$((i1 - i0)) -v t=$((t1 - t0)) \
		'BEGIN { printf "%.0f %.0f %.0f ", g / hz / n * 1e6, r / hz / n * 1e6, 100 * i / t }'
	if [ "$6" = plain ]; then echo "0 0 0 0"; else spent "$s0" "$s1" "$n"; fi
}
cpu=() stage=()

: >"$OUT/wrk.log"
printf '%-26s %12s %12s %8s %12s %12s %10s\n' "body" "plain req/s" "meter req/s" "ratio" "plain p50ms" "meter p50ms" "added ms"
for body in p1 p10; do
	# REPEAT rounds, each route in turn within a round: the medians, as
	# one run of each varies by a third on two shared cores.
	cols=(prps pp50 mrps mp50 qrps qp50 pgw prd pid mgw mrd mid mms mse mfc mrc agw ard aid ams ase afc arc)
	declare -A vals=()
	for _ in $(seq "$REPEAT"); do
		read -r prps pp50 <<<"$(run $PLAIN_PORT "$OUT/$body.pdf" "")"
		read -r mrps mp50 <<<"$(run $METER_PORT "$OUT/$body.pdf" "$KEY")"
		read -r qrps qp50 <<<"$(run $PIPE_METER_PORT "$OUT/$body.pdf" "$KEY")"
		read -r pgw prd pid _ _ _ _ <<<"$(cpu_per_req $PLAIN_PORT "$OUT/$body.pdf" "" $gw $ADMIN_PORT plain)"
		read -r mgw mrd mid mms mse mfc mrc <<<"$(cpu_per_req $METER_PORT "$OUT/$body.pdf" "$KEY" $gw $ADMIN_PORT meter)"
		read -r agw ard aid ams ase afc arc <<<"$(cpu_per_req $PIPE_METER_PORT "$OUT/$body.pdf" "$KEY" $alt $PIPE_ADMIN_PORT alt)"
		for c in "${cols[@]}"; do vals[$c]+="${!c} "; done
	done
	for c in "${cols[@]}"; do
		# shellcheck disable=SC2086 # a list of numbers
		printf -v "$c" '%s' "$(median ${vals[$c]})"
	done
	unset vals
	cpu+=("$(printf '%-22s %14s %14s %14s %14s %14s %16s' "$body" "$pgw" "$mgw" "$mrd" "$agw" "$ard" "$pid/$mid/$aid")")
	stage+=("$(printf '%-22s %10s %10s %10s %10s %10s %10s %10s %10s' "$body" "$mms" "$mse" "$mfc" "$mrc" "$ams" "$ase" "$afc" "$arc")")
	label=$([ $body = p1 ] && echo "1 page" || echo "10 pages, 200 KB")
	awk -v l="$label" -v a="$prps" -v b="$mrps" -v c="$pp50" -v d="$mp50" \
		'BEGIN { printf "%-26s %12.0f %12.0f %8.2f %12.3f %12.3f %10.3f\n", l, a, b, b/a, c, d, d-c }'
	awk -v l="$label, $ALT" -v a="$prps" -v b="$qrps" -v c="$pp50" -v d="$qp50" \
		'BEGIN { printf "%-26s %12.0f %12.0f %8.2f %12.3f %12.3f %10.3f\n", l, a, b, b/a, c, d, d-c }'
done
echo
echo "CPU per request (us, user + system; same load as above):"
if [ "$REPEAT" -gt 1 ]; then echo "(every number above and below: the median of $REPEAT rounds)"; fi
printf '%-22s %14s %14s %14s %14s %14s %16s\n' "body" "gateway plain" "gateway meter" "redis meter" "gateway alt" "redis alt" "idle % p/m/alt"
echo "(alt: the gateway with $ALT; idle: the machine's CPU time left unused during each run)"
printf '%s\n' "${cpu[@]}"
echo
echo "Where a metered request's time goes (means over the CPU runs above, us): the page count (measure),"
echo "the settle as the handler waits for it (settle), the settle script's run in Redis a call (fcall),"
echo "requests settled a call (req/call); then the same for alt:"
printf '%-22s %10s %10s %10s %10s %10s %10s %10s %10s\n' body measure settle fcall req/call measure settle fcall req/call
printf '%s\n' "${stage[@]}"
echo "gateway peak RSS: $(awk '/VmHWM/ {print $2/1024 " MB"}' /proc/$gw/status)"

# The floor of a metered request's store work on this machine, the same
# Redis in the same run: bench/minpair.lua (the least one request's money
# needs, in one call) through redis-benchmark: its Redis CPU a call with 32
# connections, its round trip (p50) with one, and PING's. They put the
# absolute targets (Redis CPU a request, added latency) on this machine's
# scale: a machine whose calls cost twice as much doubles both.
sha=$(redis-cli -p $REDIS_PORT script load "$(cat bench/minpair.lua)")
mp() { "${pin_rest[@]}" redis-benchmark -p $REDIS_PORT -c "$1" -n 50000 --csv evalsha "$sha" 3 floor:a floor:h floor:l r__rand_int__ | tail -1; }
r0=$(ticks "$rds")
mp 32 >/dev/null
r1=$(ticks "$rds")
p50() { awk -F'","' '{print $5}' <<<"$1"; }
echo "floor (same Redis): minpair.lua $(awk -v r=$((r1 - r0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", r / hz / 50000 * 1e6}') us" \
	"of redis CPU a call (32 connections), p50 $(p50 "$(mp 1)") ms at 1 connection;" \
	"PING p50 $(p50 "$("${pin_rest[@]}" redis-benchmark -p $REDIS_PORT -c 1 -n 50000 --csv ping | tail -1)") ms"
