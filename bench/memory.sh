#!/usr/bin/env bash
# Gateway memory under concurrent large uploads: starts the gateway as
# bench/gateway.sh does (its own redis-server, bench/upstream, the metered
# site of bench/Caddyfile.bench, on ports of its own), merges a ~100 MB PDF
# from real documents with qpdf, sends CONC concurrent uploads of it, samples
# the gateway's RSS every 100 ms and prints: peak RSS (sampled, and the
# kernel's VmHWM), status codes, and whether every 200 was charged the
# document's page count.
#
# Usage: bench/memory.sh
#   CONC=16       concurrent uploads
#   MB=100        approximate size of the PDF
#   BIN=path      gateway binary to run instead of building cmd/creditgate
#   CONFIG=file   Caddyfile (default bench/Caddyfile.bench)
#   OBJSTM=1      write the PDF with object streams (its page objects
#                 compressed: the scanner decodes them, some ahead of its
#                 walk)
#   ENCRYPT=1     encrypt the PDF (owner password only): pdfcpu, the
#                 fallback reader that holds the whole document, counts it
#   BOMB=1        send instead a one-page PDF of MB megabytes whose object
#                 stream is a flate bomb (1 MB inflates to about 1 GB; the
#                 scanner stops at 64 MB): every upload must be refused,
#                 422 or 503, within count_memory (issue 14: 32 x 1 MB
#                 under 512 MB RSS)
set -euo pipefail
cd "$(dirname "$0")/.."
CONC=${CONC:-16}
MB=${MB:-100}
CONFIG=${CONFIG:-bench/Caddyfile.bench}
export ADMIN_PORT=22029 PLAIN_PORT=28091 METER_PORT=28092 UPSTREAM_PORT=29190 REDIS_PORT=26391
export CREDITGATE_REDIS=redis://127.0.0.1:$REDIS_PORT/0
command -v qpdf >/dev/null || { apt-get update -qq && apt-get install -y -qq qpdf >/dev/null; }
command -v pdfinfo >/dev/null || { apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/memory.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
	go build -o "$TMP/creditgate" ./cmd/creditgate
	BIN=$TMP/creditgate
fi
go build -o "$TMP/upstream" ./bench/upstream

if [ -n "${BOMB:-}" ]; then
	echo "writing a ${MB} MB object-stream bomb..." >&2
	go run ./bench/mkpdf -bomb -size $((MB * 1000000)) -o "$TMP/doc.pdf"
else
	# The largest real PDFs until MB megabytes, merged (symlinks: names
	# without spaces for qpdf).
	echo "merging a ${MB} MB PDF..." >&2
	mkdir "$TMP/in"
	find /usr/share/doc -name '*.pdf' -type f -printf '%s %p\n' | sort -nr |
		awk -v want=$((MB * 800000)) 's < want { s += $1; sub(/^[0-9]+ /, ""); print }' >"$TMP/list"
	i=0
	while read -r path; do i=$((i + 1)); ln -s "$path" "$TMP/in/$i.pdf"; done <"$TMP/list"
	objstm=()
	if [ -n "${OBJSTM:-}" ]; then objstm=(--object-streams=generate); fi
	qpdf --no-warn --warning-exit-0 "${objstm[@]}" --empty --pages "$TMP"/in/*.pdf -- "$TMP/doc.pdf"
fi
if [ -n "${ENCRYPT:-}" ]; then
	qpdf --encrypt "" owner 256 -- "$TMP/doc.pdf" "$TMP/enc.pdf"
	mv "$TMP/enc.pdf" "$TMP/doc.pdf"
fi
PAGES=$(pdfinfo "$TMP/doc.pdf" | awk '/^Pages:/ {print $2}')
SIZE=$(stat -c %s "$TMP/doc.pdf")

redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" --logfile "$TMP/redis.log" &
pids+=($!)
"$TMP/upstream" -addr 127.0.0.1:$UPSTREAM_PORT &
pids+=($!)
until redis-cli -p $REDIS_PORT ping >/dev/null 2>&1; do sleep 0.1; done
"$BIN" run --config "$CONFIG" >"$TMP/gateway.log" 2>&1 &
gw=$!
pids+=($gw)
until curl -sf "http://127.0.0.1:$ADMIN_PORT/config/" >/dev/null; do sleep 0.2; done
curl -sf "http://127.0.0.1:$ADMIN_PORT/meter/accounts" -d '{"id":"memory","credits":1000000000000}' >/dev/null || true
KEY=$(curl -sf "http://127.0.0.1:$ADMIN_PORT/meter/accounts/memory/keys" -d '{"mode":"live"}' | sed -n 's/.*"key": "\([^"]*\)".*/\1/p')
idle=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$gw/status)

# Sample VmRSS every 100 ms while the uploads run.
(while kill -0 $gw 2>/dev/null; do awk '/VmRSS/ {print $2}' /proc/$gw/status; sleep 0.1; done) >"$TMP/rss" &
sampler=$!
pids+=($sampler)
start=$(date +%s.%N)
up=()
for ((n = 1; n <= CONC; n++)); do
	# -T streams the file: curl does not hold 100 MB per upload.
	curl -s -o "$TMP/body.$n" -X POST -T "$TMP/doc.pdf" -H "Authorization: Bearer $KEY" \
		-H 'Content-Type: application/pdf' -D "$TMP/head.$n" -w '%{http_code}\n' \
		"http://127.0.0.1:$METER_PORT/v1/convert" >"$TMP/code.$n" &
	up+=($!)
done
wait "${up[@]}" || true
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
sleep 0.3
kill $sampler 2>/dev/null || true

ok=0 busy=0 unreadable=0 other=0 charged=0
for ((n = 1; n <= CONC; n++)); do
	case $(cat "$TMP/code.$n") in
	200)
		ok=$((ok + 1))
		cost=$(awk -F': ' 'tolower($1) == "x-request-cost" {gsub(/\r/, "", $2); print $2}' "$TMP/head.$n")
		[ "$cost" = "$PAGES" ] && charged=$((charged + 1)) || echo "upload $n: charged '$cost', want $PAGES" >&2
		;;
	503) busy=$((busy + 1)) ;;
	422) [ -n "${BOMB:-}" ] && unreadable=$((unreadable + 1)) || { other=$((other + 1)); echo "upload $n: 422 $(head -c 300 "$TMP/body.$n")" >&2; } ;;
	*) other=$((other + 1)); echo "upload $n: $(cat "$TMP/code.$n") $(head -c 300 "$TMP/body.$n")" >&2 ;;
	esac
done
echo "document: $PAGES pages, $((SIZE / 1000000)) MB; $CONC concurrent uploads in ${elapsed}s"
echo "gateway RSS: idle $idle MB, peak sampled $(sort -n "$TMP/rss" | tail -1 | awk '{print int($1/1024)}') MB, VmHWM $(awk '/VmHWM/ {print int($2/1024)}' /proc/$gw/status) MB"
echo "status: $ok x 200, $busy x 503, $unreadable x 422, $other other; 200s charged $PAGES credits: $charged of $ok"
if [ "$busy" -gt 0 ]; then
	echo "503 Retry-After: $(awk -F': ' 'tolower($1) == "retry-after" {print $2}' "$TMP"/head.* | sort -u | tr -d '\r' | tr '\n' ' ')"
fi
