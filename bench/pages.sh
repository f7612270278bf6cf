#!/usr/bin/env bash
# Page counting on large real PDFs: our counter (usage.ScanPDF, through
# meter/usage/internal/cmd/countpages) against pdfinfo and qpdf, on
# documents merged with qpdf from the PDFs under /usr/share/doc, with a
# classic xref table and with object streams, from ~2,000 pages / ~30 MB to
# ~15,000 pages / ~500 MB. Prints median wall time (s), CPU time (user+sys,
# 10 ms steps), peak RSS (MB), the ratios ours/pdfinfo, and whether the
# three page counts agree.
#
# Usage: bench/pages.sh
#   RUNS=3        timed runs of ours and pdfinfo (median reported)
#   QPDF_RUNS=1   timed runs of qpdf --show-npages (slow on large files)
#   SIZES="S M L" documents to build: S ~2,000 p / 30 MB, M ~6,000 p /
#                 150 MB, L ~15,000 p / 500 MB
#   BASE_REV=rev  also time countpages built from that git revision
#                 (git archive, read-only), for before/after in one run
#   KEEP=1        keep the merged documents (their directory is printed)
# The machine may be shared: compare the ratios of one run, and repeat
# when a number looks off. CPU time (user+sys) suffers less from load.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
QPDF_RUNS=${QPDF_RUNS:-1}
SIZES=${SIZES:-S M L}

need_pkg() { # command package
	command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }
}
need_pkg qpdf qpdf
need_pkg pdfinfo poppler-utils
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [ "$(find /usr/share/doc -name '*.pdf' -size +100k 2>/dev/null | wc -l)" -lt 300 ]; then
	apt-get update -qq && apt-get install -y -qq texlive-latex-base-doc texlive-latex-recommended-doc texlive-pictures-doc >/dev/null
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pages.XXXXXX")
if [ -n "${KEEP:-}" ]; then trap 'echo "kept $TMP" >&2' EXIT; else trap 'rm -rf "$TMP"' EXIT; fi
mkdir -p "$TMP/in"
go build -o "$TMP/ours" ./meter/usage/internal/cmd/countpages
tools=(ours pdfinfo qpdf)
if [ -n "${BASE_REV:-}" ]; then
	mkdir "$TMP/base-src"
	git archive "$BASE_REV" | tar -x -C "$TMP/base-src"
	(cd "$TMP/base-src" && go build -o "$TMP/base" ./meter/usage/internal/cmd/countpages)
	tools=(ours base pdfinfo qpdf)
fi

# Stock: pages and bytes of every PDF our counter reads, one symlink each
# (qpdf copies a file again under another name, which makes the filler).
echo "taking stock of /usr/share/doc..." >&2
find /usr/share/doc -name '*.pdf' -type f -print0 | xargs -0 "$TMP/ours" 2>/dev/null |
	sed -n 's/^\(.*\): \([0-9]*\) pages, \([0-9]*\) bytes, .*/\2 \3 \1/p' >"$TMP/stock.raw" || true
awk '{p=$1; b=$2; $1=""; $2=""; sub(/^  /, ""); printf "%d %d %s\n", p, b, $0}' "$TMP/stock.raw" |
	awk '{print NR, $0}' >"$TMP/stock"
while read -r i _ _ path; do ln -s "$path" "$TMP/in/$i.pdf"; done <"$TMP/stock"

# pick PAGES BYTES: file names for a merged document of about PAGES pages
# and BYTES bytes. Pages come from documents of at most PAGES/4 pages,
# largest first; bytes from the densest documents (over 100 KB a page),
# copied under new names as often as needed.
pick() {
	local pages=$1 bytes=$2 n=0
	sort -k2,2nr "$TMP/stock" | awk -v t="$pages" -v dir="$TMP/in" \
		'$2 <= t/4 && $2 > 0 && p < 0.9*t { p += $2; b += $3; print dir "/" $1 ".pdf" } END { print p, b > "/dev/stderr" }' \
		2>"$TMP/picked" >"$TMP/list"
	read -r _ got <"$TMP/picked"
	awk '$3/$2 > 100000 {print $3/$2, $1, $3}' "$TMP/stock" | sort -nr | cut -d' ' -f2- >"$TMP/dense"
	[ -s "$TMP/dense" ] || { cat "$TMP/list"; return; }
	while [ "$got" -lt "$bytes" ]; do
		n=$((n + 1))
		while read -r i size && [ "$got" -lt "$bytes" ]; do
			ln -s "$TMP/in/$i.pdf" "$TMP/in/$i.copy$n.pdf"
			echo "$TMP/in/$i.copy$n.pdf" >>"$TMP/list"
			got=$((got + size))
		done <"$TMP/dense"
	done
	cat "$TMP/list"
}

declare -A target=([S]="2000 30000000" [M]="6000 150000000" [L]="15000 500000000")
docs=()
for s in $SIZES; do
	read -r p b <<<"${target[$s]}"
	pick "$p" "$b" >"$TMP/list.$s"
	echo "merging $s ($(wc -l <"$TMP/list.$s") documents)..." >&2
	qpdf --no-warn --warning-exit-0 --empty --pages $(cat "$TMP/list.$s") -- "$TMP/$s-classic.pdf" &
	qpdf --no-warn --warning-exit-0 --empty --pages $(cat "$TMP/list.$s") -- --object-streams=generate "$TMP/$s-objstm.pdf" &
	wait
	rm -f "$TMP"/in/*.copy*.pdf
	docs+=("$s-classic" "$s-objstm")
done

# cmd_of TOOL FILE: the command line timed.
cmd_of() {
	case $1 in
	ours | base) echo "$TMP/$1 $2" ;;
	pdfinfo) echo "pdfinfo $2" ;;
	qpdf) echo "qpdf --show-npages $2" ;;
	esac
}
# count_of TOOL FILE: its page count.
count_of() {
	case $1 in
	ours | base) "$TMP/$1" "$2" | sed -n 's/.*: \([0-9]*\) pages.*/\1/p' ;;
	pdfinfo) pdfinfo "$2" | awk '/^Pages:/ {print $2}' ;;
	qpdf) qpdf --show-npages "$2" ;;
	esac
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-10s %6s %5s' doc pages MB
for t in "${tools[@]}"; do printf ' %9s %8s %6s' "$t s" "cpu" "MB"; done
printf ' %11s %10s %s\n' "ours/pdfinf" "cpu ratio" counts
for d in "${docs[@]}"; do
	f="$TMP/$d.pdf"
	agree=ok
	declare -A cnt=()
	for t in "${tools[@]}"; do cnt[$t]=$(count_of "$t" "$f"); done
	for t in "${tools[@]}"; do [ "${cnt[$t]}" = "${cnt[ours]}" ] || agree="DIFFER(${cnt[*]})"; done
	# Interleaved runs, so that load from elsewhere hits every tool alike.
	for t in "${tools[@]}"; do : >"$TMP/t.$t"; done
	for ((r = 1; r <= RUNS; r++)); do
		for t in "${tools[@]}"; do
			[ "$t" = qpdf ] && [ "$r" -gt "$QPDF_RUNS" ] && continue
			# Wall time from date (ns): time(1)'s %e has 10 ms steps.
			t0=$(date +%s%N)
			/usr/bin/time -o "$TMP/one" -f '%U %S %M' $(cmd_of "$t" "$f") >/dev/null 2>&1
			echo "$((($(date +%s%N) - t0) / 1000)) $(cat "$TMP/one")" >>"$TMP/t.$t"
		done
	done
	printf '%-10s %6s %5d' "$d" "${cnt[ours]}" $(($(stat -c %s "$f") / 1000000))
	declare -A wall=() cpu=()
	for t in "${tools[@]}"; do
		wall[$t]=$(awk '{print $1/1e6}' "$TMP/t.$t" | median)
		cpu[$t]=$(awk '{print $2+$3}' "$TMP/t.$t" | median)
		printf ' %9.3f %8.2f %6d' "${wall[$t]}" "${cpu[$t]}" "$(awk '$4 > m {m = $4} END {print int(m/1024)}' "$TMP/t.$t")"
	done
	awk -v a="${wall[ours]}" -v b="${wall[pdfinfo]}" -v c="${cpu[ours]}" -v d="${cpu[pdfinfo]}" \
		'BEGIN { printf " %11.2f %10.2f", (b > 0 ? a/b : 0), (d > 0 ? c/d : 0) }'
	echo " $agree"
	unset cnt wall cpu
done
